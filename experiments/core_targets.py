"""The training core's targets, measured in one run as ratios against references.

What it shows, on the bundled digits (``jbpnn.load_digits()``: 1797 x 64, 64-64-10,
sigmoid hidden units, softmax output + cross-entropy, glorot init, float32,
mini-batches of 32, classical momentum lr 0.1 m 0.9 unless a row says otherwise):

a. second call with other hyperparameters: a ``train`` call whose lr, m, epochs
   and tol are all values never seen before, against the same call repeated
   identically (both warm): time per epoch, new / repeat. Target <= 1.3. Also
   counts XLA compilations during the new calls (should be 0).
b. first call: in a FRESH process each (no persistent compilation cache), the
   wall time of the first ``train`` call (compile + 20 epochs), without and with
   validation, against the first call of the plain ``jax.grad`` + ``lax.scan``
   loop a user writes (:func:`user_fit` below: per-epoch
   ``jax.random.permutation`` shuffle, batches of 32, momentum, the same loss;
   it drops the last partial batch, 56 updates an epoch to train's 57).
   Target: train no slower (ratio <= 1).
c. 64 networks (8 learning rates x 8 seeds, shared data order, ``devices=1``,
   20 epochs, validation on a held-out 20%): ``train_many`` against 64
   sequential ``train`` calls, both warm (target >= 3x); and against the Python
   loop a user writes today (64 ``train`` calls, a new optimizer each, in a fresh
   process, so its one compilation included): target >= 30x against warm
   ``train_many``; the same loop against ``train_many``'s own first call in a
   fresh process is printed too, for information.
d. digits epoch time: ms per epoch of a 50-epoch ``train`` call (no validation),
   next to the ``jax.grad`` + ``lax.scan`` loop of (b) in the same run.
f. 64 networks per epoch (8 learning rates x 8 seeds, shared data order,
   ``devices=1``, no validation, compile excluded): ms per epoch of ``train_many``
   against an equinox + optax ensemble (``eqx.filter_vmap`` of one update over the
   networks, ``optax.inject_hyperparams(optax.sgd)`` with one lr per network, the
   loop a JAX user writes; only when equinox and optax are installed: the ``bench``
   extra), against ``train_many`` with the core kernel vmapped (``grad_fn=
   loss_and_gradient_kernel``: what it ran before :mod:`jbpnn.ensemble`), and
   against 64 sequential ``train`` calls; each with its GFLOP/s against the float32
   matrix-product peak (1024 x 1024 x 1024) measured in the same rounds. Then, in a
   fresh process with one CPU device per core (``jbpnn.many.use_cpu_devices()``, asked for
   before JAX starts: how the README tells a CPU user to train many networks),
   ``train_many`` with its networks split over every device against the same 64
   sequential ``train`` calls there (one network cannot use a second device).
   Targets: train_many no slower than equinox (ratio <= 1) and >= 4x faster than
   sequential, on one device and on every core.
e. peak memory: in fresh processes, ``train`` on a 3-4-1 network (4 XOR rows,
   sgd, ``tol=1e9`` so it stops after epoch 1) with ``epochs=10**8`` against
   ``epochs=100``: peak RSS (``ru_maxrss``) of each; target: within 50 MB. (Each
   fresh process is started through a small launcher: one started straight from
   this large process would inherit its peak in ``ru_maxrss``; /proc's ``VmHWM``
   is printed as a check.)

Timings are medians of ``--repeats`` (default 5) runs, the two sides of each
ratio interleaved so that a busy moment of the shared CPU hits both; the load
average is printed before and after. Takes about 5 minutes on a busy 2-core CPU
(load ~3), two thirds of it the 46 fresh processes of b, c and e.

Prints progress lines on stderr, then on stdout: the load averages, one line
per measurement with every timing and the XLA compilations of the timed part
(fresh processes), and one table: each figure, its reference, the ratio, the
target and MET/MISSED. Timings only, no assertions; exit status 0.

    python experiments/core_targets.py [--repeats 5] [--only f] [--quick]

``--only f`` runs only (f) (about two minutes); ``--quick`` is (f) with 16 networks,
3 epochs and one round (a smoke test: tests/test_experiments.py runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _args import at_least  # noqa: E402  (this folder: the script's own)
from jax import lax  # noqa: E402

SIZES = (64, 64, 10)
ACTS = ("sigmoid", "softmax")
LOSS = "cross_entropy"
LR, M, BATCH = 0.1, 0.9, 32
N_LR, N_SEED = 8, 8
LRS = np.geomspace(0.01, 0.3, N_LR)


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def load_avg() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


# ---------------------------------------------------------------- data
def digits(split: bool = False):
    """The digits ``(X, Y)``; with ``split``, ``(X_train, Y_train, X_val, Y_val)``, 20% held out."""
    import jbpnn

    d = jbpnn.load_digits()
    if not split:
        return d.X, jbpnn.one_hot(d.y, 10)
    Xt, Xv, yt, yv = jbpnn.train_test_split(d.X, d.y, 0.2, seed=0)
    return Xt, jbpnn.one_hot(yt, 10), Xv, jbpnn.one_hot(yv, 10)


def net(seed: int = 0):
    import jbpnn

    return jbpnn.init_params(jax.random.key(seed), SIZES, ACTS, LOSS, "glorot")


# ---------------------------------------------------------------- the loop a user writes
def user_loss(params, X, Y):
    """Mean cross-entropy of a sigmoid MLP with a softmax output; params ``[(w, b), ...]``."""
    h = X
    for w, b in params[:-1]:
        h = jax.nn.sigmoid(h @ w + b)
    w, b = params[-1]
    return -jnp.mean(jnp.sum(Y * jax.nn.log_softmax(h @ w + b), axis=1))


def user_accuracy(params, X, Y):
    h = X
    for w, b in params[:-1]:
        h = jax.nn.sigmoid(h @ w + b)
    w, b = params[-1]
    return jnp.mean(jnp.argmax(h @ w + b, axis=1) == jnp.argmax(Y, axis=1))


@partial(jax.jit, static_argnames=("epochs", "batch_size"))
def user_fit(params, X, Y, key, lr, m, epochs, batch_size=32, X_val=None, Y_val=None):
    """``epochs`` of momentum SGD on mini-batches, a new order each epoch; per-epoch history.

    The last partial batch is dropped (56 updates per digits epoch; ``train`` pads
    it and makes 57).
    """
    n = X.shape[0]
    nb = n // batch_size
    grad = jax.value_and_grad(user_loss)

    def step(carry, batch):
        p, v = carry
        loss, g = grad(p, *batch)
        v = jax.tree.map(lambda v, g: m * v - lr * g, v, g)
        p = jax.tree.map(lambda p, v: p + v, p, v)
        return (p, v), loss

    def epoch(carry, _):
        p, v, key = carry
        key, sub = jax.random.split(key)
        order = jax.random.permutation(sub, n)[: nb * batch_size].reshape(nb, batch_size)
        (p, v), losses = lax.scan(step, (p, v), (X[order], Y[order]))
        out = {"loss": jnp.mean(losses)}
        if X_val is not None:
            out["val_loss"] = user_loss(p, X_val, Y_val)
            out["val_accuracy"] = user_accuracy(p, X_val, Y_val)
        return (p, v, key), out

    v = jax.tree.map(jnp.zeros_like, params)
    (params, _, _), history = lax.scan(epoch, (params, v, key), None, length=epochs)
    return params, history


def as_user_params(p) -> list[tuple[Any, Any]]:
    return [(layer.w, layer.b) for layer in p.layers]


def run_user(params, X, Y, epochs, X_val=None, Y_val=None, key=None):
    """One ``user_fit`` call, its history copied to the host (as ``train`` does)."""
    key = jax.random.key(0) if key is None else key
    out, hist = user_fit(params, X, Y, key, LR, M, epochs=epochs, X_val=X_val, Y_val=Y_val)
    jax.block_until_ready(out)
    return {k: np.asarray(v) for k, v in hist.items()}


def run_train(params, X, Y, epochs, **kw):
    from jbpnn import momentum, train

    kw.setdefault("optimizer", momentum(LR, M))
    r = train(params, X, Y, epochs=epochs, batch_size=BATCH, **kw)
    jax.block_until_ready(r.params)
    return r


# ---------------------------------------------------------------- timing helpers
def timed(f: Callable[[], Any]) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def interleaved(fs: dict[str, Callable[[int], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each ``f(i)``, ``repeats`` rounds, the functions taking turns in each."""
    times: dict[str, list[float]] = {k: [] for k in fs}
    for i in range(repeats):
        for k, f in fs.items():
            times[k].append(timed(lambda f=f, i=i: f(i)))
    return times


