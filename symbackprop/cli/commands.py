"""The commands of the ``symbackprop`` program, one function each."""

from __future__ import annotations

from symbackprop.check.formula_check import FORMULAS
from symbackprop.check.impl import CONVENTIONS, IMPLEMENTATIONS, conventions
from symbackprop.cli.options import (
    add_derivation_options,
    add_instance_options,
    add_notation_options,
    command,
    default_layer,
    derivation_from_args,
    input_size_from_args,
    layer_from_args,
)
from symbackprop.core.command_line import parse_numbers
from symbackprop.core.registry import KINDS
from symbackprop.core.rules import proofs_for
from symbackprop.render.latex import NAME_OPTIONS
from symbackprop.render.text import to_text


def _name_options(parser, kind):
    """``--input-name`` ... : the course's names of the arrays a kind has."""
    for option, (array, meaning) in NAME_OPTIONS.items():
        if array in ("w", "b") and array not in kind.parameter_names:
            # Pooling and activations learn no weight or bias to rename.
            parser.set_defaults(**{f"{option}_name": None})
            continue
        parser.add_argument(f"--{option}-name", default=None, metavar="NAME",
                            help=f"name of {meaning} (Greek names become letters; "
                                 f"default {array})")


def _names_from_args(args) -> dict:
    """The ``--*-name`` options given, checked (one line naming the option and the rule)."""
    from symbackprop.render.latex import option_name

    return {key: option_name(getattr(args, f"{option}_name"), f"--{option}-name")
            for option, (key, _) in NAME_OPTIONS.items()
            if getattr(args, f"{option}_name") is not None}


def _derive_options(parser, kind):
    add_instance_options(parser, kind)
    add_notation_options(parser, kind)
    _name_options(parser, kind)
    add_derivation_options(parser, kind)
    parser.add_argument("--worked-example", action="store_true",
                        help="also print a worked example in numbers: small integers for the "
                             "input, parameters and upstream gradient, and every output and "
                             "gradient at them (default: off; the LaTeX printout has it)")


@command("derive", help="expand a layer and print every output and gradient element")
def derive_command(args) -> int:
    names = _names_from_args(args)  # refused before any work
    derivation = derivation_from_args(args)
    proofs = proofs_for(derivation) or ()
    print(to_text(derivation, index_base=args.index_base, names=names,
                  show_padding=not args.no_padding_terms, proofs=proofs))
    if args.worked_example:
        from symbackprop.render.worked_example import worked_text

        print()
        print(worked_text(derivation, index_base=args.index_base))
    return 0


derive_command.options = _derive_options


# -- latex -------------------------------------------------------------------


def _latex_options(parser, kind):
    add_instance_options(parser, kind)
    add_notation_options(parser, kind)
    parser.add_argument("-o", "--output", default=None, metavar="FILE.tex",
                        help="write the document to FILE.tex (default: standard output; "
                             "derivation.tex with --pdf)")
    parser.add_argument("--pdf", action="store_true",
                        help="also compile FILE.pdf next to it with pdflatex, xelatex for "
                             "--lang zh (default: only the .tex)")
    parser.add_argument("--lang", choices=("en", "zh"), default="en",
                        help="language of the prose: en English, zh Chinese (math unchanged; "
                             "--pdf then needs xelatex and ctex: bash dev.sh setup-zh). Only "
                             "the LaTeX document: html and derive stay English (default "
                             "%(default)s)")
    parser.add_argument("--no-worked-example", action="store_true",
                        help="leave out the last section, a worked example in numbers "
                             "(small integers for the input, parameters and upstream "
                             "gradient, and every output and gradient at them; default: "
                             "included)")
    for option, (array, meaning) in NAME_OPTIONS.items():
        if array in ("w", "b") and array not in kind.parameter_names:
            # Pooling and activations learn no weight or bias to rename.
            parser.set_defaults(**{f"{option}_name": None})
            continue
        parser.add_argument(f"--{option}-name", default=None, metavar="NAME",
                            help=f"name of {meaning} (Greek names become letters; "
                                 f"default {array})")
    add_detail_option(parser)
    add_derivation_options(parser, kind)


