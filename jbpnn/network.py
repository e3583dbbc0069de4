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
``f'`` is written from the unit's output ``O``, and :func:`backward` returns
*gradients* ``dE/dtheta`` with the structure of the params, so one step of the
article's online rule ``w_ij += l Err_j O_i`` is ``p - l * g``.

The one-example functions (:func:`forward`, :func:`deltas`, :func:`backward`,
:func:`example_loss`) are batched with ``jax.vmap`` into :func:`predict`,
:func:`loss`, :func:`batch_gradient`, :func:`loss_and_gradient` and
:func:`per_example_grads`, which check their inputs (shapes, NaN/inf) in
Python before calling a ``jax.jit``-compiled kernel.

No autodiff here: this module is the training path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jbpnn import checks
from jbpnn.activations import activation_table
from jbpnn.losses import LOSSES
from jbpnn.params import MLP, Layer, network_count

__all__ = [
    "GradFn",
    "accuracy_kernel",
    "apply",
    "backward",
    "batch_gradient",
    "check_batch",
    "deltas",
    "example_loss",
    "forward",
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
        x: one input, shape ``(n_in,)``.

    Returns:
        ``(y, cache)``: the output ``y`` of shape ``(n_out,)``, and ``cache``, the
        outputs of every layer with the input first: ``(x, O_1, ..., O_L)``,
        ``cache[-1] is y``. That is all :func:`backward` needs.
    """
    x = jnp.asarray(x)
    _check_length(x.shape, params.n_in, "data", "input")
    table = activation_table(params.article_mode)
    o = x
    cache = [o]
    for layer, name in zip(params.layers, params.activations):
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
        ``(n_out of layer l,)``. Positive means the unit's net input should grow.
    """
    y = jnp.asarray(y)
    _check_length(y.shape, params.n_out, "target", "output")
    table = activation_table(params.article_mode)
    acts = [table[name] for name in params.activations]
    # Output layer: Err_k = f'(net_k)(T_k - O_k) for mse, T_k - O_k for the log losses.
    delta = LOSSES[params.loss].delta(cache[-1], y, acts[-1])
    errs = [delta]
    for l in range(len(params.layers) - 1, 0, -1):  # noqa: E741
        # Hidden layer: Err_j = f'(net_j) sum_k Err_k w_jk, with w from before any update.
        delta = acts[l - 1].backprop(cache[l], params.layers[l].w @ delta)
        errs.append(delta)
    return tuple(reversed(errs))


def backward(params: MLP, cache: Cache, y: ArrayLike) -> MLP:
    """Gradient ``dE/dtheta`` of ONE example's error, from the article's deltas.

    Args:
        params: the network.
        cache: from :func:`forward` on the same params and example.
        y: the example's targets, shape ``(n_out,)``.

    Returns:
        An :class:`MLP` of the same structure as ``params`` whose layer ``l``
        holds ``w = -outer(O_{l-1}, Err_l)`` (``dE/dw_ij = -O_i Err_j``) and
        ``b = -Err_l``. Gradient descent is ``p - lr * g``.
    """
    errs = deltas(params, cache, y)
    grads = [
        Layer(w=-jnp.outer(o_prev, err), b=-err)  # dE/dw_ij = -O_i Err_j, dE/dtheta_j = -Err_j
        for o_prev, err in zip(cache[:-1], errs)
    ]
    return params.replace_layers(grads)


def example_loss(params: MLP, x: ArrayLike, y: ArrayLike) -> Array:
    """The error ``E`` of ONE example, e.g. ``1/2 sum_k (T_k - O_k)^2`` for mse."""
    out, _ = forward(params, x)
    return LOSSES[params.loss].error(out, jnp.asarray(y))


# ---------------------------------------------------------------- compiled batched kernels
_batched_forward = jax.vmap(forward, in_axes=(None, 0))
_batched_deltas = jax.vmap(deltas, in_axes=(None, 0, 0))


def _errors(params: MLP, out: Array, Y: Array) -> Array:
    return jax.vmap(LOSSES[params.loss].error)(out, Y)


def _normalised_weights(n: int, dtype: Any, sample_weight: Array | None) -> Array:
    if sample_weight is None:
        return jnp.full((n,), 1.0 / n, dtype)
    return sample_weight / jnp.sum(sample_weight)


def loss_and_gradient_kernel(
    params: MLP, X: Array, Y: Array, sample_weight: Array | None = None
) -> tuple[Array, MLP]:
    """Unchecked, traceable core of :func:`loss_and_gradient` (for jitted loops).

    The batch gradient contracts each layer's deltas with its inputs,
    ``dE/dw = -O_prev^T (s * Err)`` with ``s`` the normalised sample weights, so no
    per-example ``(B, n_in, n_out)`` gradient is ever built.
    """
    out, cache = _batched_forward(params, X)
    errs = _batched_deltas(params, cache, Y)
    s = _normalised_weights(X.shape[0], out.dtype, sample_weight)
    mean_loss = s @ _errors(params, out, Y)
    grads = [
        Layer(w=-(o_prev.T @ (s[:, None] * err)), b=-(s @ err))
        for o_prev, err in zip(cache[:-1], errs)
    ]
    return mean_loss, params.replace_layers(grads)


def loss_kernel(params: MLP, X: Array, Y: Array, sample_weight: Array | None = None) -> Array:
    """Unchecked, traceable core of :func:`loss`."""
    out, _ = _batched_forward(params, X)
    s = _normalised_weights(X.shape[0], out.dtype, sample_weight)
    return s @ _errors(params, out, Y)


def predict_kernel(params: MLP, X: Array) -> Array:
    """Unchecked, traceable core of :func:`predict`."""
    return _batched_forward(params, X)[0]


def accuracy_kernel(params: MLP, X: Array, Y: Array, sample_weight: Array | None = None) -> Array:
    """Unchecked, traceable fraction of rows classified right.

    The predicted class is the argmax of the outputs; for one output unit, ``O >= 0.5``.
    With ``binary_cross_entropy`` over several outputs (multilabel: independent 0/1
    targets) a row is right when every output is (``O >= 0.5`` where ``T >= 0.5``):
    scikit-learn's subset accuracy. ``sample_weight``: the weighted fraction.
    """
    out = predict_kernel(params, X)
    if out.shape[1] == 1 or params.loss == "binary_cross_entropy":
        right = jnp.all((out >= 0.5) == (Y >= 0.5), axis=1)
    else:
        right = jnp.argmax(out, axis=1) == jnp.argmax(Y, axis=1)
    if sample_weight is None:
        return jnp.mean(right)
    return jnp.sum(sample_weight * right) / jnp.sum(sample_weight)


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
    X, _, _ = check_batch(params, X, None, check_finite=check_finite)
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
    X, Y, sw = check_batch(params, X, Y, sample_weight, check_finite=check_finite, min_rows=1)
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
    X, Y, sw = check_batch(params, X, Y, sample_weight, check_finite=check_finite, min_rows=1)
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
    X, Y, _ = check_batch(params, X, Y, check_finite=check_finite, min_rows=1)
    return _per_example_grads_jit(params, X, Y)


# ---------------------------------------------------------------- input checks
def _check_length(shape: tuple[int, ...], expected: int, what: str, side: str) -> None:
    if len(shape) != 1:
        raise ValueError(
            f"expected one example of shape ({expected},) for the {what}, got shape {shape}; "
            "use the batched functions (predict, loss, batch_gradient) for batches"
        )
    if shape[0] != expected:
        raise ValueError(f"Your {what} length is {shape[0]}, but our {side} needs {expected}")


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
) -> tuple[Array, Array | None, Array | None]:
    """Validate a batch against the network and cast it to the params' dtype.

    :func:`jbpnn.checks.check_data` with the network's sizes: raises ``ValueError``
    naming the argument and the sizes for a wrong feature count (the article's
    "Your data length is %d, but our input needs %d"), a wrong target width,
    mismatched batch sizes, sample weights that are not finite, >= 0 with a positive
    sum, (with ``check_finite``) NaN or inf values, and (with ``targets``, default
    ``check_finite``) targets the loss cannot take (:func:`jbpnn.checks.check_targets`:
    the cross-entropies need values in [0, 1]).

    Returns:
        ``(X, Y, sample_weight)`` as JAX arrays (``Y`` and ``sample_weight`` may be None).
    """
    if not isinstance(params, MLP):
        raise TypeError(
            f"params must be an MLP (see init_params or MLP.from_layers), got "
            f"{type(params).__name__}"
        )
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
    )
    if (check_finite if targets is None else targets) and Y is not None:
        checks.check_targets(names[1], params.loss, Y)
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
    table = activation_table(params.article_mode)
    acts = [table[name] for name in params.activations]
    d = acts[-1].backprop(cache[-1], g)  # d_L = J_L^T g, from the outputs O_L
    ds = [d]
    for l in range(len(params.layers) - 1, 0, -1):  # noqa: E741
        d = acts[l - 1].backprop(cache[l], params.layers[l].w @ d)  # d_l = J_l^T (w d_{l+1})
        ds.append(d)
    dx = params.layers[0].w @ d  # dL/dx_i = sum_j w_ij d_j
    return tuple(reversed(ds)), dx


