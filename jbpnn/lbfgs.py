"""L-BFGS, full batch and compiled: the two-loop recursion and a strong-Wolfe line search.

Limited-memory BFGS (Nocedal 1980; Liu and Nocedal 1989), the algorithm of scipy's
``L-BFGS-B`` that scikit-learn's ``solver="lbfgs"`` runs. With ``x`` every weight and
bias as one flat vector (:func:`jax.flatten_util.ravel_pytree` order), ``E`` the
full-batch loss and ``g = dE/dx``, one iteration (one epoch of :func:`jbpnn.training.train`)
is::

    d = -H g                        two-loop recursion over the last m pairs (s_i, y_i)
    x <- x + a d                    a from the line search (strong Wolfe conditions):
        E(x + a d) <= E(x) + c1 a g^T d             sufficient decrease
        |g(x + a d)^T d| <= c2 |g^T d|              curvature
    s = a d,  y = g(x + a d) - g    kept when s^T y > eps (-g^T s)   (L-BFGS-B's test)

The two-loop recursion (Nocedal and Wright, *Numerical Optimization*, 2nd ed.,
Algorithm 7.4), with ``rho_i = 1 / (y_i^T s_i)`` and ``H_0 = gamma I``,
``gamma = s^T y / y^T y`` of the newest pair::

    q = g;  for i newest .. oldest:  alpha_i = rho_i s_i^T q;   q -= alpha_i y_i
    r = gamma q;  for i oldest .. newest:  beta = rho_i y_i^T r;  r += s_i (alpha_i - beta)
    H g = r

The line search is Nocedal and Wright's Algorithm 3.5 (steps doubled until a bracket
is found) with its ``zoom`` (Algorithm 3.6; the trial step the minimiser of the cubic
through both ends, bisection when that falls outside the middle 80% of the bracket),
one ``lax.while_loop``. The first step is 1, or ``1 / |g|`` along ``-g`` when no pair is
kept (the first iteration; L-BFGS-B's rule).

One evaluation of ``(E, g)`` per trial step, and none more: the state keeps the
accepted step's ``(E, g)``, and the next iteration (the training loop's loss of the
epoch included, :func:`evaluation`) starts from it instead of evaluating the same point
again, as scipy does. Only where the params are not the ones the last iteration ended at
(the first iteration; params replaced between runs), or the training data are not the
ones it evaluated (a run resumed on other rows: ``partial_fit``; see
:func:`data_fingerprint`), is ``(E, g)`` evaluated afresh. So the evaluations made are
the ``n_evals`` reported, scikit-learn's ``max_fun`` count.

Stops, as scipy's L-BFGS-B (see :func:`stops`): ``max|g| <= gtol`` (its ``pgtol``,
checked at the start too: a converged start takes no step), ``(E_old - E_new) /
max(|E_old|, |E_new|, 1) <= ftol``, more than ``max_fun`` evaluations of ``(E, g)``, and
a failed line search (no step meets the conditions in ``max_linesearch`` evaluations):
the params stay; with pairs kept, they are forgotten and the next epoch searches along
``-g``; without any (the search was along ``-g`` already), the run stops.

Every loop is a ``lax.while_loop`` or ``lax.scan`` inside the compiled program, the
memory fixed-size arrays ``(m, P)`` with a pair count, so ``jax.vmap`` trains many
networks at once. Pure JAX and NumPy; imports nothing of jbpnn's maths (only
``jbpnn._callable``, which makes ``jbpnn.lbfgs(...)`` the factory). :mod:`jbpnn.optimizers`
registers :func:`init` and :func:`update` as the rule ``"lbfgs"`` (its factory
:func:`jbpnn.optimizers.lbfgs` holds the hyperparameters).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from jbpnn._callable import make_callable

__all__ = [
    "HISTORY_KEYS",
    "LBFGSState",
    "LineSearch",
    "data_fingerprint",
    "init",
    "stops",
    "evaluation",
    "two_loop",
    "update",
    "wolfe_line_search",
]

Array = jax.Array
PyTree = Any

HISTORY_KEYS = ("grad_max", "step", "n_evals")  # what an epoch adds to a run's history


class LBFGSState(NamedTuple):
    """Iterations, hyperparameters, the last ``m`` pairs (newest last) and the last step.

    Attributes:
        count: iterations made (int32).
        hyperparams: ``c1, c2, max_linesearch, gtol, ftol, max_fun`` (and ``alpha``).
        s: ``(m, P)``, steps ``s_i = x_{i+1} - x_i``; the last ``n_pairs`` rows hold pairs.
        y: ``(m, P)``, gradient changes ``y_i = g_{i+1} - g_i``.
        rho: ``(m,)``, ``1 / (y_i^T s_i)``.
        n_pairs: how many pairs are kept (int32, at most ``m``).
        loss: ``E`` at the params after the last iteration.
        grad_max: ``max|g|`` there (scipy's projected gradient norm, unconstrained).
        loss_reduction: ``(E_old - E_new) / max(|E_old|, |E_new|, 1)`` of the last
            iteration (NaN when it made no step).
        step: the last step length ``a`` (0: none).
        n_evals: evaluations of ``(E, g)`` so far (scikit-learn's ``max_fun`` counts them).
        failed: the last line search found no step.
        x: ``(P,)``, the flat params the last iteration ended at (NaN before the first).
        x_loss, x_grad: the training loop's ``(E, g)`` there (without ``alpha``'s
            penalty), which :func:`evaluation` gives back instead of evaluating ``x`` again.
        x_data: ``(2,)`` uint32, the :func:`data_fingerprint` of the training data they
            were evaluated on (0 before the first).
    """

    count: Array  # type: ignore[assignment]  # a field named count shadows tuple.count
    hyperparams: dict[str, Array]
    s: Array
    y: Array
    rho: Array
    n_pairs: Array
    loss: Array
    grad_max: Array
    loss_reduction: Array
    step: Array
    n_evals: Array
    failed: Array
    x: Array
    x_loss: Array
    x_grad: Array
    x_data: Array


class LineSearch(NamedTuple):
    """What :func:`wolfe_line_search` found: the step ``a`` (0 when ``ok`` is False), ``E``
    and ``g`` at ``x + a d``, the evaluations made, whether ``a`` meets strong Wolfe, and
    (with ``aux0``) what ``fun`` returned beside ``(E, g)`` there (``aux0`` when not ok)."""

    step: Array
    loss: Array
    grad: Array
    n_evals: Array
    ok: Array
    aux: Any = None


# ---------------------------------------------------------------- the two-loop recursion
def two_loop(g: Array, s: Array, y: Array, rho: Array, n_pairs: Array) -> Array:
    """``H g``, the L-BFGS inverse-Hessian estimate times ``g`` (Algorithm 7.4).

    Args:
        g: the gradient, shape ``(P,)``.
        s, y: the pairs, shape ``(m, P)``, oldest first; only the last ``n_pairs`` rows count.
        rho: ``1 / (y_i^T s_i)``, shape ``(m,)``.
        n_pairs: how many rows hold pairs (0: ``H = I``).

    Returns:
        ``H g``, shape ``(P,)``; ``-H g`` is the search direction.
    """
    # JAX arrays: the state's rows may be NumPy ones (init's), which the scans' traced
    # row index cannot index (init and update called directly, without jit)
    s, y, rho = jnp.asarray(s), jnp.asarray(y), jnp.asarray(rho)
    m = s.shape[0]
    kept = jnp.arange(m) >= m - n_pairs

    def newest_to_oldest(q: Array, i: Array) -> tuple[Array, Array]:
        alpha = jnp.where(kept[i], rho[i] * (s[i] @ q), 0)  # alpha_i = rho_i s_i^T q
        return q - alpha * y[i], alpha  # q <- q - alpha_i y_i

    # rolled loops: unrolling the 2 m steps made the first train call's compile 1.4x as
    # long (sin 1-10-1: 1.37 against 0.92-0.99 s) and ran no faster
    q, alphas = lax.scan(newest_to_oldest, g, jnp.arange(m - 1, -1, -1))
    gamma = jnp.where(n_pairs > 0, (s[-1] @ y[-1]) / (y[-1] @ y[-1]), 1)  # H_0 = gamma I

    def oldest_to_newest(r: Array, i_alpha: tuple[Array, Array]) -> tuple[Array, None]:
        i, alpha = i_alpha
        beta = rho[i] * (y[i] @ r)  # beta = rho_i y_i^T r
        return r + jnp.where(kept[i], alpha - beta, 0) * s[i], None  # r <- r + s_i (alpha_i - beta)

    r, _ = lax.scan(oldest_to_newest, (gamma * q).astype(g.dtype), (jnp.arange(m), alphas[::-1]))
    return r


# ---------------------------------------------------------------- the line search
def _cubic_step(lo: Array, f_lo: Array, d_lo: Array, hi: Array, f_hi: Array, d_hi: Array) -> Array:
    """The minimiser of the cubic through ``(lo, f_lo, f'_lo)`` and ``(hi, f_hi, f'_hi)``
    (Nocedal and Wright eq. 3.59), or the midpoint when that is not finite or lies
    outside the middle 80% of the bracket."""
    d1 = d_lo + d_hi - 3 * (f_lo - f_hi) / (lo - hi)
    d2 = jnp.sign(hi - lo) * jnp.sqrt(d1 * d1 - d_lo * d_hi)
    a = hi - (hi - lo) * (d_hi + d2 - d1) / (d_hi - d_lo + 2 * d2)
    width = jnp.abs(hi - lo)
    inside = jnp.abs(a - (lo + hi) / 2) <= 0.4 * width
    return jnp.where(jnp.isfinite(a) & inside, a, (lo + hi) / 2)


def wolfe_line_search(
    fun: Callable[[Array], Any],  # (E, g), or ((E, g), aux) with aux0
    x: Array,
    d: Array,
    loss0: Array,
    grad0: Array,
    step0: Array,
    c1: Any = 1e-4,
    c2: Any = 0.9,
    max_evals: Any = 20,
    aux0: Any = None,
) -> LineSearch:
    """A step ``a`` along ``d`` that meets the strong Wolfe conditions::

        E(x + a d) <= E(x) + c1 a g^T d,        |g(x + a d)^T d| <= c2 |g^T d|

    Nocedal and Wright's Algorithm 3.5 (bracketing: ``a`` doubles while the loss
    keeps falling and the slope is still negative) and 3.6 (``zoom``: shrink the
    bracket ``[lo, hi]``, ``lo`` the best step that decreases enough, by cubic
    interpolation), in one ``lax.while_loop`` (each pass evaluates ``fun`` once).

    Args:
        fun: ``x -> (E, g)``, flat; traceable. With ``aux0`` given, ``x -> ((E, g), aux)``.
        x: the start, shape ``(P,)``.
        d: a descent direction (``g^T d < 0``; otherwise nothing is tried).
        loss0, grad0: ``E(x)`` and ``g(x)``.
        step0: the first trial step.
        c1, c2: the conditions' constants, ``0 < c1 < c2 < 1``.
        max_evals: evaluations allowed (traced).
        aux0: ``fun``'s aux at ``x`` (a pytree shaped as every trial's), or None: ``fun``
            returns ``(E, g)`` alone.

    Returns:
        A :class:`LineSearch`; ``ok`` False (``step`` 0, ``loss0``, ``grad0``) when no
        step met both conditions within ``max_evals`` evaluations.
    """
    slope0 = grad0 @ d  # g^T d < 0

    has_aux = aux0 is not None

    def evaluate(a: Array) -> tuple[Array, Array, Array, Any]:
        (loss, grad), aux = fun(x + a * d) if has_aux else (fun(x + a * d), None)
        return loss, grad, grad @ d, aux

    zero = jnp.zeros_like(slope0)
    start: dict[str, Any] = {
        "zoom": jnp.zeros((), bool),  # False: bracketing (Alg. 3.5); True: zoom (Alg. 3.6)
        "done": jnp.zeros((), bool),
        "a": jnp.asarray(step0, slope0.dtype),  # the next trial step
        "lo": (zero, loss0, slope0),  # bracketing: the previous step; zoom: the best end
        "hi": (zero, loss0, slope0),
        "found": (zero, loss0, grad0, aux0),
        "n": jnp.zeros((), jnp.int32),
    }

    def searching(c: dict) -> Array:
        n = c["n"].astype(jnp.result_type(max_evals))  # a float budget: no implicit promotion
        return ~c["done"] & (n < max_evals) & (slope0 < 0)

    def one_trial(c: dict) -> dict:
        a = c["a"]
        f, g, slope, aux = evaluate(a)
        lo, hi = c["lo"], c["hi"]
        too_high = ~(f <= loss0 + c1 * a * slope0)  # no sufficient decrease (or NaN)
        flat = jnp.abs(slope) <= -c2 * slope0  # the curvature condition
        point = (a, f, slope)
        # bracketing: a too high, or no lower than the previous step -> zoom(prev, a)
        up = too_high | ((c["n"] > 0) & (f >= lo[1]))
        # zoom: a too high, or no lower than lo -> hi = a
        zoom_up = too_high | (f >= lo[1])
        shrink = jnp.where(c["zoom"], zoom_up, up)
        done = ~shrink & flat
        # not done, not too high: past the minimum (slope >= 0) -> the bracket is [a, prev]
        # (bracketing) or [a, lo] when lo lay on the far side (zoom: slope (hi - lo) >= 0)
        turn = jnp.where(c["zoom"], slope * (hi[0] - lo[0]) >= 0, slope >= 0)
        new_lo = jax.tree.map(lambda p, l: jnp.where(shrink, l, p), point, lo)
        new_hi = jax.tree.map(
            lambda p, l, h: jnp.where(shrink, p, jnp.where(turn, l, h)), point, lo, hi
        )
        zoom = c["zoom"] | shrink | turn
        nxt = jnp.where(
            zoom,
            _cubic_step(*new_lo, *new_hi),
            2 * a,  # still bracketing: a longer step
        )
        found = jax.tree.map(lambda n, o: jnp.where(done, n, o), (a, f, g, aux), c["found"])
        return {
            "zoom": zoom,
            "done": done,
            "a": nxt.astype(a.dtype),
            "lo": new_lo,
            "hi": new_hi,
            "found": found,
            "n": c["n"] + 1,
        }

    end = lax.while_loop(searching, one_trial, start)
    step, loss, grad, aux = end["found"]
    return LineSearch(step, loss, grad, end["n"], end["done"], aux)


# ---------------------------------------------------------------- the optimizer rule
def _max_abs(g: Array) -> Array:
    """``max|g|``, inf where ``g`` has a NaN: XLA's CPU reductions of 4096 or more elements
    drop a NaN from a maximum, and a NaN gradient must not pass for a converged one."""
    return jnp.max(jnp.where(jnp.isnan(g), jnp.inf, jnp.abs(g)))


def init(params: PyTree, hp: dict[str, Array], history: int = 10) -> LBFGSState:
    """The state before the first iteration: no pairs, ``m = history`` empty rows."""
    leaves = jax.tree.leaves(params)  # ravel_pytree's length and dtype, without its copy
    dtype = np.dtype(jnp.result_type(*leaves))

    def filled(value: Any, shape: tuple[int, ...], kind: Any = dtype) -> Any:
        return np.full(shape, value, kind)  # NumPy: no program compiled; the loop copies it

    p = sum(int(np.size(leaf)) for leaf in leaves)
    if 2 * history * p * dtype.itemsize > 2**26:  # above 64 MiB of pairs: do they fit?
        from jbpnn.memory import check_array_memory  # only here: this module imports no jbpnn

        check_array_memory(
            (2 * history, p),
            dtype,
            f"L-BFGS's history={history} pairs (s, y) of {p:,} params",
            advice="keep fewer pairs (lbfgs(history=10) is scipy's default)",
        )
    nan = filled(np.nan, ())
    return LBFGSState(
        count=filled(0, (), np.int32),
        hyperparams=hp,
        s=filled(0, (history, p)),
        y=filled(0, (history, p)),
        rho=filled(0, (history,)),
        n_pairs=filled(0, (), np.int32),
        loss=nan,
        grad_max=nan,
        loss_reduction=nan,
        step=filled(0, ()),
        n_evals=filled(0, (), np.int32),
        failed=filled(False, (), bool),
        x=filled(np.nan, (p,)),  # no params are NaN: the first evaluation is made afresh
        x_loss=nan,
        x_grad=filled(np.nan, (p,)),
        x_data=filled(0, (2,), np.uint32),
    )


def data_fingerprint(*arrays: Array | None) -> Array:
    """Two 32-bit hashes of the arrays' bits, ``(2,)`` uint32: each element's bits times
    a factor of its position (and of the array's), summed modulo ``2**32``. Integer sums
    are exact in any order, so the same data give the same fingerprint in any program;
    other data (a changed value, rows moved or added) give another, but for a chance of
    about ``2**-64``. One pass over the data, no copy (XLA fuses it into the sums)."""
    h1 = h2 = jnp.zeros((), jnp.uint32)
    for k, a in enumerate(arrays):
        if a is None:
            continue
        a = jnp.asarray(a)
        if a.dtype != jnp.bool_:  # the bits, as unsigned words (8-byte values: two each)
            words = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint32}
            a = lax.bitcast_convert_type(a, words[a.dtype.itemsize])
        bits = a.astype(jnp.uint32).ravel()
        at = jnp.arange(bits.shape[0], dtype=jnp.uint32)
        salt = jnp.uint32(2 * k + 1)
        u32 = jnp.uint32
        h1 += jnp.sum(bits * (2 * at + salt), dtype=u32)  # modulo 2**32
        h2 += jnp.sum((bits ^ u32(0x9E3779B9)) * (at * u32(0x85EBCA6B) + salt), dtype=u32)
    return jnp.stack([h1, h2])


def evaluation(
    state: LBFGSState,
    params: PyTree,
    evaluate: Callable[[], tuple[Array, PyTree]],
    data: Array | None = None,
) -> tuple[Array, PyTree]:
    """The training loop's ``(E, g)`` at ``params``: the ones the last iteration's line
    search evaluated there, when ``params`` are where it ended (:func:`same_point`) and
    ``data`` (:func:`data_fingerprint` of the training data) is the fingerprint of the
    data it evaluated them on, else ``evaluate()`` (a ``lax.cond``: only one branch runs;
    under ``jax.vmap`` both do). ``data`` None: the data are taken to be the same."""
    x, unravel = ravel_pytree(params)
    loss, grad = jax.eval_shape(evaluate)  # the branches' types: the loop's own

    def carried() -> tuple[Array, PyTree]:
        g = jax.tree.map(lambda v, t: v.astype(t.dtype), unravel(state.x_grad), grad)
        return state.x_loss.astype(loss.dtype), g

    same = same_point(x, state.x)
    if data is not None:
        same &= jnp.all(state.x_data == data)
    return lax.cond(same, carried, evaluate)


def same_point(x: Array, y: Array) -> Array:
    """``x`` and ``y`` are the same point up to the last bits: every entry within 4 units
    in the last place (NaN: never). The training loop's ``p + u`` and the state's
    ``x + s`` are the same adds, but XLA may fuse ``x + a d`` into one multiply-add (one
    rounding) at one site and not at another (float64, a 38-weight network: one entry
    1 ulp apart in most epochs under ``train``, none under ``train_many``'s ``vmap``);
    compared exactly, the carried ``(E, g)`` was missed, evaluated and counted again, and
    ``train`` stopped on ``max_fun`` epochs before the same network in ``train_many``."""
    close = jnp.abs(x - y) <= 4 * jnp.finfo(x.dtype).eps * jnp.maximum(jnp.abs(x), jnp.abs(y))
    return jnp.all(close)


def update(
    grads: PyTree,
    state: LBFGSState,
    params: PyTree,
    lr_t: Any,
    options: Mapping[str, Any],
    objective: Any = None,
) -> tuple[PyTree, LBFGSState]:
    """One L-BFGS iteration (see the module docstring): ``(updates, new state)``.

    The rule evaluates ``(E, g)`` itself at every trial step, with
    ``objective.loss_and_grad`` (the training loop's gradient on the whole training
    set) plus ``objective.penalty`` (``alpha``'s, when on). At the params it starts from
    ``objective.start``, the loop's ``(E, g)`` there (:func:`evaluation`: the last
    search's, carried), or evaluates them when that is None; ``grads`` is not read.
    """
    if objective is None or getattr(objective, "loss_and_grad", None) is None:
        raise ValueError(
            "lbfgs is full batch: update(..., objective=Objective(..., loss_and_grad=...)); "
            "train builds it"
        )
    hp = state.hyperparams
    x, unravel = ravel_pytree(params)

    def flat(loss: Array, grad: PyTree) -> tuple[Array, Array]:
        return loss.astype(x.dtype), ravel_pytree(grad)[0].astype(x.dtype)

    def penalised(p: PyTree, loss: Array, grad: PyTree) -> tuple[Array, Array]:
        if getattr(objective, "penalty", None) is None:
            return flat(loss, grad)
        e, dp = objective.penalty(p)  # alpha's (alpha / 2) |W|^2 / n and its gradient
        return flat(loss + e, jax.tree.map(jnp.add, grad, dp))

    def fun(z: Array) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
        p = unravel(z)
        raw = objective.loss_and_grad(p)  # the loop's (E, g): carried to the next epoch
        return penalised(p, *raw), flat(*raw)

    start = getattr(objective, "start", None)
    data = getattr(objective, "data", None)
    raw0 = objective.loss_and_grad(params) if start is None else start
    loss, g = penalised(params, *raw0)
    grad_max = _max_abs(g)
    converged = grad_max <= hp["gtol"]  # scipy tests the start too: no step then
    d = -two_loop(g, state.s, state.y, state.rho, state.n_pairs)
    memory = (state.n_pairs > 0) & (g @ d < 0)
    # no pairs (or no descent from them): steepest descent, first step 1/|g| (L-BFGS-B)
    d = jnp.where(memory, d, -g)
    step0 = jnp.where(memory, 1, jnp.minimum(1 / jnp.linalg.norm(g), 1e10))
    budget = jnp.where(converged, 0, hp["max_linesearch"])
    ls = wolfe_line_search(fun, x, d, loss, g, step0, hp["c1"], hp["c2"], budget, aux0=flat(*raw0))

    s_new = ls.step * d  # s = a d
    y_new = ls.grad - g  # y = g_new - g
    sy = s_new @ y_new
    keep = ls.ok & (sy > jnp.finfo(x.dtype).eps * -(g @ s_new))  # L-BFGS-B's curvature test

    def push(rows: Array, row: Array) -> Array:  # drop the oldest, append the newest
        return jnp.where(keep, jnp.roll(rows, -1, axis=0).at[-1].set(row), rows)

    m = state.s.shape[0]
    failed = ~ls.ok & ~converged
    n_pairs = jnp.where(keep, jnp.minimum(state.n_pairs + 1, m), state.n_pairs)
    n_pairs = jnp.where(failed, 0, n_pairs)  # a failed search: forget the pairs (L-BFGS-B)
    new_loss = jnp.where(ls.ok, ls.loss, loss)
    scale = jnp.maximum(jnp.maximum(jnp.abs(loss), jnp.abs(ls.loss)), 1)
    # the start's own evaluation, counted where it was made (not carried: see evaluation)
    fresh = jnp.ones((), bool) if start is None else ~same_point(x, state.x)
    if start is not None and data is not None:
        fresh |= jnp.any(state.x_data != data)
    step = jnp.where(ls.ok, s_new, 0)
    x_loss, x_grad = ls.aux  # the loop's (E, g) at x + step (the start's when not ok)
    new = LBFGSState(
        count=state.count + 1,
        hyperparams=hp,
        s=push(state.s, s_new),
        y=push(state.y, y_new),
        rho=push(state.rho, 1 / sy),
        n_pairs=n_pairs.astype(jnp.int32),
        loss=new_loss.astype(state.loss.dtype),
        grad_max=jnp.where(ls.ok, _max_abs(ls.grad), grad_max).astype(x.dtype),
        loss_reduction=jnp.where(ls.ok, (loss - ls.loss) / scale, jnp.nan).astype(x.dtype),
        step=ls.step.astype(x.dtype),
        n_evals=state.n_evals + ls.n_evals + fresh.astype(jnp.int32),
        failed=failed & ~memory,  # along -g already: nothing left to try
        x=x + step,  # params + updates: the loop's leafwise p + u, the same adds
        x_loss=x_loss.astype(state.x_loss.dtype),
        x_grad=x_grad,
        x_data=state.x_data if data is None else data.astype(jnp.uint32),
    )
    return unravel(step), new


def stops(state: LBFGSState) -> list[tuple[Array, str]]:
    """scipy L-BFGS-B's stop rules as ``(fired, reason)`` pairs, first match wins:
    ``max|g| <= gtol``, the relative loss reduction ``<= ftol``, more than ``max_fun``
    evaluations, a failed line search along ``-g``."""
    hp = state.hyperparams
    return [
        (state.grad_max <= hp["gtol"], "min_grad_reached"),
        (state.loss_reduction <= hp["ftol"], "loss_reduction_below_ftol"),
        (state.n_evals.astype(jnp.result_type(hp["max_fun"])) > hp["max_fun"], "max_fun_reached"),
        (state.failed, "line_search_failed"),
    ]


# ---------------------------------------------------------------- jbpnn.lbfgs(...)
def _factory() -> Callable[..., Any]:
    from jbpnn.optimizers import lbfgs  # the factory holds the hyperparameters' checks

    return lbfgs


make_callable(__name__, _factory)  # jbpnn.lbfgs(history=10, ...), the API's name
