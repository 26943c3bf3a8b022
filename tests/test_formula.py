"""The formula parser (stage: text -> Formula): the notations people write, and errors."""

from fractions import Fraction

import pytest

from symbackprop.check.formula import (
    Affine,
    FormulaError,
    Spelling,
    parse_formula,
    products,
)


def _indices(element, reading="parts"):
    """An element's indices as numbers or variable names, for compact assertions."""
    group = getattr(element.subscript, reading)
    out = []
    for index in group:
        if not index.coefficients:
            out.append(index.constant)
        else:
            out.append(" + ".join(f"{c}*{v.split('#')[0]}" for v, c in index.coefficients)
                       + (f" + {index.constant}" if index.constant else ""))
    return tuple(out)


@pytest.mark.parametrize("text, array, loss", [
    (r"\frac{\partial E}{\partial w_{1,2}} = \delta_{1,1}", "w", "E"),
    (r"\frac{\partial L}{\partial x_{1,2}} = g_{1,1}", "x", "L"),
    (r"\partial E / \partial w_{1,2} = \delta_{1,1}", "w", "E"),
    (r"\dfrac{dE}{dw_{1,2}} = \delta_{1,1}", "w", "E"),
    (r"\frac{\mathrm{d} L}{\mathrm{d} a_{1,2}} = g_{1,1}", "x", "L"),
    ("dL/dx[1,2] = g[1,1]", "x", "L"),
    ("d L / d w[1,2] = g[1,1]", "w", "L"),
    ("dw[1,2] = g[1,1]", "w", "L"),
    ("grad_x[1,2] = dz[1,1]", "x", "L"),
    ("∂L/∂x_{1,2} = δ_{1,1}", "x", "L"),
    (r"\frac{\partial E}{\partial w_b} = \delta_{1,1}", "b", "E"),
    ("db = g[1,1]", "b", "L"),
])
def test_left_sides(text, array, loss):
    formula = parse_formula(text)
    assert formula.gradient.array == array
    assert formula.loss == loss
    if array != "b":
        assert _indices(formula.gradient) == (1, 2)


@pytest.mark.parametrize("text, array", [
    ("dL/dw[1,1] = x[1,1]", "x"), ("dL/dw[1,1] = a[1,1]", "x"),
    ("dL/dw[1,1] = g[1,1]", "g"), ("dL/dw[1,1] = delta[1,1]", "g"),
    (r"dL/dw[1,1] = \delta_{1,1}", "g"), ("dL/dw[1,1] = dz[1,1]", "g"),
    ("dL/dw[1,1] = dout[1,1]", "g"), (r"dL/dw[1,1] = \frac{\partial L}{\partial z_{1,1}}", "g"),
    ("dL/dw[1,1] = dL/dz[1,1]", "g"), ("dL/dx[1,1] = w[1,1]", "w"),
    ("dL/dx[1,1] = W[1,1]", "w"), ("dL/dx[1,1] = b", "b"), ("dL/dx[1,1] = w_b", "b"),
])
def test_names_people_use(text, array):
    (term,) = products(parse_formula(text).rhs)
    (element,) = term.elements
    assert element.array == array


@pytest.mark.parametrize("text, parts, pieces", [
    ("dL/dw[1,1] = g_{1,2}", (1, 2), None),
    ("dL/dw[1,1] = g_{12}", (12,), (1, 2)),
    ("dL/dw[1,1] = g_12", (12,), (1, 2)),
    ("dL/dw[1,1] = g_1", (1,), (1,)),
    ("dL/dw[1,1] = g12", (12,), (1, 2)),
    ("dL/dw[1,1] = g[1, 2]", (1, 2), None),
    ("dL/dw[i,j] = g_{ij}", ("1*ij",), ("1*i", "1*j")),
    ("dL/dw[i,j] = g[i+1, 2j-1]", ("1*i + 1", "2*j + -1"), None),
    ("dL/dw[i,j] = g[2(i+1), 3*j]", ("2*i + 2", "3*j"), None),
    (r"dL/dw[i,j] = g^{l}_{i,j}", ("1*i", "1*j"), None),
    (r"dL/dw[i,j] = g_{i,j}^{(l+1)}", ("1*i", "1*j"), None),
])
def test_subscripts(text, parts, pieces):
    (term,) = products(parse_formula(text).rhs)
    (element,) = term.elements
    assert _indices(element) == parts
    if pieces is None:
        assert element.subscript.pieces is None
    else:
        assert _indices(element, "pieces") == pieces


def test_spellings_keep_the_persons_notation():
    formula = parse_formula(r"\frac{\partial E}{\partial a^{l-1}_{i,j}} = "
                            r"\sum_m \sum_n \delta^{l}_{m,n} \cdot w_{mn}")
    assert formula.spelling("g").format((1, 2)) == r"\delta^{l}_{1,2}"
    assert formula.spelling("w").format((1, 2)) == "w_{12}"
    assert formula.spelling("w").format((1, 12)) == "w_{1,12}"  # compact needs single digits
    assert formula.gradient.spelling.format((3, 1)) == r"\frac{\partial E}{\partial a^{l-1}_{3,1}}"
    assert formula.gradient.spelling.format(()) == r"\frac{\partial E}{\partial a^{l-1}}"
    assert formula.product_separator == r" \cdot "
    assert formula.latex
    plain = parse_formula("dL/dx[i,j] = sum(g[i-m, j-n]*w[m,n], m, n)")
    assert plain.spelling("g").format((0, 1)) == "g[0, 1]"
    assert plain.spelling("w").format((0, 1)) == "w[0,1]"
    assert plain.spelling("x").format((0, 1)) == "x[0,1]"  # not written: the person's style
    assert plain.gradient.spelling.format((2, 3)) == "dL/dx[2,3]"
    assert plain.product_separator == "*"
    assert not plain.latex
    digits = parse_formula("dL/dx11 = g11 w22 + g12 w21")
    assert digits.spelling("g").format((1, 2)) == "g12"
    assert digits.spelling("g").format((1, 12)) == "g[1,12]"
    assert digits.gradient.spelling.format((2, 1)) == "dL/dx21"
    assert parse_formula("dw_{12} = g_{11}").gradient.spelling.format((2, 1)) == "dw_{21}"


