"""Hand-derived curvature products against autodiff's Hessian-vector product.

What it shows: the median time of one call (compilation excluded: one warm-up call first)
of four ways to multiply the curvature of the batch loss by a direction ``v``:

- ``hand H v``: :func:`jbpnn.curvature.hvp_kernel` compiled as :func:`jbpnn.hvp` compiles
  it (``jbpnn.curvature.program`` with :func:`jbpnn.devices.compiler_options`'s
  ``program="curvature"`` options: on the CPU, XLA's own loops for the reductions):
  Pearlmutter's R-operator, a forward R-pass and a backward R-pass through the
  activation tables;
- ``autodiff H v``: ``jax.jvp(jax.grad(loss), (params,), (v,))`` of the library's batch
  loss (:func:`jbpnn.network.loss_kernel`), under a plain ``jax.jit``: forward over
  reverse, the usual way;
- ``hand G v``: :func:`jbpnn.curvature.gnvp_kernel`, compiled as :func:`jbpnn.gnvp`
  compiles it: the Gauss-Newton product, the same passes without the second-derivative
  terms;
- ``autodiff G v``: ``jax.vjp`` of the outputs applied to ``H_L (jax.jvp of the outputs)``,
  the usual way to write ``J^T H_L J v`` with autodiff;

and, for the record, the hand H v under a plain ``jax.jit`` (in your own ``jit`` without
the options) and autodiff's H v compiled with jbpnn's options;

on two problems, float32:

- ``digits``: the bundled digits (1797 rows), a 64-64-10 softmax / cross-entropy network;
- ``wide`` (full mode only): random data, 8192 rows x 1024 features, a
  1024-2048-2048-10 tanh network with a softmax / cross-entropy output (``--wide-rows``
  and ``--wide-sizes`` shrink it).

Each hand product is checked against its autodiff twin (largest difference relative to
the largest entry, printed). The table gives each time and its ratio to autodiff's H v
(``> 1x``: faster than autodiff's H v).

Run time: ``--quick`` (digits on 300 rows, 2 repeats; for the tests) a few seconds; the
full run on a 2-core CPU several minutes, dominated by the wide task (about 0.7 TFLOP per
product); on a GPU seconds. Writes nothing: a table on stdout.

    python experiments/curvature.py [--quick] [--repeats 7] [--wide-rows 8192]
        [--wide-sizes 1024,2048,2048,10] [--no-wide]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jbpnn import LOSSES, MLP, init_params, load_digits, one_hot
from jbpnn.cli.options import comma_list, positive_int  # the command line's types
from jbpnn.curvature import gnvp_kernel, hvp_kernel, program
from jbpnn.devices import compiler_options
from jbpnn.network import loss_kernel, predict_kernel


def autodiff_hvp(params, X, Y, v):
    return jax.jvp(jax.grad(lambda p: loss_kernel(p, X, Y)), (params,), (v,))[1]


def autodiff_gnvp(params, X, Y, v):
    """``J^T H_L J v`` with ``J`` the Jacobian of the output layer's net inputs (softmax/CE)."""

    def nets(p):  # the last layer's net inputs
        hidden = MLP(p.layers[:-1], p.activations[:-1], "mse", p.article_mode)  # tanh layers
        O = predict_kernel(hidden, X)
        return O @ p.layers[-1].w + p.layers[-1].b

    def batch_loss(z):
        return jnp.mean(jax.vmap(LOSSES["cross_entropy"].error)(jax.nn.softmax(z), Y))

    z, Jv = jax.jvp(nets, (params,), (v,))
    HJv = jax.jvp(jax.grad(batch_loss), (z,), (Jv,))[1]
    return jax.vjp(nets, params)[1](HJv)[0]


def contenders(sizes):
    """name -> jitted function: jbpnn's products compiled as jbpnn.hvp / jbpnn.gnvp compile
    them, autodiff's under a plain jax.jit, then the two cross-checks."""
    options = compiler_options(tuple(sizes), program="curvature")
    fns = {
        "hand H v (R-operator)": program(hvp_kernel, options),
        "autodiff H v (jvp of grad)": jax.jit(autodiff_hvp),
        "hand G v (Gauss-Newton)": program(gnvp_kernel, options),
        "autodiff G v (jvp, vjp)": jax.jit(autodiff_gnvp),
    }
    if options:  # otherwise these are the rows above
        fns["hand H v, plain jax.jit"] = jax.jit(hvp_kernel)
        fns["autodiff H v, jbpnn's options"] = program(autodiff_hvp, options)
    return fns


