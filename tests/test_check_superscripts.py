r"""Superscripts in checked formulas: layers, transposes, channels, and refusals (issue 18).

A layer superscript places a name in the network: one layer has its input at
``l-1`` and its output, upstream gradient (delta) and parameters at ``l`` (or the
input at ``l`` and the rest at ``l+1``).  The verdicts below follow from that by
hand: ``\delta^{l-1}`` is the error term of the layer's input, never the upstream
gradient, and ``a^{l}`` is the layer's output, never its input.  A superscript the
checker cannot place is an error with its position, never dropped.
"""

import time

import pytest

from symbackprop import (
    AvgPool2d,
    Conv2d,
    FormulaError,
    Linear,
    MaxPool2d,
    Sequential,
    Sigmoid,
    Tanh,
    check_formula,
)
from symbackprop.check.formula import MAX_NESTING, parse_formula
from symbackprop.cli import main

K2 = Conv2d(kernel_size=2)
# The three examples, exactly as written there (with the "..." filled in for
# a 2x2 kernel on a 3x3 input: dL/da_{1,2} = delta_{1,1} w_{1,2} + delta_{1,2} w_{1,1}).
DELTA_BEFORE = (r"\frac{\partial E}{\partial a^{l-1}_{1,2}} = \delta^{l-1}_{1,1} w_{1,2} + "
                r"\delta^{l-1}_{1,2} w_{1,1}")
DELTA_RIGHT = DELTA_BEFORE.replace(r"\delta^{l-1}", r"\delta^{l}")
OUTPUT_FOR_INPUT = (r"\frac{\partial E}{\partial w_{1,1}} = \delta^{l}_{1,1} a^{l}_{1,1} + "
                    r"\delta^{l}_{1,2} a^{l}_{1,2} + \delta^{l}_{2,1} a^{l}_{2,1} + "
                    r"\delta^{l}_{2,2} a^{l}_{2,2}")
INPUT_RIGHT = OUTPUT_FOR_INPUT.replace(" a^{l}", " a^{l-1}")
TRANSPOSE = r"\frac{\partial L}{\partial x_j} = \sum_i W^T_{j,i} \delta_i"


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# -- the examples ------------------------------------------------------------------
def test_previous_layers_delta_is_wrong_and_says_where_it_sits(capsys):
    result = check_formula(K2, (3, 3), DELTA_BEFORE)
    assert not result.ok
    printer = result.printer
    (wrong,) = result.wrong
    assert printer.doprint(wrong.expected) == r"\delta^{l}_{1,1} w_{1,2} + \delta^{l}_{1,2} w_{1,1}"
    assert printer.doprint(wrong.given) == \
        r"\delta^{l-1}_{1,1} w_{1,2} + \delta^{l-1}_{1,2} w_{1,1}"
    assert result.notes[0].startswith(r"\delta^{l-1} is at layer l-1: the error term of this "
                                      r"layer's input a^{l-1}")
    assert r"the upstream gradient that belongs here is \delta^{l}, at layer l" in result.notes[0]
    assert check_formula(K2, (3, 3), DELTA_RIGHT).ok
    status, out, err = _run(capsys, "check", "conv2d", "--kernel", "2", "--input", "3x3",
                            DELTA_BEFORE)
    assert status == 1 and out.startswith("wrong: ") and not err
    assert r"note: \delta^{l-1} is at layer l-1" in out
    status, out, _ = _run(capsys, "check", "conv2d", "--kernel", "2", DELTA_RIGHT)
    assert status == 0 and out.startswith("correct: ")


