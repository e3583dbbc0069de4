"""The hand-derived Gauss-Newton terms against the same terms built with ``jax.jacrev``.

What it shows: for a 64-32-10 mse network (sigmoid units, P = 2410 weights and biases)
on the 1797 rows of the bundled digits (float32, one-hot targets), the median time of
one call (compilation excluded: one warm-up call first; 7 timed repeats) of

- ``hand, blocked``: :func:`jbpnn.jacobian.normal_equations_kernel`, jitted: ``J^T J``,
  ``J^T e`` and ``e^T e`` accumulated over blocks of examples in a ``lax.scan`` from the
  hand-propagated sensitivities, ``J`` never stored, the sum over the 10 outputs taken
  before the product (``N P^2`` multiply-adds where ``J.T @ J`` does ``N n_out P^2``);
- ``hand, dense``: :func:`jbpnn.jacobian.jacobian_kernel` (the whole ``J``, 17970 x 2410)
  then ``J.T @ J``, ``J.T @ e``, ``e @ e`` in the same jit;
- ``jacrev, dense``: ``J`` from ``jax.vmap(jax.jacrev(f))`` of the per-example forward
  pass ``f(theta, x)`` (10 reverse passes an example), then the same three products in
  the same jit. (``jax.jacrev`` of the whole batch's outputs at once would run one
  reverse pass over all 1797 rows for each of the 17970 outputs: quadratic in the rows,
  gigabytes of intermediates; nobody builds a Jacobian that way, so it is not timed.)

All three are checked to agree (largest difference of ``J^T J`` relative to its largest
entry, printed). The dense ones spend most of their time in the ``N n_out P^2 = 1.0e11``
multiply-adds of ``J.T @ J``; the time between the two dense rows is the Jacobian itself
(10 hand sensitivities an example against 10 reverse passes; the two ``J`` agree to the
bit in float32).

One run on a 2-core CPU shared with other jobs (load about 8): hand blocked 0.19 s, hand
dense 1.86 s, jacrev dense 2.47 s (12.9x and 1.3x); an earlier run gave 0.29 / 2.08 /
2.78 s. Run time: about a minute on a 2-core CPU. Writes nothing: a table on stdout.

    python experiments/jacobian_speed.py [--repeats 7] [--block 128]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jbpnn import init_params, load_digits, one_hot
from jbpnn.cli.options import positive_int  # noqa: E402  (the command line's type)
from jbpnn.jacobian import (
    flatten_params,
    jacobian_kernel,
    normal_equations_kernel,
    unflatten_params,
)
from jbpnn.network import forward


def products(J, e):
    """``J^T J``, ``J^T e`` and ``e^T e`` of a stored Jacobian."""
    return J.T @ J, J.T @ e, e @ e


def hand_dense(params, X, Y):
    return products(
        jacobian_kernel(params, X), (jax.vmap(lambda x: forward(params, x)[0])(X) - Y).ravel()
    )


def jacrev_dense(params, X, Y):
    theta = flatten_params(params)

    def f(theta, x):  # the outputs of ONE example as a function of the flat parameters
        return forward(unflatten_params(params, theta), x)[0]

    J = jax.vmap(jax.jacrev(f), in_axes=(None, 0))(theta, X).reshape(-1, theta.size)
    e = (jax.vmap(f, in_axes=(None, 0))(theta, X) - Y).ravel()
    return products(J, e)


def median_time(fn, args, repeats):
    jax.block_until_ready(fn(*args))  # compile, and warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=7)
    parser.add_argument(
        "--block", type=positive_int, default=None, help="examples per block (default: auto)"
    )
    args = parser.parse_args(argv)

    data = load_digits()
    X = jnp.asarray(data.X, jnp.float32)
    Y = jnp.asarray(one_hot(data.y, 10), jnp.float32)
    params = init_params(0, (64, 32, 10), "sigmoid", "mse", dtype=jnp.float32)

    contenders = {
        "hand, blocked (normal_equations)": jax.jit(
            lambda p, X, Y: tuple(normal_equations_kernel(p, X, Y, block=args.block))
        ),
        "hand, dense (jacobian_kernel)": jax.jit(hand_dense),
        "jacrev, dense (vmap(jacrev))": jax.jit(jacrev_dense),
    }
    reference = contenders["jacrev, dense (vmap(jacrev))"](params, X, Y)
    P = reference[1].size
    print(
        f"64-32-10 mse network, P = {P}; {X.shape[0]} rows x 10 outputs; float32; "
        f"{jax.devices()[0].platform}; median of {args.repeats}, compile excluded"
    )
    print(f"{'method':36s} {'time (s)':>9s} {'vs jacrev':>9s} {'max rel diff J^T J':>19s}")
    times = {name: median_time(fn, (params, X, Y), args.repeats) for name, fn in contenders.items()}
    base = times["jacrev, dense (vmap(jacrev))"]
    for name, fn in contenders.items():
        jtj = fn(params, X, Y)[0]
        diff = float(jnp.max(jnp.abs(jtj - reference[0])) / jnp.max(jnp.abs(reference[0])))
        print(f"{name:36s} {times[name]:9.3f} {base / times[name]:8.2f}x {diff:19.2e}")


if __name__ == "__main__":
    main()
