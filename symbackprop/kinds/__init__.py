"""Layer kinds: one package each, the only place a kind is named.

Each kind's package holds its spec (the frozen dataclass), its symbolic expansion,
its closed forms and the parts it plugs into the other stages; importing it
registers them (:mod:`symbackprop.core.registry`).  Adding a kind is one new folder
and one line here.
"""

from symbackprop.kinds import activation, conv2d, flatten, linear, pool2d  # noqa: F401
from symbackprop.kinds.activation import LeakyReLU, ReLU, Sigmoid, Tanh
from symbackprop.kinds.conv2d import Conv2d
from symbackprop.kinds.flatten import Flatten
from symbackprop.kinds.linear import Linear
from symbackprop.kinds.pool2d import AvgPool2d, MaxPool2d

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
           "Flatten", "Linear"]
