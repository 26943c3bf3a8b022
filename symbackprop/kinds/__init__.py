"""Layer kinds: one package each, the only place a kind is named.

Each kind's package holds its spec (the frozen dataclass), its symbolic expansion,
its closed forms and the parts it plugs into the other stages; importing it
registers them (:mod:`symbackprop.core.registry`).  Adding a kind is one new folder
and one line here.
"""

# isort: off
# The order of registration is the order people see the kinds in (help, messages).
from symbackprop.kinds.conv2d import Conv2d
from symbackprop.kinds.pool2d import MaxPool2d, AvgPool2d
from symbackprop.kinds.pool2d import MaxPool1d, MaxPool3d, AvgPool1d, AvgPool3d
from symbackprop.kinds.activation import ReLU, LeakyReLU, Sigmoid, Tanh, Softplus
from symbackprop.kinds.activation import ELU, GELU, SiLU
from symbackprop.kinds.flatten import Flatten
from symbackprop.kinds.linear import Linear
from symbackprop.kinds.convnd import Conv1d, Conv3d
from symbackprop.kinds.conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from symbackprop.kinds.softmax import Softmax, LogSoftmax
from symbackprop.kinds.loss import CrossEntropyLoss, MSELoss
from symbackprop.kinds.dropout import Dropout
from symbackprop.kinds.prelu import PReLU
from symbackprop.kinds.normalization import (BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm,
                                             InstanceNorm2d)
from symbackprop.kinds.upsample import Upsample
# isort: on
from symbackprop.check import chain, residual  # noqa: F401  (check-impl of a chain, a block)
from symbackprop.core.layers import Residual, Sequential
from symbackprop.core.registry import register_kind
from symbackprop.render import codegen_chain  # noqa: F401  (a chain's module asks each kind)

register_kind(Sequential)  # a chain of any of the kinds above, by name in JSON specs
register_kind(Residual)  # y = x + block(x), a block of any of them (a chain's part)

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
           "Softplus", "Flatten", "Linear", "MaxPool1d", "MaxPool3d", "AvgPool1d", "AvgPool3d",
           "Upsample", "Conv1d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d", "Softmax", "LogSoftmax", "CrossEntropyLoss", "MSELoss", "ELU",
           "GELU", "SiLU", "Dropout", "PReLU", "BatchNorm1d", "BatchNorm2d", "LayerNorm",
           "GroupNorm", "InstanceNorm2d"]