class CompileCounter:
    """Counts XLA backend compilations (``jax.monitoring`` events) while ``on``."""

    def __init__(self) -> None:
        self.on, self.count = False, 0
        jax.monitoring.register_event_duration_secs_listener(self._seen)

    def _seen(self, name: str, secs: float, **kw: Any) -> None:
        if self.on and name == "/jax/core/compile/backend_compile_duration":
            self.count += 1


# ---------------------------------------------------------------- fresh processes
def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    env["JBPNN_NO_CACHE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


# A fresh Python started straight from this (large) process inherits its peak RSS in
# ru_maxrss (Linux records the old image's high-water mark at exec); one started by a
# small launcher process does not. So every child goes through one.
_LAUNCH = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def child(what: str) -> dict[str, Any]:
    """Run ``core_targets.py --child what`` in a fresh Python; its JSON line."""
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCH, sys.executable, str(Path(__file__).resolve())]
        + ["--child", what],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {what} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def children(whats: Sequence[str], repeats: int) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {w: [] for w in whats}
    for _ in range(repeats):  # interleaved
        for w in whats:
            out[w].append(child(w))
    return out


def run_child(what: str) -> dict[str, Any]:
    """What a fresh process measures (``--child``): everything before ``clock()`` is setup.

    Returns the timed seconds and, for the timed part only, the XLA compilations
    (count and seconds).
    """
    import jbpnn

    kind, _, arg = what.partition(":")
    if kind == "cores":  # f: one CPU device per core, asked for before JAX starts
        jbpnn.many.use_cpu_devices()
    jax.devices()
    compiles: list[float] = []
    counting = [False]

    def seen(name: str, secs: float, **kw: Any) -> None:
        if counting[0] and name == "/jax/core/compile/backend_compile_duration":
            compiles.append(secs)

    jax.monitoring.register_event_duration_secs_listener(seen)
    start = [0.0]

    def clock() -> None:
        counting[0], start[0] = True, time.perf_counter()

    def took() -> dict[str, float]:
        return {
            "s": time.perf_counter() - start[0],
            "compiles": len(compiles),
            "compile_s": sum(compiles),
        }

    if kind == "cores":  # f: train_many on every device vs N x train, ms per epoch
        repeats, n_nets, epochs = (int(a) for a in arg.split(":"))
        many, sequential, *_ = f_contenders(n_nets, epochs, devices=None)
        many()  # compile both
        sequential()
        times = interleaved({"many": lambda i: many(), "seq": lambda i: sequential()}, repeats)
        return {
            "devices": len(jax.devices()),
            "train_many_ms": 1e3 * statistics.median(times["many"]) / epochs,
            "sequential_ms": 1e3 * statistics.median(times["seq"]) / epochs,
        }
    if kind == "first":  # b: the first call of train or of the user's loop
        val = arg.endswith("_val")
        X, Y, Xv, Yv = digits(split=True) if val else digits() + (None, None)
        p, key = net(0), jax.random.key(0)
        if arg.startswith("train"):
            clock()
            loss = run_train(p, X, Y, 20, X_val=Xv, Y_val=Yv, key=key).history["loss"][-1]
        else:
            up = as_user_params(p)
            clock()
            loss = run_user(up, X, Y, 20, X_val=Xv, Y_val=Yv, key=key)["loss"][-1]
        return took() | {"final_loss": float(loss)}
    if kind == "cold":  # c: 64 networks from a cold start
        X, Y, Xv, Yv = digits(split=True)
        clock()
        if arg == "user_loop":  # the loop a user writes: a new optimizer each, nothing warm
            finals = []
            for lr in LRS:
                for seed in range(N_SEED):
                    p = jbpnn.init_params(jax.random.key(seed), SIZES, ACTS, LOSS, "glorot")
                    r = jbpnn.train(
                        p,
                        X,
                        Y,
                        optimizer=jbpnn.momentum(float(lr), M),
                        epochs=20,
                        batch_size=BATCH,
                        X_val=Xv,
                        Y_val=Yv,
                    )
                    finals.append(float(r.history["loss"][-1]))
        else:
            finals = list(many(X, Y, Xv, Yv).history["loss"][:, -1])
        return took() | {"mean_final_loss": float(np.mean(finals))}
    if kind == "memory":  # e: peak RSS of a tiny run with a huge epoch bound
        X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], np.float32)
        Y = np.array([[0], [1], [1], [0]], np.float32)
        p = jbpnn.init_params(jax.random.key(0), (3, 4, 1), "sigmoid", "mse", "glorot")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        clock()
        r = jbpnn.train(p, X, Y, optimizer=jbpnn.sgd(0.5), epochs=int(arg), tol=1e9)
        jax.block_until_ready(r.params)
        out = took()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return out | {
            "peak_mb": peak / 1024,
            "vm_hwm_mb": _vm_hwm_kib() / 1024,
            "before_train_mb": before / 1024,
            "epochs_run": r.epochs_run,
            "stop_reason": r.stop_reason,
        }
    raise ValueError(f"unknown child {what!r}")


