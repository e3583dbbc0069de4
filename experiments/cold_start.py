"""The first call in a new process: what jbpnn compiles, against what a JAX user's own loop does.

Every measurement runs in a fresh Python process (this script started again with
``--worker``), so each one pays the compilations a user pays; the persistent
compilation cache is off unless a row says "cache warm". Four tables:

1. **First call**: digits 64-64-10, softmax + cross-entropy, momentum (0.1, 0.9),
   batches of 64, 20 epochs, data already on the device. ``jbpnn.train`` against
   the idiomatic equinox + optax loop (``eqx.filter_jit`` of one epoch, ``lax.scan``
   over its batches, a Python loop over epochs; the same padding of the last batch
   and the same work). Columns: wall time of the first call, XLA compilations in
   it, and JAX's trace / lower / compile times (summed over its programs), and the
   process's CPU seconds (steadier than wall time on a loaded machine).
2. **Per feature**: the training program of one ``train`` call per setting, lowered
   and compiled with ``jax.stages`` in one process: trace, lower and compile times
   and the size of the compiled program (HLO instructions, fusions). A rule that is
   off is not in the program.
3. **Estimators**: the first ``BPNNClassifier().fit`` of a process on digits, with
   the persistent cache cold (an empty folder) and warm (the same folder, a new
   process), against ``MLPClassifier().fit`` (median of 3 processes a row).
4. **A stream**: 10 ``partial_fit`` chunks of 50, 50, 37, 50, 41, 50, 23, 50, 37, 64
   digits rows (cache off): compilations per chunk and the time after the first
   chunk, against ``MLPClassifier.partial_fit`` (median of 3 processes a row).

scikit-learn runs twice in tables 3 and 4, with OpenBLAS's default threads and under
``threadpoolctl.threadpool_limits(1)``; the ratios use the faster.

equinox and optax come with ``pip install -e .[bench]`` (scikit-learn too); a
contender that is missing is skipped with a note. flax is not measured.

    python experiments/cold_start.py            # 9 processes a row (3 in tables 3-4), ~4 min
    python experiments/cold_start.py --quick    # jbpnn's first call only (table 1)

Writes nothing; prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "compile",
}
SIZES = (64, 64, 10)
BATCH, LR, M = 64, 0.1, 0.9
STREAM = (50, 50, 37, 50, 41, 50, 23, 50, 37, 64)
HERE = Path(__file__).resolve()


# ---------------------------------------------------------------- workers (fresh processes)
class Counter:
    """JAX's compile events while ``on``: counts, and seconds per stage."""

    def __init__(self) -> None:
        import jax

        self.on, self.names, self.hits = False, [], 0
        self.seconds = dict.fromkeys(EVENTS.values(), 0.0)
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        jax.monitoring.register_event_listener(self._hit)

    def _hit(self, event: str, **kw) -> None:
        if self.on and event == "/jax/compilation_cache/cache_hits":
            self.hits += 1

    def _listen(self, event: str, duration: float, **kw) -> None:
        if self.on and event in EVENTS:
            self.seconds[EVENTS[event]] += duration
            if EVENTS[event] == "compile":
                self.names.append(str(kw.get("fun_name", "?")))

    def start(self) -> None:
        self.names, self.hits = [], 0
        self.seconds = dict.fromkeys(EVENTS.values(), 0.0)
        self.on, self.t0, self.c0 = True, time.perf_counter(), time.process_time()

    def stop(self) -> dict:
        self.on = False
        wall, cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
        got = {"first": wall, "cpu": cpu, "compiles": len(self.names), "hits": self.hits}
        return got | self.seconds


def _size(compiled) -> dict:
    """HLO instructions and fusions of a compiled program."""
    text = compiled.as_text()
    return {
        "hlo": sum(1 for line in text.splitlines() if " = " in line),
        "fusions": sum(text.count(f"kind=k{k}") for k in ("Loop", "Input", "Output")),
    }


def _digits():
    import numpy as np

    from jbpnn.data import load_digits, one_hot

    ds = load_digits()
    return np.asarray(ds.X, np.float32), np.asarray(one_hot(ds.y, 10), np.float32), ds.y


def worker_jbpnn(epochs: int) -> dict:
    counter = Counter()
    import jax
    import numpy as np

    import jbpnn

    X, Y, _ = _digits()
    params = jbpnn.init_params(0, SIZES, "sigmoid", "cross_entropy", "glorot")
    X, Y = jax.device_put(X), jax.device_put(Y)
    jax.block_until_ready((params, X, Y))
    counter.start()
    r = jbpnn.train(params, X, Y, optimizer=jbpnn.momentum(LR, M), epochs=epochs, batch_size=BATCH)
    jax.block_until_ready(r.params)
    got = {**counter.stop(), "loss": r.final_loss}
    from jbpnn import training  # the program again, to count its instructions

    run = training.prepare_training(params, X, Y, optimizer=jbpnn.momentum(LR, M), batch_size=BATCH)
    static = {"config": run.config, "optimizer": training.static_kind(run.optimizer)}
    args = (run.state, run.data, run.val, run.rules, np.int32(epochs))
    return {**got, **_size(training._run_jit.lower(*args, **static).compile())}


