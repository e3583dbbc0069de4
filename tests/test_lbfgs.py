"""L-BFGS (jbpnn.lbfgs, jbpnn.optimizers.lbfgs, BPNNRegressor(solver="lbfgs")).

References, independent of the code under test: the BFGS inverse-Hessian update written
out as NumPy matrices (the two-loop recursion must give the same ``H g``), the strong
Wolfe conditions evaluated directly, ``np.linalg.lstsq`` for a linear network's
least-squares (and ridge) solution, and scikit-learn's ``MLPRegressor(solver="lbfgs")``
(scipy's L-BFGS-B) from the same initial weights.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import default_compile_env, tree_allclose
from jax.flatten_util import ravel_pytree

from jbpnn import InitSpec, init_params, train, train_many
from jbpnn.lbfgs import LBFGSState, two_loop, wolfe_line_search
from jbpnn.network import loss_and_gradient_kernel, loss_kernel
from jbpnn.optimizers import Objective, get_optimizer, lbfgs


def regression(n=60, n_in=1, noise=0.1, seed=0):
    """``y = sin(3 x_0) + ...`` plus noise: ``(X, Y)``, shapes ``(n, n_in)``, ``(n, 1)``."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n, n_in))
    return X, np.sin(3 * X).sum(1, keepdims=True) + noise * rng.normal(size=(n, 1))


def net(sizes=(1, 6, 1), seed=0, acts=("tanh", "identity"), loss="mse"):
    """A float64 network (call inside the ``x64`` fixture)."""
    return init_params(seed, sizes, acts, loss, init="glorot", dtype=jnp.float64)


def flat_objective(params, X, Y):
    """``x -> (E, g)`` on flat params, with the hand-derived gradient; and ``x0``."""
    x0, unravel = ravel_pytree(params)
    X, Y, w = jnp.asarray(X), jnp.asarray(Y), jnp.ones(len(X))

    def fun(x):
        loss, grads = loss_and_gradient_kernel(unravel(x), X, Y, w)
        return loss, ravel_pytree(grads)[0]

    return fun, x0


def assert_strong_wolfe(fun, x, d, step, c1, c2):
    f0, g0 = fun(x)
    f, g = fun(x + step * d)
    slope0 = float(g0 @ d)
    assert slope0 < 0 and step > 0
    assert float(f) <= float(f0) + c1 * step * slope0  # sufficient decrease
    assert abs(float(g @ d)) <= c2 * abs(slope0)  # curvature (strong)


# ---------------------------------------------------------------- the two-loop recursion
def bfgs_inverse_hessian(S, Y, k):
    """H_k from the BFGS update H <- V^T H V + rho s s^T, V = I - rho y s^T, over the
    last k pairs (oldest first), from H_0 = (s^T y / y^T y) I of the newest pair."""
    P = S.shape[1]
    if k == 0:
        return np.eye(P)
    H = np.eye(P) * (S[-1] @ Y[-1]) / (Y[-1] @ Y[-1])
    for s, y in zip(S[-k:], Y[-k:]):
        rho = 1.0 / (y @ s)
        V = np.eye(P) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    return H


