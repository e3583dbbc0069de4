"""The article's BPNN in pure Python: lists and loops, no NumPy, no JAX.

The benchmark's baseline (``experiments/bench.py``): what the article's code
costs when its bugs are fixed (ARTICLE.md section 4) -- a real logistic sigmoid
with its derivative ``O(1 - O)``, biases that reach the forward pass, a bias on
the output units -- and nothing else is changed: one example at a time, one
Python multiply-add per weight, the article's ``update`` / ``backpropagate`` /
``train`` / ``fit`` methods.

Formulas (ARTICLE.md section 1), per example, ``O_0 = x``:

    forward   net_j = sum_i w_ij O_i + theta_j        O_j = 1 / (1 + exp(-net_j))
    output    Err_k = O_k (1 - O_k) (T_k - O_k)
    hidden    Err_j = O_j (1 - O_j) sum_k Err_k w_jk   (weights before the update)
    change    change_ij = Err_j O_i                   (= -dE/dw_ij, E = 1/2 sum_k (T_k - O_k)^2)

and the update, in one of two momentum rules:

    article     w_ij += lr change_ij + m prev_change_ij;   prev_change = change
    classical   v_ij = m v_ij + lr change_ij;  w_ij += v_ij   (= jbpnn's "classical",
                                                               = torch.optim.SGD momentum)

Any number of layers (the article's is one hidden layer). Python floats are
doubles, so this computes in float64.

Run as a script, it is the article's demo 1 (5-10-1, six patterns, 1000 epochs,
lr 0.1, m 0.1) and prints the outputs for the ten test rows; stdlib only, so
``python experiments/pure_python_bpnn.py`` starts in tens of milliseconds.
Takes about 1 s on a 2-core CPU.

    python experiments/pure_python_bpnn.py [--epochs 1000]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Sequence

from _args import at_least  # noqa: E402  (this folder: the script's own)

# ARTICLE.md section 3, demo 1 (the same data as jbpnn.oracles.DEMO_TRAIN / DEMO_TEST,
# copied so that this file imports nothing but the standard library).
A, B = [1, 0, 1, 0, 1], [1, 0, 1, 1, 1]
DEMO_TRAIN = [[A, [1]], [A, [1]], [A, [1]], [B, [0]], [A, [1]], [B, [0]]]
DEMO_TEST = [A, A, B, A, B, A, A, B, A, [1, 1, 1, 0, 1]]

MOMENTUM_RULES = ("article", "classical")


def sigmoid(net: float) -> float:
    """The logistic sigmoid ``1 / (1 + exp(-net))``, without overflow for any ``net``."""
    if net >= 0:
        return 1.0 / (1.0 + math.exp(-net))
    z = math.exp(net)
    return z / (1.0 + z)


class PureBPNN:
    """A fully connected sigmoid network trained online, in pure Python.

    Args:
        n_in: number of inputs.
        n_out: number of outputs.
        n_hidden: hidden units (one hidden layer), ignored when ``layers`` is given.
        lr: learning rate ``l``.
        m: momentum factor.
        seed: seed of :mod:`random` for the initial weights, uniform in ``[-0.2, 0.2]``.
        momentum: ``"article"`` or ``"classical"`` (see the module docstring).
        layers: optional initial ``[(w, b), ...]``, ``w[i][j]`` the weight from unit
            ``i`` below to unit ``j`` (nested lists or anything ``float()`` reads), ``b[j]``
            the bias; the benchmark passes jbpnn's initial weights here.

    Attributes:
        w, b: per layer, ``w[l][i][j]`` and ``b[l][j]`` (lists of floats).
        last_loss: ``E = 1/2 sum_k (T_k - O_k)^2`` of the last :meth:`backpropagate`.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        n_hidden: int = 10,
        lr: float = 0.1,
        m: float = 0.1,
        seed: int = 0,
        momentum: str = "article",
        layers: Sequence | None = None,
    ):
        if momentum not in MOMENTUM_RULES:
            raise ValueError(f"momentum must be one of {MOMENTUM_RULES}, got {momentum!r}")
        self.lr, self.m, self.momentum = float(lr), float(m), momentum
        if layers is None:
            rng = random.Random(seed)
            sizes = [n_in, n_hidden, n_out]
            layers = [
                (
                    [[rng.uniform(-0.2, 0.2) for _ in range(b)] for _ in range(a)],
                    [rng.uniform(-0.2, 0.2) for _ in range(b)],
                )
                for a, b in zip(sizes, sizes[1:])
            ]
        self.w = [[[float(v) for v in row] for row in w] for w, _ in layers]
        self.b = [[float(v) for v in b] for _, b in layers]
        if len(self.w[0]) != n_in or len(self.b[-1]) != n_out:
            raise ValueError(
                f"layers give {len(self.w[0])} inputs and {len(self.b[-1])} outputs, "
                f"expected {n_in} and {n_out}"
            )
        # prev_change (article) or velocity (classical), per weight and bias
        self.cw = [[[0.0] * len(row) for row in w] for w in self.w]
        self.cb = [[0.0] * len(b) for b in self.b]
        self.outputs: list[list[float]] = []
        self.last_loss = math.nan

    # -- the article's methods ------------------------------------------------
    def update(self, inputs: Sequence[float]) -> list[float]:
        """Forward pass of one example; keeps every layer's outputs for :meth:`backpropagate`."""
        if len(inputs) != len(self.w[0]):
            raise ValueError(
                f"Your data length is {len(inputs)}, but our input needs {len(self.w[0])}"
            )
        o = [float(v) for v in inputs]
        self.outputs = [o]
        for w, b in zip(self.w, self.b):
            o = [
                sigmoid(sum(o[i] * w[i][j] for i in range(len(o))) + b[j])  # O_j = f(net_j)
                for j in range(len(b))
            ]
            self.outputs.append(o)
        return list(o)

    def backpropagate(self, targets: Sequence[float]) -> float:
        """One update of every weight and bias from the last :meth:`update`'s example.

        Returns:
            The article's error, ``sqrt(mean_k (T_k - O_k)^2)`` on the outputs before
            the update; :attr:`last_loss` gets ``E = 1/2 sum_k (T_k - O_k)^2``.
        """
        out = self.outputs[-1]
        if len(targets) != len(out):
            raise ValueError(
                f"Your target length is {len(targets)}, but our output needs {len(out)}"
            )
        t = [float(v) for v in targets]
        # Output layer: Err_k = O_k (1 - O_k) (T_k - O_k).
        err = [o * (1.0 - o) * (tk - o) for o, tk in zip(out, t)]
        errs = [err]
        for l in range(len(self.w) - 1, 0, -1):  # noqa: E741
            w, o_l = self.w[l], self.outputs[l]
            # Hidden layer: Err_j = O_j (1 - O_j) sum_k Err_k w_jk (weights before the update).
            err = [
                o_l[j] * (1.0 - o_l[j]) * sum(err[k] * w[j][k] for k in range(len(err)))
                for j in range(len(o_l))
            ]
            errs.append(err)
        errs.reverse()
        lr, m, article = self.lr, self.m, self.momentum == "article"
        for l, err in enumerate(errs):  # noqa: E741
            o_prev, w, b, cw, cb = self.outputs[l], self.w[l], self.b[l], self.cw[l], self.cb[l]
            for i, o_i in enumerate(o_prev):
                w_i, c_i = w[i], cw[i]
                for j, err_j in enumerate(err):
                    change = err_j * o_i  # change_ij = Err_j O_i = -dE/dw_ij
                    if article:
                        w_i[j] += lr * change + m * c_i[j]  # w += l change + m prev_change
                        c_i[j] = change
                    else:
                        c_i[j] = m * c_i[j] + lr * change  # v = m v + l change; w += v
                        w_i[j] += c_i[j]
            for j, err_j in enumerate(err):  # the bias: a weight from a unit whose O is 1
                if article:
                    b[j] += lr * err_j + m * cb[j]
                    cb[j] = err_j
                else:
                    cb[j] = m * cb[j] + lr * err_j
                    b[j] += cb[j]
        sq = sum((tk - o) ** 2 for o, tk in zip(out, t))
        self.last_loss = 0.5 * sq
        return math.sqrt(sq / len(out))

    def train(self, data: Sequence, epochs: int = 1000, verbose: bool = True) -> list[float]:
        """Online training over ``[[x, y], ...]`` in order; returns each epoch's summed error."""
        errors = []
        for _ in range(epochs):
            err = 0.0
            for x, y in data:
                self.update(x)
                err += self.backpropagate(y)
            errors.append(err)
        if verbose:
            print(f"Err: {min(errors)}")
        return errors

    def fit(self, xs: Sequence) -> list[list[float]]:
        """The article's name for predicting: the outputs for each input."""
        return [self.update(x) for x in xs]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The article's demo 1 in pure Python.")
    parser.add_argument("--epochs", type=at_least(1), default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    net = PureBPNN(5, 1, seed=args.seed)
    net.train(DEMO_TRAIN, epochs=args.epochs)
    print(net.fit(DEMO_TEST))
    return 0


if __name__ == "__main__":
    sys.exit(main())
