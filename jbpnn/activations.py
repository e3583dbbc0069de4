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
    """

    fn: Callable[[Array], Array]
    backprop: Callable[[Array, Array], Array]
    output_only: bool = False


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


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(sigmoid, lambda o, g: o * (1 - o) * g),
    "tanh": Activation(jnp.tanh, lambda o, g: (1 - o**2) * g),
    "relu": Activation(jax.nn.relu, lambda o, g: jnp.where(o > 0, g, 0)),
    "identity": Activation(lambda net: net, lambda o, g: g),
    "softmax": Activation(softmax, _softmax_backprop, output_only=True),
}


# The article code's quirk (ARTICLE.md section 4, bug 1): "sigmoid" is tanh forward,
# with the logistic derivative O - O^2 backward. Only for article_mode.
ARTICLE_MODE_ACTIVATIONS: dict[str, Activation] = {
    **ACTIVATIONS,
    "sigmoid": Activation(jnp.tanh, lambda o, g: (o - o**2) * g),
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