def test_layer_output_used_for_its_input_is_wrong_and_says_where_it_sits(capsys):
    result = check_formula(K2, (3, 3), OUTPUT_FOR_INPUT)
    assert not result.ok
    (wrong,) = result.wrong
    # what belongs there is printed at the input's layer, though the person wrote only a^{l}
    assert result.printer.doprint(wrong.expected) == (
        r"\delta^{l}_{1,1} a^{l-1}_{1,1} + \delta^{l}_{1,2} a^{l-1}_{1,2} + "
        r"\delta^{l}_{2,1} a^{l-1}_{2,1} + \delta^{l}_{2,2} a^{l-1}_{2,2}")
    assert result.notes == (r"a^{l} is at layer l: the output of this layer, computed from "
                            r"its input a^{l-1} at layer l-1",)
    assert check_formula(K2, (3, 3), INPUT_RIGHT).ok
    status, out, _ = _run(capsys, "check", "conv2d", "--kernel", "2", "--input", "3x3",
                          OUTPUT_FOR_INPUT)
    assert status == 1 and "note: a^{l} is at layer l: the output of this layer," in out
    status, out, _ = _run(capsys, "check", "conv2d", "--kernel", "2", INPUT_RIGHT)
    assert status == 0


def test_transposed_weights_of_a_linear_layer(capsys):
    result = check_formula(Linear(3, 2), None, TRANSPOSE)
    assert result.ok and result.checked == 3
    status, out, _ = _run(capsys, "check", "linear", TRANSPOSE)
    assert status == 0 and out.startswith("correct: all 3 elements")
    # the transpose the wrong way round: expected prints what is meant, W_{2,1}, no W^T
    wrong = check_formula(Linear(3, 2), None, TRANSPOSE.replace("W^T_{j,i}", "W^T_{i,j}"))
    first = wrong.wrong[0]
    assert wrong.printer.doprint(first.expected) == r"\delta_1 W_{1,1} + \delta_2 W_{2,1}"
    assert wrong.printer.doprint(first.given) == r"\delta_1 W_{1,1} + \delta_2 W_{1,2}"
    assert "W^T" not in wrong.report(show=3)


@pytest.mark.parametrize("spelling", [r"W^\top", r"W^{\top}", r"W^{\mathsf{T}}", "W^{T}",
                                      r"W^{l\top}", "W^{[l]T}", r"W^{(l),T}", r"W^{l}_{\!}"])
def test_transpose_spellings(spelling):
    text = rf"\frac{{\partial L}}{{\partial a^{{l-1}}_j}} = \sum_i {spelling}_{{j,i}} \delta_i"
    if spelling.endswith("_{\\!}"):  # no transpose: W_{j,i} is the wrong formula
        text = text.replace("_{\\!}", "")
        assert not check_formula(Linear(3, 2), None, text).ok
        return
    assert check_formula(Linear(3, 2), None, text).ok


def test_two_superscripts_on_one_name_are_refused():
    with pytest.raises(FormulaError, match="two superscripts"):
        parse_formula(r"dL/dx_j = \sum_i W^{(l)}^T_{j,i} \delta_i")


# -- layers: the other convention, and names at layers the instance does not have ------------
@pytest.mark.parametrize("text", [
    r"\frac{\partial E}{\partial a^{l}_{1,2}} = \delta^{l+1}_{1,1} w^{l+1}_{1,2} + "
    r"\delta^{l+1}_{1,2} w^{l+1}_{1,1}",
    r"\frac{\partial E}{\partial a^{[l]}_{1,2}} = \delta^{[l+1]}_{1,1} w_{1,2} + "
    r"\delta^{[l+1]}_{1,2} w_{1,1}",
    r"\frac{\partial E}{\partial a^{(l-1)}_{1,2}} = \delta^{(l)}_{1,1} w^{(l)}_{1,2} + "
    r"\delta^{(l)}_{1,2} w^{(l)}_{1,1}",
    r"\frac{\partial E}{\partial a^{\{(l-1)\}}_{1,2}} = \delta^{{[l]}}_{1,1} w_{1,2} + "
    r"\delta^{{[l]}}_{1,2} w_{1,1}".replace(r"\{", "{").replace(r"\}", "}"),
    r"\frac{\partial E}{\partial w^{L}_{1,1}} = \sum_{i,j} \delta^{L}_{i,j} a^{L-1}_{i,j}",
    r"\frac{\partial E}{\partial w^{l}_{1,1}} = \sum_{i,j} \delta^l_{i,j} a^{l-1}_{i,j}",
])
def test_either_layer_convention_used_consistently_is_correct(text):
    assert check_formula(K2, (3, 3), text).ok


