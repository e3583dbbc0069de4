"""Full-batch training of small networks: Levenberg-Marquardt (BR, Rprop, L-BFGS) vs adam,
autodiff and SciPy, one network and many at once.

What it shows, as ratios from one run on this machine (medians of ``--repeats`` timings,
compilation excluded unless a row says so):

1. **Epochs and time to adam's loss.** A 1-10-1 tanh network on 200 noisy samples of
   ``sin(3x)``, and scikit-learn's diabetes table (10-10-1), inputs and targets scaled to
   [-1, 1] as MATLAB's ``mapminmax``: the training loss ``adam(0.01)`` reaches after 1000
   full-batch epochs, and how many epochs and seconds LM and Rprop take to reach it
   (``tol`` = that loss, so the run stops there). Wall time with compilation (a fresh
   shape: the first call) and without (the second call). Bayesian regularization (br)
   minimises ``beta SSE + alpha SSW``, not the training loss: it may stop above it.
2. **One LM iteration's normal equations**: jbpnn's hand-derived ``J^T J``, ``J^T e``
   (:func:`jbpnn.jacobian.normal_equations_kernel`) against the same products from
   ``jax.jacfwd`` and ``jax.jacrev`` Jacobians, jitted, on the diabetes network and a
   wider 64-32-10 digits network.
3. **SciPy**: ``scipy.optimize.least_squares(method="lm")`` (MINPACK) given a compiled
   autodiff Jacobian, from the same initial weights, to its own stopping point; then
   both sides timed to the same target, an SSE within 1% of SciPy's final SSE (SciPy's
   clock read at each residual evaluation; a side that does not reach it gets no ratio).
4. **Many networks**: 256 networks (seeds 0..255) trained by LM in one ``train_many``
   call against 256 sequential ``train`` calls (one CPU device, compile excluded), both
   from the same drawn networks (neither side times the weight draws).
5. **scikit-learn's lbfgs**: ``BPNNRegressor(solver="lbfgs")`` against
   ``MLPRegressor(solver="lbfgs")`` from the same initial weights, 50 and 200
   iterations: final loss (with the ``alpha`` term) and time per fit (medians of
   ``FIT_ROUNDS`` rounds, each one fit of either, interleaved); scikit-learn with its
   default BLAS threads and under ``threadpool_limits(1)``, the ratio against the faster.

The persistent compilation cache is off (the compile columns measure compilation).
Takes about five minutes on a 2-core CPU (SciPy's diabetes runs most of it); prints
tables on stdout, writes nothing.
Run: ``python experiments/second_order.py`` (``--quick``: fewer networks, one repeat).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

import jbpnn
from jbpnn.cli.options import positive_int  # noqa: E402  (the command line's type)
from jbpnn.jacobian import normal_equations_kernel
from jbpnn.many import InitSpec, train_many
from jbpnn.network import predict_kernel
from jbpnn.optimizers import adam, bayesian_regularization, lbfgs, levenberg_marquardt, rprop


def scaled(a: np.ndarray) -> np.ndarray:
    """MATLAB's mapminmax: every column to [-1, 1]."""
    lo, hi = a.min(axis=0), a.max(axis=0)
    return (2 * (a - lo) / np.where(hi > lo, hi - lo, 1) - 1).astype(np.float32)


def tasks() -> dict[str, tuple[np.ndarray, np.ndarray, tuple[int, ...]]]:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (200, 1))
    y = np.sin(3 * x) + 0.1 * rng.normal(size=x.shape)
    from sklearn.datasets import load_diabetes  # bundled with scikit-learn, no download

    d = load_diabetes()
    return {
        "sin 1-10-1, 200 rows": (scaled(x), scaled(y), (1, 10, 1)),
        "diabetes 10-10-1, 442 rows": (scaled(d.data), scaled(d.target[:, None]), (10, 10, 1)),
    }


def network(sizes: tuple[int, ...], seed: int = 0) -> jbpnn.MLP:
    return jbpnn.init_params(seed, sizes, ("tanh", "identity"), "mse", "glorot")


def fit(p: jbpnn.MLP, X: np.ndarray, Y: np.ndarray, **kw) -> jbpnn.MLP:
    return jbpnn.train(p, X, Y, **kw).params


