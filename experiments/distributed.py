"""Data-parallel training of ONE network over several processes, checked against one process.

``jbpnn.train(..., mesh=...)`` splits every mini-batch across the devices of a
``jax.sharding.Mesh``; after ``jax.distributed.initialize`` that mesh can span
several processes (several GPU hosts, or here local CPU processes talking over
gloo on 127.0.0.1). This script launches ``--processes`` local worker processes
with ``--local-devices`` CPU devices each; every worker trains the same 64-32-10
digits network on a global mesh of all their devices, in two calls as a user resumes
(2 epochs, then ``train(result, ...)`` for 3 more, a progress callback in process 0
only), and writes its result;
the launcher trains the same network in one process on one device and prints
the largest difference of params and epoch losses (float32: within 1e-5).

``--local-data``: each process feeds only its own rows of the data and of the sample
weights (``jax.make_array_from_process_local_data``) instead of the whole arrays.

Takes about 20-40 s on a 2-core CPU (most of it JAX start-up and compilation in
every process). Writes only temporary files. Every child is killed after
``--timeout`` seconds, so nothing is left running.

On several GPU hosts the worker part is all you need: on each host run
``jax.distributed.initialize(coordinator_address="HOST0:PORT", num_processes=N,
process_id=i)`` (on SLURM, ``jax.distributed.initialize()`` with no arguments
reads them from the environment), build ``Mesh(np.array(jax.devices()), ("data",))``
and call ``train(..., mesh=mesh)`` with the same arguments in every process.

``--many``: instead, ``train_many`` of four networks and a ``SweepSearchCV`` of 8 networks
(4 candidates x 2 folds) with the networks split over a mesh of every process's devices
(``mesh=``), each network checked against the same calls in one process.

Usage: ``python experiments/distributed.py [--processes 2] [--local-devices 2] [--local-data]
[--many]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _args import at_least, positive_number  # noqa: E402  (this folder: the script's own)

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = dict(epochs=5, batch_size=50)
SIZES = (64, 32, 10)


def _data():
    import numpy as np

    import jbpnn

    d = jbpnn.load_digits()
    X = np.asarray(d.X[:1200], np.float32)
    Y = jbpnn.one_hot(d.y[:1200], 10).astype(np.float32)
    X_val = np.asarray(d.X[1200:1400], np.float32)
    Y_val = jbpnn.one_hot(d.y[1200:1400], 10).astype(np.float32)
    return X, Y, X_val, Y_val


def _train(mesh=None, local_data=False):
    import jax
    import numpy as np

    import jbpnn

    X, Y, X_val, Y_val = _data()
    if local_data:  # this process's rows only, as a global array sharded over the processes
        from jax.sharding import NamedSharding, PartitionSpec

        rows = np.array_split(np.arange(len(X)), jax.process_count())[jax.process_index()]
        sharding = NamedSharding(mesh, PartitionSpec("data"))
        X = jax.make_array_from_process_local_data(sharding, X[rows], (len(X),) + X.shape[1:])
        Y = jax.make_array_from_process_local_data(sharding, Y[rows], (len(Y),) + Y.shape[1:])
        # and the sample weights the same way (all 1: the one-process run's plain mean)
        weights = jax.make_array_from_process_local_data(
            sharding, np.ones(len(rows), np.float32), (len(X),)
        )
    else:
        weights = None
    params = jbpnn.init_params(0, SIZES, "sigmoid", "cross_entropy", "glorot")
    # Two calls, as a user resumes: train(result, ...) goes on (one run's figures exactly),
    # with a progress callback in process 0 only, the usual way to log from many hosts.
    first = SETTINGS["epochs"] // 2
    progress = (lambda info: None) if jax.process_index() == 0 else None
    result = jbpnn.train(
        params,
        X,
        Y,
        optimizer=jbpnn.momentum(0.1, 0.9),
        X_val=X_val,
        Y_val=Y_val,
        mesh=mesh,
        progress=progress,
        sample_weight=weights,
        **{**SETTINGS, "epochs": first},
    )
    return jbpnn.train(
        result,
        X,
        Y,
        X_val=X_val,
        Y_val=Y_val,
        mesh=mesh,
        progress=progress,
        sample_weight=weights,
        **{**SETTINGS, "epochs": SETTINGS["epochs"] - first},
    )


MANY = dict(epochs=3, batch_size=50)
LRS = (0.05, 0.1, 0.2, 0.4)  # one network per rate, seeds 0..3


def _train_many(mesh=None):
    """Four digits networks (their own lr and init seed) in ONE train_many call; with
    ``mesh``, split over its devices (and processes)."""
    import numpy as np

    import jbpnn

    X, Y, X_val, Y_val = _data()
    spec = jbpnn.InitSpec(SIZES, "sigmoid", "cross_entropy", "glorot")
    return jbpnn.train_many(
        spec,
        X,
        Y,
        seeds=np.arange(len(LRS)),
        optimizer="momentum",
        hparams={"lr": np.array(LRS), "m": 0.9},
        X_val=X_val,
        Y_val=Y_val,
        mesh=mesh,
        **MANY,
    )


def _sweep(mesh=None):
    """SweepSearchCV of 2 learning rates x 2 alphas x 2 folds on 600 digits rows."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from jbpnn.sklearn import BPNNClassifier, SweepSearchCV

    X, _, _, _ = _data()
    y = __import__("jbpnn").load_digits().y[:1200]
    grid = {"learning_rate_init": [0.003, 0.01], "alpha": [1e-4, 1e-2]}
    est = BPNNClassifier(hidden_layer_sizes=(16,), max_iter=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SweepSearchCV(est, grid, cv=2, mesh=mesh).fit(X[:600], y[:600])


def _many_summary(result, sweep) -> dict:
    import jax
    import numpy as np

    return {
        "params": [np.asarray(a).tolist() for a in jax.tree.leaves(result.params)],
        "loss": np.asarray(result.history["loss"]).tolist(),
        "scores": np.asarray(sweep.cv_results_["mean_test_score"]).tolist(),
        "best": sweep.best_params_,
    }


def worker(args) -> int:
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{args.port}",
        num_processes=args.processes,
        process_id=args.worker,
        initialization_timeout=max(1, math.ceil(args.timeout)),
    )
    import numpy as np
    from jax.sharding import Mesh

    devices = {"global_devices": len(jax.devices()), "local_devices": len(jax.local_devices())}
    if args.many:  # the networks split over the processes' devices
        import jbpnn.many

        mesh = Mesh(np.array(jax.devices()), ("net",))
        placed, place = [], jbpnn.many.place  # record where train_many puts its arrays

        def recorded(tree, where, axis):
            placed.append(where.is_multi_process)
            return place(tree, where, axis)

        jbpnn.many.place = recorded
        out = {**devices, **_many_summary(_train_many(mesh), _sweep(mesh))}
        out["split"] = bool(placed) and all(placed)
        Path(args.out).write_text(json.dumps(out))
        jax.distributed.shutdown()
        return 0
    mesh = Mesh(np.array(jax.devices()), ("data",))
    result = _train(mesh, args.local_data)
    out = {
        "process": jax.process_index(),
        **devices,
        "params": [np.asarray(a).tolist() for a in jax.tree.leaves(result.params)],
        "loss": result.history["loss"].tolist(),
        "epochs_run": result.epochs_run,
    }
    Path(args.out).write_text(json.dumps(out))
    jax.distributed.shutdown()
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args) -> int:
    """The processes' run and the comparison, in a temporary folder removed at the end
    (every run left one behind, tests included)."""
    with tempfile.TemporaryDirectory(prefix="jbpnn-distributed-") as folder:
        return _launch(args, Path(folder))


