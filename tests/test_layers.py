"""Stage 1: layer specs normalise, validate and know their shapes."""

import dataclasses

import pytest

from symbackprop import Conv2d
from symbackprop.core.indexing import grad_input_padding, output_length, padding4, unread_length


def test_parameters_normalised():
    layer = Conv2d(kernel_size=3, stride=(2, 1), padding=(1, 2), dilation=2)
    assert layer.kernel_size == (3, 3)
    assert layer.stride == (2, 1)
    assert layer.padding == (1, 1, 2, 2)
    assert layer.dilation == (2, 2)
    assert Conv2d(padding=(0, 1, 2, 3)).padding == (0, 1, 2, 3)


def test_frozen_and_replace_validates_again():
    layer = Conv2d(kernel_size=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.stride = (2, 2)
    assert layer.replace(stride=2).stride == (2, 2)
    with pytest.raises(ValueError, match="stride"):
        layer.replace(stride=0)


@pytest.mark.parametrize("kwargs, names", [
    (dict(kernel_size=0), "kernel_size"),
    (dict(kernel_size=(2, -1)), "kernel_size"),
    (dict(stride=0), "stride"),
    (dict(dilation=(1, 0)), "dilation"),
    (dict(padding=-1), "padding"),
    (dict(padding=(1, 2, 3)), "padding"),
    (dict(kernel_size=2.5), "kernel_size"),
    (dict(stride=True), "stride"),
    (dict(in_channels=0), "in_channels"),
    (dict(in_channels=3, out_channels=4, groups=2), "groups must divide in_channels"),
    (dict(in_channels=4, out_channels=3, groups=2), "groups must divide out_channels"),
    (dict(bias="yes"), "bias"),
])
def test_invalid_parameters_name_the_parameter(kwargs, names):
    with pytest.raises(ValueError, match=names):
        Conv2d(**kwargs)


def test_input_too_small_for_dilated_kernel():
    layer = Conv2d(kernel_size=3, dilation=2)  # extent 5
    with pytest.raises(ValueError, match=r"input_size.*height 4\+0\+0 = 4.*dilated kernel"):
        layer.output_size((4, 9))
    assert layer.output_size((5, 5)) == (1, 1)
    assert Conv2d(kernel_size=3, dilation=2, padding=1).output_size((3, 3)) == (1, 1)


def test_output_size_textbook_examples():
    # docs/notation.md: width 5, filter 3, padding 0, stride 2 gives 2.
    assert output_length(5, 3, 2, 0, 0) == 2
    # W2 = (W1 - F + 2P)/S + 1 for the symmetric, undilated case.
    for size, kernel, pad, stride in [(32, 3, 1, 1), (7, 3, 0, 2), (28, 5, 2, 1)]:
        textbook = (size - kernel + 2 * pad) // stride + 1
        assert output_length(size, kernel, stride, pad, pad) == textbook
    assert Conv2d(kernel_size=2, padding=1).output_shape((3, 3), batch=2) == (2, 1, 4, 4)


def test_unread_rows_and_grad_padding():
    # 6 rows, kernel 3, stride 2: windows start at 0 and 2 and read rows 0..4; row 5 never.
    assert unread_length(6, 3, 2, 0, 0) == 1
    assert grad_input_padding(6, 3, 2, 0, 0) == (2, 3)
    # Padding larger than the kernel reach crops g instead.
    assert grad_input_padding(3, 2, 1, 1, 1) == (0, 0)
    assert padding4((1, 2)) == (1, 1, 2, 2)


def test_describe():
    assert Conv2d(kernel_size=2, padding=1).describe() == \
        "Conv2d 1->1, kernel 2x2, stride 1, padding 1"
    text = Conv2d(4, 4, kernel_size=(3, 1), dilation=2, groups=4, bias=False).describe()
    assert "kernel 3x1" in text and "dilation 2" in text and "groups 4" in text \
        and "no bias" in text
