"""The losses on the command line: ``--reduction``, and for cross-entropy
``--ignore-index``, ``--label-smoothing``, ``--weighted`` and the derivation's
``--classes``."""

from __future__ import annotations

from symbackprop.core.command_line import COMMAND_LINE, CommandLineKind, parse_whole_number
from symbackprop.kinds.loss.spec import REDUCTIONS, CrossEntropyLoss, MSELoss


def _reduction(parser) -> None:
    parser.add_argument("--reduction", choices=tuple(REDUCTIONS), default="mean",
                        help="how the per-sample losses are combined: mean (over the counted "
                             "samples), sum or none (default %(default)s)")


def add_cross_entropy_options(parser) -> None:
    _reduction(parser)
    parser.add_argument("--ignore-index", default="-100", metavar="K",
                        help="a target of this class contributes nothing and is not counted "
                             "(default %(default)s)")
    parser.add_argument("--label-smoothing", type=float, default=0.0, metavar="EPS",
                        help="target (1 - EPS) onehot(y) + EPS / C instead of onehot(y) "
                             "(default %(default)s)")
    parser.add_argument("--weighted", action="store_true",
                        help="per-class weights c (PyTorch's weight), an argument of the "
                             "generated module (default: unweighted)")
    parser.add_argument("--classes", default=None, metavar="Y1,Y2,...",
                        help="the classes (0-based, one per sample and position, row-major; "
                             "the ignore index allowed) the derivation uses; the generated "
                             "module takes targets as an argument (default: sample n has "
                             "class n mod C)")


def cross_entropy_from_args(args) -> CrossEntropyLoss:
    target = None
    if args.classes is not None:
        target = tuple(parse_whole_number(part, "target")
                       for part in args.classes.replace("x", ",").split(","))
    return CrossEntropyLoss(reduction=args.reduction,
                            ignore_index=parse_whole_number(args.ignore_index, "ignore-index"),
                            label_smoothing=args.label_smoothing, weighted=args.weighted,
                            target=target)


def cross_entropy_arguments(layer) -> list[str]:
    arguments = ["--reduction", layer.reduction]
    if layer.ignore_index != -100:
        arguments += ["--ignore-index", str(layer.ignore_index)]
    if layer.label_smoothing:
        arguments += ["--label-smoothing", repr(layer.label_smoothing)]
    if layer.weighted:
        arguments.append("--weighted")
    return arguments


COMMAND_LINE.register(CrossEntropyLoss, CommandLineKind(
    help="cross-entropy of logits and class targets, L = -log softmax(x)[y]",
    add_options=add_cross_entropy_options, build=cross_entropy_from_args,
    arguments=cross_entropy_arguments, default_input="3", input_form="C|CxL|CxHxW"))

COMMAND_LINE.register(MSELoss, CommandLineKind(
    help="mean squared error, L = mean((x - y)^2)", add_options=_reduction,
    build=lambda args: MSELoss(reduction=args.reduction),
    arguments=lambda layer: ["--reduction", layer.reduction], default_input="3",
    input_form="HxW|CxHxW|F"))
