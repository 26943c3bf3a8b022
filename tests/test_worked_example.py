"""The worked example in numbers at the end of a LaTeX printout.

Every test reads the numbers off the printed document: the integers chosen for the
input, the parameters and the upstream gradient go through the hand-written loop
references of ``tests/`` (``layer_reference.py`` over ``reference.py``,
``reference_norm.py``, ...), never through the package, and the printed output and
gradients must equal what the reference computes (to the printed rounding).  The
written-out element is checked too: the numbers under each product are the printed
values of the elements the product names, and they add up to the printed value.
"""

from __future__ import annotations

import re

import layer_reference
import numpy as np
import pytest

import symbackprop as sbp
from symbackprop.cli import main
from symbackprop.core.derivation import derive
from symbackprop.render.latex import to_latex

HEADING = r"\section{A worked example in numbers}"


# ---------------------------------------------------------------------------
# Reading the printed page
# ---------------------------------------------------------------------------

def _section(document: str) -> str:
    start = document.index(HEADING)
    return document[start:document.index(r"\vfill", start)]


def _cell(text: str) -> tuple[float, bool]:
    marked = re.fullmatch(r"\\workedmark\{(.*)\}", text)
    return float((marked.group(1) if marked else text).strip()), marked is not None


def _stem(label: str) -> str:
    """``x^{(1)} -> x``, ``a^{[2](1)} -> a^{[2]}``: the array a printed map belongs to."""
    label = re.sub(r"\^\{\([\d,]+\)\}$", "", label.strip())
    return re.sub(r"\([\d,]+\)\}$", "}", label)


def printed_maps(document: str) -> dict:
    """Map label -> (numbers, marked) grids, and the order they were printed in."""
    maps = {}
    for display in re.findall(r"\\\[\n(.*?)\n\\\]", _section(document), re.S):
        for piece in display.split(r", \qquad "):
            label, matrix = piece.split(" = ", 1)
            body = re.fullmatch(r"\\left\[\\begin\{array\}\{@\{\}r+@\{\}\}(.*)\\end\{array\}"
                                r"\\right\]", matrix).group(1)
            rows = [[_cell(cell) for cell in row.split(" & ")] for row in body.split(r" \\ ")]
            maps[label.strip()] = (np.array([[value for value, _ in row] for row in rows]),
                                   np.array([[mark for _, mark in row] for row in rows]))
    return maps


def printed_array(maps: dict, stem: str, shape) -> np.ndarray:
    """The maps of one array, in the order printed, as an array of ``shape``."""
    numbers = [grid.ravel() for label, (grid, _) in maps.items() if _stem(label) == stem]
    assert numbers, f"{stem} is not printed; printed: {list(maps)}"
    return np.concatenate(numbers).reshape(shape)


def printed_marks(maps: dict, stem: str, shape) -> np.ndarray:
    marks = [marked.ravel() for label, (_, marked) in maps.items() if _stem(label) == stem]
    return np.concatenate(marks).reshape(shape)


def _element_value(maps: dict, label: str) -> float:
    """The printed number of an element label: ``g^{(2)}_{12}``, ``w_{11}``, ``b^{(1)}``."""
    match = re.fullmatch(r"(.+?)(?:\^\{\(([\d,]+)\)\})?(?:_\{(\d+)\})?", label)
    name, leading, position = match.groups()
    if position is None:  # a channel's bias: the vector b, element (leading)
        grid = maps[name][0].ravel()
        return grid[int(leading) - 1]
    grid = maps[name + (f"^{{({leading})}}" if leading else "")][0]
    if len(position) == 1:
        return grid.ravel()[int(position) - 1]
    return grid[int(position[0]) - 1, int(position[1]) - 1]


