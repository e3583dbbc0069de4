"""``jbpnn gradcheck`` (also ``python -m jbpnn.gradcheck``): the gradient check's options.

Builds the random network and batch the options describe, runs
:func:`jbpnn.gradcheck.gradcheck` (and :func:`jbpnn.gradcheck.compare_per_example`),
prints the report (or JSON) and exits 1 when a check fails, 2 on invalid settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

import jbpnn.cli
from jbpnn.checks import as_key
from jbpnn.cli.base import say
from jbpnn.cli.options import comma_list, positive_int, seed
from jbpnn.gradcheck import (
    DEFAULT_EPS,
    REFERENCES,
    compare_per_example,
    gradcheck,
    random_batch,
)
from jbpnn.losses import LOSSES
from jbpnn.params import INITS, init_params

__all__ = ["add_arguments", "layer_sizes", "main", "run"]


# --sizes: layer widths, input first (at least the input and the output)
layer_sizes = comma_list(
    positive_int, "at least two layer widths, input first, such as 64,32,10", at_least=2
)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the gradcheck options to ``parser`` (reused by ``jbpnn gradcheck``)."""
    parser.add_argument(
        "--sizes", type=layer_sizes, default=(64, 32, 10), help="layer widths, input first"
    )
    parser.add_argument(
        "--activation",
        default="tanh",
        help="activation of every layer (the output gets softmax/sigmoid with the cross "
        "entropies), or one name per layer, comma-separated",
    )
    parser.add_argument("--loss", default="mse", choices=sorted(LOSSES), help="the loss")
    parser.add_argument(
        "--init", default="article", choices=list(INITS), help="weight initialisation"
    )
    parser.add_argument(
        "--reference", default="autodiff", choices=list(REFERENCES), help="what to compare with"
    )
    parser.add_argument(
        "--article-mode",
        action="store_true",
        help="reproduce the article code's bugs (expected to FAIL)",
    )
    parser.add_argument(
        "--batch", type=positive_int, default=16, help="number of random examples (default 16)"
    )
    parser.add_argument(
        "--seed", type=seed, default=0, help="params and data seed, 0 .. 2**32 - 1 (default 0)"
    )
    parser.add_argument(
        "--x64", action="store_true", help="float64 params and data (finite differences always)"
    )
    parser.add_argument("--rtol", type=float, default=None, help="default: see the report")
    parser.add_argument("--atol", type=float, default=None, help="default: see the report")
    parser.add_argument(
        "--eps", type=float, default=None, help=f"finite-difference step (default {DEFAULT_EPS})"
    )
    parser.add_argument(
        "--per-example",
        action="store_true",
        help="also compare per_example_grads with vmap(jax.grad)",
    )
    parser.add_argument("--json", action="store_true", help="print the report(s) as JSON")
    return parser


def run(args: argparse.Namespace, out: Any = None) -> int:
    """Build the network and data that ``args`` describe, check, print; 0 if all passed.

    Returns:
        0 when every check passes, 1 when one fails, 2 on invalid settings.
    """
    out = sys.stdout if out is None else out
    acts = args.activation.split(",") if "," in args.activation else args.activation
    dtype = jnp.float64 if args.x64 else jnp.float32
    try:
        with jax.enable_x64(args.x64):
            key_params, key_data = jax.random.split(as_key(args.seed, "--seed"))
            params = init_params(
                key_params,
                args.sizes,
                activations=acts,
                loss=args.loss,
                init=args.init,
                dtype=dtype,
                article_mode=args.article_mode,
            )
            X, Y = random_batch(key_data, params, args.batch)
            reports = [
                gradcheck(
                    params,
                    X,
                    Y,
                    reference=args.reference,
                    rtol=args.rtol,
                    atol=args.atol,
                    eps=args.eps,
                    seed=args.seed,
                )
            ]
            if args.per_example:
                reports.append(compare_per_example(params, X, Y, rtol=args.rtol, atol=args.atol))
    except ValueError as e:
        say(f"jbpnn gradcheck: error: {e}")
        return 2
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2), file=out)
    else:
        print("\n\n".join(str(r) for r in reports), file=out)
    return 0 if all(r.passed for r in reports) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jbpnn.gradcheck [options]``: ``jbpnn gradcheck [options]``, with its
    one-line errors (exit 2), never a traceback; returns the exit status."""
    # jbpnn.cli.main, looked up when called: the package imports this module first
    return jbpnn.cli.main(["gradcheck", *(sys.argv[1:] if argv is None else argv)])