def timed(fn, repeats: int) -> tuple[float, object]:
    """(median seconds, last result) of ``fn()``, results blocked on."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


# ---------------------------------------------------------------- 1. epochs to adam's loss
def to_adams_loss(repeats: int, quick: bool) -> None:
    print("1. epochs and seconds to reach the training loss of adam(0.01) after 1000 epochs")
    print(
        f"{'task':28} {'optimizer':10} {'epochs':>7} {'loss':>10} {'s (compile)':>12} {'s':>8}"
        "  stop"
    )
    for name, (X, Y, sizes) in list(tasks().items())[: 1 if quick else None]:
        p = network(sizes)
        target = None
        for label, opt, epochs in (
            ("adam", adam(0.01), 1000),
            ("lm", levenberg_marquardt(), 1000),
            ("br", bayesian_regularization(), 1000),
            ("rprop", rprop(), 5000),
            ("lbfgs", lbfgs(), 1000),
        ):
            kw = {"optimizer": opt, "epochs": epochs, "tol": target}
            t = time.perf_counter()
            first = jbpnn.train(p, X, Y, **kw)  # compiles: a new optimizer kind
            cold = time.perf_counter() - t
            warm, _ = timed(partial(fit, p, X, Y, **kw), repeats)
            r = jbpnn.train(p, X, Y, **kw)
            assert r.epochs_run == first.epochs_run
            loss = r.final_loss  # the epoch loss the tol rule watches
            if target is None:
                target = loss  # adam's: what the others must reach
            print(
                f"{name:28} {label:10} {r.epochs_run:7d} {loss:10.3g} {cold:12.2f} {warm:8.3f}"
                f"  {r.stop_reason}"
                + ("" if label == "adam" or loss <= target else " (did not reach it)")
            )
    print(
        "s (compile): the first call of each optimizer in this process, the persistent "
        f"compilation cache off (compilation included); s: median of {repeats} later calls"
    )


# ---------------------------------------------------------------- 2. normal equations
def autodiff_normal_equations(mode):
    """``J^T J, J^T e, e^T e`` with J from ``jax.jacfwd`` / ``jax.jacrev`` of the residuals."""

    def normal(params, X, Y):
        flat, unravel = jax.flatten_util.ravel_pytree(params)

        def residuals(theta):
            return (predict_kernel(unravel(theta), X) - Y).ravel()

        J = mode(residuals)(flat)
        e = residuals(flat)
        return J.T @ J, J.T @ e, e @ e

    return jax.jit(normal)


def normal_equations_speed(repeats: int, quick: bool) -> None:
    print("\n2. one LM iteration's J^T J and J^T e: hand-derived vs autodiff Jacobians")
    print(
        f"{'network':30} {'P':>6} {'hand s':>9} {'jacfwd s':>9} {'jacrev s':>9} "
        f"{'fwd/hand':>9} {'rev/hand':>9}"
    )
    d = jbpnn.load_digits()
    cases = dict(tasks())
    cases["digits 64-32-10, 1797 rows"] = (
        d.X.astype(np.float32),
        jbpnn.one_hot(d.y, 10).astype(np.float32),
        (64, 32, 10),
    )
    if quick:  # the wide network's jacrev takes seconds a call
        del cases["digits 64-32-10, 1797 rows"]
    hand = jax.jit(normal_equations_kernel)
    fwd, rev = autodiff_normal_equations(jax.jacfwd), autodiff_normal_equations(jax.jacrev)
    for name, (X, Y, sizes) in cases.items():
        p = jbpnn.init_params(0, sizes, ("tanh", "sigmoid" if sizes[-1] > 1 else "identity"), "mse")
        X, Y = jnp.asarray(X), jnp.asarray(Y)
        runs = {}
        for label, fn in (("hand", hand), ("jacfwd", fwd), ("jacrev", rev)):
            jax.block_until_ready(fn(p, X, Y))  # compile
            runs[label] = timed(partial(fn, p, X, Y), repeats)
        a, b = runs["hand"][1][0], runs["jacrev"][1][0]
        agree = float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))
        P = a.shape[0]
        th, tf, tr = (runs[k][0] for k in ("hand", "jacfwd", "jacrev"))
        print(
            f"{name:30} {P:6d} {th:9.4f} {tf:9.4f} {tr:9.4f} {tf / th:8.1f}x {tr / th:8.1f}x"
            f"   (J^T J agree to {agree:.1e})"
        )


# ---------------------------------------------------------------- 3. SciPy
def scipy_problem(p: jbpnn.MLP, X: np.ndarray, Y: np.ndarray):
    """SciPy's residuals and Jacobian (jitted ``jax.jacfwd``) in float64 NumPy, and x0."""
    flat, unravel = jax.flatten_util.ravel_pytree(p)
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)

    @jax.jit
    def residuals(theta):
        return (predict_kernel(unravel(theta), Xj) - Yj).ravel()

    jac = jax.jit(jax.jacfwd(residuals))

    def res_np(t):
        return np.asarray(residuals(jnp.asarray(t, jnp.float32)), np.float64)

    def jac_np(t):
        return np.asarray(jac(jnp.asarray(t, jnp.float32)), np.float64)

    return res_np, jac_np, np.asarray(flat, np.float64)