_batched_pullback = jax.vmap(_pullback, in_axes=(None, 0, 0))


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
        Layer(w=(o_prev.T @ d).astype(layer.w.dtype), b=jnp.sum(d, axis=0).astype(layer.b.dtype))
        for o_prev, d, layer in zip(cache[:-1], ds, params.layers)
    ]
    return params.replace_layers(grads), dX


# Its own jit so that the backward pass is one named call in any jaxpr of a gradient
# (tests/test_apply.py looks for it); XLA inlines it, it costs nothing.
_hand_vjp_jit = jax.jit(_hand_vjp)


@jax.custom_vjp
def _apply(params: MLP, X: Array) -> Array:
    return _batched_forward(params, X)[0]


def _apply_fwd(params: MLP, X: Array) -> tuple[Array, tuple[MLP, Cache]]:
    out, cache = _batched_forward(params, X)
    return out, (params, cache)


def _apply_bwd(res: tuple[MLP, Cache], G: Array) -> tuple[MLP, Array]:
    params, cache = res
    return _hand_vjp_jit(params, cache, G)


_apply.defvjp(_apply_fwd, _apply_bwd)
_apply_jit = jax.jit(_apply)  # compiled when called eagerly; inlined into the caller's jit


def apply(params: MLP, X: ArrayLike, *, check_finite: bool = True) -> Array:
    """The network's outputs, differentiable by JAX through the HAND-DERIVED backward pass.

    Use it to put jbpnn in your own JAX code: any loss of the outputs, regularisers on
    them, a jbpnn network inside a larger model, your own training loop (``jax.grad``
    and an SGD step, or optax). ``jax.grad``, ``jax.vjp``, ``jax.vmap``, ``jax.jit`` and
    ``lax.scan`` all work; every derivative through it is a ``jax.custom_vjp`` whose rule
    is the article's back-propagation, never autodiff of the forward pass. Given the
    cotangent ``G = dL/dO`` of the outputs, shape ``(B, n_out)``:

        d_L = J_L^T G         (act.backprop(O_L, G), from the outputs)
        d_l = J_l^T (d_{l+1} w_{l+1}^T)
        dL/dw_l = O_{l-1}^T d_l     dL/db_l = sum_n d_l     dL/dX = d_1 w_1^T

    These are cotangents, ``+dL/dnet``: with ``L = E`` they are minus the article's
    ``Err``, so ``jax.grad`` through ``apply`` gives :func:`backward`'s gradients. With
    ``params.article_mode`` the forward pass is the article code's (tanh, no biases) and
    so is the backward (``O - O^2``, biases "updated"): ``jax.grad`` then returns the
    article's gradient, which is NOT the derivative of its error.

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
    n = network_count(params)
    if n:
        raise ValueError(
            "apply takes ONE network (w 2-D, b 1-D); for stacked params use "
            f"jax.vmap(jbpnn.apply, in_axes=(0, None)); got a stack of {n} networks"
        )
    if np.ndim(X) == 1:  # one example: a batch of one
        X = X if isinstance(X, jax.Array) else np.asarray(X)
        return apply(params, X[None, :], check_finite=check_finite)[0]
    if np.ndim(X) != 2:
        raise ValueError(
            f"X must have shape ({params.n_in},) for one example or (batch, {params.n_in}), "
            f"got shape {np.shape(X)}"
        )
    X, _, _ = check_batch(params, X, check_finite=False)
    if check_finite and checks.is_concrete(X):
        # X may be a constant inside the caller's jit/grad/scan: check its values now
        with jax.ensure_compile_time_eval():
            checks.check_finite("X", X)
    return _apply_jit(params, X)