def test_two_loop_equals_the_bfgs_inverse_hessian_times_g(x64):
    rng = np.random.default_rng(0)
    P, m = 7, 5
    A = rng.normal(size=(P, P))
    A = A @ A.T + np.eye(P)  # y = A s: the pairs of a convex quadratic
    S = rng.normal(size=(m, P))
    Y = S @ A
    rho = 1.0 / np.sum(S * Y, axis=1)
    g = rng.normal(size=P)
    for k in range(m + 1):  # rows before the last k are stale: they must not count
        stale = S.copy()
        stale[: m - k] = rng.normal(size=(m - k, P))
        got = two_loop(*map(jnp.asarray, (g, stale, Y, rho)), jnp.int32(k))
        np.testing.assert_allclose(got, bfgs_inverse_hessian(S, Y, k) @ g, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- the line search
def test_line_search_meets_strong_wolfe_on_a_quadratic(x64):
    rng = np.random.default_rng(1)
    A = rng.normal(size=(6, 6))
    A = A @ A.T + 0.1 * np.eye(6)
    b = rng.normal(size=6)

    def fun(x):
        return 0.5 * x @ A @ x - b @ x, A @ x - b

    x = jnp.asarray(rng.normal(size=6))
    f0, g0 = fun(x)
    for step0 in (1e-6, 0.1, 1.0, 1e3):  # too short (bracketing doubles), too long (zoom)
        for c1, c2 in ((1e-4, 0.9), (1e-3, 0.1)):
            ls = wolfe_line_search(fun, x, -g0, f0, g0, step0, c1, c2, 40)
            assert bool(ls.ok), (step0, c1, c2)
            assert_strong_wolfe(fun, x, -g0, float(ls.step), c1, c2)
            f, g = fun(x - ls.step * g0)
            np.testing.assert_allclose([ls.loss, *ls.grad], [f, *g], rtol=1e-12)


def test_line_search_meets_strong_wolfe_on_a_network_loss(x64):
    X, Y = regression(n=50, n_in=2)
    classes = np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.3)]
    for params, T in (
        (net((2, 5, 1)), Y),
        (net((2, 4, 3), acts=("sigmoid", "softmax"), loss="cross_entropy"), classes),
    ):
        fun, x = flat_objective(params, X, T)
        f0, g0 = fun(x)
        d = -g0 + 0.3 * jnp.asarray(np.random.default_rng(2).normal(size=x.shape)) * jnp.abs(g0)
        ls = wolfe_line_search(fun, x, d, f0, g0, 1.0, 1e-4, 0.9, 30)
        assert bool(ls.ok) and int(ls.n_evals) >= 1
        assert_strong_wolfe(fun, x, d, float(ls.step), 1e-4, 0.9)


def test_line_search_gives_up_without_descent_or_evaluations(x64):
    def fun(x):
        return x @ x, 2 * x

    x = jnp.ones(3)
    f0, g0 = fun(x)
    uphill = wolfe_line_search(fun, x, g0, f0, g0, 1.0)  # g^T d > 0: nothing is tried
    assert not bool(uphill.ok) and int(uphill.n_evals) == 0 and float(uphill.step) == 0
    short = wolfe_line_search(fun, x, -g0, f0, g0, 1e-9, 1e-4, 0.9, 1)  # one try: too short
    assert not bool(short.ok) and int(short.n_evals) == 1
    np.testing.assert_array_equal(short.grad, g0)


# ---------------------------------------------------------------- training
def test_linear_network_converges_to_least_squares_in_few_iterations(x64):
    X, _ = regression(n=80, n_in=3)
    rng = np.random.default_rng(3)
    Y = X @ rng.normal(size=(3, 2)) + 0.5 + 0.1 * rng.normal(size=(80, 2))
    p = net((3, 2), acts=("identity",))
    result = train(p, X, Y, optimizer=lbfgs(gtol=1e-10, ftol=0.0), epochs=100)
    assert result.stop_reason == "min_grad_reached" and result.epochs_run <= 15
    A = np.hstack([X, np.ones((80, 1))])
    solution = np.linalg.lstsq(A, Y, rcond=None)[0]
    np.testing.assert_allclose(result.params.layers[0].w, solution[:3], atol=1e-9)
    np.testing.assert_allclose(result.params.layers[0].b, solution[3], atol=1e-9)
    assert np.all(np.diff(result.history["loss"]) < 0) and result.history["n_evals"][-1] <= 25


