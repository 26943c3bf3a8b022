"""The transposed convolutions on the command line: their options, and a layer's options."""

from __future__ import annotations

from symbackprop.core.command_line import COMMAND_LINE, CommandLineKind, parse_numbers
from symbackprop.kinds.conv_transpose.spec import AXIS_NAMES, LAYER_TYPES

#: ``--input`` form and default per number of spatial axes.
_INPUTS = {1: ("L", "4"), 2: ("HxW", "2x2"), 3: ("DxHxW", "2x2x2")}


def _form(dims: int, letter: str) -> str:
    """``S`` or ``SHxSW``: the forms of an option taking one number per axis."""
    if dims == 1:
        return letter
    return f"{letter}|" + "x".join(f"{letter}{axis[0].upper()}" for axis in AXIS_NAMES[dims])


def _options(dims: int):
    def add_options(parser) -> None:
        axes = "x".join(axis[0].upper() for axis in AXIS_NAMES[dims])
        each = "" if dims == 1 else f" (one number, or one per axis {axes})"
        parser.add_argument("--kernel", default="2", metavar=_form(dims, "K"),
                            help=f"kernel size{each} (default %(default)s)")
        parser.add_argument("--stride", default="1", metavar=_form(dims, "S"),
                            help=f"step between the positions an input element scatters to"
                                 f"{each} (default %(default)s)")
        ends = ",".join(f"{a[0].upper()}B,{a[0].upper()}E" for a in AXIS_NAMES[dims])
        parser.add_argument("--padding", default="0", metavar="P",
                            help=f"positions cropped from both ends of the full output: P, one "
                                 f"per axis, or begin,end per axis ({ends}); 'valid' is 0, "
                                 f"'same' is not supported (default %(default)s)")
        parser.add_argument("--output-padding", default="0", metavar=_form(dims, "OP"),
                            help=f"positions added at the end of each output axis, smaller "
                                 f"than the stride or the dilation{each} (default %(default)s)")
        parser.add_argument("--dilation", default="1", metavar=_form(dims, "D"),
                            help=f"spacing between kernel elements, 1 = adjacent{each} "
                                 f"(default %(default)s)")
        parser.add_argument("--in-channels", type=int, default=1, metavar="C",
                            help="channels of the input x (default %(default)s)")
        parser.add_argument("--out-channels", type=int, default=1, metavar="O",
                            help="channels of the output z (default %(default)s)")
        parser.add_argument("--groups", type=int, default=1, metavar="G",
                            help="split the channels into G groups: each input channel sends "
                                 "only to the O/G output channels of its group; G divides C "
                                 "and O (default %(default)s)")
        parser.add_argument("--no-bias", action="store_true",
                            help="a layer without bias b (default: with bias)")
    return add_options


def _builder(layer_type):
    dims = layer_type.dims
    counts = (1,) if dims == 1 else (1, dims)

    def build(args):
        padding = args.padding.strip()
        if padding not in ("valid", "same"):
            padding = parse_numbers(padding, "padding", counts=tuple(sorted({1, dims, 2 * dims})))
        return layer_type(
            in_channels=args.in_channels, out_channels=args.out_channels,
            kernel_size=parse_numbers(args.kernel, "kernel", counts=counts),
            stride=parse_numbers(args.stride, "stride", counts=counts), padding=padding,
            output_padding=parse_numbers(args.output_padding, "output-padding", counts=counts),
            dilation=parse_numbers(args.dilation, "dilation", counts=counts),
            groups=args.groups, bias=not args.no_bias)
    return build


def _numbers(values, separator="x") -> str:
    return str(values[0]) if len(set(values)) == 1 else separator.join(map(str, values))


def conv_transpose_arguments(layer) -> list[str]:
    """The options that build ``layer`` again (the inverse of the builder)."""
    arguments = []
    if layer.in_channels != 1:
        arguments += ["--in-channels", str(layer.in_channels)]
    if layer.out_channels != 1:
        arguments += ["--out-channels", str(layer.out_channels)]
    arguments += ["--kernel", _numbers(layer.kernel_size)]
    if any(s != 1 for s in layer.stride):
        arguments += ["--stride", _numbers(layer.stride)]
    if any(layer.padding):
        begin, end = layer.pad_begin, layer.pad_end
        arguments += ["--padding", _numbers(begin, ",") if begin == end and len(set(begin)) == 1
                      else ",".join(map(str, begin)) if begin == end
                      else ",".join(map(str, layer.padding))]
    if any(layer.output_padding):
        arguments += ["--output-padding", _numbers(layer.output_padding)]
    if any(d != 1 for d in layer.dilation):
        arguments += ["--dilation", _numbers(layer.dilation)]
    if layer.groups != 1:
        arguments += ["--groups", str(layer.groups)]
    if not layer.bias:
        arguments.append("--no-bias")
    return arguments


for _layer_type in LAYER_TYPES:
    _form_name, _default = _INPUTS[_layer_type.dims]
    COMMAND_LINE.register(_layer_type, CommandLineKind(
        help=f"{_layer_type.dims}-D transposed convolution (PyTorch's {_layer_type.__name__})",
        add_options=_options(_layer_type.dims), build=_builder(_layer_type),
        arguments=conv_transpose_arguments, default_input=_default, input_form=_form_name))
