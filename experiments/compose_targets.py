"""Issue "Compose with JAX": the speed of jax.grad through apply, and of data-parallel train.

Two measurements, each a ratio against a reference in the same run:

1. ``jax.grad`` of a loss of ``jbpnn.apply(params, X)`` (the hand-derived backward,
   a ``jax.custom_vjp``) against ``jax.grad`` of the same loss of the plain forward
   (``jax.vmap(jbpnn.forward)``, autodiff), as one jitted SGD step repeated in a
   ``lax.scan``: on the digits (64-64-10, batch 32) and the wide task
   (1024-2048-2048-10, batch 512). Target: within 1.1x.
2. Data-parallel ``train(..., devices=k)`` on the wide task (8192 x 1024 inputs,
   batch 512, sigmoid units, mse, momentum) in fresh processes with
   ``XLA_FLAGS=--xla_force_host_platform_device_count=k`` for k = 1, 2, 8:
   samples per second of the epochs after the first (compilation excluded).
   Target: 2 devices (one per core) at least 1.6x one device.

About 3-4 minutes on a 2-core CPU (``--quick``: smaller wide task, about 1 minute).
Prints a table; writes nothing. Medians of ``--repeats`` timings; prints the load
average before and after (these machines are shared: compare ratios of one run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _args import at_least  # noqa: E402  (this folder: the script's own)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def grad_ratio(sizes, batch, steps, repeats, seed=0):
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jbpnn

    params = jbpnn.init_params(seed, sizes, "sigmoid", "mse", "glorot")
    rng = np.random.default_rng(seed)
    X = jnp.asarray(rng.uniform(0, 1, (batch, sizes[0])), jnp.float32)
    T = jnp.asarray(rng.uniform(0, 1, (batch, sizes[-1])), jnp.float32)
    plain = jax.vmap(jbpnn.forward, in_axes=(None, 0))

    def loss_apply(p):
        return 0.5 * jnp.mean(jnp.sum((jbpnn.apply(p, X, check_finite=False) - T) ** 2, 1))

    def loss_plain(p):
        return 0.5 * jnp.mean(jnp.sum((plain(p, X)[0] - T) ** 2, 1))

    def run(loss):
        def body(p, _):
            g = jax.grad(loss)(p)
            return jax.tree.map(lambda a, b: a - 0.01 * b, p, g), None

        return jax.jit(lambda p: jax.lax.scan(body, p, None, length=steps)[0])

    fa, fp = run(loss_apply), run(loss_plain)
    out_a, out_p = jax.block_until_ready(fa(params)), jax.block_until_ready(fp(params))
    diff = max(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(out_a), jax.tree.leaves(out_p))
    )
    ta, tp = [], []
    for _ in range(repeats):  # interleaved
        t = time.perf_counter()
        jax.block_until_ready(fa(params))
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        jax.block_until_ready(fp(params))
        tp.append(time.perf_counter() - t)
    return statistics.median(ta) / steps, statistics.median(tp) / steps, diff


def dp_worker(n_rows, epochs):
    import jax
    import numpy as np

    import jbpnn

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (n_rows, 1024)).astype(np.float32)
    Y = rng.uniform(0, 1, (n_rows, 10)).astype(np.float32)
    params = jbpnn.init_params(0, (1024, 2048, 2048, 10), "sigmoid", "mse", "glorot")
    kw = dict(optimizer=jbpnn.momentum(0.01, 0.9), batch_size=512, devices=len(jax.devices()))
    first = jbpnn.train(params, X, Y, epochs=1, **kw)  # compiles
    times = []
    state = first
    for _ in range(epochs):
        t = time.perf_counter()
        state = jbpnn.train(state, X, Y, epochs=1, batch_size=512, devices=len(jax.devices()))
        jax.block_until_ready(state.params)
        times.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "devices": len(jax.devices()),
                "epoch_s": statistics.median(times),
                "times": times,
                "loss": float(state.history["loss"][-1]),
            }
        )
    )


def dp_run(k, n_rows, epochs):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={k}")
    cmd = [sys.executable, __file__, "--worker", str(n_rows), str(epochs)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"{k} devices failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=at_least(1), default=7)
    ap.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        dp_worker(*args.worker)
        return 0
    start = time.perf_counter()
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    rows = []
    wide = (1024, 2048, 2048, 10)
    for name, sizes, batch, steps in (
        ("digits 64-64-10, batch 32", (64, 64, 10), 32, 200),
        ("wide 1024-2048-2048-10, batch 512", wide, 512, 3 if args.quick else 10),
    ):
        a, p, diff = grad_ratio(sizes, batch, steps, 3 if args.quick else args.repeats)
        rows.append(
            (
                f"jax.grad step, {name}",
                f"{a * 1e3:.3f} ms (apply)",
                f"{p * 1e3:.3f} ms (plain)",
                a / p,
                "<= 1.1",
                a / p <= 1.1,
            )
        )
        print(f"  {name}: params after the steps differ by {diff:.1e}")
    n_rows, epochs = (2048, 2) if args.quick else (8192, 3)
    dp = {k: dp_run(k, n_rows, epochs) for k in (1, 2, 8)}
    one = dp[1]["epoch_s"]
    for k in (1, 2, 8):
        r = dp[k]
        ratio = one / r["epoch_s"]
        rows.append(
            (
                f"train, wide task, {k} device(s)",
                f"{n_rows / r['epoch_s']:,.0f} samples/s",
                f"{n_rows / one:,.0f} (1 device)",
                ratio,
                ">= 1.6" if k == 2 else "(info)",
                ratio >= 1.6 if k == 2 else None,
            )
        )
    losses = {k: dp[k]["loss"] for k in dp}
    print(f"  data parallel: last epoch loss per device count {losses}")
    print()
    print(f"{'figure':48s} {'value':>22s} {'reference':>22s} {'ratio':>7s} {'target':>8s}")
    for fig, val, ref, ratio, target, ok in rows:
        verdict = "" if ok is None else ("MET" if ok else "MISSED")
        if args.quick and ok is not None:  # fewer steps and rows: no verdict on the targets
            verdict = "quick run: no verdict"
        print(f"{fig:48s} {val:>22s} {ref:>22s} {ratio:7.2f} {target:>8s} {verdict}")
    if args.quick:
        print("quick run: fewer steps and rows, the figures are a smoke test, not the targets")
    print(f"load average after: {os.getloadavg()[0]:.2f}; {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
