"""PReLU in the LaTeX document."""

from __future__ import annotations

from symbackprop.core.operators import CHAIN_RULES, ActivationDerivative, ElementwiseProduct
from symbackprop.kinds.prelu.spec import PReLU
from symbackprop.render.latex import LATEX, LatexParts


def general(layer, names, base: int = 1) -> dict:
    x, z, g, loss, w = names["x"], names["z"], names["g"], names["L"], names["w"]
    c = "" if layer.num_parameters == 1 else "_{c}"
    over = r"\text{all elements}" if layer.num_parameters == 1 else r"n,\,\text{positions of } c"
    cases = rf"\begin{{cases}} {{0}} & {x} > 0 \\ {x} & \text{{otherwise}} \end{{cases}}"
    return {"forward": rf"{z} = \begin{{cases}} {x} & {x} > 0 \\ {w}{c}\, {x} & "
                       rf"\text{{otherwise}} \end{{cases}}",
            "backward": rf"\frac{{\partial {loss}}}{{\partial {x}}} = {g} \odot "
                        rf"\begin{{cases}} 1 & {x} > 0 \\ {w}{c} & \text{{otherwise}} "
                        rf"\end{{cases}},\quad \frac{{\partial {loss}}}{{\partial {w}{c}}} = "
                        rf"\sum_{{{over}}} {g}\, {cases}"}


def _notes(layer, names) -> list:
    x, w, g, loss = names["x"], names["w"], names["g"], names["L"]
    shared = (f"One slope ${w}$ serves every element, so its gradient sums over the whole "
              f"batch and every position." if layer.num_parameters == 1 else
              f"Each channel $c$ has its own slope ${w}_c$, broadcast over the batch and the "
              f"positions, so its gradient sums over all of them.")
    return [shared + rf" At ${x} = 0$ the slope branch applies, as in PyTorch: "
            rf"$\partial {loss}/\partial {x} = {w}\, {g}$ there."]


# A chain's step delta^{l-1} from delta^l, written once (core/operators.py): elementwise,
# the slope where the input is not positive.
def chain_rule(layer, names):
    """``g * f'(x)`` elementwise, ``f'`` 1 or the slope."""
    return ElementwiseProduct(names["g"], ActivationDerivative(names["x"]))


CHAIN_RULES.register(PReLU, chain_rule)

LATEX.register(PReLU, LatexParts(
    title="Backpropagation through PReLU", general=general,
    chain_words=r"PReLU, $f'(\mathit{net}) = 1$ for $\mathit{net} > 0$, else its learned slope",
    notes=_notes, notes_take_names=True, vector_bias=True))