def test_spelling_format_styles():
    assert Spelling("g", style="braces").format((1, 2)) == "g_{1,2}"
    assert Spelling("g", style="compact").format((1, 2)) == "g_{12}"
    assert Spelling("g", style="underscore").format((1, 2)) == "g_12"
    assert Spelling("g", style="brackets", separator=", ").format((1, 2)) == "g[1, 2]"
    assert Spelling("g", style="digits").format((1, 2)) == "g12"
    assert Spelling("g", style="digits").format((0, -1)) == "g[0,-1]"
    assert Spelling("b").format(()) == "b"


def test_products_distribute_sums_and_numbers():
    formula = parse_formula(r"dL/dw[i,j] = \frac{1}{4}(g[1,1] + 2 g[1,2]) - x[i,j]/2")
    terms = products(formula.rhs)
    assert [t.coefficient for t in terms] == [Fraction(1, 4), Fraction(1, 2), Fraction(-1, 2)]
    assert [t.elements[0].array for t in terms] == ["g", "g", "x"]
    # a sum covers the product that follows it, and each sum gets its own index names
    formula = parse_formula(r"dL/dw[i,j] = \sum_m g_{m} \sum_m x_{m} + w_{1,1}")
    first, second = products(formula.rhs)
    assert [v.written for v in first.variables] == ["m", "m"]
    assert len({v.name for v in first.variables}) == 2
    assert [e.array for e in first.elements] == ["g", "x"]
    assert second.variables == () and second.elements[0].array == "w"
    # sum(body, m) ends at its ')'
    (term,) = products(parse_formula("dL/dw[i,j] = sum(g[m,n], m, n) * 3").rhs)
    assert term.coefficient == 3 and len(term.variables) == 2


def test_sum_limits():
    (term,) = products(parse_formula(r"dL/dw[i,j] = \sum_{m=0}^{1}\sum_{n=1}^{K} g_{m,n}").rhs)
    m, n = term.variables
    assert (m.lower, m.upper) == (Affine(0), Affine(1))
    assert n.lower == Affine(1) and n.upper.variables == ("K",)
    (term,) = products(parse_formula("dL/dw[i,j] = sum(g[m,n], (m, 0, 1), n)").rhs)
    m, n = term.variables
    assert m.limited and not n.limited
    (term,) = products(parse_formula(r"dL/dw[i,j] = \sum_{m,n=0}^{2} g_{m,n}").rhs)
    assert [v.upper for v in term.variables] == [Affine(2), Affine(2)]
    (term,) = products(parse_formula(r"dL/dw[i,j] = \sum_{mn} g_{m,n}").rhs)
    assert [v.written for v in term.variables] == ["m", "n"]


@pytest.mark.parametrize("text, message, column", [
    ("", "empty", 1),
    ("dL/dx[i,j] = ", "right side is empty", 14),
    ("dL/dx[i,j] g[i,j]", "expected '='", 12),
    ("dL/dx[i,j] = g[i,j", "never closed", 15),
    ("dL/dx[i,j] = q[1,1]", "unknown name 'q'", 14),
    ("dL/dx[i,j] = gw[1,1]", "write a product with a space", 14),
    ("dL/dx[i,j] = sum(g[i,m] for m in range(2))", "write a sum as sum(body, m, n)", 25),
    (r"dL/dx = \alpha", "unknown LaTeX command \\alpha", 9),
    ("x[1,1] = g[1,1]", "left side must be a gradient", 1),
    ("dL/dw = g[1,1] = 3", "one '=' only", 16),
    ("dL/dw = g[i*j]", "linear", 13),
    ("dL/dw = g[1,1]/x[1,1]", "division by a number", 15),
    ("dL/dw = g[1,1]/0", "division by zero", 15),
    (r"dL/dw = \sum_{m=0} g_m", "give both limits", 9),
    (r"dL/dw = \sum g_m", "a sum needs its index", 9),
    ("dL/dw = sum(g[m])", "name the summation indices", 17),
    ("dL/dw = g[1,1] ?", "unexpected character '?'", 16),
    ("dL/dw = dx[1,1]", "cannot appear on the right side", 9),
    (r"dL/dw = \frac{\partial L}{\partial x_{1}}", "only the upstream gradient", 9),
    ("dL/dw = g[1.5]", "whole number", 11),
])
def test_errors_point_at_the_position(text, message, column):
    with pytest.raises(FormulaError) as caught:
        parse_formula(text)
    error = caught.value
    assert message in error.message
    assert error.position == column - 1
    if text:
        lines = str(error).splitlines()
        assert lines[1] == "  " + text
        assert lines[2] == "  " + " " * (column - 1) + "^"
    assert isinstance(error, ValueError)