def add_detail_option(parser):
    """``--detail``: which elements a printout writes out."""
    from symbackprop.render.latex import DEFAULT_DETAIL, DETAILS

    parser.add_argument("--detail", choices=tuple(DETAILS), default=DEFAULT_DETAIL,
                        help="which elements are written out: "
                             + "; ".join(f"{name}, {words}" for name, words in DETAILS.items())
                             + " (default %(default)s)")


#: The document ``symbackprop latex --pdf`` writes when ``-o`` is not given.
DEFAULT_LATEX_OUTPUT = "derivation.tex"


@command("latex", help="write the derivation as a LaTeX document (and compile it with --pdf)")
def latex_command(args) -> int:
    """Write the document (stdout, ``-o FILE.tex``, or ``derivation.tex`` with ``--pdf``).

    Every check on the output comes before the derivation: a name a compiler file
    would overwrite, an unusable folder, a notation name pdflatex cannot typeset.
    A file is replaced only when the command line names it: without ``-o``, an
    existing ``derivation.tex`` or ``derivation.pdf`` is refused (``-o
    derivation.tex`` replaces them).  A missing folder of ``-o`` is created, as
    ``generate -o DIR`` does.
    """
    import sys
    from pathlib import Path

    from symbackprop.render.languages import compiler_for
    from symbackprop.render.latex import (
        LatexCompileError,
        check_output_name,
        compile_pdf,
        option_name,
        to_latex,
        write_document,
    )

    output = args.output
    if output is None and args.pdf:
        output = DEFAULT_LATEX_OUTPUT
        for existing in (Path(output), Path(output).with_suffix(".pdf")):
            if existing.exists() or existing.is_symlink():
                raise ValueError(
                    f"latex --pdf without -o writes {DEFAULT_LATEX_OUTPUT} and its PDF, but "
                    f"{existing} already exists: give -o {DEFAULT_LATEX_OUTPUT} to replace it, "
                    f"or -o OTHER.tex")
    if output is not None:
        check_output_name(output, pdf=args.pdf)
    compiler = compiler_for(args.lang) if args.pdf else None
    names = {key: option_name(getattr(args, f"{option}_name"), f"--{option}-name")
             for option, (key, _) in NAME_OPTIONS.items()
             if getattr(args, f"{option}_name") is not None}
    derivation = derivation_from_args(args)
    text = to_latex(derivation, index_base=args.index_base, names=names,
                    show_padding=not args.no_padding_terms, detail=args.detail,
                    worked_example=not args.no_worked_example, language=args.lang)
    if args.lang != "en":
        _warn_untranslated(text, args.lang)
    if output is None:
        sys.stdout.write(text)
        return 0
    path = write_document(text, output)
    print(f"wrote {path}")
    if args.pdf:
        try:
            pdf = compile_pdf(path, compiler=compiler)
        except LatexCompileError as error:
            print(f"symbackprop latex: error: {error}", file=sys.stderr)
            return 1
        print(f"wrote {pdf}")
    return 0


latex_command.options = _latex_options


def _warn_untranslated(text: str, language: str) -> None:
    """Say on stderr which sentences the phrase book lacks (they stay English)."""
    import sys

    from symbackprop.render.languages import untranslated

    missing = untranslated(text, language)
    if missing:
        print(f"symbackprop latex: warning: {len(missing)} sentence(s) have no --lang "
              f"{language} translation yet and stay English, e.g. {missing[0].masked!r} (add "
              f"them to symbackprop/render/languages/{language}.py: see README)",
              file=sys.stderr)