def written_out(document: str) -> list[dict]:
    """Each written-out element: its lhs, its symbolic terms, its numeric terms, its value."""
    section = _section(document)
    found = []
    for body in re.findall(r"\\begin\{alignat\*\}\{\d+\}\n(.*?)\n\\end\{alignat\*\}",
                           section, re.S):
        rows = [row for row in re.split(r" \\\\\*?\n", body)
                if not row.startswith((r"&\text{with ", r"&\phantom{\text{with }}"))]
        lhs = rows[0].split(" &= ", 1)[0]
        numeric_start = next(i for i, row in enumerate(rows) if i and row.startswith(" &= "))
        # the value closes the block, unless the numbers are a single number already
        value = rows[-1] if rows[-1].startswith("&= ") else rows[-1].strip()
        if not rows[-1].startswith("&= "):
            rows.append(value)

        def terms(lines, lhs=lhs):
            text = " ".join(line.replace("&&", "&") for line in lines)
            text = text.replace(lhs, "", 1)
            cells = [cell.strip() for cell in text.split("&") if cell.strip()]
            cells[0] = cells[0].removeprefix("=").strip()
            return cells

        found.append({"lhs": lhs, "symbols": terms(rows[:numeric_start]),
                      "numbers": terms(rows[numeric_start:-1]),
                      "value": float(value[3:])})
    return found


def _python(term: str) -> str:
    return term.replace(r"\cdot", "*").replace("{", "(").replace("}", ")")


def check_written_out(document: str, maps: dict, polynomial: bool = True) -> int:
    """The numbers add up to the value; under each product, the printed values of the
    elements it names (for sums of products of elements).  Returns how many were read."""
    elements = written_out(document)
    assert elements, "no element written out"
    for element in elements:
        total = eval(" ".join(_python(term) for term in element["numbers"]))  # noqa: S307
        assert total == pytest.approx(element["value"], abs=2e-3 * len(element["numbers"])), \
            element
        if not polynomial:
            continue
        assert len(element["symbols"]) == len(element["numbers"]), element
        for symbols, numbers in zip(element["symbols"], element["numbers"], strict=True):
            coefficient_free = re.sub(r"\\frac\{\d+\}\{\d+\}", "", symbols)
            labels = re.findall(r"[a-z](?:\^\{\([\d,]+\)\})?(?:_\{\d+\})?",
                                coefficient_free.lstrip("+- "))
            values = [float(number.strip("() ")) for number in
                      numbers.lstrip("+- ").split(r"\cdot")]
            assert [_element_value(maps, label) for label in labels] == values[-len(labels):], \
                (symbols, numbers)
    return len(elements)


def document(layer, size, batch=1, **options) -> str:
    return to_latex(derive(layer, size, batch), **options)


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------

def test_conv2d_stride_2_padding_two_channels_equals_the_loop_reference():
    layer = sbp.Conv2d(in_channels=2, out_channels=2, kernel_size=3, stride=2, padding=1)
    text = document(layer, (5, 5))
    maps = printed_maps(text)
    x = printed_array(maps, "x", (1, 2, 5, 5))
    w = printed_array(maps, "w", (2, 2, 3, 3))
    b = printed_array(maps, "b", (2,))
    g = printed_array(maps, "g", (1, 2, 3, 3))
    assert set(np.unique(x)) <= {-3, -2, -1, 1, 2, 3} and set(np.unique(w)) <= {-2, -1, 1, 2}
    params = {"w": w, "b": b}
    np.testing.assert_array_equal(printed_array(maps, "z", (1, 2, 3, 3)),
                                  layer_reference.forward(layer, x, params))
    grad_x, grads = layer_reference.backward(layer, x, params, g)
    np.testing.assert_array_equal(printed_array(maps, r"\partial L/\partial x", x.shape), grad_x)
    np.testing.assert_array_equal(printed_array(maps, r"\partial L/\partial w", w.shape),
                                  grads["w"])
    np.testing.assert_array_equal(printed_array(maps, r"\partial L/\partial b", b.shape),
                                  grads["b"])
    assert check_written_out(text, maps) == 4  # z, dL/dx, dL/dw, dL/db
    # the written-out input element is an interior one: all four outputs of both channels
    first = written_out(text)[1]
    assert first["lhs"].startswith(r"\frac{\partial L}{\partial x^{(")
    assert len(first["symbols"]) == 8