class _Reached(Exception):
    """Raised inside SciPy's residual function once the SSE is at the target."""


SCIPY_BUDGET_S = 100.0  # repeats of SciPy's run to the target stop once they took this long


def scipy_runs(res_np, jac_np, x0, repeats: int) -> dict:
    """SciPy's MINPACK LM: one full run, then the time it takes to come within 1% of its SSE.

    The first run goes to SciPy's own stopping point: its final SSE sets the target
    (1.01 x that SSE) and its clock is read at every residual evaluation, so it also gives
    the time at which the SSE first came within the target. Later runs stop there (an
    exception raised from the residual function), until ``repeats`` timings or
    ``SCIPY_BUDGET_S`` seconds of them. MINPACK's path is not the same from run to run
    (the float32 residuals differ in their last bits), so each run's own time is kept.
    The recording (one clock read and one dot product an evaluation) is timed alone.
    """
    from scipy.optimize import least_squares

    state = {"start": 0.0, "target": None, "log": []}

    def recorded(t):
        r = res_np(t)
        sse = float(r @ r)
        now = time.perf_counter() - state["start"]
        state["log"].append((now, sse))
        if state["target"] is not None and sse <= state["target"]:
            raise _Reached
        return r

    state["start"] = time.perf_counter()
    sol = least_squares(recorded, x0, jac=jac_np, method="lm")
    total = time.perf_counter() - state["start"]
    final = float(sol.fun @ sol.fun)
    target = 1.01 * final
    first = next(t for t, sse in state["log"] if sse <= target)
    nfev_target = next(i for i, (_, sse) in enumerate(state["log"]) if sse <= target) + 1
    times, spent = [first], 0.0
    state["target"] = target
    while len(times) < repeats and spent < SCIPY_BUDGET_S:
        state["log"] = []
        state["start"] = time.perf_counter()
        try:
            least_squares(recorded, x0, jac=jac_np, method="lm")
            times.append(float("nan"))  # stopped above the target: not counted
        except _Reached:
            times.append(time.perf_counter() - state["start"])
        spent += time.perf_counter() - state["start"]
    r = res_np(x0)
    t = time.perf_counter()
    for _ in range(1000):
        sse = float(r @ r)
        now = time.perf_counter() - t
        state["log"].append((now, sse))
    overhead = (time.perf_counter() - t) / 1000 * nfev_target
    reached = [v for v in times if v == v]
    return {
        "sse": final,
        "target": target,
        "total": total,
        "nfev": sol.nfev,
        "nfev_target": nfev_target,
        "seconds": statistics.median(reached),
        "runs": len(reached),
        "missed_runs": len(times) - len(reached),
        "overhead": overhead,
    }


