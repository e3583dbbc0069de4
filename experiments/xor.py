"""XOR learnt by a 2-4-1 sigmoid network with the article's online momentum.

What it shows: the one problem a single-layer network cannot learn, learnt by
back-propagation with the article's settings: sigmoid units, error
``E = 1/2 (T - O)^2``, weights drawn uniformly from ``[-0.2, 0.2]``, one update
after every example in order (``batch_size=1``) and the article's momentum rule
``w += lr * change + m * prev_change`` (lr 0.5, m 0.5). Training stops by the
article's rule 2 (epoch error below ``--tol``, default 1e-3) or after
``--epochs`` (rule 3). It prints the truth table with the network's outputs, the
stop rule that fired and the final loss, and saves the loss curve.

How long: 2 to 3 s on a 2-core CPU, almost all compilation (about 1600
epochs, under 0.1 s of training). ``--quick`` (300 epochs, no tolerance check)
is for tests.

What it writes: stdout, and a loss-curve PNG (``--out``, default
``results/xor_loss.png``) when matplotlib is installed (``pip install
"jbpnn[plot]"``); without it, it says so and writes nothing. Exit status 1 if
the full run does not learn XOR (an output on the wrong side of 0.5).

    python experiments/xor.py [--epochs 5000] [--seed 0] [--out results/xor_loss.png] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import jbpnn  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from _args import output_file  # this folder: the script's own

from jbpnn.cli.options import number, positive_int  # noqa: E402  (the command line's types)
from jbpnn.files import atomic_write
from jbpnn.network import predict
from jbpnn.optimizers import momentum
from jbpnn.params import init_params
from jbpnn.training import TrainResult, train

X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = np.array([[0.0], [1.0], [1.0], [0.0]])


def run(epochs: int, seed: int, tol: float | None, hidden: int = 4) -> TrainResult:
    """Train a 2-``hidden``-1 sigmoid network on XOR, online, with the article's momentum."""
    params = init_params(jax.random.PRNGKey(seed), (2, hidden, 1), "sigmoid", init="article")
    optimizer = momentum(0.5, m=0.5, variant="article")
    return train(params, X, Y, optimizer=optimizer, epochs=epochs, batch_size=1, tol=tol)


def plot_loss(result: TrainResult, out: Path, tol: float | None) -> bool:
    """Save the loss curve to ``out``; False (and a message) if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('matplotlib is not installed: no plot written (pip install "jbpnn[plot]")')
        return False
    loss = result.history["loss"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(np.arange(1, len(loss) + 1), loss, label="epoch loss (mean E)")
    if tol is not None:
        ax.axhline(tol, color="grey", linestyle="--", label=f"tol = {tol:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(f"XOR, 2-4-1 sigmoid, online, article momentum: {result.stop_reason}")
    ax.legend()
    fig.tight_layout()
    kind = out.suffix.lower().lstrip(".")  # PNG where matplotlib knows no such suffix
    kind = kind if kind in fig.canvas.get_supported_filetypes() else "png"
    try:  # all or nothing, never a read-only file (checked before the run too)
        atomic_write(out, lambda f: fig.savefig(f, format=kind, dpi=120), "write --out")
    finally:
        plt.close(fig)
    print(f"loss curve written to {out}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=positive_int, default=5000, help="maximum epochs (rule 3)")
    parser.add_argument("--tol", type=number(0), default=1e-3, help="stop below this loss (rule 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    parser.add_argument("--out", default=str(Path("results") / "xor_loss.png"))
    parser.add_argument("--quick", action="store_true", help="300 epochs, no check (for tests)")
    args = parser.parse_args(argv)
    args.out = output_file(parser, "--out", args.out)  # refused before the run, not after
    epochs, tol = (300, None) if args.quick else (args.epochs, args.tol)

    result = run(epochs, args.seed, tol)
    outputs = np.asarray(predict(result.params, X))[:, 0]
    print(" x1  x2 | target  output")
    for x, t, o in zip(X, Y[:, 0], outputs):
        print(f"{x[0]:3.0f} {x[1]:3.0f} | {t:6.0f}  {o:.4f}")
    print(result)
    plot_loss(result, args.out, tol)
    learnt = bool(np.all((outputs >= 0.5) == (Y[:, 0] >= 0.5)))
    print("XOR learnt" if learnt else "XOR NOT learnt")
    return 0 if learnt or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
