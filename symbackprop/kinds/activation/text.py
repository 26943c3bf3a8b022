"""Every activation in the terminal printout, from its row of
:data:`~symbackprop.kinds.activation.rules.ACTIVATIONS`: ``f`` and ``f'`` in words,
its constants, and how its SymPy function prints (``relu(x11)``)."""

from __future__ import annotations

from symbackprop.kinds.activation.rules import ACTIVATIONS, ActivationBase
from symbackprop.kinds.activation.spec import ACTIVATION_TYPES
from symbackprop.render.text import TEXT, TextParts, TextPrinter, rule_text


def _function_text(printer, expr) -> str:
    """``relu(x11)``; constants such as the leaky slope are stated in the header."""
    return f"{expr.rule.text_name or expr.func.__name__}({printer._print(expr.args[0])})"


# Every activation's function derives from ActivationBase: SymPy's dispatch finds this
# method through the class's bases, and the text printer names no activation.
TextPrinter.print_function(ActivationBase, _function_text)


def _constants_text(layer) -> str:
    rule = ACTIVATIONS[layer.row]
    return "".join(f", {name} = {value:g}" for name, value in zip(rule.constants, layer.constants))


def forward_header(layer, names, input_shape) -> str:
    return f"{names['z']} = f({names['x']}) elementwise, {ACTIVATIONS[layer.row].formula}" \
           f"{_constants_text(layer)}"


def backward_rules(layer, names, input_shape, output_shape) -> list[str]:
    return [f"{names['dx']} = {rule_text(layer, names)} elementwise, "
            f"{ACTIVATIONS[layer.row].derivative_formula}{_constants_text(layer)}"]


#: One entry for every activation: everything it says comes from the layer's row.
PARTS = TextParts(forward_header=forward_header, backward_rules=backward_rules,
                  elementwise=True)

for _layer_type in ACTIVATION_TYPES:
    TEXT.register(_layer_type, PARTS)
