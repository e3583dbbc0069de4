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

The *article mode* (``MLP.article_mode=True``, never a default) swaps in
``ARTICLE_MODE_ACTIVATIONS``: the article code's ``sigmoid`` returns
``tanh(net)`` but differentiates it as ``O - O^2`` (ARTICLE.md section 4, bug 1),
so the gradient it follows is not the gradient of its error. It exists so a
gradient check can show the bug; see :func:`activation_table`.

This module imports only JAX.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "ACTIVATIONS",
    "ARTICLE_MODE_ACTIVATIONS",
    "Activation",
    "activation_table",
    "get_activation",
    "sigmoid",
    "softmax",
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
            for the element-wise units. None where it is not derived (article mode).
    """

    fn: Callable[[Array], Array]
    backprop: Callable[[Array, Array], Array]
    output_only: bool = False
    tangent: Callable[[Array, Array], Array] | None = None
    second: Callable[[Array, Array, Array], Array] | None = None


def sigmoid(net: Array) -> Array:
    """Logistic sigmoid 1 / (1 + exp(-net)), stable for any |net| (no overflow)."""
    return jax.nn.sigmoid(net)


def softmax(net: Array) -> Array:
    """exp(net_k - max) / sum_j exp(net_j - max): stable softmax over the last axis."""
    e = jnp.exp(net - jnp.max(net, axis=-1, keepdims=True))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _softmax_backprop(o: Array, g: Array) -> Array:
    # J = diag(O) - O O^T, so J^T g = O * (g - <O, g>).
    return o * (g - jnp.sum(o * g, axis=-1, keepdims=True))


def _softmax_second(o: Array, r: Array, g: Array) -> Array:
    # d/de of O * (g - <O, g>) with R{O} = J r: R{O} (g - <O, g>) - O <R{O}, g>.
    ro = _softmax_backprop(o, r)
    return ro * (g - jnp.sum(o * g, axis=-1, keepdims=True)) - o * jnp.sum(
        ro * g, axis=-1, keepdims=True
    )


def _sigmoid_backprop(o: Array, g: Array) -> Array:
    return o * (1 - o) * g  # f'(net) = O (1 - O)


def _tanh_backprop(o: Array, g: Array) -> Array:
    return (1 - o**2) * g  # f'(net) = 1 - O^2


def _relu_backprop(o: Array, g: Array) -> Array:
    return jnp.where(o > 0, g, 0)  # f'(net) = 1 if O > 0 else 0


def _identity_backprop(o: Array, g: Array) -> Array:
    return g


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
}


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
            f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}"
        ) from None
