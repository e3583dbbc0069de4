"""Activation functions, each with its derivative written from the unit's output.

The article's backward pass never needs the net input: for every activation it
uses, f'(net) can be written from O = f(net) alone (ARTICLE.md section 1):

    sigmoid    O = 1 / (1 + exp(-net))     f'(net) = O (1 - O)
    tanh       O = tanh(net)               f'(net) = 1 - O^2
    relu       O = max(net, 0)             f'(net) = 1 if O > 0 else 0
    identity   O = net                     f'(net) = 1

``softmax`` couples the units of a layer, so its derivative is a Jacobian, not
a number per unit. Every entry therefore exposes ``backprop(o, g)``: the vector
``J(net)^T g`` written from the output, which for the element-wise activations
is simply ``f'(o) * g``. Softmax may only be an output layer.

Forward mode and curvature use two more entries, also from the output:
``tangent(o, r) = J r``, the change of the outputs when the net inputs move along
``r`` (every unit here has a symmetric ``J``, so it equals ``backprop(o, r)``), and
``second(o, r, g) = d/de [J(net + e r)^T g]``, how ``backprop`` itself changes
(Pearlmutter's R-operator applied to it; :mod:`jbpnn.curvature`):

    sigmoid    f''(net) = O (1 - O)(1 - 2 O)
    tanh       f''(net) = -2 O (1 - O^2)
    relu       f''(net) = 0                         (almost everywhere)
    identity   f''(net) = 0
    softmax    R{J^T g} = R{O} (g - <O, g>) - O <R{O}, g>,   R{O} = J r

Three more built-ins need the net input for their derivatives: they declare
``uses="net"`` and every derivative entry then takes the net input ``net`` in place of
``O`` (:func:`elementwise` builds them, as :func:`jbpnn.register_activation` builds a
user's unit). Where such a unit sits, the passes recompute its layer's net input from
the layer's input, ``net = O_prev w + theta`` (:func:`units`, :func:`bind`); the units
written from the output see no change at all:

    swish (SiLU)  O = net s(net),  s the sigmoid     f'(net) = s (1 + net (1 - s))
                                                     f''(net) = s (1 - s)(2 + net (1 - 2 s))
    gelu (exact)  O = net P(net),  P(x) = (1 + erf(x / sqrt 2)) / 2, p(x) = P'(x)
                                                     f'(net) = P + net p,  f''(net) = p (2 - net^2)
    softplus      O = log(1 + exp(net))              f'(net) = s(net),  f''(net) = s (1 - s)

``gelu`` is the exact one (the erf form, PyTorch's default), not
the tanh approximation.

The *article mode* (``MLP.article_mode=True``, never a default) swaps in
``ARTICLE_MODE_ACTIVATIONS``: the article code's ``sigmoid`` returns
``tanh(net)`` but differentiates it as ``O - O^2`` (ARTICLE.md section 4, bug 1),
so the gradient it follows is not the gradient of its error. It exists so a
gradient check can show the bug; see :func:`activation_table`.

User-defined units join these tables through :func:`jbpnn.register_activation`
(:mod:`jbpnn.units`), which checks their derivatives against autodiff first.

This module imports only JAX.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import erf

__all__ = [
    "ACTIVATIONS",
    "ARTICLE_MODE_ACTIVATIONS",
    "Activation",
    "BUILTIN_ACTIVATIONS",
    "UNIT_KINDS",
    "activation_table",
    "add_activation",
    "bind",
    "elementwise",
    "gelu",
    "get_activation",
    "is_builtin",
    "sigmoid",
    "softmax",
    "softplus",
    "swish",
    "units",
]

Array = jax.Array


class Activation(NamedTuple):
    """One row of the activation table.

    Attributes:
        fn: ``O = f(net)``, applied to a layer's net inputs, shape ``(n,)``.
        backprop: ``(O, g) -> J^T g``: the error ``g`` at the layer's outputs,
            carried back to its net inputs, using the outputs ``O`` only.
        output_only: True if the activation may only be used on the last layer.
        tangent: ``(O, r) -> J r``: a change ``r`` of the net inputs carried forward to
            the outputs (forward mode), from the outputs only.
        second: ``(O, r, g) -> d/de [J(net + e r)^T g]``: the change of
            ``backprop(O, g)`` when the net inputs move along ``r``; ``f''(net) r g``
            for the element-wise units. None where it is not derived (article mode, a
            user's unit registered without it): :func:`jbpnn.hvp` then refuses.
        uses: ``"output"``: ``backprop``, ``tangent`` and ``second`` take the layer's
            outputs ``O`` as their first argument; ``"net"``: they take its net inputs
            instead (swish, gelu, softplus). :func:`bind` gives the entry in the first
            form, for one layer's net inputs.
    """

    fn: Callable[[Array], Array]
    backprop: Callable[[Array, Array], Array]
    output_only: bool = False
    tangent: Callable[[Array, Array], Array] | None = None
    second: Callable[[Array, Array, Array], Array] | None = None
    uses: str = "output"


UNIT_KINDS = ("output", "net")  # what an activation's derivatives are written from


def sigmoid(net: Array) -> Array:
    """Logistic sigmoid 1 / (1 + exp(-net)), stable for any |net| (no overflow)."""
    return jax.nn.sigmoid(net)


def softmax(net: Array) -> Array:
    """exp(net_k - max) / sum_j exp(net_j - max): stable softmax over the last axis."""
    z = net - jnp.max(net, axis=-1, keepdims=True)
    # z <= 0 already: the select changes no value (NaN stays NaN) and no derivative, but
    # lets XLA's CPU emitter vectorize the exp inside a loop body, where it emitted it
    # one float at a time (4x the time: 39 of 530 us an update of 40 digits networks).
    e = jnp.exp(jnp.where(z > 0, 0, z))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _inner(a: Array, b: Array) -> Array:
    """``<a, b>`` over the last axis, kept as an axis of 1, written as a product with a
    column of ones: as ``jnp.sum(a * b, axis=-1)`` under ``jax.vmap`` over directions
    (``a`` shared, ``b`` batched), jaxlib 0.10's CPU backend (its YNN reduction fusion)
    returned wrong sums, 1.8x off, for 1000 rows or more (fixed in 0.11)."""
    return (a * b) @ jnp.ones((a.shape[-1], 1), jnp.result_type(a, b))


def _softmax_backprop(o: Array, g: Array) -> Array:
    # J = diag(O) - O O^T, so J^T g = O * (g - <O, g>).
    return o * (g - _inner(o, g))


def _softmax_second(o: Array, r: Array, g: Array) -> Array:
    # d/de of O * (g - <O, g>) with R{O} = J r: R{O} (g - <O, g>) - O <R{O}, g>.
    ro = _softmax_backprop(o, r)
    return ro * (g - _inner(o, g)) - o * _inner(ro, g)


def _sigmoid_backprop(o: Array, g: Array) -> Array:
    return o * (1 - o) * g  # f'(net) = O (1 - O)


def _tanh_backprop(o: Array, g: Array) -> Array:
    return (1 - o**2) * g  # f'(net) = 1 - O^2


def _relu_backprop(o: Array, g: Array) -> Array:
    return jnp.where(o > 0, g, 0)  # f'(net) = 1 if O > 0 else 0


def _identity_backprop(o: Array, g: Array) -> Array:
    return g


def swish(net: Array) -> Array:
    """Swish / SiLU: O = net s(net), with s the logistic sigmoid."""
    return net * jax.nn.sigmoid(net)


def gelu(net: Array) -> Array:
    """GELU, the exact (erf) form: O = net P(net), P(x) = (1 + erf(x / sqrt 2)) / 2."""
    return 0.5 * net * (1 + erf(net / math.sqrt(2)))


def softplus(net: Array) -> Array:
    """Softplus: O = log(1 + exp(net)), stable for any |net| (``logaddexp(net, 0)``)."""
    return jax.nn.softplus(net)


# 1 - s is written sigma(-net): the same number, without the cancellation of 1 - s near 1
# (at net 27 in float64, 1 - s kept 4 digits; softplus's f'' there was 1e-4 off).
def _swish_d(net: Array) -> Array:
    s, s_minus = jax.nn.sigmoid(net), jax.nn.sigmoid(-net)
    return s * (1 + net * s_minus)  # f'(net) = s (1 + net (1 - s))


def _swish_d2(net: Array) -> Array:
    s, s_minus = jax.nn.sigmoid(net), jax.nn.sigmoid(-net)
    return s * s_minus * (2 + net * (s_minus - s))  # f''(net) = s (1 - s)(2 + net (1 - 2 s))


def _normal_pdf(x: Array) -> Array:
    return jnp.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)  # p(x) = exp(-x^2 / 2) / sqrt(2 pi)


def _gelu_d(net: Array) -> Array:
    return 0.5 * (1 + erf(net / math.sqrt(2))) + net * _normal_pdf(net)  # f' = P + net p


def _gelu_d2(net: Array) -> Array:
    # f''(net) = p (2 - net^2); past |net| = 40 it rounds to 0 even in float64, where
    # net^2 may overflow and 0 * inf be NaN (|net| 1e155 in float64, 1e20 in float32)
    return jnp.where(jnp.abs(net) < 40, _normal_pdf(net) * (2 - net**2), 0.0)


def _softplus_d2(net: Array) -> Array:
    return jax.nn.sigmoid(net) * jax.nn.sigmoid(-net)  # f''(net) = s (1 - s)


def elementwise(
    fn: Callable[[Array], Array],
    derivative: Callable[[Array], Array],
    *,
    uses: str = "output",
    second: Callable[[Array], Array] | None = None,
    output_only: bool = False,
) -> Activation:
    """An element-wise unit's table row from ``f``, ``f'`` and (optionally) ``f''``.

    The derivatives are written from ``z``: the unit's output ``O`` (``uses="output"``,
    e.g. the sigmoid's ``O (1 - O)``) or its net input (``uses="net"``, e.g. softplus's
    ``s(net)``), and are applied unit by unit:

        backprop(z, g) = f'(z) g      tangent(z, r) = f'(z) r      second(z, r, g) = f''(z) r g

    No check here: :func:`jbpnn.register_activation` compares them with autodiff.
    """
    if uses not in UNIT_KINDS:
        raise ValueError(f"uses must be one of {UNIT_KINDS}, got {uses!r}")

    def backprop(z: Array, g: Array) -> Array:
        return derivative(z) * g  # J^T g = f'(net) g

    def second_rule(z: Array, r: Array, g: Array) -> Array:
        assert second is not None  # only used where second is given (below)
        return second(z) * r * g  # f''(net) r g

    return Activation(
        fn,
        backprop,
        output_only,
        tangent=backprop,  # J = diag(f'(net)) is symmetric
        second=None if second is None else second_rule,
        uses=uses,
    )


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(
        sigmoid,
        _sigmoid_backprop,
        tangent=_sigmoid_backprop,
        second=lambda o, r, g: o * (1 - o) * (1 - 2 * o) * r * g,  # f'' = O(1-O)(1-2O)
    ),
    "tanh": Activation(
        jnp.tanh,
        _tanh_backprop,
        tangent=_tanh_backprop,
        second=lambda o, r, g: -2 * o * (1 - o**2) * r * g,  # f'' = -2 O (1 - O^2)
    ),
    "relu": Activation(
        jax.nn.relu,
        _relu_backprop,
        tangent=_relu_backprop,
        second=lambda o, r, g: jnp.zeros_like(o * r * g),  # f'' = 0
    ),
    "identity": Activation(
        lambda net: net,
        _identity_backprop,
        tangent=_identity_backprop,
        second=lambda o, r, g: jnp.zeros_like(o * r * g),  # f'' = 0
    ),
    "softmax": Activation(
        softmax,
        _softmax_backprop,
        output_only=True,
        tangent=_softmax_backprop,  # J = diag(O) - O O^T is symmetric
        second=_softmax_second,
    ),
    # derivatives from the net input (uses="net"), built as a user's unit is
    "swish": elementwise(swish, _swish_d, uses="net", second=_swish_d2),
    "gelu": elementwise(gelu, _gelu_d, uses="net", second=_gelu_d2),
    "softplus": elementwise(softplus, jax.nn.sigmoid, uses="net", second=_softplus_d2),
}
BUILTIN_ACTIVATIONS: tuple[str, ...] = tuple(ACTIVATIONS)
_BUILTIN_ENTRIES = dict(ACTIVATIONS)  # as defined here: is_builtin compares against them


def is_builtin(name: str) -> bool:
    """Whether the activation ``name`` is still the built-in one (a registration with
    ``replace=True`` may have put another unit under a built-in's name)."""
    entry, first = ACTIVATIONS.get(name), _BUILTIN_ENTRIES.get(name)
    return entry is not None and first is not None and entry == first


# The article code's quirk (ARTICLE.md section 4, bug 1): "sigmoid" is tanh forward,
# with the logistic derivative O - O^2 backward. Only for article_mode.
ARTICLE_MODE_ACTIVATIONS: dict[str, Activation] = {
    **ACTIVATIONS,
    "sigmoid": Activation(
        jnp.tanh, lambda o, g: (o - o**2) * g, tangent=lambda o, r: (o - o**2) * r
    ),
}


def activation_table(article_mode: bool = False) -> dict[str, Activation]:
    """The table in force: the correct one, or the article code's buggy one."""
    return ARTICLE_MODE_ACTIVATIONS if article_mode else ACTIVATIONS


def get_activation(name: str) -> Activation:
    """Look an activation up by name; raise ``ValueError`` listing valid names."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}. A unit of "
            "your own must be registered (jbpnn.register_activation) in this process first: "
            "import the module that registers it"
        ) from None


def add_activation(name: str, act: Activation) -> None:
    """Put ``act`` in the tables under ``name`` (both modes; the article's sigmoid stays).

    No check here: :func:`jbpnn.register_activation` checks the name and the derivatives.
    """
    ACTIVATIONS[name] = act
    if name != "sigmoid":  # the article code's quirk is its own
        ARTICLE_MODE_ACTIVATIONS[name] = act


def bind(act: Activation, net: Array) -> Activation:
    """``act`` with its derivatives written from the outputs, for one layer's ``net``.

    A ``uses="output"`` row is returned as it is. A ``uses="net"`` row comes back with
    ``backprop(O, g)``, ``tangent(O, r)`` and ``second(O, r, g)`` that ignore ``O`` and
    read ``net`` instead, so every pass (and every loss's delta) calls any unit alike.
    """
    if act.uses != "net":
        return act
    tangent, second = act.tangent, act.second
    return act._replace(
        backprop=lambda o, g: act.backprop(net, g),
        tangent=None if tangent is None else (lambda o, r: tangent(net, r)),
        second=None if second is None else (lambda o, r, g: second(net, r, g)),
    )


def units(params: Any, cache: tuple[Array, ...]) -> list[Activation]:
    """Every layer's table row, bound (:func:`bind`) to its net inputs where it uses them.

    Args:
        params: the network (an :class:`~jbpnn.params.MLP`: its layers, activation
            names and mode).
        cache: from :func:`jbpnn.network.forward`, ``(x, O_1, ..., O_L)``, for one example
            or a batch (every entry with a leading batch axis).

    Returns:
        One :class:`Activation` per layer, input side first. A layer whose unit uses the
        net input gets it recomputed from the cache, ``net_l = O_{l-1} w_l + theta_l``
        (the forward pass's formula: no bias in article mode); the others are the table's
        rows as they are, so their passes are unchanged.
    """
    table = activation_table(params.article_mode)
    acts = []
    for layer, name, o_prev in zip(params.layers, params.activations, cache[:-1]):
        act = table[name]
        if act.uses == "net":  # in the layer's dtype (a network's layers may differ)
            o_prev = o_prev.astype(layer.w.dtype)
            net = o_prev @ layer.w if params.article_mode else o_prev @ layer.w + layer.b
            act = bind(act, net)
        acts.append(act)
    return acts