def test_max_pooling_marks_each_windows_maximum_and_has_no_ties():
    layer = sbp.MaxPool2d(kernel_size=2, stride=2)
    text = document(layer, (2, 4, 4))
    maps = printed_maps(text)
    x = printed_array(maps, "x", (1, 2, 4, 4))
    g = printed_array(maps, "g", (1, 2, 2, 2))
    marks = printed_marks(maps, "x", x.shape)
    expected = np.zeros(x.shape, dtype=bool)
    for c in range(2):
        for i in range(2):
            for j in range(2):
                window = x[0, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
                assert (window == window.max()).sum() == 1  # no tie
                r, s = np.unravel_index(np.argmax(window), window.shape)
                expected[0, c, 2 * i + r, 2 * j + s] = True
    np.testing.assert_array_equal(marks, expected)
    np.testing.assert_array_equal(printed_array(maps, "z", g.shape),
                                  layer_reference.forward(layer, x, {}))
    np.testing.assert_array_equal(printed_array(maps, r"\partial L/\partial x", x.shape),
                                  layer_reference.backward(layer, x, {}, g)[0])
    assert "no window has a tie" in _section(text)
    check_written_out(text, maps, polynomial=False)


def test_overlapping_max_pooling_marks_every_maximum():
    layer = sbp.MaxPool2d(kernel_size=3, stride=2, padding=1)
    text = document(layer, (5, 5))
    maps = printed_maps(text)
    x = printed_array(maps, "x", (1, 1, 5, 5))
    assert len(np.unique(x)) == x.size  # all different: no window can tie
    padded = np.pad(x[0, 0], 1, constant_values=-np.inf)
    expected = np.zeros((5, 5), dtype=bool)
    for i in range(3):
        for j in range(3):
            window = padded[2 * i:2 * i + 3, 2 * j:2 * j + 3]
            r, s = np.unravel_index(np.argmax(window), window.shape)
            expected[2 * i + r - 1, 2 * j + s - 1] = True
    np.testing.assert_array_equal(printed_marks(maps, "x", x.shape)[0, 0], expected)
    g = printed_array(maps, "g", (1, 1, 3, 3))
    np.testing.assert_array_equal(printed_array(maps, r"\partial L/\partial x", x.shape),
                                  layer_reference.backward(layer, x, {}, g)[0])


def test_average_pooling_prints_exact_quarters():
    layer = sbp.AvgPool2d(kernel_size=2)
    text = document(layer, (4, 4))
    maps = printed_maps(text)
    x = printed_array(maps, "x", (1, 1, 4, 4))
    g = printed_array(maps, "g", (1, 1, 2, 2))
    np.testing.assert_array_equal(printed_array(maps, "z", g.shape),
                                  layer_reference.forward(layer, x, {}))
    np.testing.assert_array_equal(printed_array(maps, r"\partial L/\partial x", x.shape),
                                  layer_reference.backward(layer, x, {}, g)[0])
    assert "rounded" not in _section(text)  # quarters are exact
    check_written_out(text, maps)


@pytest.mark.parametrize("layer, size, rounded, products", [
    (sbp.Linear(3, 2), None, False, True),
    (sbp.ReLU(), (1, 3, 3), False, False),
    (sbp.Sigmoid(), (1, 3, 3), True, False),
    (sbp.PReLU(), (1, 3, 3), False, False),
    (sbp.Softmax(), (4,), True, False),
])
def test_linear_and_activations_equal_the_loop_reference(layer, size, rounded, products):
    derivation = derive(layer, size)
    text = to_latex(derivation)
    maps = printed_maps(text)
    x = printed_array(maps, "x", derivation.input_shape)
    g = printed_array(maps, "g", derivation.output_shape)
    params = {name: printed_array(maps, name, array.shape)
              for name, array in derivation.params.items()}
    tolerance = 5e-4 if rounded else 0
    np.testing.assert_allclose(printed_array(maps, "z", g.shape),
                               layer_reference.forward(layer, x, params), atol=tolerance, rtol=0)
    grad_x, grads = layer_reference.backward(layer, x, params, g)
    np.testing.assert_allclose(printed_array(maps, r"\partial L/\partial x", x.shape), grad_x,
                               atol=tolerance, rtol=0)
    for name, array in derivation.params.items():
        np.testing.assert_allclose(printed_array(maps, rf"\partial L/\partial {name}",
                                                 array.shape), grads[name], atol=tolerance)
    assert ("rounded to 3 decimals" in _section(text)) == rounded
    check_written_out(text, maps, polynomial=products)


def test_batch_norm_rounded_equals_the_loop_reference():
    layer = sbp.BatchNorm2d(2)
    derivation = derive(layer, (2, 2), 2)
    text = to_latex(derivation)
    maps = printed_maps(text)
    x = printed_array(maps, "x", derivation.input_shape)
    g = printed_array(maps, "g", derivation.output_shape)
    params = {"weight": printed_array(maps, r"\gamma", (2,)),
              "bias": printed_array(maps, r"\beta", (2,))}
    np.testing.assert_allclose(printed_array(maps, "z", x.shape),
                               layer_reference.forward(layer, x, params), atol=5e-4, rtol=0)
    grad_x, grads = layer_reference.backward(layer, x, params, g)
    np.testing.assert_allclose(printed_array(maps, r"\partial L/\partial x", x.shape), grad_x,
                               atol=5e-4, rtol=0)
    np.testing.assert_allclose(printed_array(maps, r"\partial L/\partial \gamma", (2,)),
                               grads["weight"], atol=5e-4, rtol=0)
    np.testing.assert_allclose(printed_array(maps, r"\partial L/\partial \beta", (2,)),
                               grads["bias"], atol=5e-4, rtol=0)
    assert "rounded to 3 decimals" in _section(text)
    check_written_out(text, maps, polynomial=False)


def test_a_chain_prints_the_walk_in_numbers():
    layers = (sbp.Conv2d(in_channels=1, out_channels=1, kernel_size=2), sbp.ReLU(),
              sbp.Flatten(), sbp.Linear(9, 2))
    chain = derive(sbp.Sequential(*layers), (1, 4, 4))
    text = to_latex(chain)
    maps = printed_maps(text)
    x = printed_array(maps, "a^{[0]}", (1, 1, 4, 4))
    params = [{"w": printed_array(maps, "w^{[1]}", (1, 1, 2, 2)),
               "b": printed_array(maps, "b^{[1]}", (1,))}, {}, {},
              {"w": printed_array(maps, "w^{[4]}", (2, 9)),
               "b": printed_array(maps, "b^{[4]}", (2,))}]
    last = printed_array(maps, r"\delta^{[4]}", (1, 2))
    outputs = layer_reference.chain_forward(layers, x, params)
    deltas, grads = layer_reference.chain_backward(layers, x, params, last)
    for number, output in enumerate(outputs[1:], 1):
        np.testing.assert_array_equal(printed_array(maps, f"a^{{[{number}]}}", output.shape),
                                      output)
    for number, delta in enumerate(deltas[:-1]):
        np.testing.assert_array_equal(
            printed_array(maps, rf"\delta^{{[{number}]}}", delta.shape), delta)
    np.testing.assert_array_equal(
        printed_array(maps, r"\partial L/\partial w^{[1]}", (1, 1, 2, 2)), grads[0]["w"])
    np.testing.assert_array_equal(
        printed_array(maps, r"\partial L/\partial w^{[4]}", (2, 9)), grads[3]["w"])


# ---------------------------------------------------------------------------
# The document around it
# ---------------------------------------------------------------------------

def test_same_request_same_document_and_the_switch_to_leave_it_out(capsys):
    arguments = ["latex", "conv2d", "--kernel", "2", "--input", "3x3"]
    assert main(arguments) == 0
    first = capsys.readouterr().out
    assert main(arguments) == 0
    assert capsys.readouterr().out == first
    assert HEADING in first
    assert main([*arguments, "--no-worked-example"]) == 0
    without = capsys.readouterr().out
    assert HEADING not in without
    assert "--no-worked-example" in without.splitlines()[1]  # the regenerate command says so


def test_large_instance_says_it_is_omitted_and_names_a_smaller_command(capsys):
    text = document(sbp.Conv2d(in_channels=1, out_channels=1, kernel_size=3), (9, 9))
    section = _section(text)
    assert "left out" in section and "9 x 9" in section
    command = re.search(r"\\texttt\{((?:[^{}]|\{\})*)\}", section).group(1).replace("-{}", "-")
    assert command.startswith("symbackprop latex conv2d")
    assert main(command.split()[1:]) == 0
    smaller = capsys.readouterr().out
    assert HEADING in smaller and r"\paragraph{Forward.}" in _section(smaller)


def test_a_chain_with_max_pooling_has_no_ties_and_boxes_the_maxima():
    layers = (sbp.Conv2d(in_channels=1, out_channels=1, kernel_size=2), sbp.ReLU(),
              sbp.MaxPool2d(kernel_size=2), sbp.Flatten(), sbp.Linear(4, 2))
    text = to_latex(derive(sbp.Sequential(*layers), (1, 5, 5)))
    maps = printed_maps(text)
    x = printed_array(maps, "a^{[0]}", (1, 1, 5, 5))
    params = [{"w": printed_array(maps, "w^{[1]}", (1, 1, 2, 2)),
               "b": printed_array(maps, "b^{[1]}", (1,))}, {}, {}, {},
              {"w": printed_array(maps, "w^{[5]}", (2, 4)),
               "b": printed_array(maps, "b^{[5]}", (2,))}]
    outputs = layer_reference.chain_forward(layers, x, params)
    pooled = outputs[2][0, 0]
    np.testing.assert_array_equal(printed_array(maps, "a^{[2]}", (4, 4)), pooled)
    boxed = printed_marks(maps, "a^{[2]}", (4, 4))
    for i in range(2):
        for j in range(2):
            window = pooled[2 * i:2 * i + 2, 2 * j:2 * j + 2]
            assert (window == window.max()).sum() == 1  # the integers avoid ties
            assert boxed[2 * i:2 * i + 2, 2 * j:2 * j + 2].sum() == 1
            assert window[boxed[2 * i:2 * i + 2, 2 * j:2 * j + 2]][0] == window.max()
    assert "no window has a tie" in _section(text)
    deltas, _ = layer_reference.chain_backward(layers, x, params,
                                               printed_array(maps, r"\delta^{[5]}", (1, 2)))
    np.testing.assert_array_equal(printed_array(maps, r"\delta^{[0]}", x.shape), deltas[0])


def test_derive_worked_example_prints_the_same_numbers_in_the_terminal(capsys):
    assert main(["derive", "maxpool2d", "--kernel", "2", "--input", "4x4",
                 "--worked-example"]) == 0
    text = capsys.readouterr().out.split("Worked example:", 1)[1]

    def block(label):
        lines = text.split(f"  {label} =\n", 1)[1].splitlines()
        rows = []
        for line in lines:
            if line.strip().endswith("=") or not line.strip():
                break
            rows.append(line.split())
        return rows

    x_cells = block("x")
    x = np.array([[float(cell.strip("[]")) for cell in row] for row in x_cells])
    g = np.array(block("g"), dtype=float)
    layer = sbp.MaxPool2d(kernel_size=2)
    np.testing.assert_array_equal(np.array(block("z"), dtype=float),
                                  layer_reference.forward(layer, x[None, None], {})[0, 0])
    np.testing.assert_array_equal(
        np.array(block("dL/dx"), dtype=float),
        layer_reference.backward(layer, x[None, None], {}, g[None, None])[0][0, 0])
    boxed = np.array([[cell.startswith("[") for cell in row] for row in x_cells])
    maxima = layer_reference.forward(layer, x[None, None], {})[0, 0]
    for i in range(2):
        for j in range(2):  # in each window, exactly its maximum is bracketed
            window = boxed[2 * i:2 * i + 2, 2 * j:2 * j + 2]
            assert window.sum() == 1
            assert x[2 * i:2 * i + 2, 2 * j:2 * j + 2][window][0] == maxima[i, j]
    assert main(["derive", "maxpool2d", "--kernel", "2", "--input", "4x4"]) == 0
    assert "Worked example" not in capsys.readouterr().out  # only when asked