def test_the_next_layers_delta_in_the_other_convention_is_wrong():
    # input at l: the upstream gradient is delta^{l+1}; delta^{l} is the input's error term
    text = (r"\frac{\partial E}{\partial a^{l}_{1,2}} = \delta^{l}_{1,1} w^{l+1}_{1,2} + "
            r"\delta^{l}_{1,2} w^{l+1}_{1,1}")
    result = check_formula(K2, (3, 3), text)
    assert not result.ok
    assert result.notes[0].startswith(r"\delta^{l} is at layer l: the error term of this "
                                      r"layer's input a^{l}")
    assert result.printer.doprint(result.wrong[0].expected) == \
        r"\delta^{l+1}_{1,1} w^{l+1}_{1,2} + \delta^{l+1}_{1,2} w^{l+1}_{1,1}"


@pytest.mark.parametrize("text, message, column", [
    # a mix of the two conventions spans three layers
    (r"\frac{\partial E}{\partial a^{l-1}_{1,2}} = \delta^{l+1}_{1,1} w_{1,2}",
     r"this formula names layers l-1 to l+1, but one layer spans two", 53),
    (r"dL/dw_{1,1} = \sum_{i,j} \delta^{l}_{i,j} a^{l-2}_{i,j}",
     "a^{l-2} names a layer this instance does not have", 46),
    (r"dL/da^{l-1}_{1,2} = \delta^{l}_{1,1} w^{l-1}_{1,2}",
     "w^{l-1} is at layer l-1, where this layer's input is; the kernel (weights) belongs to "
     "layer l", 41),
    (r"dL/da^{l}_{1,2} = \delta^{l}_{1,1} w^{l}_{1,2}",
     "a^{l} is at layer l, the output of this layer", 8),
    (r"dL/dw^{L}_{1,1} = \sum_{i,j} \delta^{l}_{i,j} a^{L-1}_{i,j}",
     "mixes the layer letters L and l", 38),
    (r"dL/dw_{1,1} = \sum_{i,j} \delta^{[2]}_{i,j} a^{[1]}_{i,j}",
     "'[2]' is a layer number: layers are numbered in a chain", 34),
    (r"dL/dw_{1,1} = \sum_{i,j} \delta^{2}_{i,j} a_{i,j}", "'2' is a layer number", 34),
])
def test_names_at_layers_the_instance_does_not_have(capsys, text, message, column):
    with pytest.raises(FormulaError) as caught:
        check_formula(K2, (3, 3), text)
    assert message in caught.value.message
    assert caught.value.position == column - 1
    status, out, err = _run(capsys, "check", "conv2d", text)
    assert status == 2 and not out and message in err and "Traceback" not in err


def test_layer_errors_name_the_layers_that_exist():
    with pytest.raises(FormulaError) as caught:
        check_formula(K2, (3, 3), r"dL/dw_{1,1} = \sum_{i,j} \delta^{l}_{i,j} a^{l-2}_{i,j}")
    assert "its input at l-1 and its output, error term and parameters at l (or the input " \
           "at l and the rest at l+1)" in caught.value.message


# -- pooling ---------------------------------------------------------------------------------
def test_average_pooling_layer_mix_up():
    right = r"\frac{\partial E}{\partial a^{l-1}_{1,1}} = \frac{1}{4}\delta^{l}_{1,1}"
    assert check_formula(AvgPool2d(2), (4, 4), right).ok
    wrong = check_formula(AvgPool2d(2), (4, 4), right.replace(r"\delta^{l}", r"\delta^{l-1}"))
    assert not wrong.ok
    assert wrong.printer.doprint(wrong.wrong[0].given) == r"\frac{1}{4} \delta^{l-1}_{1,1}"
    assert wrong.notes[0].startswith(r"\delta^{l-1} is at layer l-1")


