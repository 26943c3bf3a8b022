"""The commands of the ``symbackprop`` program, one function each."""

from __future__ import annotations

from .cli import add_instance_options, add_notation_options, command, layer_from_args, parse_size
from .derivation import derive
from .text import format_derivation


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
    derivation = derive(layer, parse_size(args.input), args.batch, method=args.method, **limits)
    print(format_derivation(derivation, index_base=args.index_base,
                            show_padding=not args.no_padding_terms))
    return 0


derive_command.options = _derive_options


def _check_options(parser):
    add_instance_options(parser)
    add_notation_options(parser)
    parser.add_argument("--show", type=int, default=3, metavar="N",
                        help="wrong elements to show in full (default 3; the rest are counted)")
    parser.add_argument("formula", metavar="FORMULA",
                        help="the equation to check, LaTeX or plain text, e.g. "
                             "'dL/dx[i,j] = sum(g[i-m,j-n]*w[m,n], m, n)'")


@command("check", help="check a hand-derived gradient formula against the derivation "
                       "(exit 0 correct, 1 wrong, 2 unusable)")
def check_command(args) -> int:
    from .check import check_formula

    result = check_formula(layer_from_args(args), parse_size(args.input), args.formula,
                           batch=args.batch, index_base=args.index_base)
    print(result.report(show=args.show))
    return 0 if result.ok else 1


check_command.options = _check_options


def _check_impl_arguments(parser):
    parser.add_argument("function", metavar="FILE.py:FUNCTION",
                        help="the backward function to check: backward(x, w, b, grad_z) -> "
                             "(grad_x, grad_w, grad_b)")


def _check_impl_options(parser):
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")


@command("check-impl", help="check a hand-written backward function against the derivation "
                            "(exit 0 correct, 1 wrong, 2 unusable)")
def check_impl_command(args) -> int:
    from .check_impl import check_impl

    result = check_impl(layer_from_args(args), args.function, seed=args.seed)
    print(result.report())
    return 0 if result.ok else 1


check_impl_command.command_options = _check_impl_arguments
check_impl_command.options = _check_impl_options