def _generate_options(parser, kind):
    from symbackprop.render.codegen import DEFAULT_OUTPUT_FOLDER, target_names

    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT_FOLDER, metavar="DIR",
                        help="folder to write the module into, created if missing "
                             "(default %(default)s/)")
    parser.add_argument("--print", action="store_true",
                        help="print the module's source instead of writing a file (default: "
                             "write the file)")
    parser.add_argument("--max-terms", type=int, default=None, metavar="N",
                        help="derive the instance the code is read off up to N products and "
                             "input elements (default: the built-in limit, 100,000)")
    parser.add_argument("--style", choices=("fast", "reference"), default="fast",
                        help="fast: the measured strategies; reference: vectorised NumPy that "
                             "reads line by line like the printed rules, file name ending "
                             "_reference.py (default %(default)s)")
    parser.add_argument("--target", choices=target_names(), default="numpy",
                        help="numpy: a module for NumPy arrays; array-api: a module written "
                             "against the array API standard that runs on the library of its "
                             "inputs (NumPy, PyTorch, CuPy, ...; needs array-api-compat), file "
                             "name ending _array_api.py (default %(default)s)")


@command("generate", help="write a standalone NumPy module with forward and backward for a layer "
                          "(--target array-api: one for any array library)")
def generate_command(args) -> int:
    from symbackprop.render.codegen import generate, write_module

    layer = layer_from_args(args)
    limits = {} if args.max_terms is None else {"max_terms": args.max_terms}
    limits["style"] = args.style
    limits["target"] = args.target
    if args.print:
        print(generate(layer, **limits), end="")
        return 0
    print(write_module(layer, args.output, **limits))
    return 0


generate_command.options = _generate_options
def _check_options(parser, kind):
    add_instance_options(parser, kind)
    add_notation_options(parser, kind)
    parser.add_argument("--show", type=int, default=3, metavar="N",
                        help="wrong elements to show in full (default 3; the rest are counted)")
    if kind is not None and kind.name == "sequential":  # a rule across a chain's layers
        parser.add_argument("--layer", type=int, default=None, metavar="L", dest="at_layer",
                            help="the value of l in a rule written with l (\\delta^{l-1} = "
                                 "...); by default every value at which its names exist")
        parser.add_argument("--numbering", choices=("chain", "course"), default=None,
                            help="how layer numbers are read: chain (every layer of the spec "
                                 "counts, as the printouts) or course (a layer and the "
                                 "activation after it are one, as Ng's [l]); by default "
                                 "chain when every name exists there")
    parser.add_argument("formula", metavar="FORMULA",
                        help="the equation to check, LaTeX or plain text, e.g. "
                             "'dL/dx[i,j] = sum(g[i-m,j-n]*w[m,n], m, n)'")


@command("check", help="check a hand-derived gradient formula against the derivation "
                       "(exit 0 correct, 1 wrong, 2 unusable)")
def check_command(args) -> int:
    from symbackprop.check.formula_check import check_formula

    layer = layer_from_args(args)
    result = check_formula(layer, input_size_from_args(args, layer), args.formula,
                           batch=args.batch, index_base=args.index_base,
                           at_layer=getattr(args, "at_layer", None),
                           numbering=getattr(args, "numbering", None))
    print(result.report(show=args.show))
    return 0 if result.ok else 1


check_command.options = _check_options
check_command.kinds = [kind for kind, layer_type in KINDS.items()
                       if getattr(FORMULAS.table.get(layer_type), "takes_formulas", True)]
# check_derivation compares with one layer's gradients and refuses a chain's.


def _check_impl_arguments(parser):
    # One line per calling convention, with the kinds that use it (read off the registry).
    kinds_of = {}
    for kind, convention in conventions().items():
        kinds_of.setdefault(convention, []).append(kind)
    described = "; ".join(f"{convention} for {', '.join(kinds)}"
                          for convention, kinds in kinds_of.items())
    parser.add_argument("function", metavar="FILE.py:FUNCTION",
                        help=f"the backward function to check: {described}")


