"""The batch gradient of many networks that share their mini-batch, in one pass.

:func:`jbpnn.many.train_many` is ``jax.vmap`` of the one training core. Where every
network sees the same mini-batch, ``vmap`` of :func:`jbpnn.network.loss_and_gradient_kernel`
lays the activations out example-major per network, ``(N, batch, units)``, and XLA then
transposes them to and from the one large product that the first layer of all networks
is. This module holds the same formulas (ARTICLE.md section 1, the same
:mod:`jbpnn.activations` and :mod:`jbpnn.losses` tables) written once for ``N``
networks, with every layer's outputs held unit-major, ``A_l[n, j, b]`` (network ``n``,
unit ``j``, example ``b``), so that each formula is one batched product and the first
layer of all networks is ONE matrix product with the shared inputs::

    forward    net_l[n, j, b] = sum_i w_l[n, i, j] O_{l-1}[n, i, b] + theta_l[n, j]
               O_l = f(net_l)                      (O_0 = X^T, the same for every network)
    output     Err_L = the loss's delta             (-dE/dnet, per example)
    hidden     Err_l = J_l^T sum_k w_{l+1}[n, j, k] Err_{l+1}[n, k, b]
                                      (J_l from O_l; from net_l, kept, where the unit uses it)
    gradient   dE/dw_l[n, i, j] = -sum_b s_b O_{l-1}[n, i, b] Err_l[n, j, b]
               dE/dtheta_l[n, j] = -sum_b s_b Err_l[n, j, b]

with ``s`` the normalised sample weights. The params keep their own layout (``w`` of
shape ``(N, n_in, n_out)``): only the kernel's intermediates are laid out differently.

:data:`ensemble_loss_and_gradient` is a drop-in ``grad_fn`` (the signature of
:data:`jbpnn.network.GradFn`): called for ONE network it IS
``loss_and_gradient_kernel``; under ``jax.vmap`` over the params with the batch
shared (unbatched), its batching rule (``jax.custom_batching.custom_vmap``) runs
:func:`ensemble_kernel` once for all networks instead. Any other batching (each
network its own batch) falls back to ``vmap`` of the core kernel. The tests check the
ensemble kernel against the core kernel (``tests/test_ensemble.py``). No autodiff here.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jbpnn.activations import activation_table, bind
from jbpnn.losses import LOSSES
from jbpnn.network import loss_and_gradient_kernel, normalised_weights
from jbpnn.params import MLP, Layer

__all__ = ["FEW_UNITS", "ensemble_kernel", "ensemble_loss_and_gradient"]

Array = jax.Array

# A layer of at most this many units sends its deltas back, sum_k w_jk Err_k, as a
# multiply-and-sum that XLA fuses into one loop instead of N small batched products
# (64 digits networks, 64-64-10, one CPU device: 0.89-0.92x the epoch time of the
# batched product, which ran as a plain dot; experiments/core_targets.py, row f).
FEW_UNITS = 10


def _per_example(fn: Any, *shared: bool) -> Any:
    """``fn`` of one example's unit vectors, applied to ``(N, units, batch)`` arrays
    (an argument marked ``shared`` is ``(units, batch)``, the same for every network)."""
    over_batch = jax.vmap(fn, in_axes=-1, out_axes=-1)
    return jax.vmap(over_batch, in_axes=tuple(None if s else 0 for s in shared), out_axes=0)


def ensemble_kernel(
    params: MLP, X: Array, Y: Array, sample_weight: Array | None = None
) -> tuple[Array, MLP]:
    """Every network's ``loss_and_gradient_kernel(params[n], X, Y, sample_weight)``, at once.

    Args:
        params: ``N`` stacked networks (every ``w`` of shape ``(N, n_in, n_out)``).
        X: the shared inputs, shape ``(batch, n_in)``.
        Y: the shared targets, shape ``(batch, n_out)``.
        sample_weight: shape ``(batch,)`` or None (all equal).

    Returns:
        ``(loss, grads)``, the (weighted) mean loss of each network, shape ``(N,)``, and
        ``dE/dtheta`` with the params' structure (leading axis ``N``).
    """
    table = activation_table(params.article_mode)
    acts = [table[name] for name in params.activations]
    loss = LOSSES[params.loss]
    dtype = params.layers[0].w.dtype
    s = normalised_weights(X.shape[0], dtype, sample_weight)
    # forward: O_l[n, j, b]; layer 1 is one product of the shared X with every network's w
    outs, nets = [], []
    o = None
    for l, (layer, act) in enumerate(zip(params.layers, acts)):
        if l == 0:
            net = jnp.einsum("nij,bi->njb", layer.w, X)  # net_j = sum_i w_ij O_i
        else:
            net = jnp.einsum("nij,nib->njb", layer.w, o)
        if not params.article_mode:  # the article code's biases never reach the forward pass
            net = net + layer.b[:, :, None]  # + theta_j
        o = _per_example(act.fn, False)(net)  # O_j = f(net_j)
        outs.append(o)
        nets.append(net if act.uses == "net" else None)  # kept only where f' needs it
    assert o is not None  # a network has at least one layer
    YT = Y.T.astype(o.dtype)
    if loss.error_net is None:  # E per network and example
        errors = _per_example(loss.error, False, True)(o, YT)
    else:  # the log losses from the output layer's net inputs (exact where O rounds to 0, 1)
        errors = _per_example(loss.error_net, False, True)(net, YT)
    mean_loss = errors @ s
    # backward: Err_L from the loss table, then Err_j = J^T sum_k w_jk Err_k
    if acts[-1].uses == "net":  # the output unit's rows bound to each example's net
        err = _per_example(
            lambda o1, n1, y1: loss.delta(o1, y1, bind(acts[-1], n1)), False, False, True
        )(o, nets[-1], YT)
    else:
        err = _per_example(lambda o1, y1: loss.delta(o1, y1, acts[-1]), False, True)(o, YT)
    grads: list[Any] = [None] * len(params.layers)  # a Layer each, from the output side
    for l in range(len(params.layers) - 1, -1, -1):
        weighted = err * s[None, None, :]  # s_b Err_j (err: network, unit, example)
        if l == 0:
            gw = -jnp.einsum("bi,njb->nij", X, weighted)  # dE/dw_ij = -sum_b s O_i Err_j
        else:
            gw = -jnp.einsum("nib,njb->nij", outs[l - 1], weighted)
        grads[l] = Layer(w=gw, b=-jnp.sum(weighted, axis=-1))  # dE/dtheta_j = -sum_b s Err_j
        if l > 0:
            w = params.layers[l].w
            if w.shape[-1] <= FEW_UNITS:  # e.g. a classifier's outputs: one fused loop
                back = jnp.sum(w[:, :, :, None] * err[:, None, :, :], axis=2)  # sum_k w_jk Err_k
            else:
                back = jnp.einsum("nij,njb->nib", w, err)  # sum_k w_jk Err_k
            z = nets[l - 1] if acts[l - 1].uses == "net" else outs[l - 1]  # f' from O or net
            err = _per_example(acts[l - 1].backprop, False, False)(z, back)
    return mean_loss, params.replace_layers(grads)


@jax.custom_batching.custom_vmap
def ensemble_loss_and_gradient(
    params: MLP, X: Array, Y: Array, sample_weight: Array | None = None
) -> tuple[Array, MLP]:
    """:func:`jbpnn.network.loss_and_gradient_kernel`; under ``vmap`` over the params
    with the batch shared, :func:`ensemble_kernel` for all networks at once."""
    return loss_and_gradient_kernel(params, X, Y, sample_weight)


@ensemble_loss_and_gradient.def_vmap
def _ensemble_rule(axis_size, in_batched, params, X, Y, sample_weight=None):
    p_batched, *data_batched = in_batched
    shared = not any(jax.tree.leaves(data_batched)) and all(jax.tree.leaves(p_batched))
    if shared:
        out = ensemble_kernel(params, X, Y, sample_weight)
    else:  # each network its own batch: the core kernel, vmapped
        axes = (0, *(jax.tree.map(lambda b: 0 if b else None, d) for d in data_batched))
        params = jax.tree.map(
            lambda a, b: a if b else jnp.broadcast_to(a, (axis_size, *a.shape)),
            params,
            p_batched,
        )
        out = jax.vmap(loss_and_gradient_kernel, in_axes=axes)(params, X, Y, sample_weight)
    return out, jax.tree.map(lambda _: True, out)
