"""The ``jbpnn`` command (also ``python -m jbpnn``).

Subcommands:
    example   the article's worked examples, computed by the library and printed
              in the article's layout (the default when no subcommand is given).

The command line holds no maths of its own: it calls the library.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jbpnn.network import backward, deltas, forward
from jbpnn.oracles import EXAMPLES
from jbpnn.params import MLP


def _print_example(spec: dict, out=sys.stdout) -> None:
    params = MLP.from_layers(spec["layers"], "sigmoid", "mse", dtype=jnp.float64)
    x = jnp.asarray(spec["x"], params.dtype)
    y = jnp.asarray(spec["y"], params.dtype)
    lr = spec["lr"]
    _, cache = forward(params, x)
    errs = deltas(params, cache, y)
    grads = backward(params, cache, y)
    new = jax.tree.map(lambda p, g: p - lr * g, params, grads)  # w_ij += l Err_j O_i

    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"== {spec['name']}: x = {spec['x']}, T = {spec['y']}, learning rate {lr}")
    p(f"{'unit':<6}{'net input':>14}{'output O':>14}")
    for l, names in enumerate(spec["unit_names"]):
        net = np.asarray(cache[l] @ params.layers[l].w + params.layers[l].b)
        for j, name in enumerate(names):
            p(f"{name:<6}{net[j]:>14.10f}{float(cache[l + 1][j]):>14.10f}")
    p(f"{'unit':<6}{'error Err':>14}")
    for l in reversed(range(len(spec["unit_names"]))):
        for j, name in enumerate(spec["unit_names"][l]):
            p(f"{name:<6}{float(errs[l][j]):>14.10f}")
    p("updated parameters (w_ij += l * Err_j * O_i, theta_j += l * Err_j):")
    below = [spec["input_names"]] + spec["unit_names"][:-1]
    for l, names in reversed(list(enumerate(spec["unit_names"]))):
        w_old, w_new = np.asarray(params.layers[l].w), np.asarray(new.layers[l].w)
        for j, name in enumerate(names):
            for i, src in enumerate(below[l]):
                if w_new[i, j] != w_old[i, j]:
                    p(f"  w{src},{name:<4}{w_old[i, j]:>9.4f} -> {w_new[i, j]:.10f}")
            b_old, b_new = float(params.layers[l].b[j]), float(new.layers[l].b[j])
            p(f"  theta{name:<4}{b_old:>8.4f} -> {b_new:.10f}")
    p("  (weights from inputs equal to 0 are unchanged)")
    p("")


def cmd_example(args: argparse.Namespace) -> int:
    names = list(EXAMPLES) if args.which == "all" else [args.which]
    with jax.enable_x64(True):  # print the oracle figures to 10 decimals
        for name in names:
            _print_example(EXAMPLES[name])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jbpnn",
        description="Back-propagation neural networks in JAX, gradients derived by hand.",
        epilog="example: jbpnn example --which article",
    )
    sub = parser.add_subparsers(dest="command")
    ex = sub.add_parser(
        "example",
        help="the article's worked examples, one forward/backward step each",
        description="Compute the worked examples of the article (9-2-1) and the textbook "
        "(3-2-1) with the library and print them in the article's layout: unit / net "
        "input / output, unit / error, then the updated weights and biases.",
        epilog="example: jbpnn example --which textbook",
    )
    ex.add_argument("--which", choices=["all", *EXAMPLES], default="all")
    ex.set_defaults(func=cmd_example)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["example"])
    return args.func(args)
