"""``jbpnn sweep``: a learning-rate x momentum x seed grid on the digits, all at once.

The options (:func:`add_sweep_arguments`) and the run (:func:`run_sweep`) shared by
``jbpnn sweep`` and ``experiments/sweep.py``; the experiment adds the timing of
``train_many`` against sequential ``train``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jbpnn import data, plots
from jbpnn.checks import INT32_MAX, check_int, check_seed
from jbpnn.cli.base import CLIError, check_interrupted, stderr_is_terminal
from jbpnn.cli.files import check_folder, check_outputs
from jbpnn.cli.options import (
    comma_list,
    learning_rate,
    momentum_m,
    patience,
    positive_int,
    seed,
)
from jbpnn.cli.progress import ProgressBar, unfinished
from jbpnn.files import write_files
from jbpnn.many import InitSpec, train_many, use_cpu_devices
from jbpnn.state import HISTORY_CHUNK
from jbpnn.tables import ResultsTable, grid

__all__ = [
    "FULL",
    "QUICK",
    "SWEEP_CPU_DEVICES",
    "SWEEP_LRS",
    "SWEEP_MOMENTA",
    "TIMING_LRS",
    "add_sweep_arguments",
    "learning_rates",
    "momenta",
    "resolve_budget",
    "run_sweep",
]


SWEEP_LRS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
SWEEP_MOMENTA = (0.0, 0.5, 0.9, 0.97)
TIMING_LRS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)  # none diverges at m 0.9
SWEEP_CPU_DEVICES = 0  # CPU devices the sweep asks JAX for by default; 0: one per core, up to 8


# The grid and budget of a full sweep, and of --quick; an option given explicitly wins.
FULL: dict[str, Any] = {
    "lrs": SWEEP_LRS,
    "momenta": SWEEP_MOMENTA,
    "seeds": 8,
    "hidden": 64,
    "epochs": 60,
    "timing_networks": 64,
    "timing_epochs": 20,
    "timing_sequential": 16,
    "timing_repeats": 5,
}
QUICK: dict[str, Any] = {
    "lrs": SWEEP_LRS[2:6:2],
    "momenta": SWEEP_MOMENTA[1:3],
    "seeds": 2,
    "hidden": 16,
    "epochs": 4,
    "timing_networks": 4,
    "timing_epochs": 2,
    "timing_sequential": 2,
    "timing_repeats": 1,
}


# --lrs and --momenta: each item checked as momentum(lr, m) checks it
learning_rates = comma_list(learning_rate, "learning rates >= 0 such as 0.01,0.1", distinct=True)
momenta = comma_list(momentum_m, "momenta m, 0 <= m < 1, such as 0.5,0.9", distinct=True)


def _both(name: str) -> str:
    full, quick = FULL[name], QUICK[name]
    if isinstance(full, tuple):
        full, quick = (",".join(f"{v:g}" for v in x) for x in (full, quick))
    return f"(default {full}; with --quick {quick})"


def add_sweep_arguments(
    parser: argparse.ArgumentParser, default_out: str = "sweep", timing: bool = True
) -> argparse.ArgumentParser:
    """Add the options of ``jbpnn sweep`` / ``experiments/sweep.py`` to an argparse parser.

    ``timing=False`` leaves out the ``--timing*`` options (``jbpnn sweep``: the timing
    harness is an experiment, ``experiments/sweep.py``, not part of the library).
    The grid and budget options default to None: :func:`run_sweep` fills in the
    values of :data:`FULL`, or of :data:`QUICK` with ``--quick``, for those not given.
    """
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny grid and few epochs, for tests (seconds); options given explicitly "
        "still apply",
    )
    parser.add_argument(
        "--out",
        default=default_out,
        help=f"folder for sweep.csv, sweep.json and heatmap.png (default {default_out}); "
        "those already there are replaced, and an earlier heatmap.png is removed when this "
        "run writes none (--no-plot, no matplotlib)",
    )
    parser.add_argument(
        "--lrs", type=learning_rates, help=f"learning rates, comma-separated {_both('lrs')}"
    )
    parser.add_argument(
        "--momenta", type=momenta, help=f"momenta m, comma-separated {_both('momenta')}"
    )
    parser.add_argument("--seeds", type=positive_int, help=f"init seeds per cell {_both('seeds')}")
    parser.add_argument("--hidden", type=positive_int, help=f"hidden units {_both('hidden')}")
    parser.add_argument("--epochs", type=positive_int, help=f"maximum epochs {_both('epochs')}")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="mini-batch size")
    parser.add_argument(
        "--n-iter-no-change",
        type=patience,
        default=10,
        help="early-stopping patience on the validation loss, in epochs, or off (default 10)",
    )
    parser.add_argument(
        "--seed", type=seed, default=0, help="data split and order seed, 0 .. 2**32 - 1"
    )
    parser.add_argument(
        "--devices",
        type=positive_int,
        default=None,
        help="ask JAX for this many CPU devices (before it starts) and split the networks "
        "across them (default: one per CPU core, at most 8)",
    )
    parser.add_argument("--top", type=positive_int, default=8, help="best configurations to print")
    if timing:
        parser.add_argument(
            "--timing",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="time train_many against sequential train (default on)",
        )
        parser.add_argument(
            "--timing-networks",
            type=positive_int,
            help=f"networks in the timing {_both('timing_networks')}",
        )
        parser.add_argument(
            "--timing-epochs", type=positive_int, help=f"epochs timed {_both('timing_epochs')}"
        )
        parser.add_argument(
            "--timing-sequential",
            type=positive_int,
            help="networks actually trained one by one for the timing "
            f"{_both('timing_sequential')}",
        )
        parser.add_argument(
            "--timing-repeats", type=positive_int, help=f"timed runs {_both('timing_repeats')}"
        )
    else:
        parser.set_defaults(timing=None)
    parser.add_argument(
        "--plot",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write the heatmap PNG (needs matplotlib; default on)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    return parser


def resolve_budget(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the grid and budget options not given with :data:`FULL` (or :data:`QUICK`)."""
    values = QUICK if getattr(args, "quick", False) else FULL
    for name, value in values.items():
        if name.startswith("timing_") and not getattr(args, "timing", None):
            continue
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    return args


