"""What the progress line costs: train and train_many with it, against the same runs without.

The command line's progress (``jbpnn train --progress``, ``jbpnn sweep --progress``)
runs the one compiled loop in chunks (about 20 a run) and draws a line after each;
the issue's bar is "under 5% of the run time". Both runs of a pair do the same
epochs on the same data (early stopping off, so neither stops sooner); the bar
draws into a ``StringIO`` (the terminal's cost is not jbpnn's). The pairs
alternate and the medians are compared: the ratio is the overhead.

    python experiments/progress_overhead.py            # digits, 100 epochs, medians of 7
    python experiments/progress_overhead.py --quick    # 5 epochs, medians of 2, 4 networks
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

import jax
import numpy as np

import jbpnn
from jbpnn.cli.progress import ProgressBar
from jbpnn.cli.train import _progress_every
from jbpnn.many import InitSpec, train_many

SIZES = (64, 64, 10)
N_MANY = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 epochs, medians of 2, 4 networks")
    args = parser.parse_args()
    epochs, repeats = (5, 2) if args.quick else (100, 7)
    n_many = 4 if args.quick else N_MANY
    every = _progress_every(epochs)  # what jbpnn train uses

    digits = jbpnn.load_digits()
    X, Y = digits.X, np.asarray(jbpnn.one_hot(digits.y, 10))
    params = jbpnn.init_params(0, SIZES, "sigmoid", "cross_entropy", "glorot")
    spec = InitSpec(SIZES, "sigmoid", "cross_entropy", "glorot")
    lrs = np.linspace(0.05, 0.5, n_many)

    def one(bar: ProgressBar | None) -> None:
        kw = dict(progress=bar, progress_every=every) if bar else {}
        r = jbpnn.train(
            params, X, Y, optimizer=jbpnn.momentum(0.1, 0.9), epochs=epochs, batch_size=32, **kw
        )
        if bar:
            bar.close(r.epochs_run, r.stop_reason)
        jax.block_until_ready(r.params)

    def many(bar: ProgressBar | None) -> None:
        kw = dict(progress=bar, history_chunk=every) if bar else {}
        r = train_many(
            spec, X, Y, seeds=range(n_many), hparams={"lr": lrs, "m": 0.9},
            epochs=epochs, batch_size=32, **kw,
        )  # fmt: skip
        if bar:
            bar.close(epochs, "max_epochs")
        jax.block_until_ready(jax.tree.leaves(r.params))

    def bar_for(networks: int | None) -> ProgressBar:
        extra = {"networks": networks} if networks else {}
        return ProgressBar(epochs, io.StringIO(), use_tqdm=False, **extra)

    print(
        f"digits {X.shape[0]} x {X.shape[1]}, {'-'.join(map(str, SIZES))}, batch 32, "
        f"{epochs} epochs, progress every {every}; medians of {repeats}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    cases = (
        ("train", lambda: one(None), lambda: one(bar_for(None))),
        (f"train_many x{n_many}", lambda: many(None), lambda: many(bar_for(n_many))),
    )
    worst = 0.0
    for name, plain, shown in cases:
        plain(), shown()  # compile both (the chunked program is the same one)
        times: dict[str, list[float]] = {"plain": [], "shown": []}
        for _ in range(repeats):
            for key, fn in (("plain", plain), ("shown", shown)):
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
        a, b = statistics.median(times["plain"]), statistics.median(times["shown"])
        overhead = b / a - 1
        worst = max(worst, overhead)
        print(
            f"  {name:<14} without {a:.3f} s  with progress {b:.3f} s  "
            f"overhead {100 * overhead:+.1f}%"
        )
    if args.quick:  # 5 epochs, medians of 2: no verdict on the 5% bar
        print(
            f"largest overhead {100 * worst:+.1f}%: quick run: no verdict (a smoke test: "
            "5 epochs, medians of 2)"
        )
    else:
        verdict = "under" if worst < 0.05 else "NOT under"
        print(f"largest overhead {100 * worst:+.1f}%: {verdict} the 5% bar")


if __name__ == "__main__":
    main()
