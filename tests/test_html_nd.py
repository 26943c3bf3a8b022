"""The step-through of the 1-D and 3-D kinds' pages (convolution and pooling).

Every frame that shows a page cell marks, in its grids, exactly the terms of that
cell's derived expression: the grids' contents are rebuilt here from the layer's
arguments (zero insertion, the padding P = d(K-1) - p (+ r), the flip) without the
package's rules, and the marked positions holding a value are compared with the free
symbols of ``sbp.derive``'s expressions.
"""

from __future__ import annotations

import numpy as np
import pytest

import symbackprop as sbp
from tests.test_html import expected_terms, index_of, parse


def spatial(row: int, col: int, shape: tuple) -> tuple:
    """The spatial position of a step grid's ``(row, col)``: N-D maps are drawn with
    every axis but the last stacked into rows."""
    lead = np.unravel_index(row, shape[:-1]) if len(shape) > 1 else ()
    return (*map(int, lead), col)


def name_of(symbol) -> tuple | None:
    found = expected_terms(symbol)
    return next(iter(found)) if found else None


def derived(derivation, array: str, index: tuple):
    return {"z": derivation.z, "grad_x": derivation.grad_x,
            **{f"grad_{name}": derivation.grads[name] for name in derivation.params}
            }[array][index]


def marked_terms(frame, contents: dict) -> set:
    """``{(array, index)}`` of the symbols in the frame's marked step-grid cells."""
    terms = set()
    for grid, marks in frame["marks"].items():
        for r, c in marks:
            value = contents[grid](r, c)
            if value is not None and name_of(value) is not None:
                terms.add(name_of(value))
    return terms