def _vm_hwm_kib() -> float:
    """This process's peak RSS from /proc (Linux; NaN elsewhere), a check on ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def many(X, Y, Xv, Yv):
    """64 networks in one ``train_many`` call: 8 learning rates x 8 seeds, shared data order."""
    import jbpnn

    spec = jbpnn.InitSpec(SIZES, ACTS, LOSS, "glorot")
    r = jbpnn.train_many(
        spec,
        X,
        Y,
        seeds=np.tile(np.arange(N_SEED), N_LR),
        optimizer="momentum",
        hparams={"lr": np.repeat(LRS, N_SEED).astype(np.float32), "m": M},
        epochs=20,
        batch_size=BATCH,
        X_val=Xv,
        Y_val=Yv,
        devices=1,
    )
    jax.block_until_ready(r.params)
    return r


# ---------------------------------------------------------------- the measurements
def task_a(repeats: int, counter: CompileCounter) -> dict[str, Any]:
    """Repeat call vs calls with never-seen lr, m, epochs and tol; s per epoch."""
    from jbpnn import momentum

    X, Y = digits()
    p = net(0)
    same = dict(optimizer=momentum(LR, M), tol=1e-6)
    for _ in range(2):  # warm-up: compile, then one more
        run_train(p, X, Y, 20, **same)
    epochs_new = [21 + i for i in range(repeats)]
    results: list[Any] = []

    def new(i: int) -> None:
        opt = momentum(LR + 0.003 * (i + 1), M - 0.004 * (i + 1))
        counter.on = True
        try:
            results.append(run_train(p, X, Y, epochs_new[i], optimizer=opt, tol=1e-6 * (i + 2)))
        finally:
            counter.on = False

    times = interleaved({"repeat": lambda i: run_train(p, X, Y, 20, **same), "new": new}, repeats)
    rep = statistics.median(t / 20 for t in times["repeat"])
    nw = statistics.median(t / e for t, e in zip(times["new"], epochs_new))
    return {
        "repeat_ms_per_epoch": 1e3 * rep,
        "new_ms_per_epoch": 1e3 * nw,
        "repeat_call_ms": 1e3 * statistics.median(times["repeat"]),
        "new_call_ms": [1e3 * t for t in times["new"]],
        "epochs_new": epochs_new,
        "compiles_in_new_calls": counter.count,
        "all_ran": all(r.epochs_run == e for r, e in zip(results, epochs_new)),
    }


def task_d(repeats: int) -> dict[str, Any]:
    """ms per epoch of a warm 50-epoch train call vs the user's scan loop."""
    X, Y = digits()
    p = net(0)
    up = as_user_params(p)
    key = jax.random.key(0)
    fs = {
        "train": lambda i: run_train(p, X, Y, 50),
        "user loop": lambda i: run_user(up, X, Y, 50, key=key),
    }
    for f in fs.values():
        f(0)
    times = interleaved(fs, max(repeats, 7))
    return {k: 1e3 * statistics.median(v) / 50 for k, v in times.items()}


