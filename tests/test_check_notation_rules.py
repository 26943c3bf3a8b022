r"""``check`` on matrix-level rules (issue 14, part 2): convolution, pooling, linear.

What is right follows from the layer's forward pass, a cross-correlation
``z = corr(x, w) + b``: ``dL/dx = corr_full(g, rot180(w)) = conv_full(g, w)`` (after the
stride zeros, with the padding cropped), ``dL/dw = corr(x, g)``.  A mathematical
convolution (``*``, ``conv2``) flips its kernel, so ``conv2(delta, rot180(W), 'full')``
is the classic conv-vs-corr slip.  The tool's own printed rules must be checkable.
"""

import re

import pytest

from symbackprop import AvgPool2d, Conv2d, Flatten, FormulaError, Linear, check_formula
from symbackprop.cli import main

K2 = Conv2d(kernel_size=2)


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# -- the tool's own printout ----------------------------------------------------------------
@pytest.mark.parametrize("options", [
    ("--input", "3", "--kernel", "2"),
    ("--input", "4", "--kernel", "2", "--stride", "2", "--padding", "1"),
    ("--input", "5", "--kernel", "3", "--stride", "2", "--padding", "1", "--dilation", "2"),
], ids=["plain", "stride and padding", "dilation"])
def test_every_rule_latex_prints_is_checkable(capsys, options):
    main(["latex", "conv2d", *options])
    tex, _ = capsys.readouterr()
    rules = re.findall(r"\\frac\{\\partial L\}\{\\partial [xwb]\} = \\operatorname\{corr\}.*?"
                       r"(?=\\\\\n)", tex)
    assert len(rules) == 2, rules  # dL/dx and dL/dw
    rules.append(r"\frac{\partial L}{\partial b} = \sum_{i,j} g_{ij}")
    for rule in rules:
        status, out, err = _run(capsys, "check", "conv2d", *options, rule)
        assert status == 0 and out.startswith("correct: "), (rule, out, err)
        assert "(symbolically)" in out or "agrees" in out


@pytest.mark.parametrize("kind, options", [
    ("relu", ("--input", "2")), ("sigmoid", ("--input", "2")), ("tanh", ("--input", "2")),
    ("linear", ("--in-features", "3", "--out-features", "2")),
    ("avgpool2d", ("--input", "4", "--kernel", "2")),
])
def test_the_rule_lines_latex_prints_for_other_kinds_are_checkable(capsys, kind, options):
    main(["latex", kind, *options])
    tex, _ = capsys.readouterr()
    lines = [line for line in tex.splitlines()
             if line.startswith(r"\frac{\partial L}{\partial x} =")]
    assert lines, tex[:400]
    for line in lines:
        status, out, err = _run(capsys, "check", kind, *options, line)
        assert status == 0 and out.startswith("correct: "), (line, out, err)


def test_a_printed_element_line_with_its_tag_is_checkable(capsys):
    line = (r"\frac{\partial L}{\partial x^{(1)}_{11}} &= g_{11} w^{(1)}_{11} "
            r"\tag*{\small never read} \\[6pt]")
    status, out, _ = _run(capsys, "check", "conv2d", "--input", "3", "--kernel", "2",
                          "--in-channels", "2", line)
    assert status == 0 and out.startswith("correct: ")


@pytest.mark.parametrize("right", [
    r"\delta^{l-1} = \mathrm{conv2}(\delta^{l}, W^{l}, \text{'full'})",
    r"\delta^{l-1} = \operatorname{corr}(\operatorname{pad}(\delta^{l}, 1), "
    r"\operatorname{rot}_{180}(W^{l}))",
    r"\delta^{l-1} = corr(\delta^{l}, rot180(W^{l}), 'full')",
    r"\delta^{l-1} = \delta^{l} \star \mathrm{rot180}(W^{l})",
    r"\delta^{l-1} = \delta^{l} * W^{l}",
    r"\frac{\partial E}{\partial a^{l-1}} = \delta^{l} \ast W^{l} \odot f'(z^{l-1})",
    r"\frac{\partial E}{\partial W} = a \star \delta",
    r"\frac{\partial E}{\partial W} = \mathrm{conv2}(a, \mathrm{rot180}(\delta), 'valid')",
    r"dL/db = \mathrm{sum}(\delta)",
])
def test_convolution_rules_that_are_right(right):
    result = check_formula(K2, (3, 3), right)
    assert result.ok, result.report()
    assert result.checked in (9, 4, 1)


