"""Levenberg-Marquardt and Bayesian regularization: the full-batch rules ``lm`` and ``br``.

The rules of MATLAB's ``trainlm`` (Hagan and Menhaj 1994) and ``trainbr`` (MacKay 1992;
Foresee and Hagan 1997) as pure, jittable ``(init, update)`` functions over flat
parameter vectors; :mod:`jbpnn.optimizers` registers them (``levenberg_marquardt()``,
``bayesian_regularization()``) and builds their :class:`jbpnn.optimizers.Optimizer`.
``update`` asks the training data for ``J^T J``, ``J^T e`` and the loss through the
``objective`` the training loop passes (:class:`jbpnn.optimizers.Objective`; the
hand-derived normal equations of :mod:`jbpnn.jacobian`). Imports only JAX, NumPy and
:mod:`jbpnn.checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from jbpnn.checks import to_device

__all__ = ["BRState", "LMState", "br_init", "br_update", "lm_init", "lm_update", "past_mu_max"]

Array = jax.Array
PyTree = Any


def _count0() -> Array:
    """The step count before the first update (built by NumPy: no compiled program)."""
    return to_device(np.zeros((), np.int32))


class LMState(NamedTuple):
    """Step count, hyperparameters (``mu`` there is the initial value), the current
    damping ``mu`` (data: carried on resume) and the gradient norm ``|dE/dtheta|`` at
    the start of the last epoch."""

    count: Array  # type: ignore[assignment]  # a field named count shadows tuple.count
    hyperparams: dict[str, Array]
    mu: Array
    grad_norm: Array


class BRState(NamedTuple):
    """:class:`LMState`'s fields, and the Bayesian regularization's weights of the
    objective ``F = beta SSE + alpha SSW`` and effective number of parameters ``gamma``,
    as the last epoch's step used them (data: carried on resume)."""

    count: Array  # type: ignore[assignment]  # a field named count shadows tuple.count
    hyperparams: dict[str, Array]
    mu: Array
    grad_norm: Array
    alpha: Array
    beta: Array
    gamma: Array


def lm_init(params: PyTree, hp: dict[str, Array]) -> LMState:
    """LM's state before epoch 1: the damping ``mu`` from the hyperparameters, no loss yet."""
    return LMState(_count0(), hp, hp["mu"], _nan_like(hp["mu"]))


def br_init(params: PyTree, hp: dict[str, Array]) -> BRState:
    """BR's state before epoch 1: ``mu`` as LM's; ``alpha``, ``beta``, ``gamma`` unknown (NaN)."""
    nan = _nan_like(hp["mu"])  # alpha, beta, gamma: estimated from the data in epoch 1
    return BRState(_count0(), hp, hp["mu"], nan, nan, nan, nan)


def _nan_like(x: Array) -> Array:
    return to_device(np.asarray(np.nan, np.dtype(x.dtype)))


class _Residuals(NamedTuple):
    """The Gauss-Newton terms at the params, flat (what lm and br both start from)."""

    x: Array  # every weight and bias, ravel_pytree order
    unravel: Callable[[Array], PyTree]
    jtj: Array  # J^T J
    jte: Array  # J^T e
    sse: Array  # e^T e
    loss: Array  # E, the (weighted) mean loss
    weight: Array  # W: the examples' total (sample) weight, N without sample weights
    grad_norm: Array  # |dE/dtheta| of the mean loss E = e^T e / (2 W)


def _residuals(params: PyTree, objective: Any, name: str) -> _Residuals:
    if objective is None:
        raise ValueError(
            f"{name} is full batch: update(..., objective=Objective(...)); train builds it"
        )
    x, unravel = ravel_pytree(params)
    jtj, jte, sse = objective.normal_equations(params)
    loss = objective.loss(params)
    weight = jnp.where(loss > 0, sse / (2 * loss), 1.0)  # E = e^T e / (2 W)
    return _Residuals(x, unravel, jtj, jte, sse, loss, weight, jnp.linalg.norm(jte) / weight)