MAX_RIGHT = (r"\frac{\partial E}{\partial a^{l-1}_{12}} = \delta^{l}_{11} "
             r"[a^{l-1}_{12} = \arg\max a^{l}_{11}] + \delta^{l}_{12} "
             r"[a^{l-1}_{12} = \arg\max z^{l}_{12}]")


def test_max_pooling_layer_mix_ups(capsys):
    layer = MaxPool2d(2, stride=1)
    assert check_formula(layer, (3, 3), MAX_RIGHT).ok
    wrong = check_formula(layer, (3, 3), MAX_RIGHT.replace(r"\delta^{l}", r"\delta^{l-1}"))
    assert not wrong.ok and wrong.notes[0].startswith(r"\delta^{l-1} is at layer l-1")
    # the candidate of the indicator is an input element: a^{l} there is refused
    text = MAX_RIGHT.replace("[a^{l-1}_{12} = \\arg\\max a^{l}_{11}]",
                             "[a^{l}_{12} = \\arg\\max a^{l}_{11}]")
    with pytest.raises(FormulaError) as caught:
        check_formula(layer, (3, 3), text)
    assert "the indicator [a_ab = argmax z_ij] picks an input element a^{l-1}" in str(caught.value)
    assert caught.value.position == text.index("a^{l}_{12}") + len("a^{")
    status, _, err = _run(capsys, "check", "maxpool2d", "--stride", "1", "--input", "3x3", text)
    assert status == 2 and "picks an input element" in err


# -- activations: the output a^{l} is f(a^{l-1}) -----------------------------------------------
@pytest.mark.parametrize("layer, right, wrong, note", [
    (Sigmoid(), r"\frac{\partial E}{\partial a^{l-1}_{ij}} = \delta^{l}_{ij} a^{l}_{ij} "
                r"(1 - a^{l}_{ij})",
     r"\frac{\partial E}{\partial a^{l-1}_{ij}} = \delta^{l}_{ij} a^{l-1}_{ij} (1 - a^{l-1}_{ij})",
     None),  # the input where the output belongs: a^{l-1} is at its usual place, no note
    (Tanh(),
     r"\frac{\partial E}{\partial a^{l-1}_{ij}} = \delta^{l}_{ij} (1 - a^{l}_{ij} a^{l}_{ij})",
     r"\frac{\partial E}{\partial a^{l-1}_{ij}} = \delta^{l-1}_{ij} (1 - a^{l}_{ij} a^{l}_{ij})",
     r"note: \delta^{l-1} is at layer l-1"),
])
def test_activation_layer_mix_ups(capsys, layer, right, wrong, note):
    assert check_formula(layer, (1, 2, 2), right).ok
    result = check_formula(layer, (1, 2, 2), wrong)
    assert not result.ok and len(result.wrong) == 4
    kind = type(layer).__name__.lower()
    status, out, _ = _run(capsys, "check", kind, "--input", "1x2x2", right)
    assert status == 0, out
    status, out, _ = _run(capsys, "check", kind, "--input", "1x2x2", wrong)
    assert status == 1
    assert (note in out) if note else "note: " not in out


def test_sigmoid_output_is_the_function_of_the_input():
    # a^{l} is sigmoid(a^{l-1}): sigma'(net) written with the output is right, and its
    # output written as the input is wrong
    text = (r"\frac{\partial E}{\partial a^{l-1}_{1,2}} = \delta^{l}_{1,2} a^{l}_{1,2} "
            r"(1 - a^{l}_{1,2})")
    assert check_formula(Sigmoid(), (1, 2, 2), text).ok
    result = check_formula(Sigmoid(), (1, 2, 2), text.replace(r"(1 - a^{l}_{1,2})",
                                                              r"(1 - a^{l}_{1,1})"))
    assert not result.ok
    assert result.notes == (r"a^{l} is at layer l: the output of this layer, computed from "
                            r"its input a^{l-1} at layer l-1",)