def against_scipy(repeats: int, quick: bool) -> None:
    print("\n3. scipy.optimize.least_squares(method='lm') with a compiled jacfwd Jacobian,")
    print("   both timed to the same target: an SSE within 1% of SciPy's final SSE")
    print(
        f"{'task':28} {'scipy SSE':>10} {'full s':>8} {'nfev':>6} {'target s':>9} {'runs':>4} "
        f"{'jbpnn SSE':>10} {'jbpnn s':>8} {'epochs':>7} {'speed-up':>9}"
    )
    notes = []
    for name, (X, Y, sizes) in list(tasks().items())[: 1 if quick else None]:
        p = network(sizes)
        res_np, jac_np, x0 = scipy_problem(p, X, Y)
        res_np(x0), jac_np(x0)  # compile
        sc = scipy_runs(res_np, jac_np, x0, repeats)
        # jbpnn's loss is 1/2 mean_n sum_k e^2, so SSE = 2 n loss: stop at the same target
        tol = sc["target"] / (2 * len(X))
        kw = {"optimizer": levenberg_marquardt(), "epochs": 2000, "tol": tol}
        jbpnn.train(p, X, Y, **kw)  # compile
        t_jbpnn, _ = timed(partial(fit, p, X, Y, **kw), repeats)
        r = jbpnn.train(p, X, Y, **kw)
        sse = 2 * len(X) * float(jbpnn.loss(r.params, X, Y))
        reached = sse <= sc["target"]
        verdict = (
            f"{sc['seconds'] / t_jbpnn:8.1f}x  ({r.stop_reason})"
            if reached
            else f"{'MISSED':>9}  (stopped on {r.stop_reason}, {sse / sc['sse'] - 1:.1%} above "
            "SciPy's SSE: target not reached, no speed-up)"
        )
        print(
            f"{name:28} {sc['sse']:10.4g} {sc['total']:8.3f} {sc['nfev']:6d} "
            f"{sc['seconds']:9.3f} {sc['runs']:4d} {sse:10.4g} {t_jbpnn:8.3f} "
            f"{r.epochs_run:7d} {verdict}"
        )
        notes.append(
            f"   {name}: SciPy came within 1% at evaluation {sc['nfev_target']} of "
            f"{sc['nfev']} ({sc['seconds'] / sc['total']:.0%} of its full run); recording "
            f"cost {1e3 * sc['overhead']:.2f} ms of it"
            + (
                f"; {sc['missed_runs']} run(s) ended above the target, not counted"
                if sc["missed_runs"]
                else ""
            )
        )
    print(
        "   full s: SciPy's first run, to its own stop (one run); target s: median over runs "
        f"of the time to the target (the first run's clock, then runs stopped there, up to "
        f"{repeats} runs or {SCIPY_BUDGET_S:.0f} s of them); jbpnn s: median of {repeats}"
    )
    print("\n".join(notes))


# ---------------------------------------------------------------- 4. many networks
def many_networks(n: int, repeats: int) -> None:
    print(f"\n4. {n} networks 1-10-1 by LM, 100 epochs: one train_many call vs {n} train calls")
    X, Y, sizes = tasks()["sin 1-10-1, 200 rows"]
    spec = InitSpec(sizes, ("tanh", "identity"), "mse", "glorot")
    kw = {"epochs": 100}
    # both sides start from the same drawn networks: neither times the weight draws
    start = jbpnn.many.init_many(spec, np.arange(n))
    many = partial(train_many, start, X, Y, optimizer="lm", hparams={}, **kw)
    many()  # compile
    nets = [jax.tree.map(lambda a, i=i: a[i], start) for i in range(n)]
    opt = levenberg_marquardt()

    def one():
        return [fit(q, X, Y, optimizer=opt, **kw) for q in nets]

    jbpnn.train(nets[0], X, Y, optimizer=opt, **kw)  # compile
    a = jnp.ones((1024, 1024), jnp.float32)
    mm = jax.jit(lambda x, y: x @ y)
    jax.block_until_ready(mm(a, a))
    t_many, t_one, t_peak = [], [], []
    for _ in range(repeats):  # interleaved: a busy moment of the shared CPU hits both
        t_peak.append(timed(lambda: mm(a, a), 3)[0])
        t_many.append(timed(lambda: many().params, 1)[0])
        t_one.append(timed(one, 1)[0])
    t_many, t_one = statistics.median(t_many), statistics.median(t_one)
    peak = 2 * 1024**3 / statistics.median(t_peak) / 1e9
    r = many()
    best = int(np.argmin([h[-1] for h in r.history["loss"]]))
    # the work of one LM epoch that grows with the rows: J^T J (2 N P^2) and J^T e (2 N P)
    P = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    gflop = n * kw["epochs"] * 2 * len(X) * P * (P + 1) / 1e9
    print(
        f"train_many {t_many:.2f} s, {n} x train {t_one:.2f} s: {t_one / t_many:.1f}x faster; "
        f"best network {best}, loss {r.history['loss'][best][-1]:.3g}"
    )
    print(
        f"J^T J and J^T e: {gflop:.1f} GFLOP in all, {gflop / t_many:.1f} GFLOP/s in train_many "
        f"({gflop / t_many / peak:.2f} of the {peak:.0f} GFLOP/s float32 matrix-product peak "
        f"measured in the same rounds), {gflop / t_one:.1f} GFLOP/s in {n} x train"
    )