def _marquardt(
    hessian: Array, gradient: Array, mu: Array, hp: Mapping[str, Array], falls: Callable
) -> tuple[Array, Array]:
    """MATLAB's inner Levenberg-Marquardt loop (trainlm, trainbr), compiled::

        (H + mu I) dx = -g                      solved by Cholesky
        falls(dx):  keep dx, mu <- max(mu mu_dec, 1e-20)
        otherwise:  mu <- mu mu_inc and solve again, while mu <= mu_max

    ``H`` and ``g`` are the Gauss-Newton Hessian and the gradient of the objective
    (halved alike: the step is the same). Returns the next epoch's ``mu`` and the step,
    0 when none was kept below ``mu_max`` (then ``mu > mu_max``). A ``mu`` that the
    product no longer grows (rounding; the hyperparameters are checked against it, see
    :func:`jbpnn.optimizers.cast_hyperparams`) counts as past ``mu_max``: inf, so the loop
    always ends and the ``mu_max`` stop rule fires.
    """
    eye = jnp.eye(gradient.shape[0], dtype=gradient.dtype)

    def try_mu(carry):
        mu, _, _ = carry
        # lower: the factor L as the Cholesky gives it (upper transposed the matrix and
        # the factor with a copy each, on every try)
        factor = jax.scipy.linalg.cho_factor(hessian + mu * eye, lower=True)
        dx = -jax.scipy.linalg.cho_solve(factor, gradient)  # (H + mu I) dx = -g
        better = falls(dx)  # False for NaN (a failed factor)
        grown = mu * hp["mu_inc"]  # mu <- mu mu_inc
        grown = jnp.where(grown > mu, grown, jnp.inf)
        return jnp.where(better, mu, grown), dx, better

    def rejected(carry):
        mu, _, better = carry
        return ~better & ~past_mu_max(mu, hp["mu_max"])

    start = (mu, jnp.zeros_like(gradient), jnp.zeros((), bool))
    mu_out, dx, better = lax.while_loop(rejected, try_mu, start)
    mu_out = jnp.where(better, jnp.maximum(mu_out * hp["mu_dec"], 1e-20), mu_out)
    return mu_out.astype(mu.dtype), jnp.where(better, dx, 0)


def past_mu_max(mu: Array, mu_max: Array) -> Array:
    """``mu > mu_max``, up to 4 units in the last place: ``mu`` grows by products that
    round (``1e-3 * 10 * 10`` is ``0.10000001`` in float32), and MATLAB's ``mu <= mu_max``
    (in float64) tries ``mu_max`` itself."""
    return mu > mu_max * (1 + 4 * jnp.finfo(jnp.result_type(mu)).eps)


def lm_update(grads, state: LMState, params, lr_t, options, objective=None):
    """One Levenberg-Marquardt epoch (Hagan and Menhaj 1994; MATLAB's trainlm).

    With ``e = O - T`` and ``J = de/dtheta`` (by hand, :mod:`jbpnn.jacobian`)::

        (J^T J + mu I) dx = -J^T e              solved by Cholesky
        E(x + dx) < E(x):  accept, mu <- max(mu mu_dec, 1e-20)
        otherwise:         mu <- mu mu_inc and solve again, while mu <= mu_max

    ``mu > mu_max`` with no step accepted leaves the params as they were (the
    ``"mu_max_reached"`` stop rule then fires).
    """
    r = _residuals(params, objective, "lm")

    def falls(dx: Array) -> Array:
        return objective.loss(r.unravel(r.x + dx)) < r.loss  # E(x + dx) < E(x)

    mu, dx = _marquardt(r.jtj, r.jte, state.mu, state.hyperparams, falls)
    return r.unravel(dx), LMState(state.count + 1, state.hyperparams, mu, r.grad_norm)