# -- channels as symbackprop latex prints them ------------------------------------------------
CHANNELS = Conv2d(in_channels=2, out_channels=3, kernel_size=2)


def test_channel_superscripts_are_channels(capsys):
    text = (r"\frac{\partial E}{\partial w^{(o,c)}_{mk}} = \sum_{i,j} \delta^{(o)}_{ij} "
            r"a^{(c)}_{i+m-1,j+k-1}")
    assert check_formula(CHANNELS, (3, 3), text).checked == 24
    assert check_formula(CHANNELS, (3, 3), text).ok
    bias = r"\frac{\partial E}{\partial b^{(o)}} = \sum_{i,j} \delta^{l(o)}_{ij}"
    assert check_formula(CHANNELS, (3, 3), bias).ok
    # a^{(1)} where a^{(2)} belongs: wrong, and printed back with channel superscripts
    text = (r"\frac{\partial E}{\partial w^{(1,2)}_{11}} = \delta^{(1)}_{11} a^{(2)}_{11} + "
            r"\delta^{(1)}_{12} a^{(2)}_{12} + \delta^{(1)}_{21} a^{(2)}_{21} + "
            r"\delta^{(1)}_{22} a^{(1)}_{22}")
    result = check_formula(CHANNELS, (3, 3), text)
    (wrong,) = result.wrong
    assert wrong.label == r"\frac{\partial E}{\partial w^{(1,2)}_{11}}"
    assert result.printer.doprint(wrong.missing) == r"\delta^{(1)}_{22} a^{(2)}_{22}"
    assert result.printer.doprint(wrong.extra) == r"\delta^{(1)}_{22} a^{(1)}_{22}"
    status, out, _ = _run(capsys, "check", "conv2d", "--in-channels", "2", "--out-channels",
                          "3", text)
    assert status == 1 and r"missing:  \delta^{(1)}_{22} a^{(2)}_{22}" in out


def test_a_channel_superscript_on_a_single_channel_takes_the_full_form():
    # one channel: a^{(1)}_{ij} names channel 1 with the size-1 channel index written
    assert check_formula(K2, (3, 3), r"dL/dw_{1,1} = \sum_{i,j} \delta^{(1)}_{i,j} "
                                     r"a^{(1)}_{i,j}").ok


# -- refusals, with the position ---------------------------------------------------------------
@pytest.mark.parametrize("text, message, column", [
    (r"dL/dx = a^{n}_{1}", "'n' is not understood in a superscript", 12),
    (r"dL/dx = a^{*}_{1}", "'*' is not understood in a superscript", 12),
    (r"dL/dx = a^{-1}_{1}", "'-' is not understood in a superscript", 12),
    (r"dL/dx = a^{lT}_{1}", "write the layer and the transpose apart", 12),
    (r"dL/dx = a^{l-2+l}_{1}", "'l-2+l' is not a layer label", 12),
    (r"dL/dx = a^{2l}_{1}", "'2l' is not a layer label", 12),
    (r"dL/dx = a^{l}^{T}_1", "a has two superscripts", 14),
    (r"dL/dx = (a_1)^2", "powers are not supported", 14),
    (r"dL/dx = a^{l} 2^3", "powers are not supported", 16),
    (r"dL/dx = a^", "the end of the formula is not understood in a superscript", 11),
    (r"dL/dx = a^{(l) (1) (2)}_1", "a second group of channel indices", 20),
    (r"dL/dx = a^{[l][l]}_1", "a second layer label", 15),
    (r"dL/dx = W^{T T}_1", "a second transpose", 14),
    (r"dL/dx = \tanh^2(a)", r"unknown LaTeX command \tanh", 9),
])
def test_superscripts_that_cannot_be_placed_are_refused(capsys, text, message, column):
    with pytest.raises(FormulaError) as caught:
        parse_formula(text)
    assert message in caught.value.message
    assert caught.value.position == column - 1
    assert str(caught.value).splitlines()[-1] == "  " + " " * (column - 1) + "^"
    status, out, err = _run(capsys, "check", "conv2d", text)
    assert status == 2 and not out and message in err