TWIN = {
    "hand H v (R-operator)": "autodiff H v (jvp of grad)",
    "hand G v (Gauss-Newton)": "autodiff G v (jvp, vjp)",
    "hand H v, plain jax.jit": "autodiff H v (jvp of grad)",
    "autodiff H v, jbpnn's options": "autodiff H v (jvp of grad)",
}


def median_times(fns, args, repeats):
    """Each function's median time per call, the contenders interleaved round by round
    (so a change of load hits them alike); a round times enough calls in a row to last
    about 50 ms (one call of the wide task, dozens of a digits one)."""
    calls = {}
    for name, fn in fns.items():
        jax.block_until_ready(fn(*args))  # compile, and warm up
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        calls[name] = max(1, int(0.05 / max(time.perf_counter() - t0, 1e-6)))
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(calls[name]):
                out = fn(*args)
            jax.block_until_ready(out)
            times[name].append((time.perf_counter() - t0) / calls[name])
    return {name: float(np.median(t)) for name, t in times.items()}


def relative_difference(a, b):
    top = max(float(jnp.max(jnp.abs(y))) for y in jax.tree.leaves(b))
    return (
        max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
        / top
    )


def run(title, params, X, Y, repeats):
    v = jax.tree.map(lambda a: jax.random.normal(jax.random.key(a.size), a.shape, a.dtype), params)
    fns = contenders(params.sizes)
    options = ", ".join(f"{k}={v}" for k, v in compiler_options(params.sizes, program="curvature"))
    results = {name: fn(params, X, Y, v) for name, fn in fns.items()}
    times = median_times(fns, (params, X, Y, v), repeats)
    base = times["autodiff H v (jvp of grad)"]
    print(f"\n{title}; jbpnn's options: {options or 'none'}")
    print(f"{'product':30s} {'time (ms)':>10s} {'vs autodiff H v':>16s} {'max rel diff':>13s}")
    for name in fns:
        diff = (
            f"{relative_difference(results[name], results[TWIN[name]]):13.1e}"
            if name in TWIN
            else ""
        )
        print(f"{name:30s} {times[name] * 1e3:10.3f} {base / times[name]:15.2f}x {diff}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits on 300 rows, 2 repeats")
    parser.add_argument("--repeats", type=positive_int, default=7)
    parser.add_argument("--wide-rows", type=positive_int, default=8192)
    parser.add_argument(
        "--wide-sizes",
        type=comma_list(positive_int, "layer sizes such as 1024,2048,10", at_least=2),
        default=(1024, 2048, 2048, 10),
    )
    parser.add_argument("--no-wide", action="store_true", help="digits only")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    print(
        f"float32 on {jax.devices()[0].platform} ({jax.devices()[0].device_kind}); "
        f"median of {repeats} interleaved rounds, compile excluded"
    )

    data = load_digits()
    rows = 300 if args.quick else len(data.X)
    X = jnp.asarray(data.X[:rows], jnp.float32)
    Y = jnp.asarray(one_hot(data.y[:rows], 10), jnp.float32)
    params = init_params(0, (64, 64, 10), "tanh", "cross_entropy", dtype=jnp.float32)
    run(f"digits: {rows} rows, 64-64-10 tanh/softmax, cross-entropy", params, X, Y, repeats)

    if args.quick or args.no_wide:
        return
    sizes = args.wide_sizes
    kx, ky = jax.random.split(jax.random.key(1))
    X = jax.random.normal(kx, (args.wide_rows, sizes[0]), jnp.float32)
    Y = jax.nn.one_hot(jax.random.randint(ky, (args.wide_rows,), 0, sizes[-1]), sizes[-1])
    params = init_params(1, sizes, "tanh", "cross_entropy", dtype=jnp.float32)
    title = f"wide: {args.wide_rows} rows, {'-'.join(map(str, sizes))} tanh/softmax, cross-entropy"
    run(title, params, X, Y, repeats)


if __name__ == "__main__":
    main()