def test_alpha_is_in_the_objective_ridge_solution_biases_unpenalised(x64):
    X, _ = regression(n=40, n_in=3)
    Y = X @ np.array([[1.0], [-2.0], [0.5]]) + 1.0
    alpha = 5.0
    p = net((3, 1), acts=("identity",))
    result = train(p, X, Y, optimizer=lbfgs(gtol=1e-9, ftol=0.0, alpha=alpha), epochs=100)
    assert result.stop_reason in ("min_grad_reached", "loss_reduction_below_ftol")
    # E + (alpha/2)|W|^2/n  with E = 1/(2n) sum r^2: lstsq of [X 1; sqrt(alpha) I 0]
    A = np.vstack(
        [
            np.hstack([X, np.ones((40, 1))]),
            np.hstack([np.sqrt(alpha) * np.eye(3), np.zeros((3, 1))]),
        ]
    )
    solution = np.linalg.lstsq(A, np.vstack([Y, np.zeros((3, 1))]), rcond=None)[0]
    np.testing.assert_allclose(result.params.layers[0].w, solution[:3], atol=1e-8)
    np.testing.assert_allclose(result.params.layers[0].b, solution[3], atol=1e-8)


def test_resume_equals_the_uninterrupted_run(x64):
    X, Y = regression(n=40)
    p = net()
    opt = lbfgs(history=4, gtol=0.0, ftol=0.0)
    full = train(p, X, Y, optimizer=opt, epochs=20)
    half = train(p, X, Y, optimizer=opt, epochs=10)
    again = train(half, X, Y, epochs=10)
    assert full.epochs_run == again.epochs_run == 20 and int(full.state.opt_state.n_pairs) == 4
    tree_allclose(again.params, full.params, rtol=0)
    tree_allclose(again.state.opt_state, full.state.opt_state, rtol=0)
    for k in full.history:
        np.testing.assert_array_equal(again.history[k], full.history[k], err_msg=k)


@pytest.mark.parametrize("alpha", [0.0, 1e-3])
def test_a_checkpoint_resumes_as_the_uninterrupted_run(x64, tmp_path, alpha):
    from jbpnn import load, save

    X, Y = regression(n=40)
    opt = lbfgs(history=3, gtol=0.0, ftol=0.0, alpha=alpha)
    full = train(net(), X, Y, optimizer=opt, epochs=16)
    half = train(net(), X, Y, optimizer=opt, epochs=8)
    save(tmp_path / "lbfgs.npz", half.state, optimizer=opt)
    saved = load(tmp_path / "lbfgs.npz")
    assert saved.optimizer == opt and saved.state.opt_state.s.shape == (3, 19)
    again = train(saved.state, X, Y, optimizer=saved.optimizer, epochs=8)
    tree_allclose(again.params, full.params, rtol=0)
    tree_allclose(again.state.opt_state, full.state.opt_state, rtol=0)
    save(tmp_path / "bare.npz", half.state)  # without its optimizer: the state still loads
    assert load(tmp_path / "bare.npz").state.opt_state.s.shape == (3, 19)


def counting(grad_fn, calls):
    """``grad_fn`` that adds 1 to ``calls[0]`` each time it runs (not each time it is traced)."""

    def bump():
        calls[0] += 1
        return np.int32(0)

    def counted(params, X, Y, w):
        tick = jax.experimental.io_callback(bump, jax.ShapeDtypeStruct((), jnp.int32))
        loss, grads = grad_fn(params, X, Y, w)
        return loss + 0 * tick, grads

    return counted


@pytest.mark.parametrize("alpha", [0.0, 1e-3])
def test_every_point_is_evaluated_once_as_scipy_counts(x64, alpha):
    # the accepted step's (E, g) start the next iteration and its epoch's loss: the
    # evaluations made are the n_evals reported (before, one more per epoch)
    import jax.experimental  # noqa: F401  (io_callback)

    X, Y = regression(n=40)
    calls = [0]
    grad_fn = counting(loss_and_gradient_kernel, calls)
    opt = lbfgs(history=4, gtol=0.0, ftol=0.0, alpha=alpha)
    run = train(net(), X, Y, optimizer=opt, epochs=12, grad_fn=grad_fn)
    plain = train(net(), X, Y, optimizer=opt, epochs=12)
    assert run.epochs_run == 12 and calls[0] == int(run.state.opt_state.n_evals) < 12 * 2
    tree_allclose(run.params, plain.params, rtol=1e-12, atol=1e-14)
    # each epoch's loss is E at the params it starts from, as evaluated afresh
    starts = train(net(), X, Y, optimizer=opt, epochs=11).params
    np.testing.assert_allclose(
        run.history["loss"][-1], loss_kernel(starts, X, Y, jnp.ones(len(X))), rtol=1e-12
    )


