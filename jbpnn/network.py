"""Forward and backward passes, written by hand from the article's formulas.

For one example (ARTICLE.md section 1), layer by layer:

    forward    net_j = sum_i w_ij O_i + theta_j          O_j = f(net_j)
    output     Err_k = f'(net_k) (T_k - O_k)             (mse; see jbpnn.losses)
    hidden     Err_j = f'(net_j) sum_k Err_k w_jk        (weights before the update)
    gradient   dE/dw_ij = -Err_j O_i                     dE/dtheta_j = -Err_j

With ``params.article_mode`` (never a default) the same code reproduces the
article code's bugs: biases skipped in the forward pass but still "updated",
and its tanh-valued "sigmoid" differentiated as ``O - O^2``.

``Err`` is ``-dE/dnet`` (the sign convention of :mod:`jbpnn.losses`), every
``f'`` is written from the unit's output ``O`` (for the units that need their net input,
swish, gelu, softplus and a user's ``uses="net"`` unit, from ``net``, recomputed from the
cache as ``O_prev w + theta``: :func:`jbpnn.activations.units`), and :func:`backward` returns
*gradients* ``dE/dtheta`` with the structure of the params, so one step of the
article's online rule ``w_ij += l Err_j O_i`` is ``p - l * g``.

The one-example functions (:func:`forward`, :func:`deltas`, :func:`backward`,
:func:`example_loss`) are batched with ``jax.vmap`` into :func:`predict`,
:func:`loss`, :func:`batch_gradient`, :func:`loss_and_gradient` and
:func:`per_example_grads`, which check their inputs (shapes, NaN/inf) in
Python before calling a ``jax.jit``-compiled kernel.

Forward mode: :func:`jvp` carries a direction of the weights and inputs forward
(:mod:`jbpnn.tangents`, the same tables), and :func:`apply` composes with JAX both ways:
``jax.grad`` through it runs the hand backward, ``jax.jvp`` the hand forward tangent.

No autodiff on the training path. The one ``jax.jvp`` call (in ``hand_linear``'s rules)
differentiates the hand rules' own code when a user nests forward mode over a derivative
of :func:`apply` (``jax.hessian``); nothing in training reaches it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, overload

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
from jax.api_util import shaped_abstractify
from jax.interpreters import ad, batching, mlir
from jax.typing import ArrayLike

from jbpnn import checks
from jbpnn.activations import activation_table, units
from jbpnn.losses import LOSSES, check_target_domain
from jbpnn.params import MLP, Layer, check_network
from jbpnn.process import guarded
from jbpnn.tangents import tangents

__all__ = [
    "GradFn",
    "accuracy_kernel",
    "r2_kernel",
    "apply",
    "backward",
    "batch_gradient",
    "check_batch",
    "check_direction",
    "require_targets",
    "deltas",
    "example_loss",
    "forward",
    "jvp",
    "jvp_kernel",
    "loss",
    "loss_and_gradient",
    "loss_and_gradient_kernel",
    "loss_kernel",
    "per_example_grads",
    "predict",
    "predict_kernel",
]

Array = jax.Array
Cache = tuple[Array, ...]

# The gradient function, one signature everywhere (train(grad_fn=), gradcheck(grad_fn=)):
# grad_fn(params, X, Y, sample_weight) -> (loss, grads), where X is (B, n_in), Y is
# (B, n_out), sample_weight is (B,) non-negative, loss is the scalar batch mean of the
# per-example errors weighted by sample_weight (sum_n s_n E_n / sum_n s_n), and grads is
# dE/dtheta of that loss (a gradient, not a descent direction) with the params' structure.
# loss_and_gradient_kernel is the hand-derived one; jax.value_and_grad(loss_kernel) another.
GradFn = Callable[[MLP, Array, Array, Array], tuple[Array, Any]]


# ---------------------------------------------------------------- one example
def forward(params: MLP, x: ArrayLike) -> tuple[Array, Cache]:
    """Forward pass of ONE example.

    Args:
        params: the network.
        x: one input, shape ``(n_in,)``, cast to the params' dtype.

    Returns:
        ``(y, cache)``: the output ``y`` of shape ``(n_out,)``, and ``cache``, the
        outputs of every layer with the input first: ``(x, O_1, ..., O_L)``,
        ``cache[-1] is y``. That is all :func:`backward` needs. Each layer computes in
        its own dtype (a network built by ``MLP.from_layers`` from layers of several
        dtypes): its input is cast to its ``w``'s dtype, its output ``O_l`` has it.
    """
    check_network(params, "forward")  # shapes and names, before anything is traced
    x = jnp.asarray(x, params.dtype)  # inputs are cast to the params' dtype (as in apply)
    _check_length(x.shape, params.n_in, "data", "input")
    table = activation_table(params.article_mode)
    o = x
    cache = [o]
    for layer, name in zip(params.layers, params.activations):
        o = o.astype(layer.w.dtype)  # each layer computes in its own dtype (one dtype: no-op)
        if params.article_mode:  # the article code's bias units never reach the forward pass
            net = o @ layer.w
        else:
            net = o @ layer.w + layer.b  # net_j = sum_i w_ij O_i + theta_j
        o = table[name].fn(net)  # O_j = f(net_j)
        cache.append(o)
    return o, tuple(cache)


def deltas(params: MLP, cache: Cache, y: ArrayLike) -> tuple[Array, ...]:
    """The article's errors ``Err = -dE/dnet`` of every layer, for ONE example.

    Args:
        params: the network.
        cache: from :func:`forward`.
        y: the example's targets ``T``, shape ``(n_out,)``.

    Returns:
        One array per layer, input side first; entry ``l`` has shape
        ``(n_out of layer l,)`` and layer ``l``'s dtype. Positive means the unit's net
        input should grow.
    """
    y = jnp.asarray(y, params.dtype)  # inputs are cast to the params' dtype
    _check_length(y.shape, params.n_out, "target", "output")
    _check_cache(params, cache)
    acts = units(params, cache)  # the table's rows (bound to net_l where a unit uses it)
    # Output layer: Err_k = f'(net_k)(T_k - O_k) for mse, T_k - O_k for the log losses.
    delta = LOSSES[params.loss].delta(cache[-1], y.astype(cache[-1].dtype), acts[-1])
    errs = [delta]
    for l in range(len(params.layers) - 1, 0, -1):  # noqa: E741
        # Hidden layer: Err_j = f'(net_j) sum_k Err_k w_jk, with w from before any update
        # (the sum in layer l's dtype, Err_j in layer l-1's: with one dtype the cast is a no-op).
        back = (params.layers[l].w @ delta).astype(cache[l].dtype)  # sum_k w_jk Err_k
        delta = acts[l - 1].backprop(cache[l], back)
        errs.append(delta)
    return tuple(reversed(errs))


def _check_cache(params: MLP, cache: Any) -> None:
    """A forward cache of these params: ``(x, O_1, ..., O_L)``, entry ``l`` of width
    ``sizes[l]`` (shapes only: traced values pass). Another network's, or a cut one, met a
    broadcasting error deep in JAX."""
    sizes = params.sizes
    if not isinstance(cache, (tuple, list)) or len(cache) != len(sizes):
        n = len(cache) if isinstance(cache, (tuple, list)) else type(cache).__name__
        raise ValueError(
            f"cache must be forward(params, x)'s (x, O_1, ..., O_L): {len(sizes)} arrays for "
            f"this {len(sizes) - 1}-layer network, got {n}"
        )
    widths = [int(np.shape(a)[-1]) if np.ndim(a) else 0 for a in cache]
    if widths != list(sizes):
        raise ValueError(
            f"cache holds layers of widths {widths}, this network's are {list(sizes)}: "
            "give deltas/backward the cache forward made from the same params"
        )


def backward(params: MLP, cache: Cache, y: ArrayLike) -> MLP:
    """Gradient ``dE/dtheta`` of ONE example's error, from the article's deltas.

    Args:
        params: the network.
        cache: from :func:`forward` on the same params and example.
        y: the example's targets, shape ``(n_out,)``.

    Returns:
        An :class:`MLP` of the same structure as ``params`` whose layer ``l``
        holds ``w = -outer(O_{l-1}, Err_l)`` (``dE/dw_ij = -O_i Err_j``) and
        ``b = -Err_l``, each in its layer's dtype. Gradient descent is ``p - lr * g``.
    """
    errs = deltas(params, cache, y)
    grads = []
    for o_prev, err, layer in zip(cache[:-1], errs, params.layers):
        o_prev = o_prev.astype(layer.w.dtype)  # the layer's input, as forward multiplied it
        # dE/dw_ij = -O_i Err_j, dE/dtheta_j = -Err_j
        grads.append(Layer(w=-jnp.outer(o_prev, err), b=-err))
    return params.replace_layers(grads)


def example_loss(params: MLP, x: ArrayLike, y: ArrayLike) -> Array:
    """The error ``E`` of ONE example, e.g. ``1/2 sum_k (T_k - O_k)^2`` for mse."""
    _, cache = forward(params, x)
    return _error(params, cache, jnp.asarray(y, params.dtype))


def _error(params: MLP, cache: Cache, y: Array) -> Array:
    """``E`` of one example (or, under ``vmap``, of each) from its forward ``cache``: the
    log losses from the output layer's net inputs (``Loss.error_net``, recomputed as the
    forward pass computes them, which XLA merges), exact where an output rounds to 0 or
    1; any other loss from the outputs."""
    loss = LOSSES[params.loss]
    y = y.astype(cache[-1].dtype)  # the output layer's dtype (one dtype: a no-op)
    if loss.error_net is None:
        return loss.error(cache[-1], y)
    last = params.layers[-1]
    o_prev = cache[-2].astype(last.w.dtype)  # the output layer's input, as forward has it
    net = o_prev @ last.w if params.article_mode else o_prev @ last.w + last.b
    return loss.error_net(net, y)


# ---------------------------------------------------------------- compiled batched kernels
_batched_forward = jax.vmap(forward, in_axes=(None, 0))
_batched_deltas = jax.vmap(deltas, in_axes=(None, 0, 0))


def _errors(params: MLP, cache: Cache, Y: Array) -> Array:
    return jax.vmap(_error, in_axes=(None, 0, 0))(params, cache, Y)


def normalised_weights(n: int, dtype: Any, sample_weight: Array | None) -> Array:
    """``s``: each of ``n`` rows' share of the batch loss (``1/n``, or the sample weights
    over their sum); a batch of 0 rows has no mean (refused while tracing)."""
    if n == 0:
        raise ValueError("a batch mean needs at least one row, got 0 rows")
    limit = checks.weight_sum_limit(dtype) if jnp.issubdtype(dtype, jnp.floating) else np.inf
    if n > limit:  # float16 (16384): a mean weight 1/n below the smallest normal number
        raise ValueError(
            f"a {np.dtype(dtype).name} mean over {n} rows weighs each 1/{n}, below "
            f"{np.dtype(dtype).name}'s smallest normal number ({float(np.finfo(dtype).tiny):g}): "
            f"the loss and gradient lose their digits (0 from a few times that); give at most "
            f"{int(limit)} rows a batch (batch_size), or use bfloat16 or float32"
        )
    if sample_weight is None:
        return jnp.full((n,), 1.0 / n, dtype)
    sample_weight = sample_weight.astype(dtype)  # the loss's dtype (the same: a no-op)
    return sample_weight / jnp.sum(sample_weight)


def loss_and_gradient_kernel(
    params: MLP, X: Array, Y: Array, sample_weight: Array | None = None
) -> tuple[Array, MLP]:
    """Unchecked, traceable core of :func:`loss_and_gradient` (for jitted loops).

    The batch gradient contracts each layer's deltas with its inputs,
    ``dE/dw = -O_prev^T (s * Err)`` with ``s`` the normalised sample weights, so no
    per-example ``(B, n_in, n_out)`` gradient is ever built.

    ``X`` ``(B, n_in)``, ``Y`` ``(B, n_out)`` and ``sample_weight`` ``(B,)`` are cast to
    the params' dtype, as :func:`loss_and_gradient` casts them; each layer's gradient
    has that layer's dtype. Their shapes are checked (statically, while tracing): a
    wrong one raises ``ValueError`` naming the argument, its shape and the one expected.
    """
    X, Y, sample_weight = _kernel_batch(params, X, Y, sample_weight, "loss_and_gradient_kernel")
    out, cache = _batched_forward(params, X)
    errs = _batched_deltas(params, cache, Y)
    s = normalised_weights(X.shape[0], out.dtype, sample_weight)
    mean_loss = over_batch(s, _errors(params, cache, Y))  # sum_n s_n E_n (replicated)
    grads = []
    for o_prev, err, layer in zip(cache[:-1], errs, params.layers):
        o_prev, s_l = o_prev.astype(layer.w.dtype), s.astype(layer.w.dtype)  # layer's dtype
        # over_batch: o_prev^T (s Err), a sum that is replicated on an Explicit mesh
        grads.append(Layer(w=-over_batch(o_prev, s_l[:, None] * err), b=-over_batch(s_l, err)))
    return mean_loss, params.replace_layers(grads)


def loss_kernel(params: MLP, X: Array, Y: Array, sample_weight: Array | None = None) -> Array:
    """Unchecked, traceable core of :func:`loss` (the inputs cast and their shapes checked
    as :func:`loss_and_gradient_kernel`'s)."""
    X, Y, sample_weight = _kernel_batch(params, X, Y, sample_weight, "loss_kernel")
    out, cache = _batched_forward(params, X)
    s = normalised_weights(X.shape[0], out.dtype, sample_weight)
    return over_batch(s, _errors(params, cache, Y))  # sum_n s_n E_n (replicated)


def predict_kernel(params: MLP, X: Array) -> Array:
    """Unchecked, traceable core of :func:`predict` (``X`` cast to the params' dtype and
    its shape checked as :func:`loss_and_gradient_kernel`'s)."""
    X, _, _ = _kernel_batch(params, X, None, None, "predict_kernel")
    return _batched_forward(params, X)[0]


def accuracy_kernel(params: MLP, X: Array, Y: Array, sample_weight: Array | None = None) -> Array:
    """Unchecked, traceable fraction of rows classified right (float32 for a 16-bit
    network, else the params' dtype).

    The predicted class is the argmax of the outputs; for one output unit, ``O > 0.5``
    (an output of exactly 0.5 is class 0, as scikit-learn's ``predict`` and so the
    estimators' have it).
    With ``binary_cross_entropy`` over several outputs (multilabel: independent 0/1
    targets) a row is right when every output is (``O > 0.5`` where ``T > 0.5``):
    scikit-learn's subset accuracy. ``sample_weight``: the weighted fraction.
    """
    X, Y, sample_weight = _kernel_batch(params, X, Y, sample_weight, "accuracy_kernel")
    out = _batched_forward(params, X)[0]  # X checked and cast above
    if out.shape[1] == 1 or params.loss == "binary_cross_entropy":
        right = jnp.all((out > 0.5) == (Y > 0.5), axis=1)
    else:
        right = jnp.argmax(out, axis=1) == jnp.argmax(Y, axis=1)
    # counted in float32 at least (float64 networks: float64): in bfloat16 the fraction
    # came out in steps of 1/256 near 1 (1796 of 1797 right read as 1.0)
    right = right.astype(jnp.promote_types(out.dtype, jnp.float32))
    if sample_weight is None:
        return jnp.mean(right)
    sample_weight = sample_weight.astype(right.dtype)
    return jnp.sum(sample_weight * right) / jnp.sum(sample_weight)


def r2_kernel(params: MLP, X: Array, Y: Array, sample_weight: Array | None = None) -> Array:
    """Unchecked, traceable coefficient of determination of the outputs, per output unit
    and averaged: scikit-learn's ``r2_score(Y, O, sample_weight, multioutput=
    "uniform_average")``, what ``MLPRegressor`` scores its validation split with::

        R^2 = mean_k (1 - SSE_k / SST_k),  SSE_k = sum_n s_n (T_nk - O_nk)^2,
                                           SST_k = sum_n s_n (T_nk - Tbar_k)^2

    (``Tbar_k`` the weighted mean). An output whose targets are constant (``SST_k = 0``)
    scores 1 if it is fitted exactly, else 0 (scikit-learn's ``force_finite``). Summed
    in float32 at least (float64 networks: float64), as :func:`accuracy_kernel` counts:
    in float16 the sums of 200 squared targets near 200 overflowed (R^2 read -inf), and a
    bfloat16 mean was off by more than the targets' spread.
    """
    X, Y, sample_weight = _kernel_batch(params, X, Y, sample_weight, "r2_kernel")
    out = _batched_forward(params, X)[0]  # X checked and cast above
    wide = jnp.promote_types(out.dtype, jnp.float32)
    out = out.astype(wide)
    s = jnp.ones(X.shape[0], wide) if sample_weight is None else sample_weight.astype(wide)
    T = Y.astype(wide)
    mean = (s @ T) / jnp.sum(s)
    sse = s @ (T - out) ** 2
    sst = s @ (T - mean[None, :]) ** 2
    safe = jnp.where(sst > 0, sst, 1)
    r2 = jnp.where(sst > 0, 1 - sse / safe, jnp.where(sse == 0, 1.0, 0.0).astype(wide))
    return jnp.mean(r2)


def _per_example_grads_kernel(params: MLP, X: Array, Y: Array) -> MLP:
    def one(x, y):
        _, cache = forward(params, x)
        return backward(params, cache, y)

    return jax.vmap(one)(X, Y)


_predict_jit = jax.jit(predict_kernel)
_loss_jit = jax.jit(loss_kernel)
_loss_and_gradient_jit = jax.jit(loss_and_gradient_kernel)
_per_example_grads_jit = jax.jit(_per_example_grads_kernel)


# ---------------------------------------------------------------- checked public API
@guarded("jbpnn.predict")  # no hang in a forked child; a bound on compiled programs
def predict(params: MLP, X: ArrayLike, *, check_finite: bool = True) -> Array:
    """Outputs for a batch: ``vmap(forward)``, jitted.

    Args:
        params: the network.
        X: inputs, shape ``(B, n_in)``.
        check_finite: raise on NaN/inf in ``X`` (costs one reduction; switch off
            in hot loops).

    Returns:
        Outputs, shape ``(B, n_out)``.
    """
    X, _, _ = check_batch(params, X, None, check_finite=check_finite, what="predict")
    return _predict_jit(params, X)


def loss(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    check_finite: bool = True,
) -> Array:
    """Mean over the batch of the per-example error ``E``, jitted.

    NOT for ``jax.grad``: differentiating this function differentiates its forward pass
    by JAX's AUTODIFF, not by the hand-derived back-propagation (it is the reference
    :mod:`jbpnn.gradcheck` compares the hand rule against). For the hand-derived gradient
    call :func:`loss_and_gradient` or :func:`batch_gradient`; inside your own
    ``jax.grad`` write the loss on :func:`apply`'s outputs, e.g.
    ``jnp.mean(jax.vmap(jbpnn.LOSSES[params.loss].error)(jbpnn.apply(params, X), Y))``,
    whose gradient runs the hand backward. That recipe sees only the outputs: with a log
    loss, an output that rounds to 0 or 1 (float16 from a logit gap of about 10, float32
    binary cross-entropy from a net input of about 17) has a clamped log, so its loss is
    bounded and its gradient 0, where the hand rule's ``T - O`` still pulls; this function
    and :func:`loss_and_gradient` take the log losses from the net inputs (exact there).

    Args:
        params: the network.
        X: inputs, shape ``(B, n_in)``.
        Y: targets, shape ``(B, n_out)``.
        sample_weight: optional non-negative weights, shape ``(B,)``; the mean
            is then ``sum(s E) / sum(s)``.
        check_finite: raise on NaN/inf in the inputs and on targets the loss cannot
            take (the cross-entropies need values in [0, 1]).

    Returns:
        A scalar.
    """
    X, Y, sw = check_batch(
        params, X, Y, sample_weight, check_finite=check_finite, min_rows=1, what="loss"
    )
    return _loss_jit(params, X, Y, sw)


def loss_and_gradient(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    check_finite: bool = True,
) -> tuple[Array, MLP]:
    """The batch loss and its gradient in one pass, jitted. See :func:`batch_gradient`."""
    X, Y, sw = check_batch(
        params, X, Y, sample_weight, check_finite=check_finite, min_rows=1, what="batch_gradient"
    )
    return _loss_and_gradient_jit(params, X, Y, sw)


def batch_gradient(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    check_finite: bool = True,
) -> MLP:
    """Gradient of :func:`loss` (the batch mean), by hand, jitted.

    Equals the mean of :func:`per_example_grads` over the batch, but is computed
    as ``dE/dw = -O_prev^T Err / B`` per layer, without building the
    ``(B, n_in, n_out)`` per-example gradients.

    Args:
        params: the network.
        X: inputs, shape ``(B, n_in)``.
        Y: targets, shape ``(B, n_out)``.
        sample_weight: optional weights, shape ``(B,)``.
        check_finite: raise on NaN/inf in the inputs and on targets the loss cannot
            take (the cross-entropies need values in [0, 1]).

    Returns:
        An :class:`MLP` of the same structure as ``params``.
    """
    return loss_and_gradient(params, X, Y, sample_weight, check_finite=check_finite)[1]


def per_example_grads(params: MLP, X: ArrayLike, Y: ArrayLike, *, check_finite: bool = True) -> MLP:
    """Every example's gradient: ``vmap(backward)``, jitted.

    Returns:
        An :class:`MLP` whose leaves have a leading batch axis: layer ``l``'s
        ``w`` has shape ``(B, n_in, n_out)`` and its ``b`` shape ``(B, n_out)``.
    """
    X, Y, _ = check_batch(
        params, X, Y, check_finite=check_finite, min_rows=1, what="per_example_grads"
    )
    return _per_example_grads_jit(params, X, Y)


def jvp_kernel(params: MLP, X: Array, dparams: MLP, dX: Array | None) -> tuple[Array, Array]:
    """Unchecked, traceable core of :func:`jvp`: ``(outputs, tangents)``, each ``(B, n_out)``
    (``dX`` None: the inputs do not move)."""
    out, cache = _batched_forward(params, X)
    return out, _hand_jvp(params, cache, dparams, dX)


_jvp_jit = jax.jit(jvp_kernel)


def jvp(
    params: MLP,
    X: ArrayLike,
    dparams: MLP,
    dX: ArrayLike | None = None,
    *,
    check_finite: bool = True,
) -> tuple[Array, Array]:
    """The outputs and their tangent along ``(dparams, dX)``: forward mode BY HAND, jitted.

    For every example and layer (:func:`jbpnn.tangents.tangents`, the same tables as
    :func:`backward`, each derivative from the unit's output):

        dnet_l = dO_{l-1} w_l + O_{l-1} dw_l + db_l      dO_l = f'(net_l) dnet_l

    from ``dO_0 = dX``. ``dO_L`` is the Jacobian of the outputs times the direction, what
    ``jax.jvp(jbpnn.apply, (params, X), (dparams, dX))`` returns (it runs this same pass).
    In article mode it is the article's derivative (``O - O^2``, biases moving ``net``),
    the transpose of :func:`backward`'s rule, not the derivative of the forward pass.

    Args:
        params: ONE network.
        X: one example ``(n_in,)`` or a batch ``(B, n_in)``.
        dparams: the direction of the weights: an :class:`MLP` of the same structure as
            ``params`` (e.g. ``jax.tree.map(jnp.zeros_like, params)`` edited), cast to
            the params' dtypes.
        dX: the direction of the inputs, shaped like ``X``; default zeros.
        check_finite: raise on NaN/inf in ``X`` and ``dX``.

    Returns:
        ``(outputs, tangents)``, each ``(n_out,)`` for one example or ``(B, n_out)``.

    Raises:
        ValueError: a wrong feature count or rank, ``dparams`` or ``dX`` not shaped like
            ``params`` or ``X``, stacked params, NaN/inf.
    """
    _require_one_network(params, "jvp")
    if checks.input_ndim("X", X) == 1:  # one example: a batch of one (X may be traced)
        if dX is not None and np.shape(dX) != np.shape(X):
            raise ValueError(f"dX must have the shape of X, {np.shape(X)}, got {np.shape(dX)}")
        x = X if isinstance(X, jax.Array) else np.asarray(X)
        dx = None if dX is None else dX if isinstance(dX, jax.Array) else np.asarray(dX)
        one = None if dx is None else dx[None, :]
        out, dout = jvp(params, x[None, :], dparams, one, check_finite=check_finite)
        return out[0], dout[0]
    X, _, _ = check_batch(params, X, check_finite=check_finite)
    # dX None stays None: no dO_0 w_1 product (zeros_like(X) inside the caller's jit also
    # dropped the sharding of an Explicit-sharded X, and the batched pass then failed)
    if dX is not None:
        if np.shape(dX) != X.shape:
            raise ValueError(f"dX must have the shape of X, {X.shape}, got {np.shape(dX)}")
        _refuse_complex("dX", dX)
        dX = jnp.asarray(dX, X.dtype)
        if check_finite:
            checks.check_finite("dX", dX)
    dparams = check_direction(params, dparams, "dparams")
    if check_finite:  # a traced direction (inside jit or vmap) is skipped, as traced data is
        for i, layer in enumerate(dparams.layers):
            for part, a in (("w", layer.w), ("b", layer.b)):
                checks.check_finite(f"jvp: dparams' layer {i} {part}", a)
    return _jvp_jit(params, X, dparams, dX)


def _require_one_network(params: MLP, name: str) -> None:
    check_network(params, name)


def check_direction(params: MLP, other: Any, name: str = "dparams") -> MLP:
    """A direction ``other`` in the weights, checked to be shaped like ``params``.

    Returns it as an :class:`MLP` with ``params``' names, each leaf cast to ``params``'
    dtype; raises ``ValueError`` naming ``name`` and the first layer whose shapes differ.
    """
    if not isinstance(other, MLP) or len(other.layers) != len(params.layers):
        got = (
            f"an MLP of {len(other.layers)} layers"
            if isinstance(other, MLP)
            else type(other).__name__
        )
        raise ValueError(
            f"{name} must be an MLP with the structure of params ({len(params.layers)} "
            f"layers, e.g. jax.tree.map(jnp.zeros_like, params)), got {got}"
        )
    layers = []
    for i, (layer, d) in enumerate(zip(params.layers, other.layers)):
        if not isinstance(d, Layer):  # a (w, b) tuple: "'tuple' object has no attribute 'w'"
            raise ValueError(
                f"{name}: layer {i} must be a Layer(w, b), as params' layers are, got "
                f"{type(d).__name__}"
            )
        if np.shape(d.w) != layer.w.shape or np.shape(d.b) != layer.b.shape:
            raise ValueError(
                f"{name}: layer {i} has w {np.shape(d.w)} and b {np.shape(d.b)}, but params' "
                f"layer {i} has w {layer.w.shape} and b {layer.b.shape}"
            )
        _refuse_complex(f"{name}: layer {i} w", d.w)
        _refuse_complex(f"{name}: layer {i} b", d.b)
        layers.append(Layer(_as_dtype(d.w, layer.w.dtype), _as_dtype(d.b, layer.b.dtype)))
    return params.replace_layers(layers)


def _as_dtype(a: Any, dtype: Any) -> Any:
    """``a`` as an array of ``dtype``: a JAX array (or tracer) that already is one as it
    is (``jnp.asarray`` would cost about 15 us a leaf on every call of jvp, hvp, gnvp)."""
    if isinstance(a, jax.Array) and a.dtype == dtype:
        return a
    return jnp.asarray(a, dtype)


def require_targets(Y: Any, what: str) -> None:
    """``Y`` given: ``what`` is a derivative of the loss, which needs the targets
    (:func:`check_batch` takes ``Y=None`` for the functions of the outputs alone)."""
    if Y is None:
        raise ValueError(f"{what} needs the targets Y: it differentiates the loss E(O, Y)")


def _refuse_complex(name: str, a: Any) -> None:
    """A complex direction: the cast to the params' real dtype would drop its imaginary
    part (``jvp`` along ``1j v`` gave 0) without a word."""
    if np.iscomplexobj(a):
        raise ValueError(
            f"{name} has complex values ({jnp.result_type(a).name}); the derivatives here are "
            "of real functions: give the real and imaginary parts as two directions"
        )


# ---------------------------------------------------------------- input checks
def _kernel_batch(
    params: MLP, X: Any, Y: Any, sample_weight: Any, what: str
) -> tuple[Array, Any, Any]:
    """A kernel's batch with static shapes checked, cast to the params' dtype.

    The kernels are the unchecked, traceable cores (no NaN or value checks: their inputs
    may be traced), but shapes are known while tracing, and a wrong one met ``vmap``'s
    "inconsistent sizes" or a ``dot_general`` error deep in JAX. Raises ``ValueError``
    naming ``what``, the argument, the shape given and the shape expected.
    """
    n_in, n_out, x_shape = params.n_in, params.n_out, np.shape(X)
    if len(x_shape) != 2 or x_shape[1] != n_in:
        one = "; for one example use x[None, :] (a batch of one)" if len(x_shape) == 1 else ""
        raise ValueError(f"{what}: X must have shape (batch, {n_in}), got shape {x_shape}{one}")
    rows = x_shape[0]
    if Y is not None and np.shape(Y) != (rows, n_out):
        raise ValueError(
            f"{what}: Y must have shape ({rows}, {n_out}), one row of {n_out} targets for "
            f"each of X's {rows} rows, got shape {np.shape(Y)}"
        )
    if sample_weight is not None and np.shape(sample_weight) != (rows,):
        raise ValueError(
            f"{what}: sample_weight must have shape ({rows},), one weight for each of X's "
            f"{rows} rows, got shape {np.shape(sample_weight)}"
        )
    dtype = params.dtype  # the first layer's, as check_batch casts to
    return (
        jnp.asarray(X, dtype),
        None if Y is None else jnp.asarray(Y, dtype),
        None if sample_weight is None else jnp.asarray(sample_weight, dtype),
    )


def _check_length(shape: tuple[int, ...], expected: int, what: str, side: str) -> None:
    if len(shape) != 1:
        raise ValueError(
            f"expected one example of shape ({expected},) for the {what}, got shape {shape}; "
            "use the batched functions (predict, loss, batch_gradient) for batches"
        )
    if shape[0] != expected:
        raise ValueError(f"Your {what} length is {shape[0]}, but our {side} needs {expected}")


@overload
def check_batch(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    check_finite: bool = True,
    names: tuple[str, str] = ("X", "Y"),
    min_rows: int = 0,
    weight_name: str = "sample_weight",
    targets: bool | None = None,
    what: str = "params",
    host: bool = False,
    domain: bool = True,
) -> tuple[Array, Array, Array | None]: ...


@overload
def check_batch(
    params: MLP,
    X: ArrayLike,
    Y: None = None,
    sample_weight: ArrayLike | None = None,
    *,
    check_finite: bool = True,
    names: tuple[str, str] = ("X", "Y"),
    min_rows: int = 0,
    weight_name: str = "sample_weight",
    targets: bool | None = None,
    what: str = "params",
    host: bool = False,
    domain: bool = True,
) -> tuple[Array, None, Array | None]: ...


def check_batch(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    *,
    check_finite: bool = True,
    names: tuple[str, str] = ("X", "Y"),
    min_rows: int = 0,
    weight_name: str = "sample_weight",
    targets: bool | None = None,
    what: str = "params",
    host: bool = False,
    domain: bool = True,
) -> tuple[Array, Array | None, Array | None]:
    """Validate a batch against the network and cast it to the params' dtype.

    :func:`jbpnn.checks.check_data` with the network's sizes: raises ``ValueError``
    naming the argument and the sizes for a wrong feature count (the article's
    "Your data length is %d, but our input needs %d"), a wrong target width,
    mismatched batch sizes, sample weights that are not finite, >= 0 with a positive
    sum, (with ``check_finite``) NaN or inf values, and (with ``targets``, default
    ``check_finite``) targets the loss cannot take (:func:`jbpnn.checks.check_targets`:
    the cross-entropies need values in [0, 1]) and, with ``domain``, targets outside
    those a registered loss was checked on (:func:`jbpnn.losses.check_target_domain`;
    :func:`jbpnn.gradcheck` turns it off: checking a loss on such targets is its job).

    ``what`` names the caller in the message for params that are not ONE network
    (:func:`jbpnn.params.check_network`).

    Returns:
        ``(X, Y, sample_weight)`` as JAX arrays (``Y`` and ``sample_weight`` may be None);
        with ``host``, host data stays NumPy (:func:`jbpnn.checks.check_data`).
    """
    check_network(params, what)  # ONE network, shapes that chain, known activation names
    X, Y, sample_weight = checks.check_data(
        X,
        Y,
        sample_weight,
        n_in=params.n_in,
        n_out=params.n_out,
        dtype=params.dtype,
        check_finite=check_finite,
        names=names,
        min_rows=min_rows,
        weight_name=weight_name,
        host=host,
    )
    if (check_finite if targets is None else targets) and Y is not None:
        checks.check_targets(names[1], params.loss, Y, params.dtype)
        if domain:  # a registered loss: the targets its check covered
            check_target_domain(names[1], params.loss, params.activations[-1], Y)
    return X, Y, sample_weight


# ---------------------------------------------------------------- composing with JAX: apply
def _pullback(params: MLP, cache: Cache, g: Array) -> tuple[tuple[Array, ...], Array]:
    """Carry the cotangent ``g = dL/dO_L`` of ONE example back through the network.

    The same recursion as :func:`deltas`, started from any cotangent instead of a
    loss's output delta, and with the cotangent's sign (``dL/dnet``, no minus):

        output     d_L = J_L^T g                  act.backprop(O_L, g)
        hidden     d_l = J_l^T (w_{l+1} d_{l+1})  act.backprop(O_l, w_{l+1} @ d_{l+1})
        input      dL/dx = w_1 d_1

    Args:
        params: the network.
        cache: from :func:`forward`, ``(x, O_1, ..., O_L)``.
        g: the cotangent of the outputs, shape ``(n_out,)``.

    Returns:
        ``(d, dx)``: ``d`` holds ``dL/dnet`` of every layer, input side first, and ``dx``
        is ``dL/dx``, shape ``(n_in,)``.
    """
    acts = units(params, cache)  # the table's rows (bound to net_l where a unit uses it)
    d = acts[-1].backprop(cache[-1], g)  # d_L = J_L^T g, from the outputs O_L
    ds = [d]
    for l in range(len(params.layers) - 1, 0, -1):  # noqa: E741
        back = (params.layers[l].w @ d).astype(cache[l].dtype)  # w d_{l+1}, in layer l-1's dtype
        d = acts[l - 1].backprop(cache[l], back)  # d_l = J_l^T (w d_{l+1})
        ds.append(d)
    dx = params.layers[0].w @ d  # dL/dx_i = sum_j w_ij d_j
    return tuple(reversed(ds)), dx


_batched_pullback = jax.vmap(_pullback, in_axes=(None, 0, 0))
_batched_tangents = jax.vmap(tangents, in_axes=(None, 0, None, 0))
_tangents_of_weights = jax.vmap(tangents, in_axes=(None, 0, None, None))


def over_batch(a: Array, b: Array) -> Array:
    """``a^T b``: the sum over the batch rows of ``a (B, m)`` times ``b (B, n)`` (or ``(B,)``).

    Inside the user's ``jit`` with the batch sharded along an Explicit mesh axis, the
    sharding is part of the arrays' types and JAX asks where a contraction over that axis
    lives; the sum is the same on every device (an all-reduce), so it is replicated.
    Unsharded (or Auto) arrays: the plain product.
    """
    if axis_spec(a) is not None:  # rows split along an Explicit axis
        dims = (((0,), (0,)), ((), ()))
        # one None per axis of the result: under jax.vmap (jacrev, hessian) JAX inserts
        # the batch axis into this spec, which an empty PartitionSpec() has no room for
        replicated = jax.sharding.PartitionSpec(*[None] * (a.ndim + b.ndim - 2))
        return jax.lax.dot_general(a, b, dims, out_sharding=replicated)
    return a.T @ b


def _hand_vjp(params: MLP, cache: Cache, G: Array) -> tuple[MLP, Array]:
    """The hand-derived VJP of a batch: cotangents of the params and of the inputs.

    ``dL/dw = O_prev^T d`` and ``dL/db = sum_n d_n`` per layer (a contraction over the
    batch, no per-example weight gradient), ``dL/dX = d_1 w_1^T``. In article mode the
    biases never reach the forward pass but get ``sum_n d_n`` all the same, as the
    article's code "updates" them (so the result is :func:`backward`'s, not autodiff's).
    """
    ds, dX = _batched_pullback(params, cache, G)
    dX = dX.astype(cache[0].dtype)
    grads = [
        Layer(
            w=over_batch(o_prev.astype(layer.w.dtype), d).astype(layer.w.dtype),
            b=jnp.sum(d, axis=0).astype(layer.b.dtype),
        )
        for o_prev, d, layer in zip(cache[:-1], ds, params.layers)
    ]
    return params.replace_layers(grads), dX


def _hand_jvp(params: MLP, cache: Cache, dparams: MLP, dX: Array | None) -> Array:
    """The hand-derived JVP of a batch: the tangent of the outputs, shape ``(B, n_out)``.

    :func:`jbpnn.tangents.tangents` of every example: ``dnet = dO_prev w + O_prev dw + db``,
    ``dO = act.tangent(O, dnet)``, from ``dO_0 = dX``. Linear in ``(dparams, dX)``, and the
    transpose of :func:`_hand_vjp` (both are the same tables' derivatives).
    """
    if dX is None:  # the inputs do not move: no dO_0 w_1 product
        d_out = _tangents_of_weights(params, cache, dparams, None)[1][-1]
    else:
        d_out = _batched_tangents(params, cache, dparams, dX)[1][-1]
    assert d_out is not None  # only douts[0], the input's, may be None
    return d_out.astype(cache[-1].dtype)


# Its own jit so that the backward pass is one named call in any jaxpr of a gradient
# (tests/test_apply.py looks for it); XLA inlines it, it costs nothing.
_hand_vjp_jit = jax.jit(_hand_vjp)
_hand_jvp_jit = jax.jit(_hand_jvp)


# ---------------------------------------------------------------- linear, with a hand transpose
# JAX differentiates in reverse by linearising (forward mode) and transposing the linear
# part. A jax.custom_vjp function cannot be linearised forward, and the transpose of a
# jax.custom_jvp rule is JAX's own. So apply is a custom_jvp whose tangent is ONE
# primitive, ``hand_linear``: evaluated, it runs the hand JVP; transposed (jax.grad,
# jax.vjp), it runs the hand VJP (and transposed again, the hand JVP). Its batching rule
# vmaps both maps; its JVP rule (forward mode over a derivative: jax.hessian, jacfwd of
# jacfwd) differentiates the hand maps' own code along the residuals by jax.jvp, the one
# use of autodiff in this module, never reached by training.
class _Linear:
    """A named linear map ``(residuals, inputs) -> outputs`` on flat lists of arrays."""

    def __init__(self, name: str, fn: Callable[[list[Array], list[Array]], Any]):
        self.name, self.fn = name, fn

    def __call__(self, res: list[Array], lin: list[Array]) -> list[Array]:
        return list(self.fn(list(res), list(lin)))

    def __repr__(self) -> str:  # what a jaxpr shows: hand_linear[fn=hand_jvp ...]
        return self.name


_hand_linear_p = jax.extend.core.Primitive("hand_linear")
_hand_linear_p.multiple_results = True


def _shaped(x: Any) -> Any:
    """The abstract value (``ShapedArray``) of ``x``, through ``jax.api_util``."""
    return shaped_abstractify(jax.ShapeDtypeStruct(np.shape(x), x.dtype))


def _typed(x: Any) -> Any:
    """``x``'s abstract value with its type's sharding (an Explicit mesh's split of the
    batch), which the outputs' cotangents must carry too."""
    return shaped_abstractify(x) if isinstance(x, jax.ShapeDtypeStruct) else jax.typeof(x)


def _bind_linear(fn: _Linear, fn_t: _Linear, res: list[Array], lin: list[Array]) -> list[Array]:
    out = jax.eval_shape(fn, res, lin)  # abstract: the arguments' types, sharding included
    return _hand_linear_p.bind(
        *res,
        *lin,
        fn=fn,
        fn_t=fn_t,
        n_res=len(res),
        out_avals=tuple(_typed(o) for o in out),
        lin_avals=tuple(_typed(x) for x in lin),
    )


def _hand_linear(
    name: str, fn: Callable, name_t: str, fn_t: Callable, residuals: Any, inputs: Any
) -> Any:
    """``fn(residuals, inputs)``, linear in ``inputs``, whose transpose is ``fn_t``.

    ``fn_t(residuals, cotangent of the outputs)`` returns the cotangent of ``inputs``
    (same pytree). Like ``jax.custom_derivatives.linear_call``, with rules for ``vmap``
    and for forward mode along the residuals.
    """
    # The treedefs as Any: mypy cannot resolve jax's PyTreeDef (jaxlib 0.10 has no stub).
    res_tree: Any
    lin_tree: Any
    res, res_tree = jax.tree.flatten(residuals)
    lin, lin_tree = jax.tree.flatten(inputs)
    out_tree: Any = jax.tree.structure(jax.eval_shape(fn, residuals, inputs))

    def flat(r, x):
        return jax.tree.leaves(fn(res_tree.unflatten(r), lin_tree.unflatten(x)))

    def flat_t(r, g):
        return jax.tree.leaves(fn_t(res_tree.unflatten(r), out_tree.unflatten(g)))

    outs = _bind_linear(_Linear(name, flat), _Linear(name_t, flat_t), res, lin)
    return out_tree.unflatten(outs)


def _hand_linear_impl(*args, fn, fn_t, n_res, out_avals, lin_avals):
    return fn(args[:n_res], args[n_res:])


def _hand_linear_jvp(primals, tangents, *, fn, fn_t, n_res, out_avals, lin_avals):
    res, lin = list(primals[:n_res]), list(primals[n_res:])
    dres, dlin = tangents[:n_res], tangents[n_res:]
    out = _bind_linear(fn, fn_t, res, lin)
    parts = []
    if any(type(t) is not ad.Zero for t in dlin):  # linear: the same map on the tangents
        parts.append(_bind_linear(fn, fn_t, res, [ad.instantiate_zeros(t) for t in dlin]))
    if any(type(t) is not ad.Zero for t in dres):  # along the residuals: the maps' own code
        # Reached only when the user differentiates apply's DERIVATIVE again (jax.hessian,
        # jacfwd of grad): JAX's forward mode of the hand rules' code, as apply's docstring
        # says. Never on the training path (train uses loss_and_gradient_kernel, no apply);
        # second derivatives by hand are jbpnn.curvature's.
        dres = [ad.instantiate_zeros(t) for t in dres]
        parts.append(jax.jvp(lambda *r: fn(r, lin), res, dres)[1])
    if not parts:
        return out, [ad.Zero(a.to_tangent_aval()) for a in out_avals]
    return out, [sum(ts) for ts in zip(*parts)]


def _hand_linear_transpose(cts, *args, fn, fn_t, n_res, out_avals, lin_avals):
    res = list(args[:n_res])
    if any(ad.is_undefined_primal(r) for r in res):
        raise NotImplementedError("hand_linear is linear in its inputs only, not its residuals")
    cts = [jnp.zeros(a.shape, a.dtype) if type(c) is ad.Zero else c for c, a in zip(cts, out_avals)]
    # the cotangent of sum(O) is a broadcast of ones with no split, which the batched pass
    # (the cache split along the batch) cannot pair with
    return [None] * n_res + _bind_linear(fn_t, fn, res, [split_rows_like(c, res) for c in cts])


def split_rows_like(a: Array, others: Sequence[Array]) -> Array:
    """``a`` split along its rows as the first of ``others`` with as many rows is, where
    an Explicit mesh splits those (its rows then pair with theirs, as ``vmap`` wants);
    ``a`` itself anywhere else."""
    if not np.ndim(a) or axis_spec(a) is not None:
        return a
    split = next(
        (s for o in others if np.ndim(o) and o.shape[0] == a.shape[0] and (s := axis_spec(o))),
        None,
    )
    if split is None:
        return a
    return jax.sharding.reshard(a, jax.sharding.PartitionSpec(split, *([None] * (a.ndim - 1))))


def axis_spec(a: Any) -> Any:
    """The mesh axis an array's leading axis is split along under an Explicit mesh, or None."""
    sharding = getattr(jax.typeof(a), "sharding", None)
    spec = getattr(sharding, "spec", None)
    return spec[0] if spec else None


def _broadcast_batch(x: Array, size: int, split: Any) -> Array:
    if split is None:
        return jnp.broadcast_to(x, (size, *x.shape))
    out = jax.sharding.PartitionSpec(split, *([None] * x.ndim))
    return jnp.broadcast_to(x, (size, *x.shape), out_sharding=out)


def _hand_linear_batch(args, dims, *, fn, fn_t, n_res, out_avals, lin_avals):
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    args = [a if d is None else jnp.moveaxis(a, d, 0) for a, d in zip(args, dims)]
    res, lin = args[:n_res], args[n_res:]
    res_axes = [None if d is None else 0 for d in dims[:n_res]]
    # every input batched (an unbatched one broadcast), so the transpose's outputs are too;
    # split as the batched ones are along the batch (an Explicit mesh types the split)
    split = next((axis_spec(a) for a, d in zip(args, dims) if d is not None), None)
    lin = [
        x if d is not None else _broadcast_batch(x, size, split) for x, d in zip(lin, dims[n_res:])
    ]

    def vmapped(f: _Linear) -> _Linear:
        return _Linear(
            f"vmap({f.name})", lambda r, x: jax.vmap(f, in_axes=(res_axes, [0] * len(x)))(r, x)
        )

    outs = _bind_linear(vmapped(fn), vmapped(fn_t), res, lin)
    return outs, [0] * len(outs)


_hand_linear_p.def_impl(_hand_linear_impl)
_hand_linear_p.def_abstract_eval(lambda *args, out_avals, **params: list(out_avals))
mlir.register_lowering(_hand_linear_p, mlir.lower_fun(_hand_linear_impl, multiple_results=True))
ad.primitive_jvps[_hand_linear_p] = _hand_linear_jvp
ad.primitive_transposes[_hand_linear_p] = _hand_linear_transpose
batching.primitive_batchers[_hand_linear_p] = _hand_linear_batch


# ---------------------------------------------------------------- apply
@jax.custom_jvp
def _apply(params: MLP, X: Array) -> Array:
    return _batched_forward(params, X)[0]


@_apply.defjvp
def _apply_jvp(primals: tuple[MLP, Array], tangents: tuple[MLP, Array]) -> tuple[Array, Array]:
    params, X = primals
    out, cache = _batched_forward(params, X)
    dout = _hand_linear(
        "hand_jvp",
        lambda res, lin: _hand_jvp_jit(*res, *lin),
        "hand_vjp",
        lambda res, G: _hand_vjp_jit(*res, G),
        (params, cache),
        tangents,
    )
    return out, dout


_apply_jit = jax.jit(_apply)  # compiled when called eagerly; inlined into the caller's jit


def apply(params: MLP, X: ArrayLike, *, check_finite: bool = True) -> Array:
    """The network's outputs, differentiable by JAX through the HAND-DERIVED rules.

    Use it to put jbpnn in your own JAX code: any loss of the outputs, regularisers on
    them, a jbpnn network inside a larger model, your own training loop (``jax.grad``
    and an SGD step, or optax). Only the network is needed: the output units come from
    ``params.activations``; ``params.loss`` plays no part. ``jax.grad``, ``jax.vjp``,
    ``jax.jvp``, ``jax.linearize``, ``jax.jacfwd``, ``jax.jacrev``, ``jax.hessian``,
    ``jax.vmap``, ``jax.jit`` and ``lax.scan`` all work. Which rule runs where:

    - reverse mode (``jax.grad``, ``jax.vjp``, ``jax.jacrev``): the article's
      back-propagation, never autodiff of the forward pass. Given the cotangent
      ``G = dL/dO`` of the outputs, shape ``(B, n_out)``:

          d_L = J_L^T G         (act.backprop(O_L, G), from the outputs)
          d_l = J_l^T (d_{l+1} w_{l+1}^T)
          dL/dw_l = O_{l-1}^T d_l     dL/db_l = sum_n d_l     dL/dX = d_1 w_1^T

    - forward mode (``jax.jvp``, ``jax.linearize``, ``jax.jacfwd``): the hand forward
      tangent of :func:`jvp`, ``dnet = dO_prev w + O_prev dw + db``, ``dO = act.tangent(O,
      dnet)``.
    - forward over reverse (``jax.hessian`` = ``jacfwd(jacrev)``) or forward over forward:
      the inner derivative is the hand rule; the outer one is JAX's forward-mode autodiff
      OF the hand rules' code (the only way to compose a custom rule). For second
      derivatives derived by hand see :mod:`jbpnn.curvature` (Pearlmutter's R-operator).

    Mechanism: a ``jax.custom_jvp`` whose tangent is one linear primitive,
    ``hand_linear``, evaluated as the hand JVP and transposed as the hand VJP (a jaxpr of
    a gradient shows ``hand_linear[fn=hand_vjp ...]``, of a JVP ``hand_linear[fn=hand_jvp
    ...]``). The derivatives are cotangents, ``+dL/dnet``: with ``L = E`` they are minus
    the article's ``Err``, so ``jax.grad`` through ``apply`` gives :func:`backward`'s
    gradients. With ``params.article_mode`` the forward pass is the article code's (tanh,
    no biases) and so are both rules (``O - O^2``, biases "updated"): ``jax.grad`` then
    returns the article's gradient, which is NOT the derivative of its error, and
    ``jax.jvp`` its transpose.

    Args:
        params: ONE network (for stacked params, ``jax.vmap(apply, in_axes=(0, None))``).
        X: one example, shape ``(n_in,)``, or a batch, shape ``(B, n_in)``. It is cast to
            the params' dtype first (integer inputs included; their cotangent from
            ``jax.vjp`` is then a ``float0`` zero, and ``jax.grad`` refuses them, as
            always for integer arguments).
        check_finite: raise on NaN/inf in a concrete ``X`` (traced values are never
            checked).

    Returns:
        The outputs, shape ``(n_out,)`` for one example or ``(B, n_out)`` for a batch.

    Raises:
        ValueError: a wrong feature count or rank (before anything is traced), stacked
            params, NaN/inf in ``X``.
    """
    check_network(params, "apply")  # ONE network, shapes that chain, known names
    if checks.input_ndim("X", X) == 1:  # one example: a batch of one
        X = X if isinstance(X, jax.Array) else np.asarray(X)
        return apply(params, X[None, :], check_finite=check_finite)[0]
    if np.ndim(X) != 2:
        raise ValueError(
            f"X must have shape ({params.n_in},) for one example or (batch, {params.n_in}), "
            f"got shape {np.shape(X)}"
        )
    if check_finite and checks.is_concrete(X):
        # X may be a constant inside the caller's jit/grad/scan (a NumPy array there is
        # concrete until check_batch puts it on the device, where it becomes a tracer):
        # check its values now
        with jax.ensure_compile_time_eval():
            checks.check_finite_in("X", X, params.dtype)
    X, _, _ = check_batch(params, X, check_finite=False)
    return _apply_jit(params, X)
