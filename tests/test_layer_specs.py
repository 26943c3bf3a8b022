"""Stage 1 for pooling, activations, flatten, linear and Sequential: specs validate,
know their shapes and round-trip through JSON."""

import dataclasses
import json

import pytest
from conftest import CHAIN_GRID, LAYER_GRID

from symbackprop.core.derivation import term_count
from symbackprop.core.layers import Sequential, layer_from_spec, load_spec
from symbackprop.core.registry import KINDS
from symbackprop.kinds import (
    AvgPool2d,
    Conv2d,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Tanh,
)


def test_pool_defaults_and_normalisation():
    pool = MaxPool2d(3)
    assert pool.kernel_size == (3, 3) and pool.stride == (3, 3) and pool.padding == (0,) * 4
    assert MaxPool2d((2, 3), stride=1, padding=(1, 0)).padding == (1, 1, 0, 0)
    assert AvgPool2d(2).count_include_pad is True
    assert pool.parameter_names == () and pool.parameter_shapes == {}
    assert pool.overlapping is False and MaxPool2d(3, stride=2).overlapping is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        pool.stride = (1, 1)
    assert pool.replace(stride=1).stride == (1, 1)


@pytest.mark.parametrize("build, message", [
    (lambda: MaxPool2d(0), "kernel_size"),
    (lambda: MaxPool2d(2, stride=0), "stride"),
    (lambda: MaxPool2d(2, padding=-1), "padding"),
    (lambda: MaxPool2d(2, padding=2), "padding must be at most half the window"),
    (lambda: AvgPool2d((3, 2), padding=(1, 2)), "padding must be at most half the window"),
    (lambda: AvgPool2d(2, count_include_pad="no"), "count_include_pad"),
    (lambda: LeakyReLU(float("nan")), "negative_slope"),
    (lambda: LeakyReLU(True), "negative_slope"),
    (lambda: Linear(0, 2), "in_features"),
    (lambda: Linear(2, 2.5), "out_features"),
    (lambda: Linear(2, 2, bias=1), "bias"),
    (lambda: Sequential(), "at least one layer"),
    (lambda: Sequential(ReLU(), "conv"), "item 2 is not a layer"),
])
def test_invalid_parameters_name_the_parameter(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_shapes():
    assert MaxPool2d(2, stride=3).output_shape((2, 5, 7), batch=2) == (2, 2, 2, 2)
    assert AvgPool2d(3, stride=2, padding=1).output_shape((4, 5)) == (1, 1, 2, 3)
    assert ReLU().input_shape((5,), batch=3) == (3, 5)
    assert Sigmoid().output_shape_for((2, 7)) == (2, 7)
    assert Flatten().output_shape((2, 3, 4)) == (1, 24)
    assert Linear(24, 5).output_shape_for((2, 2, 3, 4)) == (2, 5)
    assert Linear(3, 5).input_shape(None, 2) == (2, 3) and Linear(3, 5).input_shape(3) == (1, 3)
    assert Conv2d(3, 1).input_shape((3, 4, 4)) == (1, 3, 4, 4)
    with pytest.raises(ValueError, match="in_channels = 3"):
        Conv2d(3, 1).input_shape((2, 4, 4))
    with pytest.raises(ValueError, match=r"takes \(N, C, H, W\) feature maps"):
        MaxPool2d(2).output_shape_for((1, 8))
    with pytest.raises(ValueError, match="in_features = 7 features per sample"):
        Linear(7, 1).output_shape_for((1, 2, 2, 2))


def test_term_counts():
    assert MaxPool2d(2).term_count((2, 3, 4, 4)) == 2 * 3 * 2 * 2 * 4
    assert Tanh().term_count((2, 5)) == 10
    assert Linear(4, 3).term_count((2, 4)) == 24
    chain = Sequential(Conv2d(1, 2, kernel_size=3), ReLU(), MaxPool2d(2), Linear(8, 3))
    assert chain.term_count((1, 1, 6, 6)) == 2 * 16 * 9 + 32 + 32 + 24
    assert term_count(chain, (1, 1, 6, 6)) == chain.term_count((1, 1, 6, 6))


def test_sequential_shapes_names_and_errors():
    chain = Sequential(Conv2d(1, 2, kernel_size=3), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(8, 3))
    assert chain.shapes((1, 1, 6, 6)) == ((1, 1, 6, 6), (1, 2, 4, 4), (1, 2, 4, 4),
                                          (1, 2, 2, 2), (1, 8), (1, 3))
    assert chain.parameter_names == ("w1", "b1", "w5", "b5")
    assert chain.parameter_shapes == {"w1": (2, 1, 3, 3), "b1": (2,), "w5": (3, 8), "b5": (3,)}
    assert len(chain) == 5 and chain.output_shape((6, 6)) == (1, 3)
    assert Sequential(Sequential(ReLU(), Tanh()), Sigmoid()).layers == (ReLU(), Tanh(), Sigmoid())
    assert dataclasses.replace(chain, layers=[ReLU()]).layers == (ReLU(),)
    with pytest.raises(ValueError, match=r"layer 5: Linear 7->3 takes in_features = 7"):
        Sequential(*chain.layers[:4], Linear(7, 3)).shapes((1, 1, 6, 6))
    with pytest.raises(ValueError, match=r"layer 2 \(MaxPool2d 3x3.*smaller than the 3-wide"):
        Sequential(Conv2d(kernel_size=3), MaxPool2d(3)).shapes((1, 1, 4, 4))


@pytest.mark.parametrize("case", LAYER_GRID + [("chain", specs) for _, specs, *_ in CHAIN_GRID],
                         ids=lambda case: case[0])
def test_spec_round_trip(case):
    layer = layer_from_spec(case[1])
    spec = layer.spec()
    assert json.loads(json.dumps(spec)) == spec
    assert layer_from_spec(spec) == layer


def test_spec_is_compact_and_readable():
    assert MaxPool2d(2).spec() == {"layer": "maxpool2d", "kernel_size": 2}
    assert AvgPool2d(3, stride=2, padding=(0, 1, 0, 1), count_include_pad=False).spec() == {
        "layer": "avgpool2d", "kernel_size": 3, "stride": 2, "padding": [0, 1, 0, 1],
        "count_include_pad": False}
    assert Conv2d(1, 2, kernel_size=3).spec() == {"layer": "conv2d", "out_channels": 2,
                                                  "kernel_size": 3}
    assert layer_from_spec({"layer": "maxpool2d", "kernel": [2, 3]}).kernel_size == (2, 3)
    assert set(KINDS) >= {"conv2d", "maxpool2d", "avgpool2d", "relu", "leakyrelu",
                          "sigmoid", "tanh", "softplus", "flatten", "linear", "sequential",
                          "residual", "convtranspose1d", "convtranspose2d", "convtranspose3d",
                          "softmax", "logsoftmax", "crossentropyloss", "mseloss", "elu", "gelu",
                          "silu", "prelu", "dropout", "batchnorm1d", "batchnorm2d", "layernorm",
                          "groupnorm", "instancenorm2d", "maxpool1d", "maxpool3d", "avgpool1d",
                          "avgpool3d", "upsample2d"}


@pytest.mark.parametrize("spec, message", [
    ({"layer": "pool"}, "unknown layer 'pool'; the kinds are conv2d"),
    ({"kernel_size": 2}, 'a "layer" key'),
    ({"layer": "maxpool2d"}, "maxpool2d needs kernel_size"),
    ({"layer": "relu", "slope": 2}, "relu takes no parameters"),
    ({"layer": "linear", "in_features": 2, "out_features": 1, "bais": True},
     "linear takes in_features, out_features, bias; got 'bais'"),
    ([{"layer": "relu"}, {"layer": "maxpool2d", "kernel_size": 0}], "layer 2: kernel_size"),
    ([], "non-empty list"),
    ({"layers": [{"layer": "relu"}], "inputs": [1]}, "got keys"),
])
def test_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        layer_from_spec(spec)


def test_load_spec_from_text_and_file(tmp_path):
    text = '{"input": [1, 6, 6], "layers": [{"layer": "conv2d", "kernel": 3}, {"layer": "relu"}]}'
    layer, input_size = load_spec(text)
    assert layer == Sequential(Conv2d(kernel_size=3), ReLU()) and input_size == (1, 6, 6)
    path = tmp_path / "net.json"
    path.write_text('[{"layer": "tanh"}]')
    assert load_spec(str(path)) == (Sequential(Tanh()), None)
    with pytest.raises(ValueError, match="not valid JSON"):
        load_spec('[{"layer": "relu"},]')
    with pytest.raises(OSError):
        load_spec(str(tmp_path / "missing.json"))