def br_update(grads, state: BRState, params, lr_t, options, objective=None):
    """One epoch of Bayesian regularization (MacKay 1992; Foresee and Hagan 1997;
    MATLAB's trainbr): Levenberg-Marquardt on ``F = beta SSE + alpha SSW``.

    With ``x`` every weight and bias, ``SSW = x^T x``, ``SSE = e^T e``, ``P`` weights,
    ``N`` residuals (examples, or their total sample weight, times outputs)::

        first epoch:  gamma = P,  beta = (N - P) / (2 SSE) (1 if <= 0),  alpha = P / (2 SSW)
        after a kept step, at the new x (H = 2 beta J^T J + 2 alpha I, the old alpha, beta):
            gamma = P - 2 alpha tr(H^-1) = P - alpha tr((beta J^T J + alpha I)^-1)
            alpha = gamma / (2 SSW),     beta = (N - gamma) / (2 SSE)
        (beta J^T J + (alpha + mu) I) dx = -(beta J^T e + alpha x)      as lm's step,
        kept if F(x + dx) < F(x)

    ``gamma`` is clipped to ``[0, P]`` (the trace's terms bound it there; rounding took it
    to -1e-14 in float64), and one within the trace's rounding of 0 (``4 P eps``) is 0.
    An ``alpha`` or ``beta`` that is not positive and finite is 1
    (MATLAB's guards: a
    zero SSW or SSE, and ``beta <= 0`` in the first epoch). The re-estimate after epoch
    ``k``'s step is made at the start of epoch ``k + 1``, from the ``J^T J`` computed
    there anyway (MATLAB computes it at the same point), so one ``J^T J`` serves each
    epoch; the state and history hold the values each epoch's step used.
    """
    hp = state.hyperparams
    r = _residuals(params, objective, "br")
    P = r.x.shape[0]
    N = r.weight * params.n_out  # the number of residuals (weighted)
    ssw = r.x @ r.x  # SSW, the sum of squared weights and biases
    eye = jnp.eye(P, dtype=r.x.dtype)

    # the re-estimate, with the alpha and beta of the last (kept) step
    # tr((beta J^T J + alpha I)^-1) = sum_i 1 / (beta lambda_i + alpha), lambda_i >= 0 the
    # eigenvalues of J^T J: every term lies in (0, 1/alpha], so 0 <= gamma < P even in
    # float32, where inverting the matrix itself loses the small eigenvalues
    lam = jnp.maximum(jnp.linalg.eigvalsh(r.jtj), 0)
    trace = jnp.sum(1 / (state.beta * lam + state.alpha))
    gamma = jnp.clip(P - state.alpha * trace, 0, P)  # P - 2 alpha tr(H^-1), in [0, P]
    # where exact arithmetic gives 0 (every term 1/alpha), the sum's rounding leaves about
    # P eps: gamma 1e-15 then kept MATLAB's guard (alpha = 1 at gamma 0) from firing, and
    # alpha = gamma / 2 SSW grew to 1e24 with every weight shrunk to 0
    gamma = jnp.where(gamma <= 4 * P * jnp.finfo(gamma.dtype).eps, 0, gamma)
    re_estimate = (gamma, _or_one(gamma / (2 * ssw)), _or_one((N - gamma) / (2 * r.sse)))
    first = (jnp.asarray(P, ssw.dtype), _or_one(P / (2 * ssw)), _or_one((N - P) / (2 * r.sse)))
    kept = ~past_mu_max(state.mu, hp["mu_max"])  # the last step was kept (or none yet)
    old = (state.gamma, state.alpha, state.beta)
    gamma, alpha, beta = (
        jnp.where(state.count == 0, a, jnp.where(kept, b, c)).astype(c.dtype)
        for a, b, c in zip(first, re_estimate, old)
    )

    def objective_at(x: Array) -> Array:  # F = beta SSE + alpha SSW, SSE = 2 W E
        return beta * 2 * r.weight * objective.loss(r.unravel(x)) + alpha * (x @ x)

    f = objective_at(r.x)
    mu, dx = _marquardt(
        beta * r.jtj + alpha * eye,  # H / 2
        beta * r.jte + alpha * r.x,  # dF/dx / 2
        state.mu,
        hp,
        lambda dx: objective_at(r.x + dx) < f,
    )
    state = BRState(state.count + 1, hp, mu, r.grad_norm, alpha, beta, gamma)
    return r.unravel(dx), state


def _or_one(ratio: Array) -> Array:
    """MATLAB's guard on alpha and beta: 1 for a ratio that is not positive and finite."""
    return jnp.where(jnp.isfinite(ratio) & (ratio > 0), ratio, 1.0)