def worker_equinox(epochs: int) -> dict:
    try:
        import equinox as eqx
        import optax
    except ImportError as error:
        return {"skipped": f"{error.name} is not installed (pip install -e .[bench])"}
    counter = Counter()
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    X, Y, _ = _digits()
    n = X.shape[0]
    nb = -(-n // BATCH)
    model = eqx.nn.MLP(
        SIZES[0], SIZES[-1], SIZES[1], 1, activation=jax.nn.sigmoid, key=jax.random.key(0)
    )
    optim = optax.sgd(LR, momentum=M)
    opt_state = optim.init(eqx.filter(model, eqx.is_array))
    X, Y, key = jax.device_put(X), jax.device_put(Y), jax.random.key(0)
    jax.block_until_ready((model, opt_state, X, Y, key))

    def loss_fn(model, x, y, w):
        logits = jax.vmap(model)(x)
        return jnp.sum(w * -jnp.sum(y * jax.nn.log_softmax(logits), -1)) / jnp.sum(w)

    @eqx.filter_jit
    def train_epoch(model, opt_state, X, Y, key, epoch):
        order = jax.random.permutation(jax.random.fold_in(key, epoch), n)
        order = jnp.concatenate([order, jnp.zeros(nb * BATCH - n, order.dtype)])
        w = (jnp.arange(nb * BATCH) < n).astype(X.dtype).reshape(nb, BATCH)  # pad: weight 0
        xb, yb = X[order].reshape(nb, BATCH, -1), Y[order].reshape(nb, BATCH, -1)
        params, static = eqx.partition(model, eqx.is_array)

        def step(carry, batch):
            params, opt_state = carry
            x, y, wb = batch
            loss, grads = jax.value_and_grad(lambda p: loss_fn(eqx.combine(p, static), x, y, wb))(
                params
            )
            updates, opt_state = optim.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss * jnp.sum(wb)

        (params, opt_state), losses = lax.scan(step, (params, opt_state), (xb, yb, w))
        return eqx.combine(params, static), opt_state, jnp.sum(losses) / n

    counter.start()
    for e in range(epochs):
        model, opt_state, loss = train_epoch(model, opt_state, X, Y, key, np.asarray(e, np.int32))
    jax.block_until_ready(model)
    got = {**counter.stop(), "loss": float(loss)}
    lowered = train_epoch.lower(model, opt_state, X, Y, key, np.asarray(0, np.int32))
    return {**got, **_size(lowered.lowered.compile())}


def worker_features() -> dict:
    import jax
    import numpy as np

    import jbpnn
    from jbpnn import training
    from jbpnn.stopping import Stopping

    X, Y, _ = _digits()
    params = jbpnn.init_params(0, SIZES, "sigmoid", "cross_entropy", "glorot")
    val = dict(X_val=X[:300], Y_val=Y[:300])
    settings = {
        "defaults (divergence rule on)": ({}, {}),
        "divergence bounds off": ({"max_loss_growth": None, "max_abs_param": None}, {}),
        "max_abs_param only": ({"max_loss_growth": None}, {}),
        "+ validation": ({}, val),
        "+ validation, early stopping": ({"n_iter_no_change": 10}, val),
        "+ loss_patience": ({"loss_patience": 10}, {}),
        "+ min_weight_change": ({"min_weight_change": 1e-6}, {}),
        "full batch (defaults)": ({}, {"batch_size": None}),
    }
    rows = {}
    jax.jit(lambda x: x * 2 + 1).lower(np.ones(3)).compile()  # the backend's one-time set-up
    for name, (stop, kw) in settings.items():
        kw = {"batch_size": BATCH, **kw}
        run = training.prepare_training(
            params,
            X,
            Y,
            optimizer=jbpnn.momentum(LR, M),
            stopping=Stopping(**stop),
            pad_rows=True,
            **kw,
        )
        static = dict(
            config=run.config,
            optimizer=training.static_kind(run.optimizer),
            grad_fn=training.loss_and_gradient_kernel,
            mesh=None,
        )
        args = (run.state, run.data, run.val, run.rules, np.int32(20))
        t0 = time.perf_counter()
        traced = training._run_jit.trace(*args, **static)
        t1 = time.perf_counter()
        lowered = traced.lower()
        t2, c2 = time.perf_counter(), time.process_time()
        compiled = lowered.compile()
        t3, c3 = time.perf_counter(), time.process_time()
        rows[name] = {
            "trace": t1 - t0,
            "lower": t2 - t1,
            "compile": t3 - t2,
            "compile_cpu": c3 - c2,
            **_size(compiled),
        }
        jax.clear_caches()
    return rows


def blas_threads(which: str):
    """``mlp1``: scikit-learn with OpenBLAS on one thread; otherwise its default threads."""
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits  # ships with scikit-learn

    return threadpool_limits(1) if which == "mlp1" else nullcontext()


def worker_fit(which: str) -> dict:
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return {"skipped": "scikit-learn is not installed (pip install -e .[sklearn])"}
    counter = Counter()
    import warnings

    X, _, y = _digits()
    if which.startswith("mlp"):
        est = MLPClassifier(random_state=0)
    else:
        from jbpnn.sklearn import BPNNClassifier

        est = BPNNClassifier(random_state=0)
    with blas_threads(which), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached: the same 200 epochs for both
        counter.start()
        est.fit(X, y)
        got = counter.stop()
    return {**got, "accuracy": float(est.score(X, y))}


def worker_stream(which: str) -> dict:
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return {"skipped": "scikit-learn is not installed (pip install -e .[sklearn])"}
    counter = Counter()
    import numpy as np

    X, _, y = _digits()
    if which.startswith("mlp"):
        est = MLPClassifier(hidden_layer_sizes=(64,), random_state=0)
    else:
        from jbpnn.sklearn import BPNNClassifier

        est = BPNNClassifier(hidden_layer_sizes=(64,), random_state=0)
    cuts = np.cumsum([0, *STREAM])
    times, compiles = [], []
    with blas_threads(which):
        for a, b in zip(cuts[:-1], cuts[1:]):
            counter.start()
            est.partial_fit(X[a:b], y[a:b], classes=np.arange(10))
            got = counter.stop()
            times.append(got["first"])
            compiles.append(got["compiles"])
    return {"times": times, "compiles": compiles}


# ---------------------------------------------------------------- the tables
def run_worker(args: list[str], env: dict | None = None) -> dict:
    full = dict(os.environ, **(env or {}))
    full.setdefault("JBPNN_NO_CACHE", "1")
    if full["JBPNN_NO_CACHE"] == "":
        del full["JBPNN_NO_CACHE"]
    proc = subprocess.run(
        [sys.executable, str(HERE), "--worker", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_rows(results: list[dict]) -> dict:
    floats = [k for k, v in results[0].items() if isinstance(v, float)]
    ints = ("compiles", "hlo", "fusions")
    return {k: statistics.median(r[k] for r in results) for k in floats} | {
        k: results[0][k] for k in ints
    }


def first_call_table(epochs: int, repeats: int, contenders: list[str], warm: bool = True) -> None:
    print(
        f"1. first call in a fresh process: digits {'-'.join(map(str, SIZES))}, softmax/CE, "
        f"momentum, batch {BATCH}, {epochs} epochs (median of {repeats} processes)"
    )
    print(
        f"   {'':26s} {'first s':>8s} {'cpu s':>7s} {'compiles':>8s} {'trace s':>8s} "
        f"{'lower s':>8s} {'compile s':>9s} {'HLO':>5s} {'fusions':>7s}"
    )
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        plan = [(c, c, {}) for c in contenders]
        if warm:
            cache = {"JBPNN_NO_CACHE": "", "JBPNN_CACHE_DIR": folder}
            plan.append(("jbpnn, cache warm", "jbpnn", cache))
        if warm:
            run_worker(["jbpnn", str(epochs)], plan[-1][2])  # fills the cache
        # the processes of every row interleaved, round by round: the machine's load moves
        # between rows run one after the other
        runs: dict[str, list[dict]] = {label: [] for label, _, _ in plan}
        for _ in range(repeats):
            for label, name, env in plan:
                runs[label].append(run_worker([name, str(epochs)], env))
        for label, _, _ in plan:
            got = runs[label]
            if "skipped" in got[0]:
                print(f"   {label:26s} skipped: {got[0]['skipped']}")
                continue
            rows[label] = r = median_rows(got)
            print(
                f"   {label:26s} {r['first']:8.2f} {r['cpu']:7.2f} {r['compiles']:8d} "
                f"{r['trace']:8.3f} {r['lower']:8.3f} {r['compile']:9.3f} {r['hlo']:5d} "
                f"{r['fusions']:7d}"
            )
    if "jbpnn" in rows and "equinox" in rows:
        j, e = rows["jbpnn"], rows["equinox"]
        print(
            f"   jbpnn / equinox: first call {j['first'] / e['first']:.2f}x, compile "
            f"{j['compile'] / e['compile']:.2f}x, cpu {j['cpu'] / e['cpu']:.2f}x"
        )


def features_table() -> None:
    print(
        "\n2. the training program per feature (jax.stages, one process; compile cpu s is "
        "the process's CPU time)"
    )
    print(
        f"   {'':32s} {'trace s':>8s} {'lower s':>8s} {'compile s':>9s} {'cpu s':>6s} "
        f"{'HLO':>5s} {'fusions':>7s}"
    )
    for name, r in run_worker(["features"]).items():
        print(
            f"   {name:32s} {r['trace']:8.3f} {r['lower']:8.3f} {r['compile']:9.3f} "
            f"{r['compile_cpu']:6.2f} {r['hlo']:5d} {r['fusions']:7d}"
        )


ROUNDS = 3  # tables 3 and 4: processes per row, interleaved round by round


def estimators_table() -> None:
    print(
        "\n3. first fit of a process on digits (default settings, 200 epochs; median of "
        f"{ROUNDS} processes a row, interleaved)"
    )
    labels = {
        "BPNNClassifier, cache off": "bpnn",
        "BPNNClassifier, cache cold": "bpnn",
        "BPNNClassifier, cache warm": "bpnn",
        "MLPClassifier": "mlp",
        "MLPClassifier, 1 BLAS thread": "mlp1",
    }
    runs: dict[str, list[dict]] = {label: [] for label in labels}
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as folder:  # an empty folder each round
            cache = {"JBPNN_NO_CACHE": "", "JBPNN_CACHE_DIR": folder}
            for label, which in labels.items():
                env = cache if "cache cold" in label or "cache warm" in label else None
                runs[label].append(run_worker(["fit", which], env))
    if "skipped" in runs["MLPClassifier"][0]:
        print(f"   skipped: {runs['MLPClassifier'][0]['skipped']}")
        return
    med = {label: statistics.median(r["first"] for r in got) for label, got in runs.items()}
    mlp = min(med["MLPClassifier"], med["MLPClassifier, 1 BLAS thread"])
    for label, got in runs.items():
        r = got[0]
        print(
            f"   {label:28s} {med[label]:6.2f} s  ({med[label] / mlp:4.1f}x MLPClassifier)  "
            f"compiles {r['compiles']:2d} ({r['hits']} from the cache)  "
            f"accuracy {r['accuracy']:.3f}"
        )
    print(
        "   x MLPClassifier: against the faster of its default-threads and 1-thread medians; "
        "compiles and accuracy from the first round"
    )


def stream_table(contenders: list[str]) -> None:
    print(
        f"\n4. partial_fit stream, chunks {', '.join(map(str, STREAM))} (cache off; median of "
        f"{ROUNDS} processes a row, interleaved)"
    )
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for _ in range(ROUNDS):
        for name in contenders:
            r = run_worker(["stream", name])
            if "skipped" in r:
                print(f"   skipped: {r['skipped']}")
                return
            runs[name].append(r)
    names = {"bpnn": "BPNNClassifier", "mlp": "MLPClassifier", "mlp1": "MLPClassifier, 1 thr"}
    rest = {}
    for name, got in runs.items():
        first = statistics.median(r["times"][0] for r in got)
        rest[name] = statistics.median(sum(r["times"][1:]) for r in got)
        print(
            f"   {names[name]:20s} first chunk {first:6.3f} s, the other 9 "
            f"{rest[name]:6.3f} s; compilations per chunk {got[0]['compiles']}"
        )
    if {"bpnn", "mlp", "mlp1"} <= set(rest):
        theirs = min(rest["mlp"], rest["mlp1"])
        print(
            f"   after the first chunk: BPNNClassifier {rest['bpnn'] / theirs:.1f}x "
            "MLPClassifier's time (the faster of default and 1 BLAS thread)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="jbpnn only, one process a row")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind in ("jbpnn", "equinox"):
            got = (worker_jbpnn if kind == "jbpnn" else worker_equinox)(int(rest[0]))
        elif kind == "features":
            got = worker_features()
        elif kind == "fit":
            got = worker_fit(rest[0])
        else:
            got = worker_stream(rest[0])
        print(json.dumps(got))
        return
    if args.quick:
        first_call_table(epochs=3, repeats=1, contenders=["jbpnn"], warm=False)
        return
    # 9: the compile times of single fresh processes spread by about 10% on a 2-core CPU
    first_call_table(epochs=20, repeats=9, contenders=["jbpnn", "equinox"])
    features_table()
    estimators_table()
    stream_table(["bpnn", "mlp", "mlp1"])


if __name__ == "__main__":
    main()