def _check_impl_options(parser, kind):
    sizes = []
    if KINDS[kind.name] in IMPLEMENTATIONS.table:  # the sizes of its default layer
        try:
            layer = default_layer(kind.name)
            sizes = IMPLEMENTATIONS[layer].sizes(layer)
        except ValueError:  # a block has no default: it comes from --spec
            sizes = []
    form = {1: "F", 2: "HxW", 3: "CxHxW"}.get(_size_axes(sizes), "SIZE")
    parser.add_argument("--input", action="append", default=None, metavar=form,
                        help=f"an input size to run the function on, in the form of the "
                             f"report's sizes; repeat it for several (default: "
                             f"{', '.join('x'.join(map(str, size)) for size in sizes)})")
    parser.add_argument("--batch", type=int, default=2, metavar="N",
                        help="samples per call, N (default %(default)s: a bias gradient must "
                             "sum over the batch)")
    parser.add_argument("--convention", choices=tuple(CONVENTIONS), default="plain",
                        help="how the function is written: " + "; ".join(
                            f"{name}: {words}" for name, words in CONVENTIONS.items())
                        + " (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random inputs; the same seed, the same check "
                             "(default %(default)s)")
    parser.add_argument("--timeout", type=float, default=60, metavar="SECONDS",
                        help="time the function's process may take in all, importing the file "
                             "and every call (default %(default)g); it runs in a separate "
                             "process, killed when the time is up (exit 2)")


@command("check-impl", help="check a hand-written backward function against the derivation "
                            "(exit 0 correct, 1 wrong, 2 unusable)")
def check_impl_command(args) -> int:
    from symbackprop.check.impl import check_impl

    layer = layer_from_args(args)
    if isinstance(args.input, str):  # a chain spec's "input", its default
        args.input = [args.input]
    sizes = None
    if args.input:
        try:
            axes = _size_axes(IMPLEMENTATIONS[layer].sizes(layer))
        except ValueError:  # no size of its own fits (a chain): any form the layer takes
            axes = None
        sizes = [check_impl_size(text, axes) for text in args.input]
    result = check_impl(layer, args.function, seed=args.seed, timeout=args.timeout,
                        sizes=sizes, batch=args.batch, convention=args.convention)
    print(result.report())
    return 0 if result.ok else 1


def _size_axes(sizes) -> int | None:
    """How many numbers each of a kind's check-impl sizes has (None: they differ)."""
    lengths = {len(size) for size in sizes}
    return lengths.pop() if len(lengths) == 1 else None


def check_impl_size(text: str, axes: int | None) -> tuple:
    """One ``--input`` of check-impl as a size of ``axes`` numbers ("5" is square), or
    of 1 to 3 numbers when the kind takes any shape (``axes`` None)."""
    counts = (1, 2, 3) if axes is None else (1, axes) if axes > 1 else (1,)
    size = parse_numbers(text, "input", counts=counts)
    if isinstance(size, int):
        size = (size,) * (axes or 1)
    if min(size) < 1:
        raise ValueError(f"--input: every size must be >= 1, got {text!r}")
    return size


check_impl_command.command_options = _check_impl_arguments
check_impl_command.options = _check_impl_options
check_impl_command.kinds = [layer_type.kind for layer_type in IMPLEMENTATIONS.types()]


# -- cost --------------------------------------------------------------------
def _cost_options(parser, kind):
    add_instance_options(parser, kind)


@command("cost", help="count a layer's (or a chain's) multiply-adds and stored values from its "
                      "shapes, without expanding anything")
def cost_command(args) -> int:
    from symbackprop.core.cost import cost_table, layer_costs

    layer = layer_from_args(args)
    print(cost_table(layer_costs(layer, input_size_from_args(args, layer), args.batch)))
    return 0


cost_command.options = _cost_options


# -- html --------------------------------------------------------------------


