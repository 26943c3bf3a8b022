"""The fully connected layer in the LaTeX document."""

from __future__ import annotations

from symbackprop.core.operators import CHAIN_RULES, MatrixProduct, Transposed
from symbackprop.core.rules import proofs_for
from symbackprop.kinds.linear.spec import Linear
from symbackprop.render.latex import LATEX, LatexParts


def general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    w, b = names["w"], names.get("b")
    dx = rf"\frac{{\partial {loss}}}{{\partial {x}}}"
    return {"forward": rf"{z} = {w}\, {x}" + (f" + {b}" if b else ""),
            "backward": rf"{dx} = {{{w}}}^{{T}} {g},\quad "
                        rf"\frac{{\partial {loss}}}{{\partial {w}}} = {g}\, {{{x}}}^{{T}}"
                        + (rf",\quad \frac{{\partial {loss}}}{{\partial {b}}} = {g}"
                           if b else "")}


def matrix_form(derivation, printer) -> dict | None:
    """The backward pass in matrix form over the batch, with its proof's verdict
    (:mod:`symbackprop.kinds.linear.rules`): the rows of ``x`` and ``g`` are the samples."""
    proofs = proofs_for(derivation)
    if not proofs:
        return None
    loss, x, w, g = (printer.name(key) for key in ("L", "x", "w", "g"))
    batch = int(derivation.x.shape[0]) > 1
    over = r"\sum_n " if batch else ""
    sample = "_n" if batch else ""
    rows = [rf"\frac{{\partial {loss}}}{{\partial {x}{sample}}} = {{{w}}}^{{T}} {g}{sample}",
            rf"\frac{{\partial {loss}}}{{\partial {w}}} = {over}{g}{sample}\, "
            rf"{{{x}{sample}}}^{{T}}"]
    if "b" in derivation.params:
        rows.append(rf"\frac{{\partial {loss}}}{{\partial {printer.name('b')}}} = "
                    rf"{over}{g}{sample}")
    intro = ("In matrix form" + (", sample by sample ($n$ numbers the samples, the rows of "
                                 rf"${x}$ and ${g}$)" if batch else "")
             + ": the weight gradient is an outer product, one column of inputs times one "
               "row of upstream gradients, and the input gradient sends the upstream "
               "gradient back through the transposed weights.")
    return {"intro": intro, "formula": r",\qquad ".join(rows),
            "holds": all(proof.holds for proof in proofs),
            "checked": sum(proof.checked for proof in proofs), "tail": False}


# A chain's step delta^{l-1} from delta^l, written once: the text printout, the LaTeX
# walk and a chain module's comments print this expression (core/operators.py).
def chain_rule(layer, names):
    """``w^T g``."""
    return MatrixProduct(Transposed(names["w"]), names["g"])


CHAIN_RULES.register(Linear, chain_rule)


LATEX.register(Linear, LatexParts(
    title="Backpropagation through a fully connected layer", general=general,
    chain_words="a fully connected layer", shows_padding=True,
    vector_bias=True, closed_form=matrix_form))
