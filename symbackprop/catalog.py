"""The catalog of generated modules committed in ``generated/``, and how to refresh it.

Input: the list :data:`CATALOG` of useful layers.  Output: one module per layer
(:func:`symbackprop.render.codegen.generate`) and an index, ``README.md``, in one folder.

    python -m symbackprop.catalog            # rewrite generated/ (modules and README.md)
    python -m symbackprop.catalog --check    # list the files that differ; exit 1 if any

The test suite regenerates every file and fails when a committed one differs.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from symbackprop.core.layers import Residual, Sequential
from symbackprop.kinds import (
    ELU,
    GELU,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    GroupNorm,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
    MSELoss,
    PReLU,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
    Upsample,
)
from symbackprop.render.codegen import (
    DEFAULT_OUTPUT_FOLDER,
    STYLES,
    TARGETS,
    generate,
    module_filename,
    write_text_atomically,
)
from symbackprop.render.templating import python_environment

__all__ = ["CatalogEntry", "CATALOG", "BOTH_STYLES", "DIGITS_NETWORK", "RESIDUAL_NETWORK",
           "RESIDUAL_LOSS", "REGENERATE_COMMAND",
           "catalog_files", "regenerate", "stale_files", "main"]

#: The command that rewrites the catalog (quoted by its README and the tests).
REGENERATE_COMMAND = "python -m symbackprop.catalog"

INDEX_NAME = "README.md"


@dataclass(frozen=True)
class CatalogEntry:
    """One layer of the catalog, what it is typically used for, the styles of NumPy code
    (:data:`symbackprop.render.codegen.STYLES`) and the other targets
    (:data:`symbackprop.render.codegen.TARGETS`, e.g. ``"array-api"``) the catalog holds
    for it."""

    layer: object
    use: str
    styles: tuple = ("fast",)
    targets: tuple = ()

    def files(self) -> list[tuple[str, str]]:
        """``(style or target, module file name)`` for each of :attr:`styles`, then for
        each of :attr:`targets`."""
        return [(style, module_filename(self.layer, style)) for style in self.styles] + [
            (target, module_filename(self.layer, target=target)) for target in self.targets]


#: The styles of the entries that hold both: the fast code and the printed rules as code.
BOTH_STYLES = ("fast", "reference")

#: The targets of the entries the catalog also holds for any array library.
ARRAY_API = ("array-api",)


#: The CNN examples/train_digits.py trains on 8x8 images of digits (input 1 x 8 x 8).
DIGITS_NETWORK = Sequential(
    Conv2d(1, 8, kernel_size=3, padding=1), ReLU(), MaxPool2d(2),
    Conv2d(8, 16, kernel_size=3, padding=1), ReLU(), MaxPool2d(2),
    Flatten(), Linear(64, 10),
)

#: ResNet's basic block (without batch norm): 3x3 'same' convolution, ReLU, 3x3 'same'
#: convolution, the block's input added back, ReLU.
RESNET_BASIC_BLOCK = Sequential(
    Residual(Sequential(Conv2d(8, 8, kernel_size=3, padding=1), ReLU(),
                        Conv2d(8, 8, kernel_size=3, padding=1))),
    ReLU(),
)

#: The residual CNN examples/train_residual.py trains on 8x8 digits, with batch norm, and
#: its loss (the script draws no number of its own but the data and SGD).
RESIDUAL_NETWORK = Sequential(
    Conv2d(1, 8, kernel_size=3, padding=1), BatchNorm2d(8), ReLU(),
    Residual(Sequential(Conv2d(8, 8, kernel_size=3, padding=1), BatchNorm2d(8), ReLU(),
                        Conv2d(8, 8, kernel_size=3, padding=1), BatchNorm2d(8))),
    ReLU(), MaxPool2d(2), Flatten(), Linear(128, 10),
)
RESIDUAL_LOSS = CrossEntropyLoss()

CATALOG = (
    CatalogEntry(Conv2d(1, 1, kernel_size=2, padding=1),
                 "the worked example: 3x3 input, 2x2 kernel, padding 1 (z is 4x4)",
                 BOTH_STYLES, ARRAY_API),
    CatalogEntry(Conv2d(1, 1, kernel_size=3, stride=2),
                 "the output-size example of docs/notation.md: width 5, filter 3, stride 2 gives 2",
                 BOTH_STYLES),
    CatalogEntry(Conv2d(1, 6, kernel_size=5),
                 "5x5 'valid' convolution, LeNet-5's first layer"),
    CatalogEntry(Conv2d(64, 64, kernel_size=3, padding=1),
                 "3x3 'same' convolution (VGG, ResNet blocks)"),
    CatalogEntry(Conv2d(64, 128, kernel_size=3, stride=2, padding=1),
                 "3x3 stride-2 downsampling (ResNet stage transition)"),
    CatalogEntry(Conv2d(256, 64, kernel_size=1, bias=False),
                 "1x1 bottleneck 256 -> 64 channels (the cost example of docs/notation.md)"),
    CatalogEntry(Conv2d(32, 32, kernel_size=5, padding=2),
                 "5x5 'same' convolution"),
    CatalogEntry(Conv2d(64, 64, kernel_size=3, padding=2, dilation=2),
                 "3x3 dilated (atrous) convolution, dilation 2, 'same' padding (DeepLab)"),
    CatalogEntry(Conv2d(32, 32, kernel_size=3, padding=1, groups=32, bias=False),
                 "3x3 depthwise convolution (MobileNet)"),
    CatalogEntry(Conv2d(128, 128, kernel_size=3, padding=1, groups=32),
                 "3x3 grouped convolution, 32 groups (ResNeXt)"),
    CatalogEntry(Conv2d(16, 32, kernel_size=3, stride=2, padding=(0, 1, 0, 1)),
                 "asymmetric padding: TensorFlow's 'SAME' for a 3x3 stride-2 kernel on an "
                 "even input (pad 0 before, 1 after)"),
    CatalogEntry(Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False),
                 "7x7 stride-2 stem (ResNet)"),
    CatalogEntry(Conv2d(64, 64, kernel_size=(1, 7), padding=(0, 3)),
                 "rectangular 1x7 kernel of a factorised 7x7 (Inception)"),
    CatalogEntry(Conv2d(3, 96, kernel_size=4, stride=4),
                 "4x4 stride-4 'patchify' stem, non-overlapping windows (ConvNeXt)"),
    # 1-D and 3-D convolutions (conv1d, conv3d).
    CatalogEntry(Conv1d(16, 32, kernel_size=5, padding=2),
                 "1-D 5-tap 'same' convolution over a sequence (audio frames, text embeddings)",
                 BOTH_STYLES),
    CatalogEntry(Conv1d(64, 64, kernel_size=3, stride=2, padding=1),
                 "1-D 3-tap stride-2 downsampling of a sequence"),
    CatalogEntry(Conv1d(32, 32, kernel_size=3, padding="same", dilation=2),
                 "1-D dilated convolution, dilation 2, padding 'same' (WaveNet, TCN)"),
    CatalogEntry(Conv3d(3, 8, kernel_size=3, padding=1),
                 "3x3x3 'same' convolution over video clips or volumes (C3D)", BOTH_STYLES),
    CatalogEntry(Conv3d(64, 128, kernel_size=3, stride=2, padding=1),
                 "3x3x3 stride-2 downsampling of a video or volume"),
    # Transposed convolutions: convtranspose1d, convtranspose2d, convtranspose3d.
    CatalogEntry(ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1),
                 "4x4 stride-2 upsampling that exactly doubles the size (DCGAN generator, "
                 "U-Net decoder)", BOTH_STYLES),
    CatalogEntry(ConvTranspose2d(32, 16, kernel_size=3, stride=2, padding=1, output_padding=1),
                 "3x3 stride-2 upsampling with output_padding 1: the transpose of a 3x3 "
                 "stride-2 padding-1 convolution on an even input, exactly doubling it"),
    CatalogEntry(ConvTranspose1d(16, 8, kernel_size=4, stride=2, padding=1),
                 "1-D stride-2 upsampling of a sequence (audio decoders)"),
    CatalogEntry(ConvTranspose3d(8, 4, kernel_size=2, stride=2),
                 "2x2x2 stride-2 upsampling of a volume (3-D U-Net decoder)"),
    # Pooling, activations, fully connected layers and chains of them.
    CatalogEntry(MaxPool2d(2),
                 "2x2 max pooling, windows side by side (VGG, the notes' examples)"),
    CatalogEntry(MaxPool2d(3, stride=2, padding=1),
                 "3x3 stride-2 max pooling, overlapping windows, padding 1 (ResNet stem)",
                 BOTH_STYLES, ARRAY_API),
    CatalogEntry(AvgPool2d(2),
                 "2x2 average pooling; backward is kron(g, ones(2, 2)) / 4 (LeNet-5)"),
    CatalogEntry(AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
                 "3x3 'same' average pooling, padding left out of the divisor (Inception)"),
    CatalogEntry(ReLU(), "ReLU, f'(0) = 0"),
    CatalogEntry(LeakyReLU(0.01), "leaky ReLU with PyTorch's default slope 0.01"),
    CatalogEntry(Sigmoid(), "logistic sigmoid, f' = s (1 - s)"),
    CatalogEntry(Tanh(), "tanh, f' = 1 - tanh^2"),
    CatalogEntry(Flatten(), "feature maps to vectors, row-major (before a fully connected layer)"),
    CatalogEntry(Linear(120, 84), "fully connected 120 -> 84 (LeNet-5's F6)"),
    CatalogEntry(RESIDUAL_NETWORK,
                 "the residual CNN with batch norm examples/train_residual.py trains on 8x8 "
                 "digits (its loss: crossentropyloss_mean.py)"),
    CatalogEntry(DIGITS_NETWORK,
                 "the small CNN examples/train_digits.py trains on 8x8 digits", BOTH_STYLES,
                 ARRAY_API),
    CatalogEntry(Sequential(Conv2d(1, 6, kernel_size=5), Tanh(), AvgPool2d(2),
                            Conv2d(6, 16, kernel_size=5), Tanh(), AvgPool2d(2), Flatten(),
                            Linear(400, 120), Tanh(), Linear(120, 84), Tanh(), Linear(84, 10)),
                 "LeNet-5 on 32x32 inputs (tanh, average pooling)"),
    CatalogEntry(Sequential(Linear(2, 2), Sigmoid(), Linear(2, 2), Sigmoid()),
                 "the textbook two-layer network of sigmoid units"),
    # Residual blocks.
    CatalogEntry(RESNET_BASIC_BLOCK,
                 "ResNet's basic block, relu(x + conv(relu(conv(x)))): the gradient reaches x "
                 "along the identity path and through the block, and the two add",
                 BOTH_STYLES),
    # Softmax, LogSoftmax, CrossEntropyLoss, MSELoss.
    CatalogEntry(Softmax(dim=1), "softmax over the classes; dL/dx = z * (g - sum(g * z))",
                 BOTH_STYLES),
    CatalogEntry(LogSoftmax(dim=1), "log-softmax over the classes (log-sum-exp); "
                                    "dL/dx = g - softmax(x) * sum(g)"),
    CatalogEntry(CrossEntropyLoss(), "cross-entropy of logits and class targets, mean; "
                                     "dL/dx = (softmax(x) - onehot(y)) / count"),
    CatalogEntry(CrossEntropyLoss(label_smoothing=0.1),
                 "cross-entropy with label smoothing 0.1 (the target (1 - 0.1) onehot + 0.1 / C)"),
    CatalogEntry(MSELoss(), "mean squared error; dL/dx = 2 (x - y) / n"),
    # ELU, GELU, SiLU (activation rows), Dropout and PReLU.
    CatalogEntry(ELU(), "ELU with PyTorch's default alpha 1, f' = alpha exp(x) for x <= 0"),
    CatalogEntry(GELU(), "GELU x Phi(x) with the exact erf (BERT, ViT), f' = Phi + x phi",
                 BOTH_STYLES),
    CatalogEntry(GELU(approximate="tanh"), "GELU's tanh approximation (GPT-2)"),
    CatalogEntry(SiLU(), "SiLU / swish x s(x) (EfficientNet), f' = s (1 + x (1 - s))"),
    CatalogEntry(Dropout(0.5), "inverted dropout, keep-mask given: z = x * mask / (1 - p)"),
    CatalogEntry(PReLU(), "PReLU with one learned slope, PyTorch's default (init 0.25)"),
    CatalogEntry(PReLU(64), "PReLU with one slope per channel, 64 channels"),
    # Normalisations: batch norm (1-d and 2-d), layer norm, group norm.
    CatalogEntry(BatchNorm2d(64),
                 "spatial batch norm after a 64-channel convolution (ResNet); dL/dx = "
                 "(gamma / (m sigma)) (m g - sum g - xhat sum(g xhat))", BOTH_STYLES),
    CatalogEntry(BatchNorm1d(128), "batch norm of 128 features after a fully connected layer"),
    CatalogEntry(LayerNorm(512), "layer norm over 512 features (a Transformer block)"),
    CatalogEntry(GroupNorm(32, 64), "group norm, 32 groups of 2 channels (detection backbones)"),
    # Pooling in 1, 2 and 3 dimensions with dilation and ceil_mode: maxpool1d, maxpool2d,
    # maxpool3d, avgpool1d, avgpool2d, avgpool3d.
    CatalogEntry(MaxPool2d(3, stride=2, ceil_mode=True),
                 "3x3 stride-2 max pooling with ceil_mode: a last window may run past the "
                 "input (GoogLeNet)", BOTH_STYLES),
    CatalogEntry(MaxPool1d(3, stride=2, padding=1),
                 "1-D max pooling over a sequence, overlapping windows (audio, text)"),
    CatalogEntry(MaxPool1d(2, stride=1, dilation=2),
                 "1-D dilated max pooling: each window reads every 2nd element"),
    CatalogEntry(AvgPool1d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=True),
                 "1-D average pooling with ceil_mode: the last window divides by its "
                 "positions inside the padded input"),
    CatalogEntry(AvgPool3d(2), "2x2x2 average pooling of a volume (video, 3-D scans)",
                 BOTH_STYLES),
    CatalogEntry(MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
                 "1x3x3 max pooling of video frames, time kept (C3D, I3D)"),
    # Nearest-neighbour upsampling: upsample.
    CatalogEntry(Upsample(2), "2x nearest-neighbour upsampling; backward sums g over each "
                 "2x2 block (U-Net, FPN decoders)", BOTH_STYLES),
)


def catalog_files(entries=CATALOG) -> dict[str, str]:
    """``{file name: text}`` of every module of the catalog and of its index."""
    files = {name: generate(entry.layer, target=choice) if choice in TARGETS else
             generate(entry.layer, style=choice)
             for entry in entries for choice, name in entry.files()}
    rows = [dict(file=name, layer=entry.layer.describe(),
                 use=entry.use if choice == "fast" else
                 f"{choice} target: {TARGETS[choice].description}" if choice in TARGETS else
                 f"{choice} style: {STYLES[choice]}")
            for entry in entries for choice, name in entry.files()]
    index = python_environment().get_template("catalog_README.md.j2").render(
        rows=rows, regenerate_command=REGENERATE_COMMAND)
    if INDEX_NAME in files:  # pragma: no cover - a module is never called README.md
        raise ValueError(f"a catalog module is called {INDEX_NAME}")
    files[INDEX_NAME] = index
    return files


def regenerate(folder=DEFAULT_OUTPUT_FOLDER, entries=CATALOG) -> list[Path]:
    """Write every catalog file into ``folder`` (atomically, one by one); return the paths."""
    paths = []
    for name, text in catalog_files(entries).items():
        path = Path(folder) / name
        write_text_atomically(path, text)
        paths.append(path)
    return paths


def stale_files(folder=DEFAULT_OUTPUT_FOLDER, entries=CATALOG) -> list[str]:
    """Names of catalog files missing from ``folder`` or different from what is generated now."""
    stale = []
    for name, text in catalog_files(entries).items():
        path = Path(folder) / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m symbackprop.catalog",
        description="Regenerate the catalog of generated modules and its README.md index.")
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT_FOLDER, metavar="DIR",
                        help="the catalog folder (default %(default)s/)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; list the files that differ and exit 1 if any do")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_files(args.output)
            for name in stale:
                print(f"{Path(args.output) / name} is out of date; run {REGENERATE_COMMAND}")
            return 1 if stale else 0
        for path in regenerate(args.output):
            print(path)
    except OSError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