def test_f_prime_of_a_layer_without_activation_is_noted():
    result = check_formula(K2, (3, 3), r"\delta^{l-1} = \delta^{l} * W^{l} \odot f'(z^{l-1})")
    assert result.ok
    assert any("f'(...) was taken as 1" in note for note in result.notes)


@pytest.mark.parametrize("layer, size, wrong, mistake", [
    (K2, (3, 3), r"\delta^{l-1} = \mathrm{conv2}(\delta^{l}, \mathrm{rot180}(W^{l}), "
                 r"\text{'full'})", "kernel not rotated (conv vs corr confusion)"),
    (K2, (3, 3), r"\delta^{l-1} = \delta^{l} * \mathrm{rot180}(W^{l}) \odot f'(z^{l-1})",
     "kernel not rotated (conv vs corr confusion)"),
    (K2, (3, 3), r"\delta^{l-1} = corr(\delta^{l}, W^{l}, 'full')",
     "kernel not rotated (conv vs corr confusion)"),
    (K2, (3, 3), r"\delta^{l-1} = \mathrm{conv2}(\delta^{l}, W^{l}, \text{'same'})",
     "padding wrong ('same' or 'valid' instead of 'full')"),
    (K2, (3, 3), r"\delta^{l-1} = corr(\delta^{l}, rot180(W^{l}))",
     "padding wrong ('same' or 'valid' instead of 'full')"),
    (Conv2d(kernel_size=3, stride=2), (5, 5), "dL/dx = conv2(delta, W, 'full')",
     "stride zeros not inserted"),
    (K2, (3, 3), "dL/dW = conv2(x, delta, 'valid')",
     "upstream gradient flipped (conv vs corr confusion)"),
    (K2, (3, 3), r"dL/dW = x * \delta", "upstream gradient flipped (conv vs corr confusion)"),
    (Linear(3, 2), None, r"\frac{\partial E}{\partial a} = W \delta", "W instead of W^T"),
    (Linear(2, 2), None, r"\frac{\partial E}{\partial a} = W \delta", "W instead of W^T"),
    (Linear(3, 2), None, r"\frac{\partial E}{\partial W} = a \delta^T",
     "the gradient transposed"),
    (AvgPool2d(2), (4, 4), r"\frac{\partial L}{\partial x} = \delta \otimes "
                           r"\mathbf{1}_{2\times 2}", "off by a factor"),
])
def test_wrong_rules_name_the_mistake(capsys, layer, size, wrong, mistake):
    result = check_formula(layer, size, wrong)
    assert not result.ok
    assert result.mistake.startswith(mistake), result.report()
    assert f"mistake: {mistake}" in result.report()


def test_wrong_rule_lists_the_elements_that_differ(capsys):
    text = r"\delta^{l-1} = \mathrm{conv2}(\delta^{l}, \mathrm{rot180}(W^{l}), \text{'full'})"
    status, out, _ = _run(capsys, "check", "conv2d", "--input", "3", "--kernel", "2", text)
    assert status == 1
    assert out.startswith("wrong: 9 of 9 elements of \\delta^{l-1} differ")
    # printed back in the person's names
    assert ("\\delta^{l-1}_{1,1}\n  expected: \\delta^{l}_{1,1} W^{l}_{1,1}\n"
            "  given:    \\delta^{l}_{1,1} W^{l}_{2,2}") in out
    assert "the kernel as it is" in out  # the mistake explained


@pytest.mark.parametrize("layer, size, right", [
    (Linear(3, 2), None, r"\frac{\partial E}{\partial a} = W^T \delta"),
    (Linear(3, 2), None, r"\frac{\partial E}{\partial W} = \delta a^T"),
    (Linear(3, 2), None, r"\frac{\partial E}{\partial b} = \delta"),
    (AvgPool2d(2), (4, 4), r"\frac{\partial L}{\partial x} = \mathrm{kron}(\delta, "
                           r"\mathbf{1}_{2\times 2}) / 4"),
    (AvgPool2d(2), (4, 4), r"\frac{\partial L}{\partial x} = \frac{1}{4} "
                           r"\mathrm{upsample}(\delta)"),
    (AvgPool2d(2), (4, 4), "dL/dx = kron(delta, ones(2,2))/4"),
    (Flatten(), (2, 2, 2), r"dL/dx = \mathrm{reshape}(\delta)"),
])
def test_linear_pooling_and_flatten_rules(layer, size, right):
    result = check_formula(layer, size, right)
    assert result.ok, result.report()