def _launch(args, tmp: Path) -> int:
    import numpy as np

    start = time.perf_counter()
    port = _free_port()
    devices = f"--xla_force_host_platform_device_count={args.local_devices}"
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {devices}".strip())
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    procs = []
    for i in range(args.processes):
        cmd = [sys.executable, __file__, "--worker", str(i), "--port", str(port)]
        cmd += ["--processes", str(args.processes), "--out", str(tmp / f"{i}.json")]
        cmd += ["--timeout", str(args.timeout)] + (["--local-data"] if args.local_data else [])
        cmd += ["--many"] if args.many else []
        procs.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    failed = []
    try:
        for i, p in enumerate(procs):
            out, _ = p.communicate(timeout=max(1.0, args.timeout - (time.perf_counter() - start)))
            if p.returncode != 0:
                failed.append(f"process {i} exited {p.returncode}:\n{out.decode()[-3000:]}")
    except subprocess.TimeoutExpired:
        failed.append(f"timed out after {args.timeout} s")
    finally:
        for p in procs:  # nothing is left running, whatever happened
            if p.poll() is None:
                p.kill()
                p.wait()
    if failed:
        print("\n".join(failed), file=sys.stderr)
        return 1
    results = [json.loads((tmp / f"{i}.json").read_text()) for i in range(args.processes)]
    if args.many:
        return _compare_many(args, results, start)
    alone = _train()
    ref = [np.asarray(a) for a in __import__("jax").tree.leaves(alone.params)]
    worst_p = max(
        float(np.max(np.abs(np.asarray(a) - b))) for r in results for a, b in zip(r["params"], ref)
    )
    worst_l = max(
        float(np.max(np.abs(np.asarray(r["loss"]) - alone.history["loss"]))) for r in results
    )
    n = results[0]["global_devices"]
    print(
        f"{args.processes} processes x {results[0]['local_devices']} CPU devices = {n} global "
        f"devices (gloo, 127.0.0.1), {'process-local' if args.local_data else 'whole'} data; "
        f"64-32-10 digits, batch {SETTINGS['batch_size']}, {SETTINGS['epochs']} epochs"
    )
    print(
        f"max |params - one process|: {worst_p:.2e}; max |epoch loss - one process|: {worst_l:.2e}"
    )
    ok = worst_p <= 1e-5 and worst_l <= 1e-5
    print(f"{'EQUAL' if ok else 'DIFFERENT'} within 1e-5; {time.perf_counter() - start:.1f} s")
    return 0 if ok else 1


