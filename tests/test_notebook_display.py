"""A derivation's notebook display (``_repr_latex_``) uses only macros MathJax and KaTeX know:
none of the document's own (``\\corr``, ``\\pad``, ``\\zero``)."""

import re

import pytest

import symbackprop as sbp
from symbackprop import derive

#: Standard math macros MathJax and KaTeX both define (a subset; enough for the displays).
KNOWN = {
    "begin", "end", "frac", "dfrac", "partial", "quad", "qquad", "text", "mathrm", "mathbf",
    "operatorname", "times", "cdot", "cdots", "ldots", "dots", "to", "sum", "prod", "max",
    "min", "arg", "exp", "log", "tanh", "sigma", "delta", "alpha", "beta", "gamma", "mu",
    "epsilon", "varepsilon", "bigl", "bigr", "left", "right", "odot", "circ", "tilde", "hat",
    "bar", "sqrt", "infty", "leq", "geq", "le", "ge", "neq", "in", "mathbb", "cases",
    "otherwise", "top", "lambda", "theta", "phi", "Phi", "pi", "erf", "cosh", "sinh",
}

LAYERS = [
    (sbp.Conv2d(2, 2, kernel_size=2, padding=1), (3, 3)),
    (sbp.MaxPool2d(2), (1, 4, 4)),
    (sbp.AvgPool2d(2), (1, 4, 4)),
    (sbp.Softplus(), (1, 2, 2)),
    (sbp.Linear(3, 2), None),
    (sbp.Sequential(sbp.Conv2d(1, 2, kernel_size=3, padding=1), sbp.ReLU(), sbp.MaxPool2d(2),
                    sbp.Flatten(), sbp.Linear(8, 2)), (1, 4, 4)),
]


@pytest.mark.parametrize("layer, size", LAYERS, ids=lambda value: type(value).__name__)
def test_the_notebook_display_uses_only_known_macros(layer, size):
    text = derive(layer, size)._repr_latex_()
    used = set(re.findall(r"\\([A-Za-z]+)", text))
    assert used <= KNOWN, sorted(used - KNOWN)