def test_params_replaced_between_runs_are_evaluated_afresh(x64):
    # the carried (E, g) belong to the params the last iteration ended at; other params
    # (set by hand into a state) are evaluated, not given the stale ones
    X, Y = regression(n=40)
    opt = lbfgs(history=4, gtol=0.0, ftol=0.0)
    run = train(net(), X, Y, optimizer=opt, epochs=5)
    other = net(seed=3)
    calls = [0]
    again = train(
        run.state._replace(params=other),
        X,
        Y,
        optimizer=opt,
        epochs=1,
        grad_fn=counting(loss_and_gradient_kernel, calls),
    )
    E = loss_kernel(other, X, Y, jnp.ones(len(X)))
    np.testing.assert_allclose(again.history["loss"][0], E, rtol=1e-12)
    assert not np.isclose(E, run.state.opt_state.x_loss)
    # the start evaluated afresh and counted, then the line search's trial steps
    made = int(again.state.opt_state.n_evals - run.state.opt_state.n_evals)
    assert calls[0] == made >= 2


def test_a_run_resumed_on_other_data_evaluates_them_afresh(x64):
    # the carried (E, g) were the old data's: a run resumed on other rows (partial_fit,
    # warm_start) reported the old data's loss and, its first step taken from the old
    # gradient, made no progress on the new data
    X, Y = regression(n=40)
    X2, Y2 = regression(n=40, seed=5)
    opt = lbfgs(history=4, gtol=0.0, ftol=0.0)
    run = train(net(), X, Y, optimizer=opt, epochs=5)
    calls = [0]
    again = train(run, X2, Y2, epochs=1, grad_fn=counting(loss_and_gradient_kernel, calls))
    E2 = float(loss_kernel(run.params, X2, Y2, jnp.ones(len(X2))))
    assert not np.isclose(E2, float(run.state.opt_state.x_loss))
    np.testing.assert_allclose(again.history["loss"][-1], E2, rtol=1e-12)
    assert float(loss_kernel(again.params, X2, Y2, jnp.ones(len(X2)))) < E2
    made = int(again.state.opt_state.n_evals - run.state.opt_state.n_evals)
    assert calls[0] == made >= 2  # the start evaluated afresh and counted
    # the same data again: the carried (E, g) are reused, exactly as an unbroken run
    same = train(run, X, Y, epochs=1, grad_fn=counting(loss_and_gradient_kernel, calls := [0]))
    assert calls[0] == int(same.state.opt_state.n_evals - run.state.opt_state.n_evals)
    assert same.history["loss"][-1] == run.state.opt_state.x_loss


def test_partial_fit_with_lbfgs_reports_and_fits_each_chunk():
    from jbpnn.sklearn import BPNNRegressor

    X, Y = regression(n=60)
    est = BPNNRegressor(hidden_layer_sizes=(6,), solver="lbfgs", activation="tanh", random_state=0)
    est.partial_fit(X[:30], Y[:30, 0])
    before = est.predict(X[30:])
    start = float(np.mean((before - Y[30:, 0]) ** 2) / 2)
    est.partial_fit(X[30:], Y[30:, 0])
    np.testing.assert_allclose(est.loss_curve_[-1], start, rtol=1e-4)  # + alpha's tiny term
    after = float(np.mean((est.predict(X[30:]) - Y[30:, 0]) ** 2) / 2)
    assert after < start


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_data_fingerprint_is_exact_and_sees_every_change(x64, dtype):
    from jbpnn.lbfgs import data_fingerprint

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)).astype(dtype)
    Y = rng.normal(size=(50, 2)).astype(dtype)
    w = np.ones(50, dtype)
    fp = np.asarray(data_fingerprint(X, Y, w))
    assert fp.dtype == np.uint32 and fp.shape == (2,)
    # the same data in another program (another fusion, order of sums): the same bits
    other = jax.jit(lambda a, b, c: data_fingerprint(a * 1, b, c + 0))(X, Y, w)
    np.testing.assert_array_equal(other, fp)
    changed = [
        (X.copy(), Y, w),
        (X[::-1].copy(), Y[::-1].copy(), w),  # the same rows in another order
        (X, Y, w * 2),
        (X[:49], Y[:49], w[:49]),
        (Y[:, :1].repeat(3, 1), Y, w),
    ]
    changed[0][0][7, 1] = np.nextafter(X[7, 1], np.inf)  # one bit
    for args in changed:
        assert not np.array_equal(data_fingerprint(*args), fp)
    swapped = data_fingerprint(X[:, :2].copy(), X[:, 2:].copy(), w)  # the arrays' order
    assert not np.array_equal(swapped, data_fingerprint(X[:, 2:].copy(), X[:, :2].copy(), w))