def task_c_warm(repeats: int) -> dict[str, Any]:
    """train_many of 64 vs 64 sequential train calls, both warm."""
    import jbpnn

    X, Y, Xv, Yv = digits(split=True)

    def sequential(i: int) -> list[float]:
        finals = []
        for lr in LRS:
            for seed in range(N_SEED):
                r = run_train(
                    net(seed), X, Y, 20, optimizer=jbpnn.momentum(float(lr), M), X_val=Xv, Y_val=Yv
                )
                finals.append(float(r.history["loss"][-1]))
        last["sequential"] = finals
        return finals

    def together(i: int) -> None:
        r = many(X, Y, Xv, Yv)
        last["many"] = list(r.history["loss"][:, -1])
        last["stops"] = sorted(set(r.stop_reason))

    last: dict[str, Any] = {}
    together(0)  # warm both
    run_train(net(0), X, Y, 20, X_val=Xv, Y_val=Yv)
    times = interleaved({"train_many": together, "sequential": sequential}, repeats)
    a, b = np.asarray(last["many"]), np.asarray(last["sequential"])
    return {
        "train_many_s": statistics.median(times["train_many"]),
        "sequential_s": statistics.median(times["sequential"]),
        "final_loss_rel_diff": float(np.max(np.abs(a - b) / np.abs(b))),
        "stop_reasons": last["stops"],
    }


