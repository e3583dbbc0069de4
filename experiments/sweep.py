"""A learning-rate x momentum x seed sweep on the bundled digits, trained all at once.

What it shows: :func:`jbpnn.many.train_many` training 8 learning rates x 4 momenta
x 8 init seeds = 256 networks 64-64-10 (sigmoid hidden units, softmax output with
cross-entropy, Glorot init, classical momentum, mini-batches of 32, early stopping
on the validation loss with patience 10, at most 60 epochs) in ONE compiled call on
the UCI 8x8 digits (1438 train / 359 validation rows). Every network stops on its
own (here 129 by early stopping, after 11 to 60 epochs; the largest learning rates with
high momentum saturate the sigmoid units and stay at chance). It prints the best
(learning rate, momentum) cells with the mean and spread of the validation accuracy
over the 8 seeds, and then times ``train_many`` against training 64 networks (8
learning rates from 0.01 to 1 x 8 seeds, m 0.9, 20 epochs) one after another with
``train`` (compilation excluded from both; 16 of them are timed one by one and their
median is scaled to 64, as the output says). The figures of a run are in the README's
sweep section; they are not repeated here, where they would go stale.

How long: about 35 s on a 2-core CPU (the 256 networks in 7 s, compilation
included; the timing and its compilations the rest). It asks JAX for one CPU device
per core (``--devices``) and ``train_many`` splits the networks across them.
``--quick`` (8 tiny networks, a few epochs) takes about 10 s and is what the tests run.

What it writes (``--out``, default ``results/sweep``): ``sweep.csv`` and
``sweep.json`` (one row per network: lr, m, seed, train and validation loss and
accuracy, epochs, stop reason) and ``heatmap.png`` (validation accuracy, mean over
seeds, learning rate x momentum; needs matplotlib, ``pip install "jbpnn[plot]"``).

    python experiments/sweep.py [--quick] [--out DIR] [--epochs 60] [--seeds 8]
        [--lrs 0.003,...,10] [--momenta 0,0.5,0.9,0.97] [--devices K] [--no-timing]

The same runs as ``jbpnn sweep``, which leaves out the timing (the timing harness,
:func:`time_against_sequential`, lives here: it is an experiment, not library code).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

try:
    import jbpnn  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.typing import ArrayLike  # noqa: E402

from jbpnn.cli import CLIError, describe_error  # noqa: E402
from jbpnn.cli.sweep import add_sweep_arguments, run_sweep  # noqa: E402
from jbpnn.many import InitSpec, train_many  # noqa: E402
from jbpnn.optimizers import get_optimizer  # noqa: E402
from jbpnn.params import init_params  # noqa: E402
from jbpnn.training import train  # noqa: E402


def time_against_sequential(
    spec: InitSpec,
    X: ArrayLike,
    Y: ArrayLike,
    *,
    seeds: Sequence[int],
    hparams: Mapping[str, Any],
    optimizer: str = "momentum",
    sequential_subset: int | None = None,
    repeats: int = 3,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Time :func:`train_many` against training the same networks one after another.

    Compilation is excluded from both: ``train_many`` is called once to compile,
    then ``repeats`` times (median reported); each sequential network is trained
    once first (compilation and caches), then timed.
    With ``sequential_subset = k`` only ``k`` networks spread over the grid are
    timed sequentially, and the sequential total is ``N`` times their median.

    Returns:
        A dict: ``n``, ``many_s`` (median), ``many_runs``, ``many_first_s`` (with
        compilation), ``sequential_s`` (scaled to ``N``), ``sequential_per_network_s``
        (all timed), ``sequential_first_s`` (each network's first call: only the first
        network's compiles, or loads from the persistent cache),
        ``timed_sequentially`` and ``speedup``.
    """
    seeds = np.asarray(list(seeds), dtype=np.int64)
    n = len(seeds)
    spec_args = (tuple(spec.sizes), spec.activations, spec.loss, spec.init, spec.dtype)

    def many() -> float:
        t = time.perf_counter()
        r = train_many(
            spec,
            X,
            Y,
            seeds=seeds,
            optimizer=optimizer,
            hparams=hparams,
            **train_kwargs,
        )
        jax.block_until_ready(r.params)
        return time.perf_counter() - t

    out: dict[str, Any] = {"n": n, "many_first_s": many()}
    runs = [many() for _ in range(repeats)]
    out.update(many_s=float(np.median(runs)), many_runs=runs)

    k = n if sequential_subset is None else max(1, min(int(sequential_subset), n))
    picks = np.unique(np.linspace(0, n - 1, k).round().astype(int))
    factory = partial(get_optimizer, optimizer) if isinstance(optimizer, str) else optimizer
    seq, first = [], []
    for i in picks:
        params = init_params(jax.random.key(int(seeds[i])), *spec_args)
        opt = factory(**{name: _at(value, i) for name, value in hparams.items()})
        t = time.perf_counter()
        jax.block_until_ready(train(params, X, Y, optimizer=opt, **train_kwargs).params)
        first.append(time.perf_counter() - t)
        t = time.perf_counter()
        jax.block_until_ready(train(params, X, Y, optimizer=opt, **train_kwargs).params)
        seq.append(time.perf_counter() - t)
    out.update(
        timed_sequentially=len(picks),
        sequential_per_network_s=seq,
        sequential_first_s=first,
        sequential_s=float(np.median(seq)) * n,
    )
    out["speedup"] = out["sequential_s"] / out["many_s"]
    return out


def _at(value: Any, i: int) -> Any:
    arr = np.asarray(value) if not (isinstance(value, str) or callable(value)) else None
    if arr is not None and arr.ndim == 1:
        return float(arr[i])
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_sweep_arguments(parser, default_out="results/sweep")
    try:
        return run_sweep(parser.parse_args(argv), time_fn=time_against_sequential)
    except (CLIError, ValueError, TypeError, OSError) as error:  # one line, as jbpnn sweep
        print(f"sweep.py: error: {describe_error(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
