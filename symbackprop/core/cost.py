"""What a layer costs, counted from its shapes alone (nothing is expanded).

A course's exercise: is a 3x3 convolution from 256 to 256 channels on a 100x100 map
cheaper directly, or through a 1x1 convolution to 64 channels first?  The answer is a
count, not a derivation: the products of the forward sums (each layer's
``term_count``, the same number the size limit of ``derive`` reads), the terms of
the backward pass and the values a training step stores.

- forward: the terms of the sums that make ``z``: multiply-adds for a convolution or
  a fully connected layer (``N * O * Ho * Wo * (C/groups) * KH * KW``), window
  elements read for pooling, elements for an activation;
- backward: ``dL/dx`` has one term for each of them again, and so does ``dL/dw``
  when the layer has a weight that multiplies its input (the bias gradient's sums
  are left out: one addition per output element);
- stored: the input, the output and the parameters, as numbers (a training step
  keeps the input for ``dL/dw`` and the output for the next layer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from symbackprop.core.layers import Sequential, input_shape_of

__all__ = ["LayerCost", "layer_costs", "cost_table"]


@dataclass(frozen=True)
class LayerCost:
    """The counts of one layer on one input shape."""

    description: str
    input_shape: tuple
    output_shape: tuple
    forward: int          # terms of the forward sums (multiply-adds for a convolution)
    backward: int         # terms of dL/dx and, with a weight, dL/dw
    parameters: int       # learned numbers

    @property
    def stored(self) -> int:
        """Values a training step keeps: input, output and parameters."""
        return math.prod(self.input_shape) + math.prod(self.output_shape) + self.parameters


def layer_costs(layer, input_size=None, batch: int = 1) -> list[LayerCost]:
    """One :class:`LayerCost` per layer (a chain's layers in order, or the layer alone)."""
    input_shape = input_shape_of(layer, input_size, batch)
    layers = layer.layers if isinstance(layer, Sequential) else (layer,)
    shapes = layer.shapes(input_shape) if isinstance(layer, Sequential) else \
        (input_shape, tuple(layer.output_shape_for(input_shape)))
    costs = []
    for inner, shape, output in zip(layers, shapes, shapes[1:]):
        forward = inner.term_count(shape)
        weighted = "w" in getattr(inner, "parameter_names", ())
        parameters = sum(math.prod(s) for s in getattr(inner, "parameter_shapes", {}).values())
        costs.append(LayerCost(inner.describe(), tuple(shape), tuple(output), forward,
                               forward * (2 if weighted else 1), parameters))
    return costs


def _millions(count: int) -> str:
    return f"{count:,}" if count < 10_000_000 else f"{count / 1e6:,.1f} M"


def cost_table(costs: list[LayerCost]) -> str:
    """The counts as a table, one row per layer and a total for a chain."""
    header = ("layer", "input -> output", "forward", "backward", "stored values")
    rows = [(cost.description, f"{'x'.join(map(str, cost.input_shape))} -> "
             f"{'x'.join(map(str, cost.output_shape))}", _millions(cost.forward),
             _millions(cost.backward), _millions(cost.stored)) for cost in costs]
    if len(costs) > 1:
        # a chain stores each activation once: the output of one layer is the next's input
        stored = math.prod(costs[0].input_shape) + sum(
            math.prod(cost.output_shape) + cost.parameters for cost in costs)
        rows.append(("total", "", _millions(sum(c.forward for c in costs)),
                     _millions(sum(c.backward for c in costs)), _millions(stored)))
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(5)]
    lines = ["  ".join(text.ljust(width) if column < 2 else text.rjust(width)
                       for column, (text, width) in enumerate(zip(row, widths))).rstrip()
             for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines) + (
        "\n\nforward: terms of the sums that make z (multiply-adds for a convolution or a "
        "fully\nconnected layer); backward: the terms of dL/dx, and of dL/dw for a layer "
        "with weights;\nstored values: input, output and parameters, as numbers "
        "(M = millions).")