def flops_per_update(sizes: Sequence[int], batch: int) -> float:
    """Multiply-adds x 2 of one hand-derived update of one network: each layer's forward
    product and weight gradient, and every layer's but the first backward product."""
    pairs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2.0 * batch * (2 * sum(pairs) + sum(pairs[1:]))


def matmul_peak() -> Callable[[], float]:
    """A timed float32 1024^3 product (10 calls): GFLOP/s of this CPU right now."""
    a = jnp.ones((1024, 1024), jnp.float32)
    mm = jax.jit(lambda x, y: x @ y)
    jax.block_until_ready(mm(a, a))

    def peak() -> float:
        t = time.perf_counter()
        for _ in range(10):
            out = mm(a, a)
        jax.block_until_ready(out)
        return 10 * 2 * 1024**3 / (time.perf_counter() - t) / 1e9

    return peak


def equinox_ensemble(X, Y, lrs, seeds, epochs: int) -> Callable[[], Any] | None:
    """The equinox + optax ensemble a JAX user writes: ``eqx.filter_vmap`` of one update
    over the networks (the batch shared), ``lax.scan`` over the batches and epochs, a
    new order each epoch (``epochs * n_batches`` updates of 32 rows, as ``train``'s
    padded last batch is a full one here). None without equinox and optax."""
    try:
        import equinox as eqx
        import optax
    except ImportError:
        return None
    n, nb = X.shape[0], -(-X.shape[0] // BATCH)
    X, Y = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    models = eqx.filter_vmap(
        lambda k: eqx.nn.MLP(SIZES[0], SIZES[-1], SIZES[1], 1, jax.nn.sigmoid, key=k)
    )(keys)
    params, static = eqx.partition(models, eqx.is_array)
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=M)

    def init(p, lr):
        state = tx.init(p)
        state.hyperparams["learning_rate"] = lr
        return state

    states = jax.vmap(init)(params, jnp.asarray(lrs, jnp.float32))

    def loss_fn(p, x, y):
        logits = jax.vmap(eqx.combine(p, static))(x)
        return optax.softmax_cross_entropy(logits, y).mean()

    @eqx.filter_vmap(in_axes=(0, 0, None, None))
    def step(p, state, x, y):
        loss, g = eqx.filter_value_and_grad(loss_fn)(p, x, y)
        updates, state = tx.update(g, state, p)
        return eqx.apply_updates(p, updates), state, loss

    @eqx.filter_jit
    def fit(params, states, key):
        def epoch(carry, e):
            order = jax.random.permutation(jax.random.fold_in(key, e), n)
            order = jnp.concatenate([order, order])[: nb * BATCH].reshape(nb, BATCH)

            def update(c, idx):
                p, s, _ = step(*c, X[idx], Y[idx])
                return (p, s), None

            return lax.scan(update, carry, order)[0], None

        return lax.scan(epoch, (params, states), jnp.arange(epochs))[0]

    key = jax.random.key(0)
    return lambda: jax.block_until_ready(fit(params, states, key))


