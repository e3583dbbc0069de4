"""Accelerator check: the digits and wide benchmark tasks, and train-many, on JAX's device.

Runs, on whatever device ``jax.devices()[0]`` is (GPU, TPU, or the CPU):

- ``digits``: 64-64-10 sigmoid, MSE, batch 32, 50 epochs (as ``bench.py``), jbpnn's
  ``train`` and the same loop with ``jax.grad``;
- ``wide``: 8192 x 1024, 1024-2048-2048-10, batch 512, 3 epochs, GFLOP/s next to the
  device's own float32 matrix-product GFLOP/s;
- ``train_many``: 64 digits networks (8 learning rates x 8 seeds) in one call of
  ``jbpnn.many.train_many`` (a failure fails the script);
- ``lm x N``: Levenberg-Marquardt (the hand-derived ``J^T J``) on many 1-10-1
  networks at once (256, ``--quick`` 16), 50 epochs each, one ``train_many`` call, against
  the same networks one ``train`` call at a time (a failure fails the script);
- ``apply``: one jitted SGD step of ``jax.grad`` through ``jbpnn.apply`` (the
  hand-derived backward as a ``custom_vjp``) against ``jax.grad`` of the plain
  forward, on the wide network;
- ``data parallel``: ``train(..., devices=all local devices)`` on the wide task,
  against one device (equal losses required; with one device it still runs the
  mesh path).

Prints one table, with the device it ran on, and checks that jbpnn and the
``jax.grad`` loop report the same epoch losses (exit status 1 if not). Finishes
in well under 5 minutes on a GPU (mostly compiling); on a 2-core CPU the full
run takes about 30 s, and ``--quick`` (the benchmark's tiny sizes) about 8 s.
Writes nothing unless ``--out`` is given (JSON).

    python experiments/gpu_check.py [--quick] [--out results/gpu_check.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (also puts the repository root on sys.path)
import numpy as np  # noqa: E402
from _args import output_file, write_json  # noqa: E402  (this folder: the script's own)

JAX_ONLY = ("jbpnn", "jax.grad")


def train_many_row(settings: bench.Settings) -> dict[str, Any]:
    """64 digits networks (8 learning rates x 8 seeds) in one ``train_many`` call.

    Any failure propagates: a broken ``train_many`` fails the script, never a skipped row.
    """
    import jax

    from jbpnn.many import InitSpec, train_many

    X, Y = bench._digits(settings.digits_n)
    n_nets, epochs = 64, settings.digits_epochs
    lrs = np.repeat(np.geomspace(0.01, 1.0, 8), 8).astype(np.float32)
    seeds = np.tile(np.arange(8), 8)
    spec = InitSpec(tuple(settings.digits_sizes), "sigmoid", "mse", "glorot")
    times = []
    for _ in range(2):  # the first call compiles
        start = time.perf_counter()
        result = train_many(
            spec,
            X,
            Y,
            seeds=seeds,
            optimizer="momentum",
            hparams={"lr": lrs, "m": bench.MOMENTUM},
            key=0,
            epochs=epochs,
            batch_size=bench.BATCH,
        )
        jax.block_until_ready(jax.tree.leaves(result.params))
        times.append(time.perf_counter() - start)
    final = result.history["loss"][:, -1]
    return {
        "networks": n_nets,
        "epochs": epochs,
        "method": getattr(result, "method", "?"),
        "first_call_s": times[0],
        "steady_s": times[1],
        "epoch_ms": 1e3 * times[1] / epochs,
        "samples_per_s": n_nets * len(X) * epochs / times[1],
        "best_final_loss": float(np.nanmin(final)),
    }


def lm_many_row(n_nets: int) -> dict[str, Any]:
    """``n_nets`` 1-10-1 networks trained by LM in one ``train_many`` call vs one by one."""
    import jax

    import jbpnn
    from jbpnn.many import InitSpec, init_many, train_many

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (200, 1)).astype(np.float32)
    Y = (np.sin(3 * X) + 0.1 * rng.normal(size=X.shape)).astype(np.float32)
    spec = InitSpec((1, 10, 1), ("tanh", "identity"), "mse", "glorot")
    epochs, seeds = 50, np.arange(n_nets)
    times = []
    for _ in range(2):  # the first call compiles
        start = time.perf_counter()
        result = train_many(spec, X, Y, seeds=seeds, optimizer="lm", hparams={}, epochs=epochs)
        jax.block_until_ready(jax.tree.leaves(result.params))
        times.append(time.perf_counter() - start)
    nets = init_many(spec, seeds)
    opt = jbpnn.levenberg_marquardt()
    first = jax.tree.map(lambda a: a[0], nets)
    jbpnn.train(first, X, Y, optimizer=opt, epochs=epochs)  # compiles
    k = min(n_nets, 32)  # time a sample of the one-by-one calls
    start = time.perf_counter()
    for i in range(k):
        r = jbpnn.train(jax.tree.map(lambda a, i=i: a[i], nets), X, Y, optimizer=opt, epochs=epochs)
        jax.block_until_ready(r.params)
    one_by_one = (time.perf_counter() - start) / k * n_nets
    return {
        "networks": n_nets,
        "epochs": epochs,
        "first_call_s": times[0],
        "steady_s": times[1],
        "one_by_one_s": one_by_one,
        "best_final_loss": float(np.nanmin(result.history["loss"][:, -1])),
    }


def compose_rows(settings: bench.Settings) -> dict[str, Any]:
    """``jax.grad`` through ``apply`` vs the plain forward, and data-parallel ``train``."""
    import jax
    from compose_targets import grad_ratio

    import jbpnn

    sizes = tuple(settings.wide_sizes)
    batch = settings.wide_batch
    hand, plain, diff = grad_ratio(sizes, batch, steps=5, repeats=3)
    rng = np.random.default_rng(0)
    n = settings.wide_n
    X = rng.uniform(0, 1, (n, sizes[0])).astype(np.float32)
    Y = rng.uniform(0, 1, (n, sizes[-1])).astype(np.float32)
    X, Y = jax.device_put(X), jax.device_put(Y)  # on the device once: no copy per call
    params = jbpnn.init_params(0, sizes, "sigmoid", "mse", "glorot")
    k = len(jax.devices())
    kw = dict(optimizer=jbpnn.momentum(0.01, 0.9), batch_size=batch)
    timed_epochs = 5  # one call runs them: the call's fixed cost is spread over them
    times = {}
    results = {}
    for name, devices in (("1 device", None), (f"{k} device(s), data parallel", k)):
        r = jbpnn.train(params, X, Y, epochs=1, devices=devices, **kw)  # compiles
        t = time.perf_counter()
        # resuming a TrainResult, ``epochs`` counts the epochs to run on top of it
        r = jbpnn.train(r, X, Y, epochs=timed_epochs, devices=devices, batch_size=batch)
        assert r.epochs_run == 1 + timed_epochs, r.epochs_run
        jax.block_until_ready(r.params)
        times[name] = (time.perf_counter() - t) / timed_epochs
        results[name] = r
    losses = [r.history["loss"] for r in results.values()]
    worst = float(np.max(np.abs(losses[0] - losses[1])))
    if not worst <= 1e-4 * max(1.0, float(np.max(np.abs(losses[0])))):
        raise SystemExit(f"data-parallel train disagrees with one device: {worst:.2e}")
    return {
        "apply_ms": hand * 1e3,
        "plain_ms": plain * 1e3,
        "apply_diff": diff,
        "epoch_s": times,
        "samples": n,
        "dp_loss_diff": worst,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CPU smoke test)")
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    out = None if args.out is None else output_file(parser, "--out", args.out)

    import jax

    import jbpnn

    jbpnn.disable_compilation_cache()  # "1st epoch s" includes compiling, never a cache load
    started = time.perf_counter()
    device = jax.devices()[0]
    where = f"{device.platform} ({device.device_kind}), {jax.device_count()} device(s)"
    bench.log(f"gpu_check on {where}")
    settings = bench.QUICK if args.quick else bench.FULL
    run = bench.Runner(settings, skip={"torch", "sklearn", "numpy", "python"}, torch_threads=None)
    bench.warm_up()
    digits = bench.task_digits(run, contenders=JAX_ONLY)
    wide = bench.task_wide(run, contenders=JAX_ONLY)
    many = train_many_row(settings)
    lm = lm_many_row(16 if args.quick else 256)
    composed = compose_rows(settings)

    rows = []
    for task, result in (("digits", digits), ("wide", wide)):
        for r in result["rows"]:
            rows.append(
                [
                    task,
                    r["contender"],
                    r["epoch_ms"],
                    r["samples_per_s"],
                    r.get("gflops"),
                    r["first_epoch_s"],
                    f"{r['final_loss']:.6f}",
                ]
            )
    rows.append(
        [
            f"train_many x{many['networks']}",
            f"jbpnn.many.train_many ({many['method']})",
            many["epoch_ms"],
            many["samples_per_s"],
            None,
            many["first_call_s"] - many["steady_s"],
            f"{many['best_final_loss']:.6f} (best)",
        ]
    )
    rows.append(
        [
            f"lm x{lm['networks']} (1-10-1)",
            "train_many, levenberg_marquardt",
            1e3 * lm["steady_s"] / lm["epochs"],
            lm["networks"] * 200 * lm["epochs"] / lm["steady_s"],
            None,
            lm["first_call_s"] - lm["steady_s"],
            f"{lm['best_final_loss']:.6f} (best)",
        ]
    )
    one = digits["rows"][0]["epoch_ms"]  # jbpnn train, one network
    many["vs_sequential_train"] = many["networks"] * one / many["epoch_ms"]
    peak = wide["matmul_peak_gflops"]["jax"]
    print(f"gpu_check ({'quick' if args.quick else 'full'}) on {where}")
    print(
        bench.table(
            ["task", "contender", "epoch ms", "samples/s", "GFLOP/s", "1st epoch s", "final loss"],
            rows,
        )
    )
    print(f"float32 matmul on this device (JAX): {peak:.1f} GFLOP/s")
    print(
        f"train_many: {many['networks']} networks in one call are "
        f"{many['vs_sequential_train']:.1f}x faster than {many['networks']} x the single "
        "train() epoch above (the digits row)"
    )
    print(
        f"lm: {lm['networks']} networks in one train_many call {lm['steady_s']:.2f} s, one "
        f"train call at a time {lm['one_by_one_s']:.2f} s "
        f"({lm['one_by_one_s'] / lm['steady_s']:.1f}x)"
    )
    print(
        f"jax.grad through apply (hand-derived custom_vjp): {composed['apply_ms']:.3f} ms per "
        f"step vs {composed['plain_ms']:.3f} ms for autodiff of the forward "
        f"({composed['apply_ms'] / composed['plain_ms']:.2f}x; params agree to "
        f"{composed['apply_diff']:.1e})"
    )
    base = next(iter(composed["epoch_s"].values()))
    for name, sec in composed["epoch_s"].items():
        print(
            f"train, wide task, {name}: {composed['samples'] / sec:,.0f} samples/s "
            f"({base / sec:.2f}x one device)"
        )
    print(f"data-parallel epoch losses agree with one device to {composed['dp_loss_diff']:.1e}")
    failed = [c for c in run.checks if not c.ok]
    worst = max((c.rel_diff for c in run.checks), default=0.0)
    print(
        f"loss agreement jbpnn vs jax.grad: {'ok' if not failed else 'DISAGREE'} "
        f"(max rel.diff {worst:.1e}); {time.perf_counter() - started:.0f} s in all"
    )
    if out is not None:
        figures = {
            "device": where,
            "digits": digits,
            "wide": wide,
            "train_many": many,
            "lm_many": lm,
            "compose": composed,
            "checks": [c.__dict__ | {"ok": c.ok} for c in run.checks],
            "median_check": statistics.median([c.rel_diff for c in run.checks] or [0.0]),
        }
        write_json(out, figures, default=bench._json_default)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