def test_transpose_of_more_than_a_matrix_is_refused():
    with pytest.raises(FormulaError) as caught:
        check_formula(Linear(3, 2), None, r"dL/dx_j = \sum_i W^{T}_{j,i,1} \delta_i")
    assert "is a transpose: it takes two indices (a matrix) or one" in caught.value.message
    assert caught.value.position == len(r"dL/dx_j = \sum_i W")


def test_superscripts_are_kept_in_the_parse():
    formula = parse_formula(r"dL/dx = a^{[1](2)}_{11} W^{[l]\top}_{1,2}")
    a, w = formula.rhs.factors
    assert a.superscript.layer_text == "[1]" and a.superscript.layer.constant == 1
    assert [c.constant for c in a.superscript.channels] == [2]
    assert [i.constant for i in a.subscript.parts] == [2, 11]
    assert w.superscript.transposed and w.superscript.letter == "l"
    assert w.spelling.superscript == "^{[l]}"  # printed without the transpose


# -- issue 11: nesting, length and the size of a check ----------------------------------------
@pytest.mark.parametrize("body", [
    "(" * 400 + "g_{1,1}" + ")" * 400,
    "g[" + "(" * 400 + "1" + ")" * 400 + ",1]",
    "-" * 500 + "g_{1,1}",
    r"\sum_m " * 300 + "g_{1,1}",
])
def test_deep_nesting_is_a_formula_error_with_the_position(capsys, body):
    text = "dL/dw_{1,1} = " + body
    with pytest.raises(FormulaError) as caught:
        parse_formula(text)
    assert f"nested more than {MAX_NESTING} deep" in caught.value.message
    assert caught.value.position is not None and caught.value.position > 0
    status, out, err = _run(capsys, "check", "conv2d", text)
    assert status == 2 and not out and "nested more than" in err
    assert "Traceback" not in err and "RecursionError" not in err


def test_nesting_below_the_limit_still_reads():
    text = "dL/dw_{1,1} = " + "(" * 30 + "g_{1,1} x_{1,1}" + ")" * 30 + " + g_{1,2} x_{1,2}" \
        " + g_{2,1} x_{2,1} + g_{2,2} x_{2,2}"
    assert check_formula(K2, (3, 3), text).ok


def test_very_long_formula_is_refused(capsys):
    text = "dL/dx11 = " + " + ".join(["g11 w11"] * 5000)
    with pytest.raises(FormulaError, match="characters long, over the limit"):
        parse_formula(text)
    status, out, err = _run(capsys, "check", "conv2d", text)
    assert status == 2 and "characters long" in err and len(err) < 400


def test_large_sum_limits_are_refused_up_front_within_seconds(capsys):
    text = (r"\frac{\partial E}{\partial a_{i,j}} = \sum_{m=0}^{1000}\sum_{n=0}^{1000} "
            r"\delta_{i-m,j-n} w_{m,n}")
    start = time.perf_counter()
    status, out, err = _run(capsys, "check", "conv2d", "--kernel", "2", "--input", "100x100",
                            text)
    elapsed = time.perf_counter() - start
    assert status == 2 and not out
    assert "index combinations, over the limit of 1,000,000" in err
    assert "10,000 elements" in err and "narrow it" in err
    assert elapsed < 15, elapsed  # derived nothing: the size is known from the shapes
    with pytest.raises(FormulaError, match="index combinations"):
        check_formula(Conv2d(kernel_size=2), (100, 100), text)


