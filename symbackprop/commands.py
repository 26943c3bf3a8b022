"""The commands of the ``symbackprop`` program, one function each."""

from __future__ import annotations

from .cli import (
    add_instance_options,
    add_notation_options,
    command,
    input_size_from_args,
    layer_from_args,
)
from .derivation import derive, term_count
from .layers import Conv2d
from .rules import prove_kron, prove_rules, tiles_input
from .text import format_derivation

# Proving the closed forms expands every element once more; the printout includes
# the proof for instances up to this many products.
PROOF_TERMS = 20_000


def _derive_options(parser):
    add_instance_options(parser)
    add_notation_options(parser)
    parser.add_argument("--method", choices=("collect", "diff"), default="collect",
                        help="collect coefficients (fast, default) or sympy.diff the loss")
    parser.add_argument("--max-terms", type=int, default=None, metavar="N",
                        help="expand instances up to N products (default %(default)s = built-in "
                             "limit)")
    parser.add_argument("--no-padding-terms", action="store_true",
                        help="do not show padding products as 0 w")


@command("derive", help="expand a layer and print every output and gradient element")
def derive_command(args) -> int:
    layer = layer_from_args(args)
    limits = {} if args.max_terms is None else {"max_terms": args.max_terms}
    derivation = derive(layer, input_size_from_args(args, layer), args.batch,
                        method=args.method, **limits)
    proofs = prove_rules(derivation) if isinstance(layer, Conv2d) and \
        term_count(layer, derivation.input_shape) <= PROOF_TERMS else ()
    if layer.kind == "avgpool2d" and tiles_input(layer):
        proofs = (prove_kron(derivation),)
    print(format_derivation(derivation, index_base=args.index_base,
                            show_padding=not args.no_padding_terms, proofs=proofs))
    return 0


derive_command.options = _derive_options


def _generate_options(parser):
    from .codegen import DEFAULT_OUTPUT_FOLDER

    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT_FOLDER, metavar="DIR",
                        help="folder to write the module into, created if missing "
                             "(default %(default)s/)")
    parser.add_argument("--print", action="store_true",
                        help="print the module's source instead of writing a file")


@command("generate", help="write a standalone NumPy module with forward and backward for a layer")
def generate_command(args) -> int:
    from .codegen import generate, write_module

    layer = layer_from_args(args)
    if args.print:
        print(generate(layer), end="")
        return 0
    print(write_module(layer, args.output))
    return 0


generate_command.options = _generate_options
