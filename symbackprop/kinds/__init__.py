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
from symbackprop.kinds.flatten import Flatten
from symbackprop.kinds.linear import Linear
from symbackprop.kinds.upsample import Upsample
# isort: on
from symbackprop.core.layers import Sequential
from symbackprop.core.registry import register_kind
from symbackprop.render import codegen_chain  # noqa: F401  (a chain's module asks each kind)

register_kind(Sequential)  # a chain of any of the kinds above, by name in JSON specs

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
           "Softplus", "Flatten", "Linear", "MaxPool1d", "MaxPool3d", "AvgPool1d", "AvgPool3d",
           "Upsample"]
