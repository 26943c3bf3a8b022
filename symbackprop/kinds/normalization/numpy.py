"""The NumPy code of the normalisations: one template, each kind's layout as code lines,
the closed forms proven on a small derivation before any code is written."""

from __future__ import annotations

import functools

from symbackprop.core.derivation import derive
from symbackprop.kinds.normalization.rules import (
    prove_rules,
    statements,
)
from symbackprop.kinds.normalization.spec import (
    NORMALIZATION_TYPES,
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
)
from symbackprop.render.codegen import (
    NUMPY,
    GeneratedCodePrinter,
    NumpyKind,
    PlanError,
    common_context,
)

# gamma and beta, one per channel (the constant that names the channels: a chain's module
# holds no argument checks, where it is read otherwise)
_CHANNEL_PARAMETERS = "parameter_shape = (1, {channels}) + (1,) * (len(shape) - 2)"
_FEATURES = _CHANNEL_PARAMETERS.format(channels="NUM_FEATURES")

#: Per kind: the lines of ``_layout(shape)``, the shape ``_check_array`` checks x against,
#: the input in words, and the small instance (layer, input_size, batch) the code is
#: proven on.
_LAYOUTS = {
    BatchNorm1d: (["view = shape", "axes = (0,) + tuple(range(2, len(shape)))  # all but C",
                   _FEATURES],
                  ['shape = ("N", NUM_FEATURES) if np.ndim(x) == 2 else ("N", NUM_FEATURES, "L")'],
                  "(N, C) or (N, C, L), C = {C}"),
    BatchNorm2d: (["view = shape", "axes = (0, 2, 3)  # the batch and both spatial axes",
                   _FEATURES],
                  ['shape = ("N", NUM_FEATURES, "H", "W")'], "(N, C, H, W), C = {C}"),
    InstanceNorm2d: (["view = shape", "axes = (2, 3)  # both spatial axes", _FEATURES],
                     ['shape = ("N", NUM_FEATURES, "H", "W")'], "(N, C, H, W), C = {C}"),
    GroupNorm: (["view = (shape[0], NUM_GROUPS, shape[1] // NUM_GROUPS) + tuple(shape[2:])",
                 "axes = tuple(range(2, len(view)))  # a group's channels and space",
                 _CHANNEL_PARAMETERS.format(channels="NUM_CHANNELS")],
                ['shape = ("N", NUM_CHANNELS) if np.ndim(x) == 2 else '
                 '("N", NUM_CHANNELS, "H", "W")'],
                "(N, C) or (N, C, H, W), C = {C}"),
    LayerNorm: (["view = shape",
                 "axes = tuple(range(len(shape) - len(NORMALIZED_SHAPE), len(shape)))",
                 "parameter_shape = (1,) * (len(shape) - len(NORMALIZED_SHAPE)) + "
                 "NORMALIZED_SHAPE"],
                ["lead = max(np.ndim(x) - len(NORMALIZED_SHAPE), 1)  # the free axes",
                 'shape = tuple(f"d{axis}" for axis in range(lead)) + NORMALIZED_SHAPE'],
                "(N, ..., {C}), the last axes normalized_shape"),
}


def small_instance(layer):
    """``(layer, input_size, batch)``: the instance generate derives and proves."""
    if isinstance(layer, GroupNorm):
        per = layer.num_channels // layer.num_groups
        small = layer.replace(num_groups=min(layer.num_groups, 2),
                              num_channels=min(layer.num_groups, 2) * min(per, 2))
        return small, None, 2
    if isinstance(layer, LayerNorm):
        small = layer.replace(normalized_shape=(1,) * (len(layer.normalized_shape) > 1) +
                              (min(layer.normalized_shape[-1], 3),))
        return small, None, 2
    if isinstance(layer, InstanceNorm2d):
        return layer.replace(num_features=1), (2, 2), 1
    if isinstance(layer, BatchNorm1d):
        return layer.replace(num_features=min(layer.num_features, 2)), None, 3
    return layer.replace(num_features=1), (1, 2), 2


