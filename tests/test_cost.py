"""symbackprop cost: multiply-adds and stored values counted from the shapes alone."""

import json

from symbackprop import Conv2d, Linear, MaxPool2d, ReLU, Sequential
from symbackprop.cli import main
from symbackprop.core.cost import layer_costs


def test_the_bottleneck_exercise(capsys):
    # The course's numbers: 100 x 100 x 256 through a 3x3 convolution to 256 channels,
    # directly or through a 1x1 convolution to 64 channels first.
    direct = 100 * 100 * 256 * (3 * 3 * 256)
    bottleneck = 100 * 100 * 64 * 256 + 100 * 100 * 256 * (3 * 3 * 64)
    [cost] = layer_costs(Conv2d(256, 256, 3, padding=1), (100, 100))
    assert (cost.forward, cost.backward) == (direct, 2 * direct)
    assert cost.stored == 2 * 256 * 100 * 100 + 256 * 256 * 9 + 256
    chain = Sequential(Conv2d(256, 64, 1), Conv2d(64, 256, 3, padding=1))
    assert sum(c.forward for c in layer_costs(chain, (256, 100, 100))) == bottleneck
    spec = {"input": [256, 100, 100], "layers": [
        {"layer": "conv2d", "in_channels": 256, "out_channels": 64, "kernel_size": 1},
        {"layer": "conv2d", "in_channels": 64, "out_channels": 256, "kernel_size": 3,
         "padding": 1}]}
    assert main(["cost", "sequential", "--spec", json.dumps(spec)]) == 0
    out = capsys.readouterr().out
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert f"{bottleneck / 1e6:,.1f} M" in total and f"{2 * bottleneck / 1e6:,.1f} M" in total
    assert main(["cost", "conv2d", "--in-channels", "256", "--out-channels", "256",
                 "--kernel", "3", "--padding", "1", "--input", "100x100"]) == 0
    assert f"{direct / 1e6:,.1f} M" in capsys.readouterr().out


def test_layers_without_weights_and_a_batch():
    relu, pool, linear = (layer_costs(layer, size, batch=2)[0] for layer, size in (
        (ReLU(), (3, 4, 5)), (MaxPool2d(2), (1, 4, 6)), (Linear(4, 3), 4)))
    assert (relu.forward, relu.backward, relu.parameters) == (2 * 60, 2 * 60, 0)
    assert (pool.forward, pool.backward) == (2 * 6 * 4, 2 * 6 * 4)  # 6 windows of 4
    assert (linear.forward, linear.backward, linear.stored) == (24, 48, 8 + 6 + 15)


def test_a_bad_size_is_refused(capsys):
    assert main(["cost", "maxpool2d", "--input", "0x3"]) == 2
    err = capsys.readouterr().err
    assert "input_size must be whole numbers >= 1" in err and "Traceback" not in err