# -- chains: superscripts are the chain's layer numbers ----------------------------------------
# Linear 2->2 (layer 1) -> Sigmoid (layer 2) -> Linear 2->1 (layer 3); a^{[0]} is the input,
# a^{[l]} layer l's output, delta^{[l]} = dL/da^{[l]}; each gradient is checked one layer at
# a time, as symbackprop derive gives it (layer l's from delta^{[l]}).
CHAIN = Sequential(Linear(2, 2), Sigmoid(), Linear(2, 1))
CHAIN_SPEC = ('[{"layer": "linear", "in_features": 2, "out_features": 2}, {"layer": "sigmoid"}, '
              '{"layer": "linear", "in_features": 2, "out_features": 1}]')


@pytest.mark.parametrize("text, checked", [
    (r"\frac{\partial L}{\partial W^{[3]}_{1,j}} = \delta^{[3]}_1 a^{[2]}_j", 2),
    (r"\frac{\partial L}{\partial a^{[2]}_{j}} = \sum_i W^{[3]T}_{j,i} \delta^{[3]}_i", 2),
    (r"\frac{\partial L}{\partial a^{[1]}_{j}} = \delta^{[2]}_j a^{[2]}_j (1 - a^{[2]}_j)", 2),
    (r"\frac{\partial L}{\partial a^{(1)}_{j}} = \delta^{(2)}_j a^{(2)}_j (1 - a^{(2)}_j)", 2),
    (r"\frac{\partial L}{\partial W^{[1]}_{i,j}} = \delta^{[1]}_i a^{[0]}_j", 4),
    (r"\frac{\partial L}{\partial b^{1}_{i}} = \delta^{1}_i", 2),
    (r"\frac{\partial L}{\partial a^{[0]}_{j}} = \sum_i \delta^{[1]}_i W^{[1]}_{i,j}", 2),
])
def test_chain_formulas_named_by_layer_number_are_correct(capsys, text, checked):
    result = check_formula(CHAIN, None, text)
    assert result.ok and result.checked == checked, result.report()
    status, out, _ = _run(capsys, "check", "sequential", "--spec", CHAIN_SPEC, text)
    assert status == 0 and out.startswith("correct: ")


@pytest.mark.parametrize("text, expected, note", [
    # the previous layer's error term where layer 3's belongs
    (r"\frac{\partial L}{\partial W^{[3]}_{1,j}} = \delta^{[2]}_1 a^{[2]}_j",
     r"\delta^{[3]}_1 a^{[2]}_1",
     r"\delta^{[2]} is the error term of layer 2's output; layer 3's gradients are one step "
     r"from \delta^{[3]}"),
    # an earlier layer's output where layer 3's input a^{[2]} belongs
    (r"\frac{\partial L}{\partial W^{[3]}_{1,j}} = \delta^{[3]}_1 a^{[1]}_j",
     r"\delta^{[3]}_1 a^{[2]}_1", r"a^{[1]} is the output of layer 1; layer 3 reads a^{[2]}"),
    # the sigmoid's input where its output belongs
    (r"\frac{\partial L}{\partial a^{[1]}_{j}} = \delta^{[2]}_j a^{[1]}_j (1 - a^{[1]}_j)",
     r"\delta^{[2]}_1 sigmoid(a^{[1]}_{1}) (1 - sigmoid(a^{[1]}_{1}))", None),
])
def test_chain_layer_mix_ups_are_wrong(capsys, text, expected, note):
    result = check_formula(CHAIN, None, text)
    assert not result.ok
    assert result.printer.doprint(result.wrong[0].expected) == expected
    if note:
        assert any(n.startswith(note) for n in result.notes), result.notes
    status, out, _ = _run(capsys, "check", "sequential", "--spec", CHAIN_SPEC, text)
    assert status == 1 and out.startswith("wrong: ")


