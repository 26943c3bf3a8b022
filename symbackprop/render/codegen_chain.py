"""Render stage (NumPy) for a chain of layers: Sequential -> one standalone module.

Every layer of the chain gets the code of its own generated module (the same
plan, read off its own derivation and checked): the template blocks that hold
its constants, its output size and its unchecked ``_forward``/``_backward`` are
rendered and placed, one level deeper, inside a function ``_layer_<l>()`` that
returns them, with the layer's formulas as its docstring.  The module then
chains them: ``forward`` runs ``a_l = layer_l(a_{l-1})``; ``backward`` runs the
forward pass once, keeping every ``a_l``, and goes back one boundary at a time,
``delta_{l-1} = backward_l(a_{l-1}, delta_l)``, collecting each layer's
parameter gradients on the way.  A residual block's sum is one line each way:
``a_l = a_f + a_{l-1}`` forward; backward ``delta_{l-1} = delta_l`` to the block, and
``delta_l`` added to the error term of the block's input ``a_f`` once the block's
first layer has handed its own back (the identity path).
"""

from __future__ import annotations

import json

import jinja2

from symbackprop.core.layers import Residual, ResidualSum, Sequential
from symbackprop.core.operators import chain_names, chain_rule
from symbackprop.render.codegen import NUMPY, GeneratedCodePrinter, NumpyKind, layer_context
from symbackprop.render.templating import python_environment

__all__ = ["render_blocks", "chain_context", "regenerate_lines", "backward_rule"]

_LAYER_BLOCKS = ("description", "constants", "output_size", "kernels")
#: Blocks a chain leaves out of its layers: constants only the argument checks use.
_OMITTED_BLOCKS = ("api_constants",)


def _template_chain(name: str) -> list[jinja2.Template]:
    """The template ``name`` and the templates it extends, child first."""
    environment = python_environment()
    chain = []
    while name is not None:
        chain.append(environment.get_template(name))
        source = environment.loader.get_source(environment, name)[0]
        parents = [node.template.value
                   for node in environment.parse(source).find_all(jinja2.nodes.Extends)]
        name = parents[0] if parents else None
    return chain


def render_blocks(template_name: str, context: dict, names=_LAYER_BLOCKS,
                  omit=_OMITTED_BLOCKS) -> dict:
    """``{block: text}``: single blocks of a template, as the whole template would render them.

    Blocks inherited from a parent template and blocks nested in others resolve as
    in a full render (the child's version wins); blocks named in ``omit`` render
    empty wherever they are nested.
    """
    chain = _template_chain(template_name)
    render_context = chain[0].new_context(context)
    for template in chain[1:]:
        for block, function in template.blocks.items():
            render_context.blocks.setdefault(block, []).append(function)
    for block in omit:  # the first function of a block is the one that renders
        render_context.blocks.setdefault(block, []).insert(0, lambda _context: iter(()))
    return {name: "".join(render_context.blocks[name][0](render_context))
            for name in names if name in render_context.blocks}


def step_rule(number: int, layer, g=None):
    """The expression of layer ``number``'s ``delta{number - 1}`` (its kind's
    :func:`~symbackprop.core.operators.chain_rule`), ``g`` replacing ``delta{number}``."""
    names = chain_names(f"delta{number}", f"a{number - 1}",
                        f"w{number}" if "w" in layer.parameter_names else None)
    if g is not None:
        names["g"] = g
    return chain_rule(layer, names)


def backward_rule(number: int, layer) -> str:
    """Layer ``number``'s backward step with its numbers: the kind's rule printed, then
    its words (``backward_rule``)."""
    words, bias = NUMPY[layer].backward_rule
    names = dict(number=number, previous=number - 1)
    words = words.format(bias=bias.format(**names) if getattr(layer, "bias", False) else "",
                         **names)
    return f"delta{number - 1} = {GeneratedCodePrinter().doprint(step_rule(number, layer))}" \
        + words