def conv_contents(derivation) -> dict:
    """What each step grid of a convolution's page holds at ``(row, col)``."""
    layer = derivation.layer
    sizes, out = derivation.input_shape[2:], derivation.output_shape[2:]
    kernel, stride, dilation = layer.kernel_size, layer.stride, layer.dilation
    pads = list(zip(layer.padding[::2], layer.padding[1::2]))
    begins = [d * (k - 1) - p for k, d, (p, _) in zip(kernel, dilation, pads)]
    ends = [d * (k - 1) - e + (size + p + e - ((o - 1) * s + d * (k - 1) + 1))
            for k, d, (p, e), size, o, s in zip(kernel, dilation, pads, sizes, out, stride)]
    dilated = tuple((o - 1) * s + 1 for o, s in zip(out, stride))
    padded = tuple(n + b + e for n, b, e in zip(dilated, begins, ends))
    x_padded = tuple(n + p + e for n, (p, e) in zip(sizes, pads))
    g, w, x = derivation.g, derivation.w, derivation.x

    def g_at(position):
        if any(a % s or not 0 <= a // s < o for a, s, o in zip(position, stride, out)):
            return None
        return g[(0, 0, *(a // s for a, s in zip(position, stride)))]

    def x_at(r, c):
        position = [a - p for a, (p, _) in zip(spatial(r, c, x_padded), pads)]
        inside = all(0 <= a < n for a, n in zip(position, sizes))
        return x[(0, 0, *position)] if inside else None

    return {
        "s1-xp": x_at,
        "s1-b": lambda r, c: derivation.params["b"][0],
        "s1-w": lambda r, c: w[(0, 0, *spatial(r, c, kernel))],
        "s1-g": lambda r, c: g[(0, 0, *spatial(r, c, out))],
        "s1-dil": lambda r, c: g_at(spatial(r, c, dilated)),
        "s1-pad": lambda r, c: g_at([a - b for a, b in zip(spatial(r, c, padded), begins)]),
        "s1-rot": lambda r, c: w[(0, 0, *(k - 1 - a for k, a in
                                          zip(kernel, spatial(r, c, kernel))))],
    }


CONVOLUTIONS = [
    (sbp.Conv1d(kernel_size=3, stride=2, padding=1), (5,)),
    (sbp.Conv1d(kernel_size=2, dilation=2, padding=(2, 0), bias=False), (4,)),
    (sbp.Conv1d(kernel_size=2, padding=2), (3,)),  # P = -1: cropped
    (sbp.Conv3d(kernel_size=2, stride=(1, 2, 1), padding=(1, 0, 0, 1, 0, 0)), (2, 3, 2)),
]


@pytest.mark.parametrize("layer, size", CONVOLUTIONS,
                         ids=["stride2", "dilation", "cropped", "3d"])
def test_convolution_frames_mark_exactly_the_terms(layer, size):
    derivation = sbp.derive(layer, size)
    page = parse(sbp.to_html(derivation))
    contents = conv_contents(derivation)
    by_id = {int(cell["data-cell"]): cell for cell in page.cells}
    frames = page.data["steps"]["1"]
    shown = [frame for frame in frames if frame["cell"] is not None]
    arrays = [by_id[frame["cell"]]["data-array"] for frame in shown]
    counts = {array: arrays.count(array) for array in set(arrays)}
    assert counts == {"z": int(np.prod(derivation.output_shape)),
                      "grad_x": int(np.prod(derivation.input_shape)),
                      "grad_w": int(np.prod(derivation.w.shape)),
                      **({"grad_b": 1} if "b" in derivation.params else {})}
    titles = " ".join(frame["title"] for frame in frames)
    for word in ("Forward", "stride", "Pad", "Flip", "Slide", "Kernel gradient"):
        assert word in titles
    for frame in shown:
        cell = by_id[frame["cell"]]
        array, index = cell["data-array"], index_of(cell["data-index"])
        expected = expected_terms(derived(derivation, array, index))
        assert marked_terms(frame, contents) == expected, (array, index)
    # every marked position lies inside its grid
    for frame in frames:
        for grid, marks in frame["marks"].items():
            cells = {(r, c) for r, c, _ in page.step_cells[grid]}
            assert set(map(tuple, marks)) <= cells, (frame["title"], grid)


def pool_contents(derivation) -> dict:
    """What each step grid of a pooling page holds at ``(row, col)``."""
    layer = derivation.layer
    sizes, out = derivation.input_shape[2:], derivation.output_shape[2:]
    pads = list(zip(layer.padding[::2], layer.padding[1::2]))
    padded = tuple(n + p + e for n, (p, e) in zip(sizes, pads))

    def x_at(r, c):
        position = [a - p for a, (p, _) in zip(spatial(r, c, padded), pads)]
        inside = all(0 <= a < n for a, n in zip(position, sizes))
        return derivation.x[(0, 0, *position)] if inside else None

    return {"s1-x": x_at, "s1-g": lambda r, c: derivation.g[(0, 0, *spatial(r, c, out))]}


POOLS = [
    (sbp.MaxPool1d(3, stride=2, padding=1), (1, 6)),
    (sbp.MaxPool1d(2, stride=2, dilation=2, ceil_mode=True), (1, 6)),
    (sbp.AvgPool1d(3, stride=2, padding=1, count_include_pad=False), (1, 5)),
    (sbp.AvgPool1d(2, ceil_mode=True), (1, 5)),
    (sbp.MaxPool3d(2, stride=1, padding=(1, 0, 0)), (1, 2, 2, 3)),
    (sbp.AvgPool3d(2, stride=(1, 1, 2)), (1, 3, 2, 4)),
]


@pytest.mark.parametrize("layer, size", POOLS,
                         ids=["max1d", "max1d-dilated-ceil", "avg1d", "avg1d-ceil", "max3d",
                              "avg3d"])
def test_pooling_frames_mark_exactly_the_terms(layer, size):
    derivation = sbp.derive(layer, size)
    page = parse(sbp.to_html(derivation))
    contents = pool_contents(derivation)
    by_id = {int(cell["data-cell"]): cell for cell in page.cells}
    frames = page.data["steps"]["1"]
    shown = [frame for frame in frames if frame["cell"] is not None]
    arrays = [by_id[frame["cell"]]["data-array"] for frame in shown]
    assert arrays == ["z"] * int(np.prod(derivation.output_shape)) + \
        ["grad_x"] * int(np.prod(derivation.input_shape))
    windows = [frame for frame in frames if frame["title"].startswith("Window ")]
    assert len(windows) == int(np.prod(derivation.output_shape))
    for frame in shown:
        cell = by_id[frame["cell"]]
        array, index = cell["data-array"], index_of(cell["data-index"])
        expected = expected_terms(derived(derivation, array, index))
        if array == "grad_x" and "Avg" in type(layer).__name__:
            # the equal share: the marked x element is the one that receives, not a term
            assert [contents["s1-x"](r, c) for r, c in frame["marks"]["s1-x"]] == \
                [derivation.x[index]]
            frame = dict(frame, marks={"s1-g": frame["marks"]["s1-g"]})
        assert marked_terms(frame, contents) == expected, (array, index)
    # a window frame routes one g to exactly the elements z reads
    z_frames = {index_of(by_id[frame["cell"]]["data-index"]): frame for frame in shown
                if by_id[frame["cell"]]["data-array"] == "z"}
    for frame, index in zip(windows, np.ndindex(*derivation.output_shape)):
        assert frame["marks"]["s1-x"] == z_frames[index]["marks"]["s1-x"]
        assert [contents["s1-g"](r, c) for r, c in frame["marks"]["s1-g"]] == \
            [derivation.g[index]]


def test_conv1d_steps_in_chromium(tmp_path):
    """Click through a conv1d page's steps in Debian's Chromium: every frame marks its
    grids' positions, and a frame that shows a cell selects it and lights exactly the
    terms of its derived expression."""
    import os
    from pathlib import Path

    if not Path("/usr/bin/chromium").exists():
        pytest.skip("needs Debian's chromium (bash dev.sh test installs it)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    from tests.test_html_browser import CHROMIUM, CHROMIUM_ARGS, Page

    derivation = sbp.derive(sbp.Conv1d(kernel_size=3, stride=2, padding=1), (5,))
    frames = parse(sbp.to_html(derivation)).data["steps"]["1"]
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = Page(browser, tmp_path, "conv1d-steps", sbp.to_html(derivation))
            next_step = page.page.locator(".stepper .step-next")
            seen = page.page.evaluate(CLICK_THROUGH, len(frames))
            assert len(seen) == len(frames)
            for number, (frame, (title, marks, selected, lit)) in enumerate(
                    zip(frames, seen), 1):
                assert title == frame["title"]
                assert {grid: sorted(map(tuple, positions)) for grid, positions
                        in marks.items() if positions} == \
                    {grid: sorted(map(tuple, positions)) for grid, positions
                     in frame["marks"].items() if positions}, title
                if frame["cell"] is not None and number > 1:
                    array, index = selected[0]
                    index = index_of(index)
                    assert [int(selected[1])] == [frame["cell"]]
                    assert {(name, index_of(at)) for name, at in lit} == \
                        expected_terms(derived(derivation, array, index)), title
            assert next_step.is_disabled()
            # back to the slide that gives dL/dx[0,0,2] and look at it
            slide = [number for number, frame in enumerate(frames)
                     if "s1-rot" in frame["marks"] and frame["cell"] is not None][2]
            back = len(frames) - 1 - slide
            for _ in range(back):
                page.page.locator(".stepper .step-prev").click()
            page.page.locator(".stepper").scroll_into_view_if_needed()
            shot = Path(os.environ.get("SBP_SHOT_DIR", tmp_path)) / "conv1d-steps.png"
            page.page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 20_000
            page.close()
        finally:
            browser.close()


#: Clicks Next through every frame and records each one's title, marked grid positions,
#: the selected cell and the lit terms (the first frame as shown on load).
CLICK_THROUGH = """count => {
    const stepper = document.querySelector(".stepper");
    const seen = [];
    for (let k = 0; k < count; k++) {
        if (k) { stepper.querySelector(".step-next").click(); }
        const marks = {};
        stepper.querySelectorAll(".step-grid").forEach(grid => {
            marks[grid.id] = grid.hidden ? [] : [...grid.querySelectorAll(".mark")].map(
                el => [+el.dataset.r, +el.dataset.c]);
        });
        const selected = document.querySelector("main .selected");
        seen.push([stepper.querySelector(".step-title").textContent, marks,
                   selected ? [[selected.dataset.array, selected.dataset.index],
                               selected.dataset.cell] : null,
                   [...document.querySelectorAll("main .term")].map(
                       el => [el.dataset.array, el.dataset.index])]);
    }
    return seen;
}"""
