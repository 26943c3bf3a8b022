"""Every activation row gets array-API code that matches the hand-written references of
tests/layer_reference.py (a row whose f calls another row, SiLU's sigmoid, included), or a
clear refusal when it needs a function the array API standard lacks (GELU's erf)."""

import numpy as np
import pytest
from layer_reference import backward, forward

from symbackprop.kinds.activation.spec import ACTIVATION_TYPES
from symbackprop.render.codegen import load

xp = pytest.importorskip("array_api_strict")


@pytest.mark.parametrize("layer_type", ACTIVATION_TYPES, ids=lambda t: t.__name__)
def test_every_row_runs_on_strict_arrays_or_is_refused(layer_type):
    layer = layer_type()
    x = np.array([[-2.0, -0.5, 0.0, 0.25, 3.0]])
    g = np.array([[1.0, -2.0, 0.5, 3.0, -1.0]])
    try:
        module = load(layer, target="array-api")
    except ValueError as error:
        assert "array API standard does not have" in str(error)
        assert "--target numpy" in str(error)
        return
    np.testing.assert_allclose(np.asarray(module.forward(xp.asarray(x))), forward(layer, x, {}),
                               rtol=1e-12, atol=1e-15)
    (grad,) = module.backward(xp.asarray(x), xp.asarray(g))
    np.testing.assert_allclose(np.asarray(grad), backward(layer, x, {}, g)[0], rtol=1e-12,
                               atol=1e-15)
