"""check-impl's --input (repeatable) and --batch, as a student types them."""

from conftest import REPO

from symbackprop.cli import main

STUDENT = REPO / "tests"


def test_input_sizes_and_batch_are_the_ones_asked_for(capsys):
    assert main(["check-impl", f"{STUDENT / 'student_conv.py'}:backward", "conv2d", "--kernel",
                 "3", "--input", "6x7", "--input", "9", "--batch", "3"]) == 0
    out = capsys.readouterr().out
    assert "on 2 input sizes" in out.splitlines()[0]
    assert "random inputs of size 6x7, 9x9, batch 3" in out


def test_any_shape_for_an_elementwise_layer(capsys):
    assert main(["check-impl", f"{STUDENT / 'student_layers.py'}:relu_backward", "relu",
                 "--input", "3x4x5", "--input", "7"]) == 0
    assert "random inputs of size 3x4x5, 7 " in capsys.readouterr().out


def test_a_mistake_is_still_found_on_the_sizes_asked_for(capsys):
    assert main(["check-impl", f"{STUDENT / 'student_layers.py'}:linear_backward_bias_mean",
                 "linear", "--input", "3", "--batch", "4"]) == 1
    out = capsys.readouterr().out
    assert "likely mistake: bias not summed over the batch" in out


def test_bad_sizes_are_refused_with_the_rule(capsys):
    cases = [(["conv2d", "--kernel", "3", "--input", "6x6x2"], "--input takes 1 or 2 numbers"),
             (["conv2d", "--kernel", "3", "--input", "2"], "smaller than the dilated kernel"),
             (["conv2d", "--input", "0"], "--input: every size must be >= 1"),
             (["linear", "--input", "4"], "takes in_features = 3 features, got 4")]
    for arguments, message in cases:
        function = "student_layers.py:linear_backward" if arguments[0] == "linear" \
            else "student_conv.py:backward"
        assert main(["check-impl", str(STUDENT / function), *arguments]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
