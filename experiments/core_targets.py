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

    python experiments/core_targets.py [--repeats 5]
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

    kind, _, arg = what.partition(":")
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
    parser.add_argument("--repeats", type=int, default=5, help="timings per median (>= 5)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child)))
        return 0
    n = args.repeats
    started = time.perf_counter()
    print(f"load average (1, 5, 15 min) before: {load_avg()}  ({os.cpu_count()} CPUs)")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; medians of {n} timings")
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