def test_a_checkpoint_saved_without_the_carried_evaluation_loads_and_resumes(x64, tmp_path):
    # older jbpnn saved no x, x_loss, x_grad: such a file loads with NaN there, and the
    # resumed run evaluates its start and goes on as the uninterrupted one
    import json

    from jbpnn import load, save

    X, Y = regression(n=40)
    opt = lbfgs(history=3, gtol=0.0, ftol=0.0)
    full = train(net(), X, Y, optimizer=opt, epochs=10)
    half = train(net(), X, Y, optimizer=opt, epochs=5)
    save(tmp_path / "new.npz", half.state, optimizer=opt)
    with np.load(tmp_path / "new.npz") as z:
        entries = {k: z[k] for k in z.files if not k.startswith("state/opt_state/x")}
    structure = json.loads(str(entries["structure"]))
    structure["leaves"] = {
        k: v for k, v in structure["leaves"].items() if not k.startswith("state/opt_state/x")
    }
    entries["structure"] = np.array(json.dumps(structure))
    np.savez(tmp_path / "old.npz", **entries)
    saved = load(tmp_path / "old.npz")
    assert np.isnan(saved.state.opt_state.x).all() and np.isnan(saved.state.opt_state.x_loss)
    again = train(saved.state, X, Y, optimizer=saved.optimizer, epochs=5)
    tree_allclose(again.params, full.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(again.history["loss"], full.history["loss"][5:], rtol=1e-12)


def test_train_many_network_i_equals_train_alone(x64):
    X, Y = regression(n=40)
    spec = InitSpec((1, 5, 1), ("tanh", "identity"), init="glorot", dtype=jnp.float64)
    seeds, gtol = [0, 1, 2], [0.02, 0.01, 0.0]
    many = train_many(spec, X, Y, seeds=seeds, optimizer="lbfgs", hparams={"gtol": gtol}, epochs=25)
    for i, seed in enumerate(seeds):
        alone = train(init_params(seed, *spec), X, Y, optimizer=lbfgs(gtol=gtol[i]), epochs=25)
        mine = many[i]
        assert mine.stop_reason == alone.stop_reason and mine.epochs_run == alone.epochs_run
        tree_allclose(mine.params, alone.params, rtol=1e-9, atol=1e-12, err_msg=f"network {i}")
        for k in alone.history:
            np.testing.assert_allclose(mine.history[k], alone.history[k], rtol=1e-9, err_msg=k)
    assert many[0].epochs_run < many[2].epochs_run  # each network its own gtol


def test_every_loss_trains_with_the_runs_grad_fn(x64):
    X, _ = regression(n=30, n_in=2)
    Y = np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.3)]
    p = net((2, 5, 3), acts=("tanh", "softmax"), loss="cross_entropy")  # no residuals: lm refuses
    hand = train(p, X, Y, optimizer=lbfgs(), epochs=15)
    auto = train(p, X, Y, optimizer=lbfgs(), epochs=15, grad_fn=jax.value_and_grad(loss_kernel))
    assert hand.history["loss"][-1] < 0.5 * hand.history["loss"][0]
    tree_allclose(auto.params, hand.params, rtol=1e-7, atol=1e-9)
    assert set(hand.history) >= {"loss", "grad_max", "step", "n_evals"}