def regenerate_lines(chain: Sequential) -> list[str]:
    """``symbackprop generate sequential --spec '[...]'`` with one layer per line.

    The JSON spans lines inside the shell's single quotes, so the command can be
    pasted into a shell as it stands.
    """
    lines = ["symbackprop generate sequential --spec '["]
    specs = chain.spec()["layers"]
    for position, spec in enumerate(specs):
        lines += _spec_lines(spec, "    ", "," if position < len(specs) - 1 else "")
    lines.append("]'")
    return lines


def _spec_lines(value, indent: str, comma: str, key: str = "") -> list[str]:
    """``value`` as JSON lines: on one line when it fits in 80 characters, else one item
    (of a dict or a list, such as a residual block's layers) per line."""
    text = key + json.dumps(value)
    if len(indent) + len(text) <= 84 or not isinstance(value, (dict, list)) or not value:
        return [f"{indent}{text}{comma}"]
    opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
    items = list(value.items()) if isinstance(value, dict) else [(None, v) for v in value]
    lines = [f"{indent}{key}{opening}"]
    for index, (name, item) in enumerate(items):
        lines += _spec_lines(item, indent + "    ", "," if index < len(items) - 1 else "",
                             "" if name is None else f"{json.dumps(name)}: ")
    lines.append(f"{indent}{closing}{comma}")
    return lines


def _input_shape_spec(chain: Sequential) -> tuple:
    """The shape ``x`` must have: letters for free sizes, ints for fixed ones."""
    for layer in chain.layers:
        if isinstance(layer, ResidualSum):
            continue
        entry = NUMPY[layer]
        if entry.input_shape is not None:
            return entry.input_shape(layer)
    return ("N", "C", "H", "W")


def _shape_lines(number: int, layer, rank: int, channels) -> tuple[list[str], int, object]:
    """Code that turns ``shape`` into layer ``number``'s output shape, checking it fits.

    Also returns the rank and channel count after the layer (``None``: not fixed);
    a layer that cannot follow the one before is refused here, at generation.
    """
    if isinstance(layer, ResidualSum):
        return [f"_expect_same(shapes[{number - 1 - layer.span}], shape, {number})"], rank, \
            channels
    chain_shape = NUMPY[layer].chain_shape
    if chain_shape is None:
        return [], rank, channels  # the layer keeps the shape
    return chain_shape(number, layer, rank, channels)


def _step(number: int, layer, style: str) -> dict:
    return step_lines(number, layer, layer_context(layer, style))


def step_lines(number: int, layer, context: dict) -> dict:
    """One layer's part of a chain module, from the context of its own module (whatever
    the target: the NumPy one or the array API's): its code as nested functions, the
    lines that call them, its names in the chain."""
    blocks = render_blocks(context["template"], context)
    has_output_size = bool(blocks.get("output_size", "").strip())
    params = [f"{name}{number}" for name in layer.parameter_names]
    arguments = ", ".join([f"a{number - 1}", *params])
    results = [f"delta{number - 1}", *(f"grad_{name}" for name in params)]
    backward_target = ", ".join(results) if params else f"(delta{number - 1},)"
    return dict(
        number=number,
        title=layer.describe(),
        entry=NUMPY[layer],
        params=params,
        own_names=", ".join(["x", *layer.parameter_names]),
        chain_names=", ".join([f"a{number - 1}", *params]),
        description=blocks["description"],
        code="".join(blocks.get(name, "") for name in ("constants", "output_size", "kernels")),
        returns="_forward, _backward" + (", output_size" if has_output_size else ""),
        unpacked=", ".join([f"_forward_{number}", f"_backward_{number}"]
                           + ([f"_output_size_{number}"] if has_output_size else [])),
        forward_line=f"a{number} = _forward_{number}({arguments})",
        backward_line=f"{backward_target} = _backward_{number}({arguments}, delta{number})",
        rule=backward_rule(number, layer),
        is_sum=False,
        identity_lines=[],
    )