@pytest.mark.parametrize("text, message, column", [
    (r"\frac{\partial L}{\partial a^{[3]}_{j}} = \delta^{[3]}_j",
     "a^{[3]} is the chain output: its gradient, the error term, is given", 31),
    (r"\frac{\partial L}{\partial a^{[1]}_{j}} = \delta_j",
     r"\delta: in a chain every name says its layer, 0 to 3", 43),
    (r"\frac{\partial L}{\partial a^{[1]}_{j}} = \delta^{[5]}_j",
     r"\delta^{[5]}: the chain has layers 1 to 3", 43),
    (r"\frac{\partial L}{\partial a^{[1]}_{j}} = \delta^{[2]}_j W^{[4]}_{1,j}",
     "W^{[4]}: the chain has layers 1 to 3", 61),
])
def test_chain_names_at_layers_it_does_not_have(capsys, text, message, column):
    with pytest.raises(FormulaError) as caught:
        check_formula(CHAIN, None, text)
    assert message in caught.value.message
    assert caught.value.position == column - 1
    status, out, err = _run(capsys, "check", "sequential", "--spec", CHAIN_SPEC, text)
    assert status == 2 and not out and message in err


def test_chain_names_the_chain_numbering_cannot_place_are_read_in_the_course_one():
    # W^{[2]}: layer 2 of the spec (the sigmoid) has no weights, so the numbers are the
    # course's: the linear layer and its sigmoid are layer 1, the last linear layer 2
    text = r"\frac{\partial L}{\partial W^{[2]}_{i,j}} = \delta^{[2]}_i a^{[1]}_j"
    result = check_formula(CHAIN, None, text)
    assert result.ok and "course numbering" in result.notes[-1]
    with pytest.raises(FormulaError) as caught:
        check_formula(CHAIN, None, text, numbering="chain")
    assert "layer 2 has no weights" in caught.value.message


def test_chain_of_convolution_and_max_pooling_with_channels():
    chain = Sequential(Conv2d(1, 2, kernel_size=2), MaxPool2d(2, stride=1))
    right = (r"\frac{\partial E}{\partial a^{[1](c)}_{12}} = \delta^{[2](c)}_{11} "
             r"[a^{[1](c)}_{12} = \arg\max a^{[2](c)}_{11}] + \delta^{[2](c)}_{12} "
             r"[a^{[1](c)}_{12} = \arg\max a^{[2](c)}_{12}]")
    result = check_formula(chain, (4, 4), right)
    assert result.ok and result.checked == 2
    wrong = check_formula(chain, (4, 4), right.replace(r"\delta^{[2](c)}", r"\delta^{[1](c)}"))
    assert not wrong.ok
    assert wrong.printer.doprint(wrong.wrong[0].expected) == (
        r"\delta^{[2](1)}_{11} [a^{[1](1)}_{12} = \arg\max a^{[2](1)}_{11}] + "
        r"\delta^{[2](1)}_{12} [a^{[1](1)}_{12} = \arg\max a^{[2](1)}_{12}]")
    kernel = (r"\frac{\partial E}{\partial w^{[1](o)}_{mn}} = \sum_{i,j} \delta^{[1](o)}_{ij} "
              r"a^{[0]}_{i+m-1,j+n-1}")
    assert check_formula(chain, (4, 4), kernel).ok
    mixed = check_formula(chain, (4, 4), kernel.replace(r"\delta^{[1](o)}", r"\delta^{[2](o)}"))
    assert not mixed.ok and len(mixed.wrong) == 8


def test_products_that_multiply_out_too_far_are_refused_up_front(capsys):
    text = "dL/dw_{1,1} = " + "(g_{1,1} + g_{1,2})" * 20
    with pytest.raises(FormulaError) as caught:
        parse_formula(text)
    assert "multiplied out, this product has more than 100,000 terms" in caught.value.message
    # layer outputs a^{l} are sums (z_11 = 4 products and the bias): 5^8 terms refused
    outputs = r"dL/dw_{1,1} = \delta^{l}_{1,1}" + r" a^{l}_{1,1}" * 8
    start = time.perf_counter()
    status, out, err = _run(capsys, "check", "conv2d", "--input", "3x3", outputs)
    assert status == 2 and "multiplies out to about 390,625 terms" in err
    assert time.perf_counter() - start < 15