# ---------------------------------------------------------------- stop rules
def test_stop_rules(x64):
    X, Y = regression(n=30)
    p = net()
    at_start = train(p, X, Y, optimizer=lbfgs(gtol=1e3), epochs=5)  # converged start: no step
    assert at_start.stop_reason == "min_grad_reached" and at_start.epochs_run == 1
    tree_allclose(at_start.params, p, rtol=0)
    ftol = train(p, X, Y, optimizer=lbfgs(ftol=1.0), epochs=5)  # any reduction is <= 1
    assert ftol.stop_reason == "loss_reduction_below_ftol" and ftol.epochs_run == 1
    fun = train(p, X, Y, optimizer=lbfgs(gtol=0.0, max_fun=10), epochs=50)
    evals = fun.history["n_evals"]
    assert fun.stop_reason == "max_fun_reached" and evals[-1] > 10 and evals[-2] <= 10
    # one evaluation per search, a first step 1/|g| too short for the curvature condition
    failed = train(p, X, Y, optimizer=lbfgs(max_linesearch=1, c1=1e-7, c2=1e-6), epochs=5)
    assert failed.stop_reason == "line_search_failed" and failed.epochs_run == 1
    tree_allclose(failed.params, p, rtol=0)


def test_a_nan_gradient_is_not_a_converged_one():
    # max|g| over 4096 or more float32 entries dropped a NaN in XLA's CPU reductions: a
    # gradient of zeros and one NaN passed the gtol test and stopped as min_grad_reached
    X = np.random.default_rng(0).normal(size=(20, 64)).astype(np.float32)
    Y = X[:, :1] * 0.5
    p = init_params(0, (64, 100, 1), ("tanh", "identity"), "mse", init="glorot")  # 6601

    def nan_gradient(params, Xb, Yb, w):
        loss, grads = loss_and_gradient_kernel(params, Xb, Yb, w)
        zero = jax.tree.map(jnp.zeros_like, grads)
        w1 = zero.layers[0].w.at[5, 9].set(jnp.nan)
        return loss, zero.replace_layers([zero.layers[0]._replace(w=w1), *zero.layers[1:]])

    run = train(p, X, Y, optimizer=lbfgs(), epochs=3, batch_size=None, grad_fn=nan_gradient)
    assert run.stop_reason != "min_grad_reached"
    assert run.history["grad_max"][0] == np.inf


# ---------------------------------------------------------------- the optimizer object
def test_factory_kind_and_errors(x64):
    assert get_optimizer("lbfgs", history=5, gtol=1e-3) == lbfgs(5, gtol=1e-3)
    assert lbfgs(gtol=1e-3).kind == lbfgs(gtol=1e-6).kind  # values are data
    assert lbfgs(history=5).kind != lbfgs().kind  # the memory's shape is not
    opt = lbfgs(history=3)
    assert opt.full_batch and opt.needs_objective and not opt.needs_normal_equations
    state = opt.init(net())
    assert isinstance(state, LBFGSState) and state.s.shape == (3, 19)
    for kw, message in (
        (dict(history=0), "history must be an integer from 1 to 2147483647"),
        (dict(c1=0.9, c2=0.5), "0 < c1 < c2 < 1"),
        (dict(c2=1.0), "c2 must be finite, at least 0.0 and below 1.0"),
        (dict(max_fun=0), "max_fun must be finite, at least 1"),
        (dict(max_linesearch=2.5), "max_linesearch must be an integer"),
    ):
        with pytest.raises(ValueError, match=message):
            lbfgs(**kw)
    X, Y = regression()
    with pytest.raises(
        ValueError, match=r"is a full-batch optimizer .*give batch_size=None, not 10"
    ):
        train(net(), X, Y, optimizer=lbfgs(), batch_size=10, epochs=1)
    params = net()
    grads = jax.tree.map(jnp.zeros_like, params)
    with pytest.raises(ValueError, match="lbfgs is full batch: update"):
        opt.update(grads, state, params)
    lm_only = Objective(loss=lambda p: 0.0, normal_equations=lambda p: None)
    with pytest.raises(ValueError, match="loss_and_grad"):
        opt.update(grads, state, params, objective=lm_only)


