"""Curvature by hand: Hessian- and Gauss-Newton-vector products, per-example gradient norms.

Second-order methods (Newton-CG, Hessian-free, K-FAC's checks, sharpness studies) need
the product of the Hessian ``H`` of the batch loss (:func:`jbpnn.network.loss`, the
weighted mean ``sum_n s_n E_n``) with a direction ``v`` of the weights, never ``H``
itself. Pearlmutter (Neural Computation 6(1), 1994, "Fast exact multiplication by the
Hessian") gets ``H v`` exactly, at the cost of about two gradients, with the operator
``R{.} = d/de (.)(theta + e v)`` at ``e = 0`` applied to every line of the back-propagation.
For ONE example, with ``v = (V_l, c_l)`` per layer and the deltas ``Err = -dE/dnet``:

    forward R-pass     R{net_l} = R{O_{l-1}} w_l + O_{l-1} V_l + c_l      R{O_0} = 0
                       R{O_l}   = f'(net_l) R{net_l}                      (jbpnn.tangents)
    output             R{Err_L} = loss.delta_r(O_L, T, f_L, R{net_L})     (jbpnn.losses)
    backward R-pass    R{Err_l} = f'(net_l) (V_{l+1} Err_{l+1} + w_{l+1} R{Err_{l+1}})
                                  + f''(net_l) R{net_l} (w_{l+1} Err_{l+1})
    products           (H v)_{w_l} = -(outer(R{O_{l-1}}, Err_l) + outer(O_{l-1}, R{Err_l}))
                       (H v)_{b_l} = -R{Err_l}

with ``f'`` and ``f''`` from the unit's output (``Activation.backprop``/``tangent`` and
``Activation.second``: ``O(1-O)(1-2O)`` for the sigmoid, ``-2 O (1 - O^2)`` for tanh),
or from its net input for the units that use it (``s(1-s)(2 + net(1-2s))`` for swish). A
unit registered without ``second=`` (:func:`jbpnn.register_activation`), or a loss without
``delta_r`` / ``delta_gn`` (:func:`jbpnn.register_loss`), has no hand-derived curvature:
:func:`hvp` (and :func:`gnvp` for the loss) then refuse, naming it.
Over a batch the products are contracted with the normalised sample weights ``s``,
``-(R{O_prev}^T (s Err) + O_prev^T (s R{Err}))``, as the gradient is. Every ``Err_l`` and
``R{Err_l}`` is linear in the output's pair ``(Err_L, R{Err_L})``, so ``-s_n`` multiplies
that pair once per example and the layers need no weighting (autodiff's cotangent ``1/B``
does the same): one element-wise pass instead of one per layer.

The Gauss-Newton product ``G v = sum_n s_n J_n^T H_n J_n v`` (Schraudolph 2002) keeps
only the terms through the loss's curvature ``H_n``: ``J_n`` is the Jacobian of the
outputs ``O`` for mse (``H_n = I``: ``E = 1/2 |T - O|^2``) and of the output layer's net
inputs for the log losses (``H_n = sum(T) (diag(O) - O O^T)`` for softmax with
cross-entropy, ``diag(O (1 - O))`` for sigmoid with binary cross-entropy), so ``G`` is
positive semi-definite. By hand it is the same passes without the second-derivative and
``V Err`` terms:

    output             R{Err_L} = loss.delta_gn(O_L, T, f_L, R{net_L})
    backward           R{Err_l} = f'(net_l) (w_{l+1} R{Err_{l+1}})
    products           (G v)_{w_l} = -O_{l-1}^T (s R{Err_l})       (G v)_{b_l} = -s^T R{Err_l}

Per-example gradient norms use the rank-one structure of each example's gradient,
``dE_n/dw_l = -outer(O_{l-1}, Err_l)``, whose squared norm is ``|O_{l-1}|^2 |Err_l|^2``:

    |g_n|^2 = sum_l |Err_{l,n}|^2 (|O_{l-1,n}|^2 + 1)          (+1: the bias)

without forming the ``(B, n_in, n_out)`` per-example gradients.

The article mode has no curvature (its derivative is not one of a function), so the
products refuse it; the norms follow its :func:`jbpnn.network.backward`.

No autodiff here: the tests compare every product with ``jax.jvp(jax.grad(loss))`` and
``jax.hessian``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jbpnn import checks
from jbpnn.activations import get_activation, units
from jbpnn.devices import call_compiled, compiler_options
from jbpnn.losses import LOSSES
from jbpnn.network import (
    check_batch,
    check_direction,
    deltas,
    forward,
    normalised_weights,
    over_batch,
    require_targets,
    split_rows_like,
)
from jbpnn.params import MLP, Layer, network_count
from jbpnn.tangents import tangents

__all__ = [
    "example_r_deltas",
    "gnvp",
    "gnvp_kernel",
    "hvp",
    "hvp_kernel",
    "per_example_grad_norms",
    "per_example_grad_norms_kernel",
]

Array = jax.Array


# ---------------------------------------------------------------- one example
def example_r_deltas(
    params: MLP, x: Array, y: Array, v: MLP, gauss_newton: bool = False, scale: ArrayLike = 1.0
) -> tuple[tuple[Array, ...], tuple[Array, ...], tuple[Array, ...], tuple[Array | None, ...]]:
    """Pearlmutter's two R-passes for ONE example.

    Args:
        params: the network (not article mode).
        x: one input, shape ``(n_in,)``.
        y: its targets, shape ``(n_out,)``.
        v: the direction of the weights, shaped like ``params``.
        gauss_newton: keep only the Gauss-Newton terms (then ``errs`` is empty).
        scale: a factor on the output deltas ``Err_L`` and ``R{Err_L}``; every delta and
            R-delta below is linear in them, so it scales them all (the batch products
            pass each example's ``-s_n`` here, once, instead of weighting every layer).

    Returns:
        ``(cache, errs, r_errs, r_outs)``: ``cache`` from :func:`jbpnn.network.forward`,
        ``errs`` the deltas ``Err_l`` (:func:`jbpnn.network.deltas`), ``r_errs`` their
        ``R{Err_l}``, one per layer, input side first, and ``r_outs`` the forward R-pass
        ``(None, R{O_1}, ..., R{O_L})`` (the input does not move).
    """
    _, cache = forward(params, x)
    r_nets, r_outs = tangents(params, cache, v, None)  # forward R-pass
    acts = units(params, cache)  # the table's rows (bound to net_l where a unit uses it)
    loss = LOSSES[params.loss]
    # Any: err is None with gauss_newton (never read then), and a product with the
    # ArrayLike scale is typed as NumPy's or JAX's
    err: Any
    r_err: Any
    errs: list[Any] | tuple[Any, ...]
    if gauss_newton:
        err = None
        assert loss.delta_gn is not None  # gnvp refuses a loss without it
        r_err = scale * loss.delta_gn(cache[-1], y, acts[-1], r_nets[-1])
    else:
        assert loss.delta_r is not None  # hvp refuses a loss without it
        err = scale * loss.delta(cache[-1], y, acts[-1])  # Err_L, as jbpnn.network.deltas
        r_err = scale * loss.delta_r(cache[-1], y, acts[-1], r_nets[-1])
    errs, r_errs = [err], [r_err]
    for l in range(len(params.layers) - 1, 0, -1):  # noqa: E741
        w, act, o = params.layers[l].w, acts[l - 1], cache[l]
        if gauss_newton:
            r_err = act.backprop(o, r_err @ w.T)  # f'(net_l) (w R{Err})
        else:
            assert act.second is not None  # hvp refuses a unit without it
            g = err @ w.T  # w_{l+1} Err_{l+1} (row vectors: batched by vmap without a transpose)
            r_err = act.backprop(o, err @ v.layers[l].w.T + r_err @ w.T) + act.second(
                o, r_nets[l - 1], g
            )  # f'(net_l) (V Err + w R{Err}) + f''(net_l) R{net_l} (w Err)
            err = act.backprop(o, g)  # Err_l = f'(net_l) (w Err), the usual backward
        errs.append(err)
        r_errs.append(r_err)
    errs = () if gauss_newton else tuple(reversed(errs))
    return cache, errs, tuple(reversed(r_errs)), r_outs


def _product(
    params: MLP, X: Array, Y: Array, v: MLP, sample_weight: Array | None, gauss_newton: bool
) -> MLP:
    # The deltas of example n are weighted (and negated) once, at the output: -s_n Err_L.
    if params.article_mode:  # the checked hvp/gnvp say so first; the kernels too
        raise ValueError("article_mode networks have no curvature: use a correct network")
    batched = jax.vmap(example_r_deltas, in_axes=(None, 0, 0, None, None, 0))
    neg_s = split_rows_like(-normalised_weights(X.shape[0], X.dtype, sample_weight), [X])
    cache, errs, r_errs, r_outs = batched(params, X, Y, v, gauss_newton, neg_s)
    layers = []
    for l, (o_prev, r_err) in enumerate(zip(cache[:-1], r_errs)):  # noqa: E741
        # A layer with fewer outputs than inputs (10 on 2048) sums its products as
        # (n_out, n_in) and transposes the sum once: the products then run with the long
        # side as columns, which XLA's CPU kernels run several times faster than 10
        # columns (autodiff's transposed products get this layout too). over_batch: a^T b,
        # a sum over the rows (replicated where an Explicit mesh splits them).
        flip = r_err.shape[1] < o_prev.shape[1]
        w = over_batch(r_err, o_prev) if flip else over_batch(o_prev, r_err)  # -O_prev^T (s R{Err})
        r_out = r_outs[l]
        if not gauss_newton and r_out is not None:  # -R{O_prev}^T (s Err); Err carries the -s
            w = w + (over_batch(errs[l], r_out) if flip else over_batch(r_out, errs[l]))
        layers.append(Layer(w=w.T if flip else w, b=jnp.sum(r_err, axis=0)))
    return params.replace_layers(layers)


# ---------------------------------------------------------------- kernels
def hvp_kernel(params: MLP, X: Array, Y: Array, v: MLP, sample_weight: Array | None = None) -> MLP:
    """Unchecked, traceable core of :func:`hvp`."""
    return _product(params, X, Y, v, sample_weight, gauss_newton=False)


def gnvp_kernel(params: MLP, X: Array, Y: Array, v: MLP, sample_weight: Array | None = None) -> MLP:
    """Unchecked, traceable core of :func:`gnvp`."""
    return _product(params, X, Y, v, sample_weight, gauss_newton=True)


def per_example_grad_norms_kernel(params: MLP, X: Array, Y: Array) -> Array:
    """Unchecked, traceable core of :func:`per_example_grad_norms`."""
    _, cache = jax.vmap(forward, in_axes=(None, 0))(params, X)
    errs = jax.vmap(deltas, in_axes=(None, 0, 0))(params, cache, Y)
    # the squares summed in float32 at least: |O_prev|^2 of 64 pixel values overflowed
    # float16 (inf, and 0 * inf = NaN for a saturated unit's Err = 0); the norm is cast back
    wide = jnp.promote_types(params.dtype, jnp.float32)
    squared = sum(
        jnp.sum(jnp.square(err.astype(wide)), axis=1)  # |Err|^2 (|O_prev|^2 + 1)
        * (jnp.sum(jnp.square(o_prev.astype(wide)), axis=1) + 1)
        for o_prev, err in zip(cache[:-1], errs)
    )
    return jnp.sqrt(squared).astype(params.dtype)


_norms_jit = jax.jit(per_example_grad_norms_kernel)


@functools.cache
def program(kernel: Any, options: tuple[tuple[str, str], ...] = ()) -> Any:
    """``kernel`` jitted with the XLA ``options`` of
    :func:`jbpnn.devices.compiler_options` (``()``: plain ``jax.jit``), one per pair."""
    return jax.jit(kernel, compiler_options=dict(options)) if options else jax.jit(kernel)


def _run(kernel: Any, params: MLP, *args: Any) -> MLP:
    """``kernel(params, *args)`` compiled with the curvature options of the network's
    sizes on this backend (called inside a trace: the plain ``jax.jit``, which XLA
    compiles with the enclosing program's options); an XLA that refuses them compiles
    it without."""
    traced = not all(checks.is_concrete(a) for a in jax.tree.leaves((params, args)))
    # options go to a top-level jit only: inside the caller's jit or vmap, the plain one
    options = () if traced else compiler_options(params.sizes, program="curvature")
    return call_compiled(functools.partial(program, kernel), options, params, *args)


# ---------------------------------------------------------------- checked public API
def hvp(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    v: MLP,
    sample_weight: ArrayLike | None = None,
    *,
    check_finite: bool = True,
) -> MLP:
    """The exact Hessian of :func:`jbpnn.loss` times ``v``, by Pearlmutter's R-operator, jitted.

    Compiled with :func:`jbpnn.devices.compiler_options` ``(params.sizes,
    program="curvature")`` (on the CPU: XLA's own loops for the reductions), as is
    :func:`gnvp`; :func:`hvp_kernel` is the same computation for your own ``jit``.

    Args:
        params: ONE network, not article mode.
        X: inputs, shape ``(B, n_in)``.
        Y: targets, shape ``(B, n_out)``.
        v: the direction, an :class:`MLP` shaped like ``params``.
        sample_weight: optional non-negative weights, shape ``(B,)``, as for the loss.
        check_finite: raise on NaN/inf and on targets the loss cannot take.

    Returns:
        ``H v`` as an :class:`MLP` shaped like ``params``.
    """
    params, X, Y, v, sw = _check(params, X, Y, v, sample_weight, check_finite, "hvp")
    return _run(hvp_kernel, params, X, Y, v, sw)


def gnvp(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    v: MLP,
    sample_weight: ArrayLike | None = None,
    *,
    check_finite: bool = True,
) -> MLP:
    """The Gauss-Newton matrix of :func:`jbpnn.loss` times ``v``, ``sum_n s_n J_n^T H_n J_n v``.

    ``J_n`` is the Jacobian of the outputs (mse, ``H_n = I``) or of the output layer's
    net inputs (the log losses, ``H_n`` their exact Hessian there); see the module's
    docstring. Positive semi-definite; equal to the Hessian where the network is linear
    in its weights up to that point: one layer whose output unit is the loss's pair
    (identity with mse, softmax with cross_entropy, sigmoid with binary_cross_entropy);
    one layer of tanh or sigmoid units under mse is not. Arguments and result as
    :func:`hvp`.
    """
    params, X, Y, v, sw = _check(params, X, Y, v, sample_weight, check_finite, "gnvp")
    return _run(gnvp_kernel, params, X, Y, v, sw)


def per_example_grad_norms(
    params: MLP, X: ArrayLike, Y: ArrayLike, *, check_finite: bool = True
) -> Array:
    """The norm of every example's gradient, without forming the per-example gradients.

    ``|g_n| = sqrt(sum_l |Err_{l,n}|^2 (|O_{l-1,n}|^2 + 1))``: the norms of the rows of
    :func:`jbpnn.per_example_grads` (all leaves of one example raveled together), in
    ``O(B sum_l n_l)`` memory instead of ``O(B P)``.

    Args:
        params: ONE network.
        X: inputs, shape ``(B, n_in)``.
        Y: targets, shape ``(B, n_out)``.
        check_finite: raise on NaN/inf and on targets the loss cannot take.

    Returns:
        Shape ``(B,)``.
    """
    _require_one(params, "per_example_grad_norms")
    require_targets(Y, "per_example_grad_norms")
    X, Y, _ = check_batch(params, X, Y, check_finite=check_finite, min_rows=1)
    return _norms_jit(params, X, Y)


_IN_AXES = {"hvp": "(0, None, None, 0)", "gnvp": "(0, None, None, 0)"}  # v: one per network


def _require_one(params: MLP, name: str) -> None:
    if not isinstance(params, MLP):
        raise TypeError(f"params must be an MLP, got {type(params).__name__}")
    if network_count(params):
        axes = _IN_AXES.get(name, "(0, None, None)")
        raise ValueError(
            f"{name} takes ONE network; for stacked params use "
            f"jax.vmap(jbpnn.curvature.{name}_kernel, in_axes={axes})"
        )


def _check(
    params: MLP,
    X: ArrayLike,
    Y: ArrayLike,
    v: Any,
    sample_weight: ArrayLike | None,
    check_finite: bool,
    name: str,
) -> tuple[MLP, Array, Array, MLP, Array | None]:
    _require_one(params, name)
    if params.article_mode:
        raise ValueError(
            f"{name}: article_mode networks have no curvature (their derivative is not the "
            "derivative of a function); use a correct network"
        )
    _require_derivatives(params, name)
    require_targets(Y, name)
    X, Y, sw = check_batch(params, X, Y, sample_weight, check_finite=check_finite, min_rows=1)
    v = check_direction(params, v, "v")
    if check_finite:  # a traced v (inside jit or vmap) is skipped, as traced data is
        for i, layer in enumerate(v.layers):
            for part, a in (("w", layer.w), ("b", layer.b)):
                checks.check_finite(f"{name}: v's layer {i} {part}", a)
    return params, X, Y, v, sw


def _require_derivatives(params: MLP, name: str) -> None:
    """Refuse a network whose units or loss lack the derivatives ``name`` needs."""
    loss = LOSSES[params.loss]
    rule = "delta_gn" if name == "gnvp" else "delta_r"
    what = (
        "the Gauss-Newton part of its output delta's change along R{net}, -H_L J r"
        if rule == "delta_gn"
        else "its output delta's change along R{net}"
    )
    if getattr(loss, rule) is None:
        raise ValueError(
            f"{name}: the loss {params.loss!r} has no {rule} ({what}); register it with "
            f"{rule}=... (jbpnn.register_loss) to use {name}"
        )
    if name != "hvp":
        return
    for i, act_name in enumerate(params.activations):
        if get_activation(act_name).second is None:
            raise ValueError(
                f"hvp: the activation {act_name!r} (layer {i}) has no second derivative; "
                "register it with second=... (f''(net), jbpnn.register_activation) to use "
                "hvp, or use gnvp, which needs only f'"
            )
