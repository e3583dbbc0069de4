"""``jbpnn example`` and ``jbpnn demo``: the article's worked examples and its two demos.

``example`` computes the worked examples (9-2-1 and the textbook's 3-2-1) with the
library and prints them in the article's layout; ``demo`` trains the article's
``BPNN(5, 1)`` and ``BPNN(5, 2)`` through the facade and compares with the article.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jbpnn.article import BPNN
from jbpnn.cli.base import add_subparser
from jbpnn.cli.options import positive_int, seed
from jbpnn.network import backward, deltas, forward
from jbpnn.oracles import DEMO_2_ARTICLE, DEMO_A, DEMO_B, DEMO_TEST, DEMO_TRAIN, EXAMPLES
from jbpnn.params import MLP

__all__ = ["add_parsers", "cmd_demo", "cmd_example", "print_example"]


def print_example(spec: dict, out: Any = None) -> None:
    """Print one worked example of :data:`jbpnn.oracles.EXAMPLES` in the article's layout.

    ``out`` defaults to ``sys.stdout`` at the time of the call. It computes in float64
    (locally, whatever the process's setting): the figures are printed to 10 decimals.
    """
    with jax.enable_x64(True):
        _print_example(spec, sys.stdout if out is None else out)


def _print_example(spec: dict, out: Any) -> None:
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
    for name in names:
        print_example(EXAMPLES[name])
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    print("== Demo 1 (binary): net = BPNN(5, 1); net.train(train); net.fit(test)")
    net = BPNN(5, 1, seed=args.seed)
    net.train(DEMO_TRAIN, epochs=args.epochs)
    for x, (o,) in zip(DEMO_TEST, net.fit(DEMO_TEST)):
        print(f"  {x} -> {o:.4f}")
    ok1 = all(
        (o[0] > 0.9) if x == DEMO_A else (o[0] < 0.1)
        for x, o in zip(DEMO_TEST, net.fit(DEMO_TEST))
        if x in (DEMO_A, DEMO_B)
    )
    print(
        f"  check: [1,0,1,0,1] rows > 0.9 and [1,0,1,1,1] rows < 0.1: {'yes' if ok1 else 'NO'} "
        "(article: about 0.983 and 0.023)"
    )
    print("\n== Demo 2 (cat/dog): two outputs, cat when output 0 > output 1")
    data2 = [[x, [1, 0] if y == [1] else [0, 1]] for x, y in DEMO_TRAIN]
    net2 = BPNN(5, 2, seed=args.seed)
    net2.train(data2, epochs=args.epochs)
    result = ["cat" if o[0] > o[1] else "dog" for o in net2.fit(DEMO_TEST)]
    print(f"  {result}")
    print(f"  article: {DEMO_2_ARTICLE} ({'same' if result == DEMO_2_ARTICLE else 'differs'})")
    return 0 if ok1 and result == DEMO_2_ARTICLE else 1


def add_parsers(sub: Any) -> None:
    """Add the ``example`` and ``demo`` subcommands to ``sub`` (an argparse subparsers)."""
    ex = add_subparser(
        sub,
        "example",
        "the article's worked examples, one forward/backward step each",
        "Compute the worked examples of the article (9-2-1) and the textbook (3-2-1) with "
        "the library and print them in the article's layout: unit / net input / output, "
        "unit / error, then the updated weights and biases.",
        "jbpnn example --which textbook",
    )
    ex.add_argument(
        "--which", choices=["all", *EXAMPLES], default="all", help="which worked example"
    )
    ex.set_defaults(func=cmd_example)

    de = add_subparser(
        sub,
        "demo",
        "the article's two demos (binary and cat/dog)",
        "Train the article's BPNN(5, 1) and BPNN(5, 2) online on its six patterns and "
        "print the outputs for its ten test rows; exit 1 if they disagree with the article.",
        "jbpnn demo --epochs 1000",
    )
    de.add_argument("--epochs", type=positive_int, default=1000, help="training epochs")
    de.add_argument("--seed", type=seed, default=0, help="init seed, 0 .. 2**32 - 1")
    de.set_defaults(func=cmd_demo)