# ---------------------------------------------------------------- scikit-learn
def test_regressor_matches_mlp_regressor_lbfgs_from_the_same_weights():
    from sklearn.datasets import load_diabetes
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    from jbpnn.sklearn import BPNNRegressor

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    rng = np.random.default_rng(0)
    init = [(rng.uniform(-0.5, 0.5, (10, 10)), rng.uniform(-0.5, 0.5, 10))]
    init.append((rng.uniform(-0.5, 0.5, (10, 1)), rng.uniform(-0.5, 0.5, 1)))
    settings = dict(hidden_layer_sizes=(10,), activation="tanh", solver="lbfgs", alpha=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = MLPRegressor(**settings, max_iter=1).fit(X, y)  # then from our weights:
    sk.coefs_, sk.intercepts_ = [w.copy() for w, _ in init], [b.copy() for _, b in init]
    sk.set_params(warm_start=True, max_iter=100)
    jb = BPNNRegressor(**settings, max_iter=100, init=init)
    with pytest.warns(ConvergenceWarning) as caught:
        start = time.perf_counter()
        sk.fit(X, y)
        sk_seconds = time.perf_counter() - start
        jb.fit(X, y)
    jb_messages = [str(w.message) for w in caught if "100 iteration(s)" in str(w.message)]
    assert len(jb_messages) == 2 and jb_messages[0] == jb_messages[1]  # word for word
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        jb.fit(X, y)  # compiled already: the solver's own time
        jb_seconds = time.perf_counter() - start
    assert sk.n_iter_ == jb.n_iter_ == 100 and jb.stop_reason_ == "max_epochs"
    assert jb.loss_ == pytest.approx(sk.loss_, rel=0.05)
    # loss_ is the objective at the final params: E (scikit-learn's squared_error) + alpha term
    out = jb.predict(X)
    penalty = 1e-3 / (2 * len(X)) * sum(np.sum(w.astype(float) ** 2) for w in jb.coefs_)
    assert jb.loss_ == pytest.approx(np.mean((out - y) ** 2) / 2 + penalty, rel=1e-4)
    print(f"loss: MLPRegressor {sk.loss_:.5f} in {sk_seconds:.3f} s, BPNNRegressor {jb.loss_:.5f}")
    print(f"in {jb_seconds:.3f} s (compiled)")


def test_estimator_stops_warns_and_refuses_as_scikit_learn():
    from sklearn.exceptions import ConvergenceWarning

    from jbpnn.sklearn import BPNNClassifier

    X, _ = regression(n=60, n_in=2)
    y = (X[:, 0] > X[:, 1]).astype(int)
    with pytest.warns(ConvergenceWarning, match="EVALUATIONS EXCEEDS LIMIT"):
        est = BPNNClassifier((4,), solver="lbfgs", max_fun=5, random_state=0).fit(X, y)
    assert est.stop_reason_ == "max_fun_reached" and est.n_iter_ < 200
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # converged: no warning
        est = BPNNClassifier((4,), solver="lbfgs", tol=1e-3, random_state=0).fit(X, y)
    assert est.stop_reason_ in ("min_grad_reached", "loss_reduction_below_ftol")
    assert est.score(X, y) >= 0.95
    est.set_params(warm_start=True, max_fun=5, tol=0.0)  # each fit its own max_fun budget
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert est.n_iter_ >= 2


def test_a_fit_that_starts_converged_counts_no_iteration_as_scikit_learn():
    """scipy's nit (scikit-learn's n_iter_) is 0 when the start already meets gtol; the
    warm refit of a converged network used to report 1 (its evaluation-only epoch)."""
    from sklearn.neural_network import MLPRegressor

    from jbpnn.sklearn import BPNNRegressor

    X, _ = regression(n=50, n_in=3)
    y = np.zeros(len(X))
    for cls in (MLPRegressor, BPNNRegressor):
        est = cls(hidden_layer_sizes=(4,), solver="lbfgs", alpha=0.0, random_state=0).fit(X, y)
        assert est.n_iter_ >= 1  # steps were taken to get there
        loss = est.loss_
        est.set_params(warm_start=True).fit(X, y)
        assert est.n_iter_ == 0, cls.__name__
        assert est.loss_ == pytest.approx(loss, rel=1e-6)
    assert est.stop_reason_ == "min_grad_reached" and len(est.loss_curve_) >= 2


def test_sweep_equals_grid_search_in_one_call(x64):
    from sklearn.model_selection import GridSearchCV

    from jbpnn.sklearn import BPNNRegressor, SweepSearchCV

    X, Y = regression(n=60, n_in=2)
    w = np.random.default_rng(4).integers(1, 3, len(X)).astype(float)
    base = BPNNRegressor((5,), activation="tanh", solver="lbfgs", max_iter=20, dtype="float64")
    base.set_params(random_state=0)
    grid = {"alpha": [1e-4, 1e-1], "tol": [1e-4, 1e-2]}  # values: one train_many call
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sweep = SweepSearchCV(base, grid, cv=2).fit(X, Y[:, 0], sample_weight=w)
        search = GridSearchCV(base, grid, cv=2).fit(X, Y[:, 0], sample_weight=w)
    assert [c["networks"] for c in sweep.sweep_calls_] == [8]
    np.testing.assert_allclose(
        sweep.cv_results_["mean_test_score"], search.cv_results_["mean_test_score"], rtol=1e-9
    )


def test_train_many_takes_lbfgs_for_any_loss():
    # only lm and br need a loss of residuals (and J^T J in memory); lbfgs needs a gradient
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (30, 3)).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 30)]
    spec = InitSpec((3, 4, 3), "tanh", "cross_entropy")
    result = train_many(spec, X, Y, seeds=[0, 1], optimizer="lbfgs", hparams={}, epochs=3)
    assert result[0].epochs_run >= 1 and np.all(np.isfinite(result.history["loss"][:, 0]))