def _constants(layer) -> list:
    if isinstance(layer, GroupNorm):
        sizes = [("NUM_GROUPS", layer.num_groups, "groups of channels"),
                 ("NUM_CHANNELS", layer.num_channels, "channels C")]
    elif isinstance(layer, LayerNorm):
        sizes = [("NORMALIZED_SHAPE", repr(layer.normalized_shape),
                  "the trailing axes normalised together")]
    else:
        sizes = [("NUM_FEATURES", layer.num_features, "channels C")]
    return sizes + [("EPS", repr(float(layer.eps)), "added to the variance")]


@functools.lru_cache(maxsize=64)
def proven_instance(instance, input_size, batch):
    """``(derivation, proofs)`` of the small instance; PlanError if a closed form fails
    (both styles of a layer share one derivation)."""
    derivation = derive(instance, input_size, batch)
    proofs = prove_rules(derivation)
    failed = [proof.name for proof in proofs if not proof.holds]
    if failed:
        raise PlanError(f"the closed forms {failed} differ from the derivation of "
                        f"{instance.describe()}")
    return derivation, proofs


def _context(layer, style: str, strategy) -> dict:
    instance, input_size, batch = small_instance(layer)
    derivation, proofs = proven_instance(instance, input_size, batch)
    layout, input_check, input_words = _LAYOUTS[type(layer)]
    channels = getattr(layer, "num_features", getattr(layer, "num_channels", None))
    shape_words = ", ".join(map(str, getattr(layer, "normalized_shape", ())))
    parameters = list(layer.parameter_names)
    arguments = parameters + list(layer.constant_names)
    probe = derivation.input_shape
    m_words = {BatchNorm1d: "N (times L)", BatchNorm2d: "N H W", InstanceNorm2d: "H W",
               GroupNorm: "(C / NUM_GROUPS) H W", LayerNorm: "the product of NORMALIZED_SHAPE"}
    return dict(
        common_context(layer),
        template="normalization/normalization.py.j2" if style == "fast" else
        "normalization/normalization_reference.py.j2",
        exports=["forward", "backward"],
        signature=", ".join(["x", *arguments]),
        parameters_signature=", ".join(arguments),
        checked_tuple="(x,)" if not arguments else ", ".join(["x", *arguments]),
        parameter_arguments=arguments,
        parameter_shape=repr(layer.parameter_shape),
        affine=layer.has_affine,
        training=layer.uses_batch_statistics,
        constants=_constants(layer),
        layout_lines=layout,
        input_check_lines=input_check,
        input_words=input_words.format(C=channels if channels is not None else shape_words),
        over_words=layer.over_words(probe if len(probe) > 2 or isinstance(layer, BatchNorm1d)
                                    else probe),
        m_words=m_words[type(layer)],
        grad_x_statement=statements(layer)["x"].split(" = ", 1)[1],
        eps=repr(float(layer.eps)),
        how="How the code computes them: the closed forms, vectorised, every sum accumulated "
            "in float64." if style == "fast" else
            "How the code computes them: the computational graph node by node (mean, centred "
            "input, variance, inverse deviation, normalised input, scale and shift), then "
            "back through it, as the printouts draw it, in the dtype of x.",
        derived_layer=f"{instance.describe()} on a batch of {batch} (input {probe})",
        proof_how=proofs[0].how if proofs else "",
    )


def _backward_code_comment(printer, expr) -> str:
    """A chain module's comment: the closed form in the chain's names."""
    g, x = (printer._print(arg) for arg in expr.args)
    return f"(gamma / (m sigma)) (m {g} - sum {g} - xhat sum({g} xhat)), xhat of {x}"


# the generated code's printer learns the operator here, as the text and LaTeX ones do
GeneratedCodePrinter._print_NormalizationBackward = _backward_code_comment

#: The one entry every normalisation shares.
NORMALIZATION_NUMPY = NumpyKind(
    context=_context,
    backward_rule=("; dL/dgamma{number} = sum delta{number} xhat, "
                   "dL/dbeta{number} = sum delta{number}", ""),
)

for _layer_type in NORMALIZATION_TYPES:
    NUMPY.register(_layer_type, NORMALIZATION_NUMPY)