# ---------------------------------------------------------------- 5. scikit-learn's lbfgs
FIT_ROUNDS = 31  # table 5's fits take milliseconds: at least this many interleaved rounds


def against_mlp_regressor(repeats: int, quick: bool) -> None:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    from jbpnn.sklearn import BPNNRegressor

    print(
        "\n5. BPNNRegressor(solver='lbfgs') vs MLPRegressor(solver='lbfgs'), same initial weights"
    )
    from threadpoolctl import threadpool_limits  # ships with scikit-learn

    print(
        f"{'task':28} {'iters':>5} {'sklearn loss':>12} {'jbpnn loss':>11} {'sklearn s':>10} "
        f"{'1 thread s':>10} {'jbpnn s':>8} {'1st fit s':>10} {'speed-up':>9}"
    )
    for name, (X, Y, sizes) in list(tasks().items())[: 1 if quick else None]:
        rng = np.random.default_rng(0)
        init = [
            (rng.uniform(-0.5, 0.5, (a, b)), rng.uniform(-0.5, 0.5, b))
            for a, b in zip(sizes[:-1], sizes[1:])
        ]
        kw = dict(hidden_layer_sizes=sizes[1:-1], activation="tanh", solver="lbfgs", alpha=1e-4)
        y = Y.ravel()
        for iters in (50,) if quick else (50, 200):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                # one iteration builds the estimator; each timed fit then starts from
                # the same weights (warm_start), so its time is the fit's alone
                sk = MLPRegressor(**kw, max_iter=1).fit(X, y)
            sk.set_params(warm_start=True, max_iter=iters)

            def sklearn_fit(sk=sk, init=init, X=X, y=y):
                sk.coefs_ = [w.copy() for w, _ in init]
                sk.intercepts_ = [b.copy() for _, b in init]
                return sk.fit(X, y)

            def sklearn_fit_1(fit=sklearn_fit):
                with threadpool_limits(1):  # OpenBLAS on one thread
                    return fit()

            jb = BPNNRegressor(**kw, max_iter=iters, init=init)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                t = time.perf_counter()
                jb.fit(X, y)  # a new shape: compiles
                first = time.perf_counter() - t
                # interleaved rounds (a fit takes milliseconds: the machine's load moves
                # between the two sides of a ratio timed one after the other)
                rounds = [
                    (
                        timed(partial(jb.fit, X, y), 1)[0],
                        timed(sklearn_fit, 1)[0],
                        timed(sklearn_fit_1, 1)[0],
                    )
                    for _ in range(max(repeats, FIT_ROUNDS))
                ]
                t_jb, t_sk, t_sk1 = (statistics.median(side) for side in zip(*rounds))
            # the 200-iteration fit runs the 50-iteration fit's program: nothing to compile
            cold = f"{first:10.2f}" if iters == 50 else f"{first:9.2f}*"
            print(
                f"{name:28} {iters:5d} {sk.loss_:12.5f} {jb.loss_:11.5f} {t_sk:10.4f} "
                f"{t_sk1:10.4f} {t_jb:8.4f} {cold} {min(t_sk, t_sk1) / t_jb:8.2f}x"
            )
    print(
        "sklearn s: default BLAS threads; 1 thread s: under threadpool_limits(1); speed-up: "
        "the faster of the two / jbpnn s.\n1st fit s: jbpnn's first fit of the task, "
        "compilation included (the cache off); *: the 200-iteration fit reuses the\n"
        "50-iteration fit's program (no compilation)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument(
        "--quick", action="store_true", help="16 networks, one repeat, the sin task only"
    )
    ap.add_argument("--repeats", type=positive_int, default=5)
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    # the compile columns measure compilation: no persistent cache to load programs from
    jbpnn.disable_compilation_cache()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}; load average {load:.2f}; "
        "persistent compilation cache off\n"
    )
    to_adams_loss(repeats, args.quick)
    normal_equations_speed(repeats, args.quick)
    against_scipy(repeats, args.quick)
    many_networks(16 if args.quick else 256, repeats)
    against_mlp_regressor(repeats, args.quick)


if __name__ == "__main__":
    main()
