"""generate's up-front size limit and its closed-form smallest instances.

Truth for the closed forms: a plain search over input lengths written here from
docs/notation.md's output-size formula (tests/reference.py's conv_output_size), the way the
generator used to find them.  The limit: every oversized request answers within
seconds with a SizeLimitError (exit 2 on the command line) naming the parameter.
"""

from __future__ import annotations

import itertools
import time

import pytest
from reference import conv_output_size

import symbackprop as sbp
from symbackprop.cli import main
from symbackprop.core.layers import Sequential
from symbackprop.kinds import AvgPool2d, Conv2d, MaxPool2d
from symbackprop.kinds.conv2d.numpy import _minimal_length, representative_instance
from symbackprop.kinds.pool2d.numpy import _minimal_pool_length
from symbackprop.render.codegen import (
    check_generation_size,
    generate,
    instance_cost,
    load,
)


def searched_conv_length(kernel, stride, before, after, dilation):
    """The least length on which every offset reads two rows of x, by trying lengths."""
    for size in itertools.count(1):
        outputs = conv_output_size(size, kernel, stride, before, after, dilation)
        reads = [sum(0 <= i * stride + m * dilation - before < size for i in range(outputs))
                 for m in range(kernel)]
        if outputs >= 2 and min(reads) >= 2:
            return size


def searched_pool_length(kernel, stride, before, after):
    """The least length with two windows free of padding, by trying lengths."""
    for size in itertools.count(1):
        outputs = conv_output_size(size, kernel, stride, before, after)
        inside = [i for i in range(max(outputs, 0))
                  if i * stride - before >= 0 and i * stride - before + kernel <= size]
        if len(inside) >= 2:
            return size


def test_conv_closed_form_is_the_least_length():
    for kernel, stride, before, after, dilation in itertools.product(
            range(1, 6), range(1, 5), range(5), range(5), range(1, 4)):
        assert _minimal_length(kernel, stride, before, after, dilation) == \
            searched_conv_length(kernel, stride, before, after, dilation), \
            (kernel, stride, before, after, dilation)


def test_pool_closed_form_is_the_least_length():
    for kernel, stride, before, after in itertools.product(range(1, 7), range(1, 6), range(4),
                                                           range(4)):
        if before < kernel and after < kernel:
            assert _minimal_pool_length(kernel, stride, before, after) == \
                searched_pool_length(kernel, stride, before, after), \
                (kernel, stride, before, after)


@pytest.mark.parametrize("words, parameter", [
    (["conv2d", "--stride", "1000000000"], "stride = 1000000000"),
    (["conv2d", "--dilation", "1000000000"], "dilation = 1000000000"),
    (["conv2d", "--padding", "1000000000"], "padding = 1000000000"),
    (["conv2d", "--padding", "1000000000,1,2,3"], "padding = (1000000000, 1, 2, 3)"),
    (["conv2d", "--kernel", "1000"], "kernel_size = 1000"),
    (["conv2d", "--kernel", "100000"], "kernel_size = 100000"),
    (["conv2d", "--kernel", "3x1000000000"], "kernel_size = 3x1000000000"),
    (["maxpool2d", "--kernel", "1000000000"], "kernel_size = 1000000000"),
    (["avgpool2d", "--kernel", "2", "--stride", "1000000000"], "stride = 1000000000"),
    (["sequential", "--spec", '[{"layer": "conv2d", "kernel_size": 3}, {"layer": "relu"}, '
      '{"layer": "maxpool2d", "kernel_size": 2, "stride": 100000000}]'],
     "stride = 100000000"),
])
def test_oversized_requests_are_refused_at_once(words, parameter, capsys, tmp_path):
    started = time.perf_counter()
    assert main(["generate", *words, "-o", str(tmp_path)]) == 2
    assert time.perf_counter() - started < 5
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and parameter in error
    assert "over the limit of 100,000" in error and "--max-terms" in error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("call", [generate, load, check_generation_size])
def test_python_api_has_the_limit(call):
    with pytest.raises(sbp.SizeLimitError, match="stride = 1000000000.*max_terms=N"):
        call(Conv2d(kernel_size=3, stride=10**9))


def test_max_terms_raises_the_limit_exactly():
    layer = Conv2d(kernel_size=2, stride=30)
    instance, size = representative_instance(layer)
    cost = instance_cost(instance, instance.input_shape(size))
    with pytest.raises(sbp.SizeLimitError, match=f"{cost:,} products"):
        generate(layer, max_terms=cost - 1)
    module = load(layer, max_terms=cost)
    assert module.output_size(*size) == (2, 2)


def test_cli_max_terms_lets_it_through(capsys):
    assert main(["generate", "conv2d", "--kernel", "2", "--stride", "30", "--max-terms", "50",
                 "--print"]) == 2
    assert "over the limit of 50" in capsys.readouterr().err
    assert main(["generate", "conv2d", "--kernel", "2", "--stride", "30", "--max-terms",
                 "100000", "--print"]) == 0
    assert "def backward" in capsys.readouterr().out


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "100"])
def test_max_terms_must_be_a_positive_whole_number(bad):
    with pytest.raises(ValueError, match=r"max_terms \(--max-terms\) must be a whole number >= 1"):
        generate(Conv2d(kernel_size=3), max_terms=bad)


def test_catalog_layers_fit_the_default_limit():
    from symbackprop.catalog import CATALOG

    for entry in CATALOG:
        check_generation_size(entry.layer)


def test_chains_and_pools_check_each_layer():
    chain = Sequential([Conv2d(kernel_size=3), MaxPool2d(kernel_size=2, stride=10**8)])
    with pytest.raises(sbp.SizeLimitError, match="MaxPool2d"):
        generate(chain)
    with pytest.raises(sbp.SizeLimitError, match="kernel_size = 400"):
        generate(AvgPool2d(kernel_size=400))