def test_linear_rule_for_a_batch_of_rows():
    assert check_formula(Linear(3, 2), None, r"dL/dx = \delta W", batch=2).ok
    assert check_formula(Linear(3, 2), None, r"dL/dW = \delta^T x", batch=2).ok


@pytest.mark.parametrize("text, message", [
    ("dL/dx = pad(g, 100000)", "over the limit"),
    ("dL/dx = dilate(g, 0)", "a dilation is 1 or more"),
    ("dL/dx = kron(g, ones(1000,1000))", "over the limit"),
    ("dL/dx = corr_{q}(g, w)", "'q' is not a number nor a parameter of this layer"),
    (r"\delta^{l-1} = \delta^{l} * W^{l-1}", "its parameters belong to the layer of its output"),
    (r"\delta^{l+5} = g", "names layers this instance does not have"),
    (r"\frac{\partial L}{\partial x} = \frac{\partial z}{\partial x} g",
     "a local derivative takes elements"),
])
def test_rules_that_cannot_be_instantiated_are_refused(capsys, text, message):
    status, out, err = _run(capsys, "check", "conv2d", "--input", "3", "--kernel", "2", text)
    assert status == 2 and not out and message in err and "Traceback" not in err


# -- whatever is typed: a verdict or a FormulaError, never another exception ---------------------
_ATOMS = ["g", "x", "w", "W^T", "b", r"\delta^{l}", "a^{l-1}", "net", "o", "g_{ij}", "x_{ij}",
          "w_{11}", "2", r"\mathbf{1}_{2\times 2}"]
_UNARY = ["f'({})", r"\sigma({})", r"\tanh^2({})", r"\exp({})", r"\log({})", r"\max(0, {})",
          "[{} > 0]", "rot180({})", "pad({}, 1)", "dilate({}, 2)", "({})^2", "({})^T",
          r"\sum_{{i,j}} {}", "upsample({})", "reshape({})"]
_BINARY = ["{} + {}", "{} {}", "{} * {}", r"{} \odot {}", r"{} \star {}", r"{} \otimes {}",
           "conv2({}, {}, 'full')", "corr({}, {})", "kron({}, {})", "{} / {}",
           "({} if {} > 0 else 0)"]


def _random_rule(rng, depth):
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(_ATOMS)
    if rng.random() < 0.5:
        return rng.choice(_UNARY).format(_random_rule(rng, depth - 1))
    return rng.choice(_BINARY).format(_random_rule(rng, depth - 1), _random_rule(rng, depth - 1))


@pytest.mark.parametrize("text", [
    r"\delta^{l-1} = 2 \otimes [\mathbf{1}_{2\times 2} > 0] \mathbb{1}(\delta^{l} > 0)",
    r"\frac{\partial E}{\partial x_{ij}} = conv2(upsample(reshape(\delta^{l})), 1, 'full')",
    "dL/dW = conv2((pad(g, 1))^2, 1, 'full')",
    r"dL/dx = reshape(\operatorname{pad}_P((x if \delta^{l} > 0 else 0)))",
    r"\delta^{l-1} = \sum_{i,j} \log(\max(0, \delta^{l}))",
    r"dx = \delta0",
])
def test_formulas_found_by_fuzzing_are_judged_or_refused_cleanly(text):
    for layer, size in ((K2, (3, 3)), (AvgPool2d(2), (4, 4)), (Linear(3, 2), None)):
        try:
            check_formula(layer, size, text).report()
        except FormulaError:
            pass


def test_random_rules_give_a_verdict_or_a_formula_error():
    import random

    rng = random.Random(14)
    layers = [(K2, (3, 3)), (AvgPool2d(2), (4, 4)), (Linear(3, 2), None)]
    for _ in range(40):
        layer, size = rng.choice(layers)
        text = rng.choice(["dL/dx = ", "dL/dW = ", r"\delta^{l-1} = "]) + _random_rule(rng, 2)
        try:
            check_formula(layer, size, text).report()
        except FormulaError:
            pass