def f_contenders(n_nets: int, epochs: int, devices: int | None = 1) -> tuple[Any, ...]:
    """(f)'s two jbpnn sides, ``many(**kw)`` (``train_many`` of ``n_nets`` networks on
    ``devices``; None: every device) and ``sequential()`` (``n_nets`` ``train`` calls),
    then the data ``(X, Y)`` and the networks' learning rates and seeds."""
    import jbpnn

    X, Y = digits()
    n_seed = max(1, n_nets // N_LR)
    seeds = np.tile(np.arange(n_seed), n_nets // n_seed)
    lrs = np.repeat(LRS[: n_nets // n_seed], n_seed).astype(np.float32)
    spec = jbpnn.InitSpec(SIZES, ACTS, LOSS, "glorot")

    def many(**kw: Any) -> Any:
        r = jbpnn.train_many(
            spec,
            X,
            Y,
            seeds=seeds,
            optimizer="momentum",
            hparams={"lr": lrs, "m": M},
            epochs=epochs,
            batch_size=BATCH,
            devices=devices,
            **kw,
        )
        return jax.block_until_ready(r.params)

    def sequential() -> None:
        for lr, seed in zip(lrs, seeds):
            run_train(net(int(seed)), X, Y, epochs, optimizer=jbpnn.momentum(float(lr), M))

    return many, sequential, (X, Y), lrs, seeds


def task_f(repeats: int, n_nets: int = N_LR * N_SEED, epochs: int = 20) -> dict[str, Any]:
    """ms per epoch of N networks: train_many, equinox + optax, the vmapped core, N x train;
    then, in a fresh process with one CPU device per core, train_many on all of them
    against N x train there."""
    from jbpnn.network import loss_and_gradient_kernel

    many, sequential, (X, Y), lrs, seeds = f_contenders(n_nets, epochs)
    fs: dict[str, Callable[[], Any]] = {
        "train_many": many,
        "train_many, vmapped core": lambda: many(grad_fn=loss_and_gradient_kernel),
    }
    eqx_fit = equinox_ensemble(X, Y, lrs, seeds, epochs)
    if eqx_fit is not None:
        fs["equinox + optax"] = eqx_fit
    fs[f"{n_nets} x train"] = sequential
    peak = matmul_peak()
    for f in fs.values():  # compile
        f()
    peaks: list[float] = []
    rounds = {"peak": lambda i: peaks.append(peak())}
    times = interleaved(rounds | {k: lambda i, f=f: f() for k, f in fs.items()}, repeats)
    del times["peak"]
    n_updates = -(-X.shape[0] // BATCH)
    gflop = flops_per_update(SIZES, BATCH) * n_updates * n_nets / 1e9  # one epoch, all nets
    ms = {k: 1e3 * statistics.median(v) / epochs for k, v in times.items()}
    log(f"f: {n_nets} networks on every core, a fresh process")
    cores = child(f"cores:{repeats}:{n_nets}:{epochs}")
    return {
        "ms_per_epoch": ms,
        "gflop_per_epoch": gflop,
        "gflops": {k: gflop / (v / 1e3) for k, v in ms.items()},
        "peak_gflops": statistics.median(peaks),
        "n": n_nets,
        "epochs": epochs,
        "sequential": f"{n_nets} x train",
        "cores": cores,
    }


def rows_f(f: dict[str, Any]) -> list[list[str]]:
    """The table rows of (f): train_many against equinox + optax and against N x train."""
    ms, rows = f["ms_per_epoch"], []
    many, n = ms["train_many"], f["n"]
    if "equinox + optax" in ms:
        eq = ms["equinox + optax"]
        ok = verdict(many / eq, "<=", 1.0)
        rows.append(
            [f"f. {n} nets ms/epoch: train_many vs equinox+optax", f"{many:.3g}", f"{eq:.3g}"]
            + [f"{many / eq:.3g}", "<= 1", ok]
        )
    else:
        rows.append(
            [f"f. {n} nets ms/epoch: train_many vs equinox+optax", f"{many:.3g}", "-", "-"]
            + ["<= 1", "not measured (equinox or optax not installed)"]
        )
    seq = ms[f["sequential"]]
    rows.append(
        [f"f. {n} nets ms/epoch: {n} x train vs train_many (speed-up)", f"{seq:.3g}"]
        + [f"{many:.3g}", f"{seq / many:.3g}", ">= 4", verdict(seq / many, ">=", 4.0)]
    )
    old = ms["train_many, vmapped core"]
    rows.append(
        [f"f. {n} nets ms/epoch: vmapped core vs train_many (speed-up)", f"{old:.3g}"]
        + [f"{many:.3g}", f"{old / many:.3g}", "(info)", "-"]
    )
    c = f["cores"]
    seq, many = c["sequential_ms"], c["train_many_ms"]
    rows.append(
        [f"f. {n} nets ms/epoch: {n} x train vs train_many, {c['devices']} dev (speed-up)"]
        + [f"{seq:.3g}", f"{many:.3g}", f"{seq / many:.3g}", ">= 4", verdict(seq / many, ">=", 4.0)]
    )
    return rows


def report_f(f: dict[str, Any]) -> None:
    peak = f["peak_gflops"]
    print(
        f"f. {f['n']} digits networks, {f['epochs']} epochs, {f['gflop_per_epoch']:.2f} GFLOP "
        f"an epoch; float32 matrix-product peak in the same rounds {peak:.0f} GFLOP/s"
    )
    for k, v in f["ms_per_epoch"].items():
        g = f["gflops"][k]
        print(f"   {k:26s} {v:8.1f} ms/epoch  {g:6.1f} GFLOP/s  ({g / peak:.2f} of peak)")
    c = f["cores"]
    print(
        f"   in a fresh process with one CPU device per core ({c['devices']} devices, "
        f"jbpnn.many.use_cpu_devices()): train_many on all of them "
        f"{c['train_many_ms']:.1f} ms/epoch, {f['n']} x train {c['sequential_ms']:.1f} ms/epoch"
    )


# ---------------------------------------------------------------- report
def secs(values: Any, places: int = 2) -> str:
    return ", ".join(f"{v:.{places}f}" for v in values)


def verdict(value: float, op: str, threshold: float) -> str:
    ok = value <= threshold if op == "<=" else value >= threshold
    return "MET" if ok else "MISSED"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    return "\n".join([line(headers), "-" * len(line(headers))] + [line(r) for r in rows])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=at_least(1), default=5, help="timings per median")
    parser.add_argument("--only", choices=["f"], help="run only this measurement")
    parser.add_argument("--quick", action="store_true", help="(f) only, small: a smoke test")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child)))
        return 0
    n = 1 if args.quick else args.repeats
    started = time.perf_counter()
    print(f"load average (1, 5, 15 min) before: {load_avg()}  ({os.cpu_count()} CPUs)")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; medians of {n} timings")
    if args.quick or args.only == "f":
        log(f"f: {16 if args.quick else 64} networks per epoch")
        f = task_f(n, 16, 3) if args.quick else task_f(n)
        print()
        report_f(f)
        print()
        rows = rows_f(f)
        if args.quick:  # 16 networks, 3 epochs, one timing: no verdict on the full targets
            rows = [r[:-1] + ["quick run: no verdict" if r[-1] != "-" else "-"] for r in rows]
        print(table(["figure", "value", "reference", "ratio", "target", ""], rows))
        if args.quick:
            print("quick run: a smoke test of the code (16 networks, 3 epochs), not the targets")
        print(f"\nload average (1, 5, 15 min) after: {load_avg()}")
        return 0
    counter = CompileCounter()

    log("a: second call with new hyperparameters")
    a = task_a(n, counter)
    log("d: digits epoch time")
    d = task_d(n)
    log("c: train_many vs sequential train, warm")
    c = task_c_warm(n)
    log("b: first calls, fresh processes")
    b_runs = children(["first:train", "first:loop", "first:train_val", "first:loop_val"], n)
    b = {k: statistics.median(r["s"] for r in v) for k, v in b_runs.items()}
    log("c: cold user loop and cold train_many, fresh processes")
    c_runs = children(["cold:user_loop", "cold:train_many"], n)
    cold = {k: statistics.median(r["s"] for r in v) for k, v in c_runs.items()}
    log("f: 64 networks per epoch")
    f = task_f(n)
    log("e: peak memory, fresh processes")
    e_runs = children(["memory:100", f"memory:{10**8}"], 3)
    e = {k: statistics.median(r["peak_mb"] for r in v) for k, v in e_runs.items()}

    print()
    print(
        f"a. {n} new calls (epochs {a['epochs_new'][0]}..{a['epochs_new'][-1]}, lr, m, tol "
        f"each new) vs the 20-epoch call repeated: call {a['repeat_call_ms']:.1f} ms repeated; "
        f"new calls {secs(a['new_call_ms'], 1)} ms; XLA compilations "
        f"during the new calls: {a['compiles_in_new_calls']}; every new call ran its epochs: "
        f"{a['all_ran']}"
    )

    def compiled(v: list[dict[str, Any]]) -> str:
        return (
            f"XLA compilations in the timed part {v[0]['compiles']} "
            f"({secs((r['compile_s'] for r in v), 2)} s)"
        )

    for k, v in b_runs.items():
        print(
            f"b. {k:16s} first call s: {secs(r['s'] for r in v)}; {compiled(v)}; "
            f"final loss {v[0]['final_loss']:.4f}"
        )
    print(
        f"c. warm: train_many {c['train_many_s']:.2f} s, 64 x train {c['sequential_s']:.2f} s; "
        f"final losses agree to {c['final_loss_rel_diff']:.1e} (max rel. diff); stop reasons "
        f"{c['stop_reasons']}"
    )
    for k, v in c_runs.items():
        print(f"c. {k:16s} fresh process s: {secs(r['s'] for r in v)}; {compiled(v)}")
    for k, v in e_runs.items():
        r = v[0]
        print(
            f"e. {k:16s} peak RSS MB (ru_maxrss): {secs((x['peak_mb'] for x in v), 1)}; VmHWM "
            f"{secs((x['vm_hwm_mb'] for x in v), 1)}; before train {r['before_train_mb']:.1f}; "
            f"epochs run {r['epochs_run']} ({r['stop_reason']}), train {r['s']:.2f} s"
        )

    report_f(f)

    rows: list[list[str]] = []

    def add(name, value, ref, ratio, op, threshold, unit="", fmt="{:.3g}"):
        v = "-" if op is None else verdict(ratio, op, threshold)
        target = "(info)" if op is None else f"{op} {threshold:g}{unit}"
        rows.append([name, fmt.format(value), fmt.format(ref), f"{ratio:.3g}{unit}", target, v])

    add(
        "a. 2nd call, new lr/m/epochs/tol: ms/epoch vs repeated call",
        a["new_ms_per_epoch"],
        a["repeat_ms_per_epoch"],
        a["new_ms_per_epoch"] / a["repeat_ms_per_epoch"],
        "<=",
        1.3,
    )
    for label, t, u in (
        ("no validation", "first:train", "first:loop"),
        ("with validation", "first:train_val", "first:loop_val"),
    ):
        add(
            f"b. first call s, {label}: train vs jax.grad+scan loop",
            b[t],
            b[u],
            b[t] / b[u],
            "<=",
            1.0,
        )
    add(
        "c. 64 nets warm s: train_many vs 64 x train (speed-up)",
        c["train_many_s"],
        c["sequential_s"],
        c["sequential_s"] / c["train_many_s"],
        ">=",
        3.0,
    )
    add(
        "c. 64 nets s: warm train_many vs user loop, cold (speed-up)",
        c["train_many_s"],
        cold["cold:user_loop"],
        cold["cold:user_loop"] / c["train_many_s"],
        ">=",
        30.0,
    )
    add(
        "c. 64 nets s: cold train_many vs user loop, cold (speed-up)",
        cold["cold:train_many"],
        cold["cold:user_loop"],
        cold["cold:user_loop"] / cold["cold:train_many"],
        None,
        0,
    )
    add(
        "d. digits ms/epoch: train vs jax.grad+scan loop",
        d["train"],
        d["user loop"],
        d["train"] / d["user loop"],
        None,
        0,
    )
    rows += rows_f(f)
    big, small = e[f"memory:{10**8}"], e["memory:100"]
    rows.append(
        [
            "e. peak RSS MB: epochs=10**8 vs epochs=100 (difference)",
            f"{big:.1f}",
            f"{small:.1f}",
            f"{big - small:+.1f} MB",
            "<= 50 MB",
            "MET" if big - small <= 50 else "MISSED",
        ]
    )
    print()
    print(table(["figure", "value", "reference", "ratio", "target", ""], rows))
    print()
    print(
        f"load average (1, 5, 15 min) after: {load_avg()}; "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