def run_sweep(args: argparse.Namespace, time_fn: Callable[..., dict] | None = None) -> int:
    """``jbpnn sweep``: the digits grid of ``args`` (see :func:`add_sweep_arguments`).

    Prints the best configurations (mean and spread over seeds), writes
    ``sweep.csv``, ``sweep.json`` and ``heatmap.png`` to ``args.out`` and, with
    ``args.timing``, times ``train_many`` against sequential ``train`` with
    ``time_fn`` (``experiments/sweep.py``'s ``time_against_sequential``; without
    it a line says where the timing is). Returns the exit status.

    Those files replace any already in ``args.out``; a ``heatmap.png`` there is removed
    when this run writes none (``--no-plot``, no matplotlib), so that no figure of an
    earlier sweep stands beside the new tables. Every option is checked before the
    first line is printed.
    """
    timing = getattr(args, "timing", None)  # None: a parser without the timing options
    resolve_budget(args)
    # every range before the header line (an --epochs past int32 failed after it); the
    # seeds 0 .. --seeds - 1 must be uint32 seeds, the counts fit a compiled int32
    high = {"seeds": 2**32, "hidden": INT32_MAX, "epochs": INT32_MAX, "batch_size": INT32_MAX}
    for name in ("devices", "seeds", "hidden", "epochs", "batch_size", "top"):
        value = getattr(args, name, None)
        if value is not None:
            check_int(f"--{name.replace('_', '-')}", value, 1, high=high.get(name))
    check_seed("--seed", args.seed)
    out = check_folder("--out", args.out)
    # heatmap.png even with --no-plot: an earlier run's is removed, never a special file
    names = ("sweep.csv", "sweep.json", "heatmap.png")
    if out.is_dir():  # the files it will replace: regular, writable files, and never
        # the input (the bundled digits file, e.g. through a symlink named sweep.json)
        check_outputs(
            {f"{name} in --out": out / name for name in names}, {"digits": str(data.digits_path())}
        )
    # One CPU device per core, asked for before JAX starts (else JAX keeps its devices):
    # train_many runs its share of the networks on each, in parallel.
    use_cpu_devices(args.devices or SWEEP_CPU_DEVICES or None)

    digits = data.load_digits()
    X_tr, X_val, y_tr, y_val = data.train_test_split(digits.X, digits.y, 0.2, seed=args.seed)
    Y_tr, Y_val = data.one_hot(y_tr, 10), data.one_hot(y_val, 10)
    if args.batch_size > len(X_tr):  # refused before the header line, not after it
        raise CLIError(
            f"--batch-size {args.batch_size} is larger than the {len(X_tr)} training examples "
            f"of the digits split; use at most {len(X_tr)}"
        )
    spec = InitSpec((64, args.hidden, 10), "sigmoid", "cross_entropy", "glorot")
    g = grid(lr=list(args.lrs), m=list(args.momenta), seed=range(args.seeds))
    seeds = g.pop("seed")
    n = len(seeds)
    arch = "-".join(map(str, spec.sizes))
    print(
        f"sweep: {len(args.lrs)} learning rates x {len(args.momenta)} momenta x {args.seeds} "
        f"seeds = {n} networks {arch} (sigmoid, softmax + cross-entropy, glorot), "
        f"momentum (classical), batch {args.batch_size}, up to {args.epochs} epochs, early "
        f"stopping patience {args.n_iter_no_change or 'off'}; digits {len(X_tr)} train / "
        f"{len(X_val)} validation; {len(jax.local_devices())} {jax.default_backend()} device(s)",
        flush=True,
    )
    show_progress = args.progress if args.progress is not None else stderr_is_terminal()
    bar = ProgressBar(args.epochs, networks=n) if show_progress else None
    try:
        result = train_many(
            spec,
            X_tr,
            Y_tr,
            seeds=seeds,
            hparams=g,
            key=args.seed,
            epochs=args.epochs,
            batch_size=args.batch_size,
            X_val=X_val,
            Y_val=Y_val,
            n_iter_no_change=args.n_iter_no_change,
            progress=bar,
            # the progress callback runs once per history chunk: about 20 a run, and at
            # most HISTORY_CHUNK epochs (train's cap): a Ctrl-C is seen between chunks, and
            # epochs // 20 of 100000 made it wait 5000 epochs
            **({"history_chunk": min(HISTORY_CHUNK, max(1, -(-args.epochs // 20)))} if bar else {}),
        )
    except BaseException as error:  # the line ends where the run was, not "done"
        if bar is not None:
            bar.close(stop_reason=unfinished(error))
        raise
    if bar is not None:
        bar.close(int(np.max(result.epochs_run)))
    print(result.summary(), flush=True)
    table = result.table(X_tr, Y_tr)
    summary = table.summarize(["lr", "m"], ["val_accuracy", "train_accuracy", "epochs"])
    best = summary.sort("val_accuracy_mean", descending=True)
    print(f"\nbest configurations (validation accuracy over {args.seeds} seeds):")
    print(_best_lines(best.head(args.top)))
    worst = best.rows[-1]
    print(
        f"worst: lr {worst['lr']:g}, m {worst['m']:g}: "
        f"{worst['val_accuracy_mean']:.4f} +- {worst['val_accuracy_std']:.4f}"
    )
    # Every output is rendered first, then all are written at once (or none).
    files: list[tuple[Path, bytes]] = [
        (out / "sweep.csv", table.to_csv().encode()),
        (out / "sweep.json", table.to_json().encode()),
    ]
    no_heatmap = None
    if args.plot:
        try:
            files.append((out / "heatmap.png", _render_heatmap(summary, arch, args)))
        except ImportError as error:
            no_heatmap = f"no heatmap: {error}"
    check_interrupted()  # a Ctrl-C swallowed during the run: write nothing
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        write_files(files, what="write")
    except BaseException:  # Ctrl-C included: no files, and no empty folder of ours
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    print(f"\nwrote {out / 'sweep.csv'} and {out / 'sweep.json'} (one row per network)")
    heatmap = out / "heatmap.png"
    if len(files) < 3 and (heatmap.is_symlink() or heatmap.exists()):
        heatmap.unlink()  # an earlier sweep's figure, not this one's (a link: the link only)
        print(f"removed {heatmap}: an earlier sweep's heatmap (this run drew none)")
    if no_heatmap:
        print(no_heatmap)
    elif args.plot:
        print(f"wrote {heatmap}")

    if timing is None or (timing and time_fn is None):
        print(
            "\ntiming: not run here; run `python experiments/sweep.py` from a source "
            "checkout to time train_many against sequential train"
        )
    elif timing:
        assert time_fn is not None  # the branch above took the timing without it
        k = args.timing_networks
        tg = grid(lr=list(TIMING_LRS), seed=range(-(-k // len(TIMING_LRS))))
        t_seeds = tg.pop("seed")[:k]
        t_hp: dict[str, Any] = {"lr": tg["lr"][:k], "m": 0.9}
        print(
            f"\ntiming: {k} networks {arch} ({len(set(t_hp['lr']))} learning rates from "
            f"{min(t_hp['lr']):g} to {max(t_hp['lr']):g} x seeds, m 0.9), {args.timing_epochs} "
            f"epochs, batch {args.batch_size}, with validation, no early stopping; compilation "
            f"excluded from both; medians of {args.timing_repeats} runs",
            flush=True,
        )
        t = time_fn(
            spec,
            X_tr,
            Y_tr,
            seeds=t_seeds,
            hparams=t_hp,
            key=args.seed,
            sequential_subset=args.timing_sequential,
            repeats=args.timing_repeats,
            epochs=args.timing_epochs,
            batch_size=args.batch_size,
            X_val=X_val,
            Y_val=Y_val,
        )
        print(_timing_lines(t, len(jax.local_devices())))
    return 0


def _render_heatmap(summary: ResultsTable, arch: str, args: argparse.Namespace) -> bytes:
    """The heatmap PNG, in memory (ImportError without matplotlib).

    matplotlib stays lazy: :mod:`jbpnn.plots` imports it inside its functions only.
    """
    plots.require_matplotlib("the heatmap")
    buffer = io.BytesIO()  # no temporary file: nothing to leave behind if killed
    plots.plot_heatmap(
        summary,
        buffer,
        suffix=".png",
        title=f"digits {arch}, {args.seeds} seeds per cell, batch {args.batch_size}",
    )
    return buffer.getvalue()


def _best_lines(best: ResultsTable) -> str:
    lines = [
        f"{'lr':>7} {'m':>5}  {'val accuracy':>18}  {'min':>6} {'max':>6}  "
        f"{'train acc':>9}  {'epochs':>6}"
    ]
    for r in best:
        lines.append(
            f"{r['lr']:>7g} {r['m']:>5g}  {r['val_accuracy_mean']:>8.4f} +- "
            f"{r['val_accuracy_std']:<6.4f}  {r['val_accuracy_min']:>6.4f} "
            f"{r['val_accuracy_max']:>6.4f}  {r['train_accuracy_mean']:>9.4f}  "
            f"{r['epochs_mean']:>6.1f}"
        )
    return "\n".join(lines)


def _timing_lines(t: dict[str, Any], n_devices: int) -> str:
    n, k = t["n"], t["timed_sequentially"]
    seq = np.asarray(t["sequential_per_network_s"])
    lines = [
        f"  train_many ({n_devices} device(s)): {t['many_s']:.3f} s "
        f"(runs: {', '.join(f'{v:.3f}' for v in t['many_runs'])}; first call, compilation "
        f"or a load from the persistent cache, {t['many_first_s']:.2f} s)",
    ]
    first = np.asarray(t["sequential_first_s"])
    # only the first network's first call compiles (or loads from the persistent cache):
    # the others' first calls reuse its program
    others = (
        f", the other {len(first) - 1}'s first calls {np.median(first[1:]):.3f} s (median)"
        if len(first) > 1
        else ""
    )
    lines += [
        f"  sequential train:          {t['sequential_s']:.3f} s = {n} x the median "
        f"{np.median(seq) * 1e3:.1f} ms of {k} networks timed one by one "
        f"(range {seq.min() * 1e3:.1f}..{seq.max() * 1e3:.1f} ms; first network's first call, "
        f"compilation or a cache load, {first[0]:.2f} s{others})",
        f"  speed-up of train_many over sequential train: {t['speedup']:.2f}x",
    ]
    return "\n".join(lines)