def _html_options(parser, kind):
    add_instance_options(parser, kind)
    add_notation_options(parser, kind)
    parser.add_argument("-o", "--output", default=None, metavar="FILE.html",
                        help="write the page to FILE.html (default: standard output)")
    for option, (array, meaning) in NAME_OPTIONS.items():
        if array in ("w", "b") and array not in kind.parameter_names:
            parser.set_defaults(**{f"{option}_name": None})  # nothing to rename
            continue
        parser.add_argument(f"--{option}-name", default=None, metavar="NAME",
                            help=f"name of {meaning} (Greek names become letters; "
                                 f"default {array})")
    add_derivation_options(parser, kind)


@command("html", help="write the derivation as one interactive, self-contained HTML page")
def html_command(args) -> int:
    import sys
    from pathlib import Path

    from symbackprop.core.layers import input_shape_of
    from symbackprop.render.html import check_page_size, to_html, write_page

    output = args.output
    if output is not None and Path(output).suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"-o names the page to write, FILE.html; got {output!r}")
    from symbackprop.render.latex import option_name

    names = {key: option_name(getattr(args, f"{option}_name"), f"--{option}-name")
             for option, (key, _) in NAME_OPTIONS.items()
             if getattr(args, f"{option}_name") is not None}
    layer = layer_from_args(args)  # refuse a page too large before deriving it
    check_page_size(layer, input_shape_of(layer, input_size_from_args(args, layer), args.batch))
    derivation = derivation_from_args(args)
    text = to_html(derivation, index_base=args.index_base, names=names,
                   show_padding=not args.no_padding_terms)
    if output is None:
        sys.stdout.write(text)
        return 0
    print(f"wrote {write_page(text, output)}")
    return 0


html_command.options = _html_options


# -- exercise ----------------------------------------------------------------
#: The course's exercises ``symbackprop exercise NAME`` works out.
EXERCISES = ("full-convolution-commutes",)


def _exercise_options(parser):
    parser.add_argument("exercise", choices=EXERCISES, metavar="EXERCISE",
                        help="full-convolution-commutes: (x * w)_ij = (w * x)_ij element by "
                             "element, and the cross-correlation that does not commute")
    parser.add_argument("--input", default="3x3", metavar="HxW",
                        help="size of x, each side 1 to 6 (default %(default)s)")
    parser.add_argument("--kernel", default="2", metavar="K|KHxKW",
                        help="size of w, each side 1 to 6 (default %(default)s)")
    parser.add_argument("-o", "--output", default=None, metavar="FILE.tex",
                        help="write the exercise as a LaTeX document (default: text on "
                             "standard output)")
    parser.add_argument("--pdf", action="store_true",
                        help="also compile FILE.pdf next to it with pdflatex (needs -o; "
                             "default: only the .tex)")


@command("exercise", help="work out one of the course's exercises with SymPy (text, or a "
                          "LaTeX printout with -o)")
def exercise_command(args) -> int:
    import sys

    from symbackprop.core.exercises import full_convolution_commutes
    from symbackprop.render.exercises import commutativity_latex, commutativity_text
    from symbackprop.render.latex import (
        LatexCompileError,
        check_output_name,
        compile_pdf,
        write_document,
    )

    if args.pdf and args.output is None:
        raise ValueError("--pdf needs -o FILE.tex (the PDF is named after it)")
    if args.output is not None:
        check_output_name(args.output, pdf=args.pdf)
    result = full_convolution_commutes(args.input, args.kernel)
    if args.output is None:
        print(commutativity_text(result))
        return 0 if result.equal else 1
    path = write_document(commutativity_latex(result), args.output)
    print(f"wrote {path}")
    if args.pdf:
        try:
            print(f"wrote {compile_pdf(path)}")
        except LatexCompileError as error:
            print(f"symbackprop exercise: error: {error}", file=sys.stderr)
            return 1
    return 0


exercise_command.standalone_options = _exercise_options
