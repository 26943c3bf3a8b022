"""The interactive page (symbackprop.render.html) read as HTML, without a browser.

Truth: the derivation's own SymPy expressions (free symbols) and the layer's
geometry, computed here; the page's cells and data must match them.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import sympy

import symbackprop as sbp
from symbackprop.cli import LAYER_OPTIONS, main
from symbackprop.core.registry import KINDS
from symbackprop.render.html import HTML


class PageParser(HTMLParser):
    """Collects cells (with their section), step grids and the JSON data."""

    def __init__(self):
        super().__init__()
        self.cells, self.pads, self.step_cells = [], [], {}
        self.section = None
        self.grid = None
        self.tags = []
        self.data = None
        self._in_data = False
        self.attributes = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attributes.extend(attrs.items())
        classes = (attrs.get("class") or "").split()
        if tag == "section" and "layer" in classes:
            self.section = int(attrs["data-layer"])
        if tag == "figure" and "step-grid" in classes:
            self.grid = attrs["id"]
            self.step_cells[self.grid] = []
        if "scell" in classes:
            self.step_cells[self.grid].append(
                (int(attrs["data-r"]), int(attrs["data-c"]), set(classes) - {"scell"}))
        if "cell" in classes and "data-cell" in attrs:
            record = dict(attrs, section=self.section, tag=tag)
            (self.pads if "pad" in classes else self.cells).append(record)
        if tag == "script" and attrs.get("id") == "sbp-data":
            self._in_data = True

    def handle_endtag(self, tag):
        self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data = json.loads(data)


def parse(text: str) -> PageParser:
    parser = PageParser()
    parser.feed(text)
    return parser


def index_of(text: str) -> tuple:
    return tuple(int(part) for part in text.split(","))


def expected_terms(expression) -> set:
    """``{(array, index)}`` of the free symbols of a derived expression (the names are
    ``array[i,j,...]``, read here without the package's parser)."""
    found = set()
    for symbol in sympy.sympify(expression).free_symbols:
        match = re.fullmatch(r"(\w+)\[([\d,]+)\]", symbol.name)
        if match:
            found.add((match.group(1), index_of(match.group(2))))
    return found


def derived_arrays(derivation) -> dict:
    """data-array -> derived expressions of a single layer: z and the gradients."""
    arrays = {"z": derivation.z, "grad_x": derivation.grad_x}
    for name in derivation.params:
        arrays[f"grad_{name}"] = derivation.grads[name]
    return arrays


WORKED = sbp.Conv2d(kernel_size=2, padding=1)


@pytest.fixture(scope="module")
def worked():
    derivation = sbp.derive(WORKED, (3, 3))
    return derivation, sbp.to_html(derivation)


def test_every_element_is_one_cell_with_the_contract_attributes(worked):
    derivation, text = worked
    page = parse(text)
    found = {(cell["data-array"], index_of(cell["data-index"])) for cell in page.cells}
    assert len(found) == len(page.cells)  # no element twice
    expected = set()
    shapes = {"x": (1, 1, 3, 3), "w": (1, 1, 2, 2), "b": (1,), "z": (1, 1, 4, 4),
              "g": (1, 1, 4, 4), "grad_x": (1, 1, 3, 3), "grad_w": (1, 1, 2, 2), "grad_b": (1,)}
    for array, shape in shapes.items():
        expected |= {(array, index) for index in np.ndindex(*shape)}
    assert found == expected
    assert all(cell["tag"] == "button" and cell["aria-label"] for cell in page.cells)
    labels = {(cell["data-array"], cell["data-index"]): cell["aria-label"] for cell in page.cells}
    assert labels[("x", "0,0,1,2")] == "x23"
    assert labels[("grad_w", "0,0,1,0")] == "dL/dw21"


def test_padding_is_drawn_around_x_and_marked(worked):
    _, text = worked
    page = parse(text)
    pads = {index_of(cell["data-pad"]) for cell in page.pads}
    # padding 1 around a 3x3 map: the border of the 5x5 padded map
    assert pads == {(0, 0, r, c) for r in range(5) for c in range(5)
                    if r in (0, 4) or c in (0, 4)}
    assert all(cell["data-array"] == "x" and "data-index" not in cell for cell in page.pads)


@pytest.mark.parametrize("layer, size, batch", [
    (WORKED, (3, 3), 1),
    (sbp.Conv2d(in_channels=2, out_channels=2, kernel_size=3, stride=2, padding=1), (5, 5), 2),
    (sbp.MaxPool2d(2), (1, 4, 4), 1),
    (sbp.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (1, 5, 5), 1),
    (sbp.Sigmoid(), (1, 2, 2), 1),
    (sbp.Linear(3, 2), None, 2),
])
def test_each_formula_has_exactly_the_terms_of_the_derived_sum(layer, size, batch):
    derivation = sbp.derive(layer, size, batch)
    page = parse(sbp.to_html(derivation))
    by_id = {int(cell["data-cell"]): cell for cell in page.cells + page.pads}
    for name, expressions in derived_arrays(derivation).items():
        cells = [cell for cell in page.cells if cell["data-array"] == name]
        assert len(cells) == int(np.prod(expressions.shape))
        for cell in cells:
            terms = page.data["cells"][int(cell["data-cell"])][2]
            shown = {(by_id[t]["data-array"], index_of(by_id[t]["data-index"])) for t in terms}
            assert shown == expected_terms(expressions[index_of(cell["data-index"])])


def test_z_marks_the_padding_it_reads(worked):
    derivation, text = worked
    page = parse(text)
    by_id = {int(cell["data-cell"]): cell for cell in page.cells + page.pads}
    z11 = next(cell for cell in page.cells
               if cell["data-array"] == "z" and cell["data-index"] == "0,0,0,0")
    padread = page.data["cells"][int(z11["data-cell"])][3]
    pads = {index_of(by_id[i]["data-pad"]) for i in padread if "data-pad" in by_id[i]}
    weights = {index_of(by_id[i]["data-index"]) for i in padread if "data-index" in by_id[i]}
    # z11 reads the padded 2x2 window at the top left: three padding zeros and x11
    assert pads == {(0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 0)}
    assert weights == {(0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 0)}
    assert all(by_id[i]["data-array"] == "w" for i in padread if "data-index" in by_id[i])


def test_padding_products_are_grey_and_nothing_else(worked):
    _, text = worked
    page = parse(text)
    z11 = next(cell for cell in page.cells
               if cell["data-array"] == "z" and cell["data-index"] == "0,0,0,0")
    formula = page.data["cells"][int(z11["data-cell"])][0]
    grey = re.findall(r'<mstyle mathcolor="gray">(.*?)</mstyle>', formula)
    assert len(grey) == 3  # 0 w11 + 0 w12 + 0 w21 + x11 w22 + b
    assert all("<mi>w</mi>" in part and "<mi>x</mi>" not in part and "<mi>b</mi>" not in part
               for part in grey)
    assert formula.count("<mi>x</mi>") == 1 and formula.count("<mi>b</mi>") == 1


def test_the_page_is_self_contained(worked):
    _, text = worked
    page = parse(text)
    assert not {"link", "img", "iframe", "object"} & set(page.tags)
    assert not [value for key, value in page.attributes if key in ("src", "href")]
    assert "http://" not in text and "https://" not in text
    assert "@import" not in text and "url(" not in text
    assert "<math" in text and "<mfrac>" in text  # typeset formulas, not TeX source


def test_page_is_deterministic_and_small():
    derivation = sbp.derive(sbp.Conv2d(kernel_size=3, padding=1), (8, 8))
    first = sbp.to_html(derivation)
    assert first == sbp.to_html(sbp.derive(sbp.Conv2d(kernel_size=3, padding=1), (8, 8)))
    assert len(first.encode()) < 1_000_000
    unpadded = sbp.to_html(sbp.derive(sbp.Conv2d(kernel_size=3), (8, 8)))
    assert len(unpadded.encode()) < 1_000_000


def test_every_kind_has_a_step_builder():
    kinds = set(LAYER_OPTIONS) - {"sequential", "residual"}  # composites: pages of chains
    assert {KINDS[kind] for kind in kinds} <= set(HTML.types())


def test_conv2d_steps_insert_zeros_pad_and_rotate():
    layer = sbp.Conv2d(kernel_size=3, stride=2, padding=1)
    derivation = sbp.derive(layer, (5, 5))
    page = parse(sbp.to_html(derivation))
    out = derivation.output_shape[2]  # (5 + 2 - 3) // 2 + 1 = 3
    assert out == 3
    dilated = page.step_cells["s1-dil"]
    size = (out - 1) * 2 + 1
    assert {(r, c) for r, c, _ in dilated} == {(r, c) for r in range(size) for c in range(size)}
    assert {(r, c) for r, c, kinds in dilated if "inserted" in kinds} == \
        {(r, c) for r in range(size) for c in range(size) if r % 2 or c % 2}
    # P = d(K - 1) - p = 2 - 1 = 1 on every side (the stride reads every row here)
    padded = page.step_cells["s1-pad"]
    assert max(r for r, _, _ in padded) + 1 == size + 2
    assert {(r, c) for r, c, kinds in padded if "pad" in kinds} == \
        {(r, c) for r in range(size + 2) for c in range(size + 2)
         if r in (0, size + 1) or c in (0, size + 1)}
    frames = page.data["steps"]["1"]
    titles = " ".join(frame["title"] for frame in frames)
    for word in ("stride", "Pad", "Rotate", "Slide", "Bias"):
        assert word in titles
    slides = [frame for frame in frames if frame["title"].startswith("Slide") and
              "s1-rot" in frame["grids"]]
    assert len(slides) == 25  # one per input position
    assert all(len(frame["marks"]["s1-pad"]) == 9 for frame in slides)


def test_chain_sections_use_the_chain_names():
    chain = sbp.Sequential(sbp.Conv2d(1, 1, 2), sbp.ReLU(), sbp.Flatten(), sbp.Linear(4, 2))
    derivation = sbp.derive(chain, (1, 3, 3))
    page = parse(sbp.to_html(derivation))
    sections = {cell["section"] for cell in page.cells}
    assert sections == {1, 2, 3, 4}
    arrays = {(cell["section"], cell["data-array"]) for cell in page.cells}
    assert {(1, "a0"), (1, "w1"), (1, "b1"), (1, "a1"), (1, "delta1"), (1, "delta0"),
            (1, "grad_w1"), (1, "grad_b1"), (2, "a1"), (2, "delta1"), (4, "w4"),
            (4, "grad_w4")} <= arrays
    by_id = {int(cell["data-cell"]): cell for cell in page.cells}
    for cell in page.cells:
        if cell["data-array"] == "delta1" and cell["section"] == 2:
            terms = page.data["cells"][int(cell["data-cell"])][2]
            assert {by_id[t]["section"] for t in terms} == {2}
            assert {(by_id[t]["data-array"], index_of(by_id[t]["data-index"]))
                    for t in terms} == expected_terms(
                derivation.steps[1].delta_in[index_of(cell["data-index"])])


def test_names_and_index_base():
    derivation = sbp.derive(WORKED, (3, 3))
    text = sbp.to_html(derivation, index_base=0, names={"x": "a", "g": "delta", "L": "E"})
    page = parse(text)
    labels = {(cell["data-array"], cell["data-index"]): cell["aria-label"] for cell in page.cells}
    assert labels[("x", "0,0,1,2")] == "a12"
    assert labels[("g", "0,0,0,0")] == "delta00"
    assert "<mi>δ</mi>" in text and "<mi>E</mi>" in text
    with pytest.raises(ValueError, match="names"):
        sbp.to_html(derivation, names={"q": "a"})


def test_cli_writes_the_page(tmp_path, capsys):
    target = tmp_path / "page.html"
    assert main(["html", "conv2d", "--kernel", "2", "--padding", "1", "--input", "3x3",
                 "--input-name", "a", "-o", str(target)]) == 0
    text = target.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert 'data-array="x" data-index="0,0,0,0" aria-label="a11"' in text
    assert "symbackprop html conv2d" in text


def test_cli_refuses_bad_requests_without_writing(tmp_path, capsys):
    target = tmp_path / "page.pdf"
    assert main(["html", "conv2d", "-o", str(target)]) == 2
    assert "FILE.html" in capsys.readouterr().err
    assert not target.exists()
    assert main(["html", "conv2d", "--kernel", "5", "--input", "3x3",
                 "-o", str(tmp_path / "a.html")]) == 2
    assert not (tmp_path / "a.html").exists()
    assert main(["html", "conv2d", "--grad-name", "two words",
                 "-o", str(tmp_path / "b.html")]) == 2
    assert not list(tmp_path.iterdir())


def test_too_large_an_instance_is_refused_quickly(tmp_path, capsys):
    import time

    target = tmp_path / "big.html"
    start = time.perf_counter()
    # 2 * 4 * 16 * 16 * 3 * 3 = 18,432 products: derived, drawn; twice the input is not
    assert main(["html", "conv2d", "--in-channels", "2", "--out-channels", "4", "--kernel", "3",
                 "--input", "64x64", "-o", str(target)]) == 2
    error = capsys.readouterr().err
    assert "input_size/batch" in error and "20,000" in error
    assert not target.exists()
    assert time.perf_counter() - start < 2  # refused before the derivation


def test_cli_prints_to_stdout(capsys):
    assert main(["html", "relu", "--input", "1x2x2"]) == 0
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")


def test_max_pooling_padding_is_minus_infinity():
    text = sbp.to_html(sbp.derive(sbp.MaxPool2d(2, padding=1), (1, 3, 3)))
    pads = re.findall(r'<span class="cell pad"[^>]*>(.*?)</span>', text)
    assert len(pads) == 5 * 5 - 3 * 3
    assert all("∞" in pad for pad in pads)  # padding never wins a window
    zero_padded = sbp.to_html(sbp.derive(sbp.AvgPool2d(2, padding=1), (1, 3, 3)))
    assert all("<mn>0</mn>" in pad
               for pad in re.findall(r'<span class="cell pad"[^>]*>(.*?)</span>', zero_padded))


@pytest.mark.parametrize("layer, size", [
    (sbp.Conv2d(kernel_size=3, stride=2, padding=1), (5, 5)),
    (sbp.Conv2d(kernel_size=3, stride=2), (6, 6)),  # the last row and column never read
    (sbp.Conv2d(kernel_size=2, dilation=2, padding=(1, 0)), (5, 4)),
    (sbp.Conv2d(kernel_size=2, padding=2), (3, 3)),  # P = -1: the gradient map is cropped
], ids=["stride2", "unread", "dilation", "cropped"])
def test_each_slide_frame_is_the_gradient_it_names(layer, size):
    """The marked window of the padded, dilated g times the rotated kernel is dL/dx.

    P is computed here from docs/notation.md's formula P = d(K-1) - p (+ the unread rows r) and
    the zeros inserted by hand, not with symbackprop.core.rules.
    """
    derivation = sbp.derive(layer, size)
    page = parse(sbp.to_html(derivation))
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    top, bottom, left, right = layer.padding
    _, _, height, width = derivation.input_shape
    _, _, out_h, out_w = derivation.output_shape
    r_h = height + top + bottom - ((out_h - 1) * sh + dh * (kh - 1) + 1)
    r_w = width + left + right - ((out_w - 1) * sw + dw * (kw - 1) + 1)
    p_top, p_left = dh * (kh - 1) - top, dw * (kw - 1) - left
    p_bottom, p_right = dh * (kh - 1) - bottom + r_h, dw * (kw - 1) - right + r_w
    rows = (out_h - 1) * sh + 1 + p_top + p_bottom
    cols = (out_w - 1) * sw + 1 + p_left + p_right

    def padded(r, c):  # the padded, dilated g at (r, c)
        i, j = r - p_top, c - p_left
        if i % sh or j % sw or not (0 <= i // sh < out_h and 0 <= j // sw < out_w):
            return 0
        return derivation.g[0, 0, i // sh, j // sw]

    grid = page.step_cells["s1-pad"]
    assert (max(r for r, _, _ in grid) + 1, max(c for _, c, _ in grid) + 1) == (rows, cols)
    by_id = {int(cell["data-cell"]): cell for cell in page.cells}
    slides = [frame for frame in page.data["steps"]["1"] if "s1-rot" in frame["grids"]
              and frame["cell"] is not None]
    assert len(slides) == height * width
    for frame in slides:
        cell = by_id[frame["cell"]]
        assert cell["data-array"] == "grad_x"
        a, b = index_of(cell["data-index"])[2:]
        window = frame["marks"]["s1-pad"]
        offsets = [(m, k) for m in range(kh) for k in range(kw)]
        total = sum(padded(r, c) * derivation.w[0, 0, kh - 1 - m, kw - 1 - k]
                    for (r, c), (m, k) in zip(window, offsets))
        assert sympy.expand(total - derivation.grad_x[0, 0, a, b]) == 0, (a, b)
    # dL/dw: the padded input under the stride-dilated g, one kernel element per frame
    def padded_x(r, c):
        i, j = r - top, c - left
        return derivation.x[0, 0, i, j] if 0 <= i < height and 0 <= j < width else 0

    dilated = [(r, c) for r in range((out_h - 1) * sh + 1) for c in range((out_w - 1) * sw + 1)]
    kernel_frames = [frame for frame in page.data["steps"]["1"] if "s1-xp" in frame["marks"]]
    assert len(kernel_frames) == kh * kw
    for frame in kernel_frames:
        m, k = index_of(by_id[frame["cell"]]["data-index"])[2:]
        total = sum(padded_x(r, c) * (derivation.g[0, 0, i // sh, j // sw]
                                      if i % sh == 0 and j % sw == 0 else 0)
                    for (r, c), (i, j) in zip(frame["marks"]["s1-xp"], dilated))
        assert sympy.expand(total - derivation.grad_w[0, 0, m, k]) == 0, (m, k)
