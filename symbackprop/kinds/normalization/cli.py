"""The normalisations on the command line: their options, and the options of a layer."""

from __future__ import annotations

import argparse

from symbackprop.core.command_line import (
    COMMAND_LINE,
    CommandLineKind,
    numbers_argument,
    parse_numbers,
)
from symbackprop.kinds.normalization.spec import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
)


def _eps_option(parser) -> None:
    parser.add_argument("--eps", type=float, default=1e-5, metavar="EPS",
                        help="added to the variance before the square root, > 0 "
                             "(default %(default)s)")


def _affine_option(parser, default: bool, what: str = "affine") -> None:
    parser.add_argument("--affine", action=argparse.BooleanOptionalAction, default=default,
                        dest="affine",
                        help=f"learn gamma (weight) and beta (bias), PyTorch's {what}, or "
                             f"(--no-affine) normalise only (default: %(default)s)")


def _features_option(parser, name="--num-features", default=2, words="channels C") -> None:
    parser.add_argument(name, type=int, default=default, metavar="C",
                        help=f"{words} (default %(default)s)")


def _batch_norm_options(parser) -> None:
    _features_option(parser)
    _eps_option(parser)
    _affine_option(parser, True)
    parser.add_argument("--eval", action="store_true",
                        help="evaluation mode (training=False): normalise with given running "
                             "statistics, forward(x, weight, bias, running_mean, running_var) "
                             "(default: training mode, the batch's own statistics)")


def _batch_norm(layer_type):
    def build(args):
        return layer_type(args.num_features, eps=args.eps, affine=args.affine,
                          training=not args.eval)
    return build


def _common_arguments(layer, default_affine=True) -> list[str]:
    arguments = [] if layer.eps == 1e-5 else ["--eps", repr(float(layer.eps))]
    if layer.affine != default_affine:
        arguments.append("--affine" if layer.affine else "--no-affine")
    return arguments


def _batch_norm_arguments(layer) -> list[str]:
    return ["--num-features", str(layer.num_features), *_common_arguments(layer),
            *([] if layer.training else ["--eval"])]


COMMAND_LINE.register(BatchNorm1d, CommandLineKind(
    help="batch normalisation of (N, C) or (N, C, L), per channel over the batch",
    add_options=_batch_norm_options, build=_batch_norm(BatchNorm1d),
    arguments=_batch_norm_arguments, default_input=None,
    default_input_help="default: no length, an input (N, C)", input_form="L"))
COMMAND_LINE.register(BatchNorm2d, CommandLineKind(
    help="batch normalisation of (N, C, H, W), per channel over the batch and space",
    add_options=_batch_norm_options, build=_batch_norm(BatchNorm2d),
    arguments=_batch_norm_arguments, default_input="2x2", input_form="HxW|CxHxW"))


def _instance_norm_options(parser) -> None:
    _features_option(parser)
    _eps_option(parser)
    _affine_option(parser, False)


COMMAND_LINE.register(InstanceNorm2d, CommandLineKind(
    help="instance normalisation of (N, C, H, W), per sample and channel over space",
    add_options=_instance_norm_options,
    build=lambda args: InstanceNorm2d(args.num_features, eps=args.eps, affine=args.affine),
    arguments=lambda layer: ["--num-features", str(layer.num_features),
                             *_common_arguments(layer, default_affine=False)],
    default_input="2x2", input_form="HxW|CxHxW"))


def _group_norm_options(parser) -> None:
    parser.add_argument("--num-groups", type=int, default=2, metavar="G",
                        help="groups the channels are split into, dividing --num-channels "
                             "(default %(default)s)")
    _features_option(parser, "--num-channels", 4)
    _eps_option(parser)
    _affine_option(parser, True)


COMMAND_LINE.register(GroupNorm, CommandLineKind(
    help="group normalisation, per sample and group of channels",
    add_options=_group_norm_options,
    build=lambda args: GroupNorm(args.num_groups, args.num_channels, eps=args.eps,
                                 affine=args.affine),
    arguments=lambda layer: ["--num-groups", str(layer.num_groups), "--num-channels",
                             str(layer.num_channels), *_common_arguments(layer)],
    default_input="1x1", input_form="HxW|CxHxW"))


def _layer_norm_options(parser) -> None:
    parser.add_argument("--normalized-shape", default="3", metavar="D|D1xD2",
                        help="the trailing axes of each sample normalised together, the shape "
                             "of gamma and beta (default %(default)s)")
    _eps_option(parser)
    _affine_option(parser, True, "elementwise_affine")


def _layer_norm(args) -> LayerNorm:
    shape = parse_numbers(args.normalized_shape, "normalized-shape", counts=(1, 2, 3))
    return LayerNorm(shape, eps=args.eps, elementwise_affine=args.affine)


COMMAND_LINE.register(LayerNorm, CommandLineKind(
    help="layer normalisation, per sample over its trailing axes",
    add_options=_layer_norm_options, build=_layer_norm,
    arguments=lambda layer: ["--normalized-shape", numbers_argument(layer.normalized_shape, "x")
                             if len(layer.normalized_shape) == 1 else
                             "x".join(map(str, layer.normalized_shape)),
                             *_common_arguments(layer)],
    default_input=None, default_input_help="default: --normalized-shape",
    input_form="shape"))