def _compare_many(args, results: list[dict], start: float) -> int:
    """Every process's networks and sweep against the same calls in this one process."""
    import numpy as np

    alone = _many_summary(_train_many(), _sweep())
    worst_p = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for r in results
        for a, b in zip(r["params"], alone["params"])
    )

    def loss_gap(a, b) -> float:
        """Largest |a - b|; a NaN on one side only is a difference (inf), on both none."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        gap = np.abs(a - b)
        gap[np.isnan(a) != np.isnan(b)] = np.inf
        gap[np.isnan(a) & np.isnan(b)] = 0.0
        return float(np.max(gap))

    worst_l = max(loss_gap(r["loss"], alone["loss"]) for r in results)
    worst_s = max(
        float(np.max(np.abs(np.asarray(r["scores"]) - np.asarray(alone["scores"]))))
        for r in results
    )
    same_best = all(r["best"] == alone["best"] for r in results)
    split = all(r["split"] for r in results)
    n = results[0]["global_devices"]
    print(
        f"{args.processes} processes x {results[0]['local_devices']} CPU devices = {n} global "
        f"devices (gloo, 127.0.0.1), the networks split over them: train_many of "
        f"{len(LRS)} 64-32-10 digits networks ({MANY['epochs']} epochs), and SweepSearchCV "
        "of 4 candidates x 2 folds"
    )
    print(
        f"max |params - one process|: {worst_p:.2e}; max |epoch loss - one process|: "
        f"{worst_l:.2e}; max |mean test score - one process|: {worst_s:.2e}; "
        f"best_params_ {'the same' if same_best else 'DIFFERENT'}; every call's state on a "
        f"mesh spanning the processes: {'yes' if split else 'NO'}"
    )
    ok = worst_p <= 1e-5 and worst_l <= 1e-5 and worst_s <= 1e-6 and same_best and split
    print(f"{'EQUAL' if ok else 'DIFFERENT'} within 1e-5; {time.perf_counter() - start:.1f} s")
    return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=at_least(1), default=2)
    ap.add_argument("--local-devices", type=at_least(1), default=2)
    ap.add_argument("--local-data", action="store_true", help="each process feeds its own rows")
    ap.add_argument(
        "--many",
        action="store_true",
        help="train_many and SweepSearchCV with the networks split over the processes",
    )
    ap.add_argument(
        "--timeout",
        type=positive_number,
        default=240.0,
        help="seconds before every child is killed",
    )
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    return worker(args) if args.worker is not None else launch(args)


if __name__ == "__main__":
    raise SystemExit(main())
