"""Forward mode by hand: a change of the weights and inputs carried forward to the outputs.

Where :func:`jbpnn.network.backward` carries the error back from the outputs, forward
mode carries a *tangent* (a direction ``(dw, db)`` for every layer and ``dx`` for the
input) forward through the same layers, the product rule applied to the article's
forward pass. For ONE example, layer by layer:

    net_j = sum_i w_ij O_i + theta_j      dnet_j = sum_i (w_ij dO_i + dw_ij O_i) + dtheta_j
    O_j = f(net_j)                        dO_j = f'(net_j) dnet_j          act.tangent(O, dnet)

starting from ``dO_0 = dx``; ``f'`` is written from the unit's output, from the same
table as the backward pass (:mod:`jbpnn.activations`: ``O (1 - O)`` for the sigmoid,
``(diag(O) - O O^T)`` for softmax; from the net input for swish, gelu, softplus and any
``uses="net"`` unit, :func:`jbpnn.activations.units`). Pearlmutter (1994) calls this the
forward R-pass: ``R{net} = dnet`` and ``R{O} = dO`` are what :mod:`jbpnn.curvature` starts from.

With ``params.article_mode`` the tangent is the article code's derivative, as the
backward is: its tanh "sigmoid" differentiated as ``O - O^2``, and the biases, which never
reach its forward pass, still moving ``net`` by ``dtheta``. It is then the transpose of
:func:`jbpnn.network.backward`'s rule, NOT the derivative of the forward pass.

The public entry is :func:`jbpnn.network.jvp` (batched, checked, jitted); ``jax.jvp``
through :func:`jbpnn.network.apply` runs this same pass.

No autodiff here: this module imports only the tables and the params.
"""

from __future__ import annotations

import jax

from jbpnn.activations import units
from jbpnn.params import MLP

__all__ = ["tangents"]

Array = jax.Array
Cache = tuple[Array, ...]


def tangents(
    params: MLP, cache: Cache, dparams: MLP, dx: Array | None
) -> tuple[tuple[Array, ...], tuple[Array | None, ...]]:
    """The forward R-pass of ONE example: ``dnet`` and ``dO`` of every layer.

    Args:
        params: the network.
        cache: from :func:`jbpnn.network.forward`, ``(x, O_1, ..., O_L)``.
        dparams: the direction of the weights, an :class:`MLP` shaped like ``params``
            (layer ``l``'s ``w`` of shape ``(n_in, n_out)``, ``b`` of shape ``(n_out,)``).
        dx: the direction of the input, shape ``(n_in,)``, or None when the input does
            not move (the weights only: no product ``dO_0 w_1`` is then formed).

    Returns:
        ``(dnets, douts)``: ``dnets`` one array per layer, input side first, layer ``l``'s
        of shape ``(n_out of layer l,)``; ``douts`` like the cache, ``(dx, dO_1, ..., dO_L)``,
        ``douts[-1]`` the tangent of the outputs.
    """
    acts = units(params, cache)  # the table's rows (bound to net_l where a unit uses it)
    do = dx
    dnets, douts = [], [do]
    for layer, dlayer, act, o_prev, o in zip(
        params.layers, dparams.layers, acts, cache[:-1], cache[1:]
    ):
        o_prev = o_prev.astype(layer.w.dtype)  # each layer in its own dtype (one dtype: no-op)
        dnet = o_prev @ dlayer.w + dlayer.b  # dnet = dO_prev w + O_prev dw + db
        if do is not None:
            dnet = dnet + do.astype(layer.w.dtype) @ layer.w
        assert act.tangent is not None  # every table row has one
        do = act.tangent(o, dnet)  # dO = f'(net) dnet, from the outputs (or net)
        dnets.append(dnet)
        douts.append(do)
    return tuple(dnets), tuple(douts)