def _sum_step(number: int, layer: ResidualSum) -> dict:
    """A residual sum's lines: ``a_l = a_f + a_{l-1}``, ``delta_{l-1} = delta_l``."""
    fork = number - 1 - layer.span
    first = fork + 1
    block = f"layer {first}" if first == number - 1 else f"layers {first}-{number - 1}"
    return dict(
        number=number, is_sum=True, entry=None, params=[],
        title=f"residual sum a{number} = a{fork} + a{number - 1} (the block: {block})",
        chain_names=f"a{fork}, a{number - 1}",
        forward_line=f"a{number} = a{fork} + a{number - 1}",
        backward_line=f"delta{number - 1} = delta{number}",
        rule=f"delta{number - 1} = delta{number}   (to the block's output; delta{number} also "
             f"goes to delta{fork}: the identity path)",
        identity_lines=[],
    )


def chain_context(chain: Sequential, style: str = "fast", strategy=None) -> dict:
    """The values ``templates/sequential.py.j2`` places; each layer's code in ``style``."""
    from symbackprop.core.naming import module_name

    if isinstance(chain, Residual):  # a residual block on its own: the chain of it
        chain = Sequential(chain)
    input_spec = _input_shape_spec(chain)
    rank, channels = len(input_spec), input_spec[1] if isinstance(input_spec[1], int) else None
    steps = []
    for number, layer in enumerate(chain.layers, 1):
        if isinstance(layer, ResidualSum):
            step = _sum_step(number, layer)
        else:
            step = _step(number, layer, style)
        step["shape_lines"], rank, channels = _shape_lines(number, layer, rank, channels)
        steps.append(step)
    for step in steps:
        if step.get("is_sum"):
            # the identity path: delta_l joins the error term of the block's input once
            # the block's first layer has handed back its own
            first = steps[step["number"] - 1 - chain.layers[step["number"] - 1].span]
            fork = first["number"] - 1
            first["identity_lines"].append(
                f"delta{fork} = delta{fork} + delta{step['number']}")
    combined = []
    for step, following in zip(steps, steps[1:]):
        if step.get("is_sum") or following.get("is_sum"):
            continue
        if step["entry"].elementwise and following["entry"].upsamples:
            # the activation's rule applied to what the layer after it hands back
            number = step["number"]
            rule = step_rule(number, chain.layers[number - 1],
                             g=step_rule(number + 1, chain.layers[number]))
            combined.append(f"delta{number - 1} = {GeneratedCodePrinter().doprint(rule)}   "
                            f"(layers {number} and {number + 1})")
    parameters = list(chain.parameter_names)
    last = len(chain.layers)
    return dict(
        template="sequential.py.j2",
        title=f"Sequential: {chain.describe()}",
        module=module_name(chain),
        command_lines=regenerate_lines(chain),
        parameters_signature=", ".join(parameters),
        parameter_names=parameters,
        parameter_shapes=[(name, str(shape)) for name, shape in chain.parameter_shapes.items()],
        gradients_signature=", ".join(["grad_x", *(f"grad_{name}" for name in parameters)]),
        exports=["forward", "backward", "output_shapes"],
        input_spec="(" + ", ".join(json.dumps(size) for size in input_spec) + ")",
        input_text="(" + ", ".join(map(str, input_spec)) + ")",
        steps=steps,
        combined=combined,
        gradients_returned=["delta0", *(f"grad_{name}" for name in parameters)],
        # the shape checks output_shapes calls: the module defines only these
        checks_used=sorted({line.split("(")[0] for step in steps for line in step["shape_lines"]
                            if line.startswith("_expect_")}),
        last=last,
        has_residual=any(step["is_sum"] for step in steps),
    )


NUMPY.register(Sequential, NumpyKind(context=chain_context))
NUMPY.register(Residual, NumpyKind(context=chain_context))
