"""Where jbpnn's conventions differ from optax's and PyTorch's, measured, with the exact equivalent.

Each row trains the same digits network (64-32-10, sigmoid hidden units, softmax +
cross-entropy, the same Glorot params, the same 56 unshuffled batches of 32 rows,
20 epochs) with jbpnn's rule and with the other library's closest built-in, and
prints the largest relative difference of the 20 epoch losses. Then the same with
the one-line equivalent this table gives (optax), which must agree to float32
rounding. The contenders run as a plain JAX loop: ``jax.grad`` of the same loss
(autodiff is fine here: this script compares conventions, not derivatives), the
optax transformation, one ``lax.scan`` per epoch.

- momentum under a schedule: jbpnn (and scikit-learn) keep ``lr_t`` inside the
  velocity, ``v = m v - lr_t g``; optax's ``sgd(schedule, momentum)`` and PyTorch's
  ``SGD`` + ``LambdaLR`` scale the velocity, ``v = m v + g; w -= lr_t v``. Equal
  under a constant rate; exact in optax: ``chain(scale_by_schedule(-schedule), trace(m))``.
- Nesterov: the same rule with a constant rate (``variant="nesterov"`` is
  ``optax.sgd(lr, m, nesterov=True)``).
- ``weight_decay``: coupled L2, ``g + wd w`` on every parameter (biases too),
  before Adam's moments: ``optax.chain(add_decayed_weights(wd), adam(lr))`` and
  ``torch.optim.Adam(weight_decay=wd)``; not AdamW (``optax.adamw``, ``torch.optim.AdamW``).

PyTorch rows run when torch is installed (``pip install ".[bench]"``).

Usage: ``python experiments/conventions.py [--epochs 20] [--quick]``
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import jbpnn
from jbpnn.cli.options import positive_int  # noqa: E402  (the command line's type)

SIZES = (64, 32, 10)
BATCH = 32
ROWS = 1792  # 56 full batches of 32: every batch mean weighs the same


def _data():
    d = jbpnn.load_digits()
    X = np.asarray(d.X[:ROWS], np.float32)
    Y = jbpnn.one_hot(d.y[:ROWS], 10).astype(np.float32)
    return X, Y


def _params():
    return jbpnn.init_params(0, SIZES, "sigmoid", "cross_entropy", "glorot")


def _jbpnn_losses(optimizer, epochs):
    X, Y = _data()
    r = jbpnn.train(
        _params(), X, Y, optimizer=optimizer, epochs=epochs, batch_size=BATCH, shuffle=False
    )
    return np.asarray(r.history["loss"], np.float64)


def _optax_losses(tx, epochs):
    """The same network, batches and loss; ``jax.grad`` and an optax transformation."""
    import optax

    X, Y = _data()
    Xb = jnp.asarray(X).reshape(-1, BATCH, X.shape[1])
    Yb = jnp.asarray(Y).reshape(-1, BATCH, Y.shape[1])
    params = _params()

    def batch_loss(p, x, y):
        return jbpnn.loss(p, x, y)

    def step(carry, xy):
        p, s = carry
        value, g = jax.value_and_grad(batch_loss)(p, *xy)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), value

    @jax.jit
    def epoch(carry):
        carry, values = jax.lax.scan(step, carry, (Xb, Yb))
        return carry, jnp.mean(values)

    carry, out = (params, tx.init(params)), []
    for _ in range(epochs):
        carry, value = epoch(carry)
        out.append(float(value))
    return np.asarray(out)


def _torch_losses(make, epochs):
    """The same network in PyTorch (weights copied), ``make(params) -> (opt, sched)``."""
    import torch

    X, Y = _data()
    p = _params()
    w1, b1, w2, b2 = (np.asarray(a) for a in jax.tree.leaves(p))
    lin1, lin2 = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)
    with torch.no_grad():  # torch's Linear holds W as (n_out, n_in): jbpnn's W transposed
        for lin, w, b in ((lin1, w1, b1), (lin2, w2, b2)):
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
    net = torch.nn.Sequential(lin1, torch.nn.Sigmoid(), lin2)
    opt, sched = make(net.parameters())
    Xt, yt = torch.from_numpy(X), torch.from_numpy(Y.argmax(1))
    out = []
    for _ in range(epochs):
        values = []
        for i in range(0, ROWS, BATCH):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(Xt[i : i + BATCH]), yt[i : i + BATCH])
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            values.append(loss.item())
        out.append(float(np.mean(values)))
    return np.asarray(out)


def _worst(a, b):
    return float(np.max(np.abs(a - b) / np.abs(a)))


def rows(epochs, torch_rows=True):
    import optax

    lr, m, power_t, wd = 0.1, 0.9, 0.5, 1e-2
    sched = jbpnn.optimizers.inverse_scaling(lr, power_t)

    def optax_sched(count):
        return lr / (count + 1.0) ** power_t

    out = []
    mom = _jbpnn_losses(jbpnn.momentum(sched, m), epochs)
    out.append(
        (
            "momentum 0.9, lr 0.1/(t+1)^0.5",
            "optax.sgd(schedule, momentum=0.9)",
            _worst(mom, _optax_losses(optax.sgd(optax_sched, m), epochs)),
        )
    )
    exact = optax.chain(optax.scale_by_schedule(lambda c: -optax_sched(c)), optax.trace(m))
    out.append(
        (
            "",
            "chain(scale_by_schedule(-sched), trace(0.9))",
            _worst(mom, _optax_losses(exact, epochs)),
        )
    )
    const = _jbpnn_losses(jbpnn.momentum(lr, m), epochs)
    out.append(
        (
            "momentum 0.9, lr 0.1 constant",
            "optax.sgd(0.1, momentum=0.9)",
            _worst(const, _optax_losses(optax.sgd(lr, m), epochs)),
        )
    )
    nest = _jbpnn_losses(jbpnn.momentum(lr, m, variant="nesterov"), epochs)
    out.append(
        (
            "nesterov 0.9, lr 0.1 constant",
            "optax.sgd(0.1, 0.9, nesterov=True)",
            _worst(nest, _optax_losses(optax.sgd(lr, m, nesterov=True), epochs)),
        )
    )
    adam_wd = _jbpnn_losses(jbpnn.adam(1e-3, weight_decay=wd), epochs)
    out.append(
        (
            "adam 1e-3, weight_decay 1e-2",
            "optax.adamw(1e-3, weight_decay=1e-2)",
            _worst(adam_wd, _optax_losses(optax.adamw(1e-3, weight_decay=wd), epochs)),
        )
    )
    coupled = optax.chain(optax.add_decayed_weights(wd), optax.adam(1e-3))
    out.append(
        (
            "",
            "chain(add_decayed_weights(1e-2), adam(1e-3))",
            _worst(adam_wd, _optax_losses(coupled, epochs)),
        )
    )
    if not torch_rows:
        return out
    try:
        import torch
    except ImportError:
        out.append(("PyTorch rows", "torch not installed", float("nan")))
        return out

    def sgd_lambda(ps):
        opt = torch.optim.SGD(ps, lr=lr, momentum=m)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda c: 1 / (c + 1.0) ** power_t)

    out.append(
        (
            "momentum 0.9, lr 0.1/(t+1)^0.5",
            "torch SGD(momentum=0.9) + LambdaLR",
            _worst(mom, _torch_losses(sgd_lambda, epochs)),
        )
    )
    out.append(
        (
            "momentum 0.9, lr 0.1 constant",
            "torch SGD(lr=0.1, momentum=0.9)",
            _worst(
                const,
                _torch_losses(lambda ps: (torch.optim.SGD(ps, lr=lr, momentum=m), None), epochs),
            ),
        )
    )
    out.append(
        (
            "adam 1e-3, weight_decay 1e-2",
            "torch Adam(1e-3, weight_decay=1e-2)",
            _worst(
                adam_wd,
                _torch_losses(
                    lambda ps: (torch.optim.Adam(ps, lr=1e-3, weight_decay=wd), None), epochs
                ),
            ),
        )
    )
    out.append(
        (
            "",
            "torch AdamW(1e-3, weight_decay=1e-2)",
            _worst(
                adam_wd,
                _torch_losses(
                    lambda ps: (torch.optim.AdamW(ps, lr=1e-3, weight_decay=wd), None), epochs
                ),
            ),
        )
    )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=positive_int, default=20)
    ap.add_argument("--quick", action="store_true", help="2 epochs, the optax rows only (tests)")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs = 2
    start = time.perf_counter()
    print(
        f"digits {'-'.join(map(str, SIZES))}, batches of {BATCH}, unshuffled, "
        f"{args.epochs} epochs: max relative difference of the epoch losses"
    )
    print(f"{'jbpnn':32s} {'other library':46s} {'max rel. diff':>13s}")
    for ours, theirs, diff in rows(args.epochs, torch_rows=not args.quick):
        print(f"{ours:32s} {theirs:46s} {diff:13.2e}")
    print(f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
