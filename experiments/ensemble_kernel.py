"""Is a hand-fused ensemble kernel worth keeping next to ``vmap`` of the core?

``jbpnn.train_many`` is ``jax.vmap`` of the one epoch step: N networks that share
their mini-batches run the core's hand-derived ``loss_and_gradient_kernel`` with a
leading network axis, and XLA turns each layer into batched products. The project
keeps a second, fused kernel only if it is at least 1.3x faster than that at the
same settings. This script measures two candidates written in the params' own
``(n_in, n_out)`` layout (the only layout the project allows), each computing the
same update as the core (softmax + cross-entropy output, sigmoid hidden units,
classical momentum):

- ``ensemble (N, n_in, n_out)``: the stacked params as ``train_many`` holds them,
  one ``einsum`` per formula of the article with a network index;
- ``ensemble (n_in, N, n_out)``: the network axis in the middle, so the first
  layer's forward product and weight gradient are ONE matrix product each with no
  transpose (``X @ W_all``, ``X^T @ Err_all``).

It checks that both give the core's params (float32 rounding), then times 100
updates of 64 digits-sized networks (64-64-10, batch 32) in one compiled
``lax.scan``, interleaving the contenders, and prints medians and ratios against
the core. About 30 s on a 2-core CPU. Writes nothing.

Usage: ``python experiments/ensemble_kernel.py [--networks 64] [--repeats 15]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from jbpnn.cli.options import positive_int  # noqa: E402  (the command line's type)
from jbpnn.many import InitSpec, init_many  # noqa: E402
from jbpnn.network import loss_and_gradient_kernel  # noqa: E402
from jbpnn.optimizers import apply_updates, momentum  # noqa: E402

LR, M = 0.1, 0.9


def core_step(X, Y, s, kind):
    """One momentum update of every network: ``vmap`` of the core kernel and optimizer."""

    def one(p, st):
        _, g = loss_and_gradient_kernel(p, X, Y, s)
        u, st = kind.update(g, st, p)
        return apply_updates(p, u), st

    return jax.vmap(one)


def ensemble_step(X, Y, s, spec: str):
    """The same update, fused by hand: ``spec`` is "nij" (N, n_in, n_out) or "inj"."""
    sn = s / jnp.sum(s)
    w = "nij" if spec == "nij" else "inj"
    w2 = "njk" if spec == "nij" else "jnk"

    def step(w1, b1, w2_, b2, traces):
        h = jax.nn.sigmoid(jnp.einsum(f"bi,{w}->bnj", X, w1) + b1[None])  # O_j = f(net_j)
        o = jax.nn.softmax(jnp.einsum(f"bnj,{w2}->bnk", h, w2_) + b2[None], axis=-1)
        d = Y[:, None, :] - o  # Err_k = T_k - O_k (cross-entropy with softmax)
        e = h * (1 - h) * jnp.einsum(f"bnk,{w2}->bnj", d, w2_)  # Err_j = O(1-O) sum_k Err_k w_jk
        se, sd = sn[:, None, None] * e, sn[:, None, None] * d
        grads = (
            -jnp.einsum(f"bi,bnj->{w}", X, se),  # dE/dw_ij = -O_i Err_j
            -se.sum(0),
            -jnp.einsum(f"bnj,bnk->{w2}", h, sd),
            -sd.sum(0),
        )
        traces = tuple(M * v - LR * g for v, g in zip(traces, grads))  # v = m v - lr g
        return (w1 + traces[0], b1 + traces[1], w2_ + traces[2], b2 + traces[3], traces)

    return step


def scan100(step):
    return jax.jit(lambda *c: lax.scan(lambda c, _: (step(*c), None), c, None, length=100)[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", type=positive_int, default=64)
    ap.add_argument("--repeats", type=positive_int, default=15)
    args = ap.parse_args(argv)
    n = args.networks
    spec = InitSpec((64, 64, 10), "sigmoid", "cross_entropy", "glorot")
    P = init_many(spec, np.arange(n))
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.uniform(0, 1, (32, 64)), jnp.float32)
    Y = jax.nn.one_hot(np.arange(32) % 10, 10)
    s = jnp.ones(32, jnp.float32)
    opt = momentum(LR, M)
    S = jax.vmap(opt.init)(P)
    core = scan100(core_step(X, Y, s, opt.kind))
    (w1, b1), (w2, b2) = P.layers
    zeros = (jnp.zeros_like(w1), jnp.zeros_like(b1), jnp.zeros_like(w2), jnp.zeros_like(b2))
    mid = lambda a: jnp.swapaxes(a, 0, 1)  # noqa: E731
    contenders = {
        "ensemble (N, n_in, n_out)": (
            scan100(ensemble_step(X, Y, s, "nij")),
            (w1, b1, w2, b2, zeros),
            lambda out: out[0],
        ),
        "ensemble (n_in, N, n_out)": (
            scan100(ensemble_step(X, Y, s, "inj")),
            (mid(w1), b1, mid(w2), b2, (mid(zeros[0]), zeros[1], mid(zeros[2]), zeros[3])),
            lambda out: mid(out[0]),
        ),
    }
    reference = core(P, S)[0].layers[0].w
    for name, (fn, args_, first_w) in contenders.items():
        diff = float(jnp.max(jnp.abs(first_w(fn(*args_)) - reference)))
        print(f"{name}: max |w1 - core's w1| after 100 updates = {diff:.2e}")
        if diff > 1e-4:
            raise SystemExit(f"{name} does not compute the core's update")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    times = {"vmap of the core": [], **{k: [] for k in contenders}}
    for _ in range(args.repeats):  # interleaved, so load changes hit every contender alike
        t = time.perf_counter()
        jax.block_until_ready(core(P, S))
        times["vmap of the core"].append(time.perf_counter() - t)
        for name, (fn, args_, _) in contenders.items():
            t = time.perf_counter()
            jax.block_until_ready(fn(*args_))
            times[name].append(time.perf_counter() - t)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    base = statistics.median(times["vmap of the core"])
    print(f"{n} networks 64-64-10, batch 32, momentum; 100 updates; medians of {args.repeats}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:28s} {med * 10:.3f} ms per update   speed vs the core {base / med:.2f}x")
    best = max(base / statistics.median(ts) for k, ts in times.items() if k in contenders)
    verdict = "keep a fused kernel" if best >= 1.3 else "no fused kernel earns its place"
    print(f"best candidate {best:.2f}x (the bar is 1.30x): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
