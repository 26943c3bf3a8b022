"""The interactive page in a real browser: Debian's Chromium, driven by playwright.

The page is loaded from a file:// URL with every network request refused; cells
are clicked (and activated from the keyboard) and the highlighted cells are
compared with the free symbols of the derivation's own expressions, computed
here from ``sbp.derive``, not read from the page's data.  ``bash dev.sh test``
installs /usr/bin/chromium; the tests skip where it (or playwright) is missing.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
import sympy

import symbackprop as sbp

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Debian's chromium (bash dev.sh test installs it)")


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def pages_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("pages")


class Page:
    """One loaded page, its network requests and script errors recorded."""

    def __init__(self, browser, folder: Path, name: str, text: str, viewport=(1200, 900)):
        path = folder / f"{name}.html"
        path.write_text(text, encoding="utf-8")
        self.requests, self.errors = [], []
        self.context = browser.new_context(viewport={"width": viewport[0],
                                                     "height": viewport[1]})
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

        def refuse(route):
            if not route.request.url.startswith("file://"):
                self.requests.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        self.page.route("**/*", refuse)
        self.page.goto(path.as_uri())

    def cell(self, array: str, index, section: int = 1):
        index = ",".join(map(str, index))
        return self.page.locator(
            f'section[data-layer="{section}"] [data-array="{array}"][data-index="{index}"]')

    def marked(self, name: str) -> set:
        """``{(section, array, index)}`` of the cells with class ``name``."""
        found = self.page.eval_on_selector_all(
            f".{name}", """els => els.map(el => [el.closest('section.layer') ?
                el.closest('section.layer').dataset.layer : null, el.dataset.array,
                el.dataset.index === undefined ? null : el.dataset.index,
                el.dataset.pad === undefined ? null : el.dataset.pad])""")
        return {(int(section), array, tuple(map(int, (index or pad).split(","))),
                 pad is not None) for section, array, index, pad in found}

    def close(self):
        assert self.errors == []
        assert self.requests == []  # nothing but the file itself: no CDN, no fonts
        self.context.close()


def terms(expression) -> set:
    """``{(array, index)}`` of the free symbols of a derived expression."""
    found = set()
    for symbol in sympy.sympify(expression).free_symbols:
        match = re.fullmatch(r"(\w+)\[([\d,]+)\]", symbol.name)
        if match:
            found.add((match.group(1), tuple(int(i) for i in match.group(2).split(","))))
    return found


def derived(derivation) -> dict:
    arrays = {"z": derivation.z, "grad_x": derivation.grad_x}
    for name in derivation.params:
        arrays[f"grad_{name}"] = derivation.grads[name]
    return arrays


def assert_click_lights_terms(page, array, index, expression, section=1):
    page.cell(array, index, section).click()
    assert page.marked("selected") == {(section, array, tuple(index), False)}
    assert page.marked("term") == {(section, name, position, False)
                                   for name, position in terms(expression)}


#: Clicks every listed cell in turn (a DOM click event each, as a mouse click sends)
#: and records what was selected and lit after each: one round trip for many cells.
CLICK_ALL = """cells => cells.map(([section, array, index]) => {
    const el = document.querySelector(`section[data-layer="${section}"] ` +
                                      `[data-array="${array}"][data-index="${index}"]`);
    el.click();
    const marked = name => [...document.querySelectorAll("." + name)].map(
        e => [e.closest("section.layer").dataset.layer, e.dataset.array, e.dataset.index]);
    return [marked("selected"), marked("term")];
})"""


def check_every_derived_cell(page, derivation, section=1, limit=None):
    """Click every derived cell (a sample of ``limit`` per array) and compare."""
    wanted, expected = [], []
    for array, expressions in derived(derivation).items():
        indices = list(np.ndindex(*expressions.shape))
        if limit is not None and len(indices) > limit:
            indices = indices[::max(1, len(indices) // limit)]
        for index in indices:
            wanted.append([section, array, ",".join(map(str, index))])
            expected.append(({(str(section), array, ",".join(map(str, index)))},
                             {(str(section), name, ",".join(map(str, position)))
                              for name, position in terms(expressions[index])}))
    results = page.page.evaluate(CLICK_ALL, wanted)
    for cell, (selected, lit), (want_selected, want_lit) in zip(wanted, results, expected):
        assert {tuple(item) for item in selected} == want_selected, cell
        assert {tuple(item) for item in lit} == want_lit, cell


def test_worked_example(browser, pages_dir):
    derivation = sbp.derive(sbp.Conv2d(kernel_size=2, padding=1), (3, 3))
    page = Page(browser, pages_dir, "worked", sbp.to_html(derivation))
    check_every_derived_cell(page, derivation)
    # dL/dx22 = g22 w22 + g23 w21 + g32 w12 + g33 w11
    assert_click_lights_terms(page, "grad_x", (0, 0, 1, 1), derivation.grad_x[0, 0, 1, 1])
    assert {(a, i) for _, a, i, _ in page.marked("term")} == {
        ("g", (0, 0, 1, 1)), ("g", (0, 0, 1, 2)), ("g", (0, 0, 2, 1)), ("g", (0, 0, 2, 2)),
        ("w", (0, 0, 0, 0)), ("w", (0, 0, 0, 1)), ("w", (0, 0, 1, 0)), ("w", (0, 0, 1, 1))}
    formula = page.page.locator("#formula-1 math")
    assert formula.count() == 1
    assert formula.locator("mfrac").count() == 1  # dL/dx22 typeset as a fraction
    assert formula.bounding_box()["height"] > 25  # MathML laid out, not raw text
    # z11 reads three padding zeros (and x11): they and their weights are marked
    page.cell("z", (0, 0, 0, 0)).click()
    assert {(i, pad) for _, _, i, pad in page.marked("padread")} == {
        ((0, 0, 0, 0), True), ((0, 0, 0, 1), True), ((0, 0, 1, 0), True),
        ((0, 0, 0, 0), False), ((0, 0, 0, 1), False), ((0, 0, 1, 0), False)}
    assert {a for _, a, _, _ in page.marked("padread")} == {"x", "w"}
    # an input shows where it is used
    page.cell("x", (0, 0, 0, 0)).click()
    assert page.marked("term") == set()
    uses = {(a, i) for _, a, i, _ in page.marked("use")}
    expected = {(name, index) for name, array in derived(derivation).items()
                for index in np.ndindex(*array.shape)
                if ("x", (0, 0, 0, 0)) in terms(array[index])}
    assert uses == expected
    page.close()


def test_stride_two_multichannel(browser, pages_dir):
    layer = sbp.Conv2d(in_channels=2, out_channels=2, kernel_size=3, stride=2, padding=1)
    derivation = sbp.derive(layer, (5, 5), batch=2)
    page = Page(browser, pages_dir, "stride2", sbp.to_html(derivation))
    check_every_derived_cell(page, derivation)
    # the step-through: slide to dL/dx[0,0,2,1] and the page selects that cell
    frames = page.page.locator(".stepper .step-next")
    target = None
    for _ in range(60):
        frames.click()
        title = page.page.inner_text(".step-title")
        if title.startswith("Slide") and "x[1,1,3,2]" in title:
            target = title
            break
    assert target is not None
    assert page.marked("selected") == {(1, "grad_x", (0, 0, 2, 1), False)}
    assert page.marked("term") == {(1, name, index, False)
                                   for name, index in terms(derivation.grad_x[0, 0, 2, 1])}
    assert page.page.locator("#s1-pad .mark").count() == 9
    assert page.page.locator("#s1-pad").is_visible()
    assert not page.page.locator("#s1-dil").is_visible()
    page.close()


@pytest.mark.parametrize("layer, size, batch", [
    (sbp.MaxPool2d(2), (1, 4, 4), 1),
    (sbp.AvgPool2d(2, stride=1, padding=1), (1, 3, 3), 1),
    (sbp.LeakyReLU(0.1), (2, 2, 2), 1),
    (sbp.Linear(3, 2), None, 2),
    (sbp.Flatten(), (2, 2, 2), 1),
], ids=["maxpool", "avgpool-padded", "leakyrelu", "linear", "flatten"])
def test_other_kinds(browser, pages_dir, layer, size, batch):
    derivation = sbp.derive(layer, size, batch)
    page = Page(browser, pages_dir, layer.kind, sbp.to_html(derivation, index_base=0))
    check_every_derived_cell(page, derivation)
    page.page.locator(".stepper .step-next").click()
    assert "Step 2 of" in page.page.inner_text(".step-count")
    page.close()


def test_chain(browser, pages_dir):
    chain = sbp.Sequential(sbp.Conv2d(1, 2, 2), sbp.ReLU(), sbp.MaxPool2d(2), sbp.Flatten(),
                           sbp.Linear(2, 2))
    derivation = sbp.derive(chain, (1, 3, 3))
    page = Page(browser, pages_dir, "chain",
                sbp.to_html(derivation, names={"L": "E"}))
    for step in derivation.steps:
        number = step.number
        # a real mouse click on one cell of each section, DOM clicks on all the others
        index = (0,) * len(step.output_shape)
        assert_click_lights_terms(page, step.names["z"], index, step.z[index], number)
        arrays = {step.names["z"]: step.z, step.names["grad_x"]: step.delta_in}
        arrays.update({f"grad_{name}": gradient for name, gradient in step.param_grads.items()})
        wanted, expected = [], []
        for array, expressions in arrays.items():
            for index in np.ndindex(*expressions.shape):
                wanted.append([number, array, ",".join(map(str, index))])
                expected.append({(str(number), name, ",".join(map(str, position)))
                                 for name, position in terms(expressions[index])})
        for cell, (_, lit), want in zip(wanted, page.page.evaluate(CLICK_ALL, wanted),
                                        expected):
            assert {tuple(item) for item in lit} == want, cell
    assert page.page.locator(".walk-list li").count() == len(derivation.steps)
    page.close()


def test_keyboard(browser, pages_dir):
    derivation = sbp.derive(sbp.Conv2d(kernel_size=2, padding=1), (3, 3))
    page = Page(browser, pages_dir, "keyboard", sbp.to_html(derivation))
    for _ in range(4):  # the cells come first (a wide formula may be a scroll stop)
        page.page.keyboard.press("Tab")
        active = page.page.evaluate("document.activeElement.dataset.array")
        if active is not None:
            break
    assert active == "x"
    assert page.page.evaluate("document.activeElement.dataset.index") == "0,0,0,0"
    outline = page.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")  # a visible focus ring
    page.page.keyboard.press("Enter")
    assert page.marked("selected") == {(1, "x", (0, 0, 0, 0), False)}
    cell = page.cell("grad_x", (0, 0, 2, 2))
    cell.focus()
    page.page.keyboard.press(" ")
    assert page.marked("selected") == {(1, "grad_x", (0, 0, 2, 2), False)}
    assert page.marked("term") == {(1, name, index, False)
                                   for name, index in terms(derivation.grad_x[0, 0, 2, 2])}
    assert cell.get_attribute("aria-pressed") == "true"
    assert cell.get_attribute("aria-label") == "dL/dx33"
    # arrow keys walk a map, over the padding
    page.cell("x", (0, 0, 0, 0)).focus()
    for key, index in (("ArrowRight", "0,0,0,1"), ("ArrowDown", "0,0,1,1"),
                       ("ArrowLeft", "0,0,1,0"), ("ArrowLeft", "0,0,1,0"),
                       ("ArrowUp", "0,0,0,0")):
        page.page.keyboard.press(key)
        assert page.page.evaluate("document.activeElement.dataset.index") == index, key
    page.page.keyboard.press("Enter")
    assert page.marked("selected") == {(1, "x", (0, 0, 0, 0), False)}
    cell.focus()
    page.page.keyboard.press("Enter")
    # hovering previews another formula without changing the selection
    page.cell("z", (0, 0, 1, 1)).hover()
    assert page.marked("peek") == {(1, "z", (0, 0, 1, 1), False)}
    assert page.marked("peek-term") == {(1, name, index, False)
                                        for name, index in terms(derivation.z[0, 0, 1, 1])}
    assert "z" in page.page.text_content("#formula-1 .formula-math")
    assert page.marked("selected") == {(1, "grad_x", (0, 0, 2, 2), False)}
    page.page.mouse.move(0, 0)
    assert page.marked("peek") == set()
    assert page.page.locator("#formula-1 mfrac").count() == 1  # dL/dx33 again
    page.close()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_phone_screen_and_screenshot(browser, pages_dir):
    derivation = sbp.derive(sbp.Conv2d(kernel_size=3, padding=1), (8, 8))
    text = sbp.to_html(derivation)
    assert len(text.encode()) < 1_000_000
    page = Page(browser, pages_dir, "phone", text, viewport=(390, 844))
    # nothing wider than the screen: grids scroll inside their panels
    width = page.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    page.cell("grad_x", (0, 0, 3, 3)).click()
    assert page.marked("term") == {(1, name, index, False)
                                   for name, index in terms(derivation.grad_x[0, 0, 3, 3])}
    shot = pages_dir / "phone.png"
    page.page.screenshot(path=str(shot))
    assert png_size(shot) == (390, 844)
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
    page.close()


def test_pooling_step_through_routes_window_by_window(browser, pages_dir):
    layer = sbp.MaxPool2d(2)
    derivation = sbp.derive(layer, (1, 4, 6))
    page = Page(browser, pages_dir, "pool-steps", sbp.to_html(derivation))
    next_step = page.page.locator(".stepper .step-next")
    for number, (i, j) in enumerate(np.ndindex(2, 3), 1):
        next_step.click()
        assert page.page.inner_text(".step-title").startswith(f"Window {number} of 6")
        marked = page.page.eval_on_selector_all(
            "#s1-x .mark", "els => els.map(e => [+e.dataset.r, +e.dataset.c])")
        assert sorted(map(tuple, marked)) == [(2 * i + m, 2 * j + k)
                                              for m in range(2) for k in range(2)]
        assert page.page.eval_on_selector_all(
            "#s1-g .mark", "els => els.map(e => [+e.dataset.r, +e.dataset.c])") == [[i, j]]
    next_step.click()
    assert "tie goes to the first maximum" in page.page.inner_text(".step-title")
    assert page.page.locator(".stepper .step-next").is_disabled()
    page.close()