_CARRIED = """
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np, jax.numpy as jnp, jbpnn
rng = np.random.default_rng(1)
X = rng.uniform(-1, 1, (50, 3))
Y = np.c_[np.sin(3 * X[:, 0]), X[:, 1] * X[:, 2]]
spec = jbpnn.InitSpec((3, 6, 2), ("tanh", "identity"), "mse", dtype=jnp.float64)
kw = dict(optimizer=jbpnn.optimizers.lbfgs(max_fun=20), epochs=40)
alone = jbpnn.train(jbpnn.init_params(1, spec.sizes, spec.activations, spec.loss, spec.init,
                                      dtype=jnp.float64), X, Y, **kw)
many = jbpnn.train_many(spec, X, Y, seeds=[0, 1], optimizer="lbfgs",
                        hparams={"max_fun": 20}, epochs=40)[1]
print(alone.epochs_run, list(alone.history["n_evals"]))
print(many.epochs_run, list(many.history["n_evals"]))
"""


def test_the_carried_evaluation_is_found_whatever_the_compiler_fuses():
    """Each iteration starts from the (E, g) its line search made at the params it ended
    at: found up to the last bits. XLA at its default optimization level (not the suite's
    level 0, hence the subprocess) fuses x + a d into one multiply-add at some sites, and
    the exact comparison missed the point under train but not train_many: train counted
    3 evaluations more and stopped on max_fun 3 epochs earlier than the same network."""
    env = default_compile_env({**os.environ, "JBPNN_NO_CACHE": "1"})
    out = subprocess.run(
        [sys.executable, "-c", _CARRIED], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    alone, many = out.stdout.splitlines()
    assert alone == many


def test_lbfgs_repr_names_its_history():
    """lbfgs(history=5) and lbfgs(history=10) printed the same (their kinds differ)."""
    assert repr(lbfgs(history=5)).endswith("max_fun=15000, history=5)")
    assert repr(lbfgs(history=5)) != repr(lbfgs())
