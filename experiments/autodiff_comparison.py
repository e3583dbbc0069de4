"""Hand-derived gradients against autodiff: correctness, speed, precision, article mode.

What it shows, in four sections:

1. Correctness. For every valid (loss, output activation) pair, every hidden
   activation and depths 1 to 4: the largest relative error of the hand-derived
   batch gradient (``jbpnn.network.batch_gradient``) against ``jax.grad`` in
   float32 and in float64, and against central finite differences in float64
   (``jbpnn.gradcheck``; relative error = |hand - ref| / max(|hand|, |ref|, floor/rtol),
   the floor following each leaf's own scale: see ``jbpnn.gradcheck.LeafCheck``).
2. Speed. The same jitted training loop (``lax.scan`` of SGD steps over
   minibatches) run twice, once with the hand-derived ``loss_and_gradient_kernel``
   and once with ``jax.value_and_grad`` of the same loss: nothing else differs.
   Median time per step and per epoch (4096 examples) over widths 16..2048,
   depths 1..4 and batch sizes 1..4096, with the ratio hand / autodiff; steps
   whose cost exceeds a flop budget are skipped and listed. Also per-example
   gradients: ``vmap(backward)`` against ``vmap(jax.grad)``.
3. Precision. The sigmoid derivative written from the output, O(1-O), against
   sigma(z) sigma(-z), for large z in float32 and float64: where O(1-O) rounds to
   0 (measured, not assumed), and what that means for jbpnn's backward pass.
4. The article mode (ARTICLE.md section 4): its gradcheck report, which fails
   on the layers with the article's tanh-valued "sigmoid" and on every bias,
   next to the same network with a correct ``tanh``, which passes.

Run time: about 5-8 minutes for the full grid on a 2-core CPU (most of it in
section 2); ``--quick`` takes about 15 seconds.

Outputs: the tables on stdout; ``<out-dir>/autodiff_comparison.json`` (every
number printed, plus the machine); ``<out-dir>/autodiff_speed_ratio.png``
(hand/autodiff time ratio against width, one line per batch size, one panel per
depth; skipped with a message if matplotlib is missing).

    python experiments/autodiff_comparison.py [--quick] [--out-dir results/]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _args import output_file, write_json  # this folder: the script's own

from jbpnn.cli.options import positive_int  # noqa: E402  (the command line's type)
from jbpnn.files import atomic_write
from jbpnn.gradcheck import gradcheck, random_batch, reference_loss
from jbpnn.losses import VALID_PAIRS
from jbpnn.network import backward, forward, loss_and_gradient, loss_and_gradient_kernel
from jbpnn.params import MLP, init_params

HIDDEN = ("sigmoid", "tanh", "relu", "identity")
EPOCH_EXAMPLES = 4096  # an "epoch" in the speed table: one pass over this many examples
FLOPS_PER_CALL = 4e9  # steps per timed scan are chosen so that one call costs about this
MAX_STEP_FLOPS = 8e10  # configurations whose single step costs more are skipped


_T0 = time.perf_counter()


def banner(title: str) -> None:
    print(f"\n== {title}  [t = {time.perf_counter() - _T0:.0f} s]\n")


def table(header: list[str], rows: list[list[str]], left: int = 0) -> str:
    """Aligned columns: the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r):
        cells = [
            str(v).ljust(w) if i < left else str(v).rjust(w)
            for i, (v, w) in enumerate(zip(r, widths))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)])


# ---------------------------------------------------------------- 1. correctness
def correctness(quick: bool) -> list[dict]:
    pairs = VALID_PAIRS if not quick else [("mse", "sigmoid"), ("cross_entropy", "softmax")]
    hidden = HIDDEN if not quick else ("tanh",)
    depths = (1, 2, 3, 4) if not quick else (2,)
    configs = [
        (loss, out, h, d)
        for (loss, out) in pairs
        for d in depths
        for h in (hidden if d > 1 else ("-",))
    ]
    rows = []
    for i, (loss, out, h, depth) in enumerate(configs):
        sizes = [8] + [16] * (depth - 1) + [4]
        acts = [h] * (depth - 1) + [out]
        key_p, key_x = jax.random.split(jax.random.key(i))
        row = {"loss": loss, "output": out, "hidden": h, "depth": depth, "sizes": sizes}
        p32 = init_params(key_p, sizes, acts, loss, init="he", dtype=jnp.float32)
        X, Y = random_batch(key_x, p32, 32)
        r32 = gradcheck(p32, X, Y)
        with jax.enable_x64(True):
            p64 = init_params(key_p, sizes, acts, loss, init="he", dtype=jnp.float64)
            X, Y = random_batch(key_x, p64, 32)
            r64 = gradcheck(p64, X, Y)
            rfd = gradcheck(p64, X, Y, reference="finite_difference")
        row["n_params"] = int(sum(layer.w.size + layer.b.size for layer in p32.layers))
        for name, r in (("f32_autodiff", r32), ("f64_autodiff", r64), ("f64_fd", rfd)):
            row[name] = {
                "max_rel_err": r.max_rel_err,
                "max_abs_err": r.max_abs_err,
                "rtol": r.rtol,
                "atol": r.atol,
                "passed": r.passed,
            }
        row["passed"] = r32.passed and r64.passed and rfd.passed
        rows.append(row)

    header = [
        "loss",
        "output",
        "hidden",
        "depth",
        "params",
        "f32 vs jax.grad",
        "f64 vs jax.grad",
        "f64 vs fin.diff",
        "all pass",
    ]
    print(
        table(
            header,
            [
                [
                    r["loss"],
                    r["output"],
                    r["hidden"],
                    r["depth"],
                    r["n_params"],
                    f"{r['f32_autodiff']['max_rel_err']:.1e}",
                    f"{r['f64_autodiff']['max_rel_err']:.1e}",
                    f"{r['f64_fd']['max_rel_err']:.1e}",
                    "yes" if r["passed"] else "NO",
                ]
                for r in rows
            ],
            left=3,
        )
    )
    worst = {
        k: max(r[k]["max_rel_err"] for r in rows)
        for k in ("f32_autodiff", "f64_autodiff", "f64_fd")
    }
    tol = {k: rows[0][k]["rtol"] for k in worst}
    print(
        f"\n{sum(r['passed'] for r in rows)} of {len(rows)} configurations pass all three "
        f"checks (batch 32, he init, widths 8-16-...-4). Worst max relative error: "
        f"float32 vs jax.grad {worst['f32_autodiff']:.1e} (rtol {tol['f32_autodiff']:.0e}), "
        f"float64 vs jax.grad {worst['f64_autodiff']:.1e} (rtol {tol['f64_autodiff']:.0e}), "
        f"float64 vs finite differences {worst['f64_fd']:.1e} (rtol {tol['f64_fd']:.0e})."
    )
    return rows


# ---------------------------------------------------------------- 2. speed
def make_epoch(grad_fn, lr: float = 0.01):
    """A jitted epoch: ``lax.scan`` of SGD steps over minibatches ``(S, B, ...)``.

    ``grad_fn(params, X, Y) -> (mean loss, grads)`` is the only thing that varies.
    """

    @jax.jit
    def epoch(params: MLP, Xb: jax.Array, Yb: jax.Array):
        def step(p, batch):
            value, g = grad_fn(p, *batch)
            return jax.tree.map(lambda a, b: a - lr * b, p, g), value

        return jax.lax.scan(step, params, (Xb, Yb))

    return epoch


HAND_EPOCH = make_epoch(lambda p, X, Y: loss_and_gradient_kernel(p, X, Y))
AUTODIFF_EPOCH = make_epoch(jax.value_and_grad(reference_loss))


MIN_SAMPLE_S = 0.02  # each timed sample repeats a fast call until it lasts about this long


def _timed(fn, *args, calls: int = 1) -> float:
    """Seconds per call of ``fn(*args)``, averaged over ``calls`` back-to-back calls."""
    t = time.perf_counter()
    for _ in range(calls):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - t) / calls


def time_pair(
    fn_a, fn_b, args: tuple, repeats: int, warmup: int = 2
) -> tuple[float, float, float, float]:
    """Median seconds per call of two functions, and their compile times.

    Compiles both, warms up, then alternates timed samples (a, b, a, b, ...) so
    that load from other processes hits both alike; a sample averages enough
    back-to-back calls to last about ``MIN_SAMPLE_S``.
    """
    compile_a, compile_b = _timed(fn_a, *args), _timed(fn_b, *args)
    fastest = min(min(_timed(fn_a, *args), _timed(fn_b, *args)) for _ in range(warmup))
    calls = int(np.clip(np.ceil(MIN_SAMPLE_S / max(fastest, 1e-7)), 1, 1000))
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_timed(fn_a, *args, calls=calls))
        tb.append(_timed(fn_b, *args, calls=calls))
    return statistics.median(ta), statistics.median(tb), compile_a, compile_b


def speed(quick: bool, repeats: int) -> tuple[list[dict], list[dict]]:
    widths = (16, 64, 256, 1024, 2048) if not quick else (16, 64)
    depths = (1, 2, 3, 4) if not quick else (2,)
    batches = (1, 16, 256, 4096) if not quick else (32,)
    rows, skipped = [], []
    for depth in depths:
        for width in widths:
            sizes = [width] * depth + [10]
            params = init_params(jax.random.key(0), sizes, "tanh", "cross_entropy", init="he")
            n_params = sum(layer.w.size + layer.b.size for layer in params.layers)
            for batch in batches:
                step_flops = 6.0 * batch * n_params  # forward 2BP + backward 4BP
                if step_flops > MAX_STEP_FLOPS:
                    skipped.append(
                        {"width": width, "depth": depth, "batch": batch, "step_flops": step_flops}
                    )
                    continue
                steps = int(np.clip(FLOPS_PER_CALL // step_flops, 2, max(2, 4096 // batch)))
                if quick:
                    steps = min(steps, 64)
                kx, ky = jax.random.split(jax.random.key(1))
                Xb = jax.random.normal(kx, (steps, batch, width), jnp.float32)
                Yb = jax.nn.one_hot(jax.random.randint(ky, (steps, batch), 0, 10), 10)
                t_hand, t_ad, c_hand, c_ad = time_pair(
                    HAND_EPOCH, AUTODIFF_EPOCH, (params, Xb, Yb), repeats, warmup=1 + (not quick)
                )
                per_epoch = EPOCH_EXAMPLES / batch
                rows.append(
                    {
                        "width": width,
                        "depth": depth,
                        "batch": batch,
                        "n_params": int(n_params),
                        "steps_timed": steps,
                        "hand_step_s": t_hand / steps,
                        "autodiff_step_s": t_ad / steps,
                        "hand_epoch_s": t_hand / steps * per_epoch,
                        "autodiff_epoch_s": t_ad / steps * per_epoch,
                        "ratio": t_hand / t_ad,
                        "hand_compile_s": c_hand,
                        "autodiff_compile_s": c_ad,
                    }
                )
    print(
        table(
            [
                "depth",
                "width",
                "batch",
                "params",
                "steps",
                "hand step",
                "autodiff step",
                "hand epoch",
                "autodiff epoch",
                "hand/autodiff",
            ],
            [
                [
                    r["depth"],
                    r["width"],
                    r["batch"],
                    r["n_params"],
                    r["steps_timed"],
                    _ms(r["hand_step_s"]),
                    _ms(r["autodiff_step_s"]),
                    _ms(r["hand_epoch_s"]),
                    _ms(r["autodiff_epoch_s"]),
                    f"{r['ratio']:.2f}",
                ]
                for r in rows
            ],
        )
    )
    ratios = np.array([r["ratio"] for r in rows])
    print(
        f"\nhand/autodiff time ratio over {len(rows)} configurations: median "
        f"{np.median(ratios):.2f}, range {ratios.min():.2f} to {ratios.max():.2f}; "
        f"{int((ratios < 0.9).sum())} below 0.9 (hand faster), {int((ratios > 1.1).sum())} "
        f"above 1.1 (autodiff faster). Median of {repeats} alternating samples (each at least "
        f"{MIN_SAMPLE_S * 1e3:.0f} ms of back-to-back calls); 'steps' "
        f"SGD steps per timed scan; epoch = {EPOCH_EXAMPLES} examples = step time x "
        f"{EPOCH_EXAMPLES}/batch (extrapolated when fewer steps were timed). Network: "
        "tanh hidden layers of `width` units, `width` inputs, softmax + cross entropy on "
        "10 outputs, float32."
    )
    if skipped:
        print(
            "skipped (one step over "
            f"{MAX_STEP_FLOPS:.0e} flops, too slow for this budget): "
            + ", ".join(f"w{s['width']} d{s['depth']} b{s['batch']}" for s in skipped)
        )
    return rows, skipped


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 1 else f"{seconds:.2f} s"


def per_example_speed(quick: bool, repeats: int) -> list[dict]:
    def hand_one(p, x, y):
        _, cache = forward(p, x)
        return backward(p, cache, y)

    hand = jax.jit(jax.vmap(hand_one, in_axes=(None, 0, 0)))
    ad = jax.jit(
        jax.vmap(
            jax.grad(lambda p, x, y: reference_loss(p, x[None], y[None])), in_axes=(None, 0, 0)
        )
    )
    configs = [((64, 256, 10), 256), ((256, 512, 512, 10), 256)]
    if quick:
        configs = [((16, 32, 10), 32)]
    rows = []
    for sizes, batch in configs:
        params = init_params(jax.random.key(0), sizes, "tanh", "cross_entropy", init="he")
        X, Y = random_batch(jax.random.key(1), params, batch)
        same = all(
            bool(np.allclose(a, b, rtol=1e-4, atol=1e-6))
            for a, b in zip(jax.tree.leaves(hand(params, X, Y)), jax.tree.leaves(ad(params, X, Y)))
        )
        t_hand, t_ad, _, _ = time_pair(hand, ad, (params, X, Y), repeats)
        rows.append(
            {
                "sizes": list(sizes),
                "batch": batch,
                "hand_s": t_hand,
                "autodiff_s": t_ad,
                "ratio": t_hand / t_ad,
                "allclose": same,
            }
        )
    print(
        table(
            ["sizes", "batch", "vmap(backward)", "vmap(jax.grad)", "hand/autodiff", "allclose"],
            [
                [
                    "-".join(map(str, r["sizes"])),
                    r["batch"],
                    _ms(r["hand_s"]),
                    _ms(r["autodiff_s"]),
                    f"{r['ratio']:.2f}",
                    "yes" if r["allclose"] else "NO",
                ]
                for r in rows
            ],
            left=1,
        )
    )
    return rows


def plot_speed(rows: list[dict], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('matplotlib is not installed: no plot (pip install "jbpnn[plot]")')
        return None
    depths = sorted({r["depth"] for r in rows})
    fig, axes = plt.subplots(
        1, len(depths), figsize=(4 * len(depths), 3.6), sharey=True, squeeze=False
    )
    for ax, depth in zip(axes[0], depths):
        for batch in sorted({r["batch"] for r in rows}):
            pts = sorted(
                (r["width"], r["ratio"])
                for r in rows
                if r["depth"] == depth and r["batch"] == batch
            )
            if pts:
                ax.plot(*zip(*pts), marker="o", label=f"batch {batch}")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log", base=2)
        ax.set_title(f"depth {depth}")
        ax.set_xlabel("width (units per layer)")
    axes[0][0].set_ylabel("time ratio hand / autodiff\n(< 1: hand-derived faster)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(
        f"jitted SGD epoch: hand-derived gradient vs jax.value_and_grad ({jax.default_backend()})"
    )
    fig.tight_layout()
    try:  # all or nothing, never a read-only file (checked before the run too)
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120), "write --out-dir")
    finally:
        plt.close(fig)
    return str(path)


# ---------------------------------------------------------------- 3. precision
@jax.jit
def sigmoid_derivatives(z: jax.Array) -> dict[str, jax.Array]:
    """For net inputs z: O(1-O), sigma(z) sigma(-z), tanh's 1 - O^2 and jax.grad(sigmoid)."""
    o, t = jax.nn.sigmoid(z), jnp.tanh(z)
    return {
        "O(1-O)": o * (1 - o),
        "sigma*sigma": jax.nn.sigmoid(z) * jax.nn.sigmoid(-z),
        "tanh 1-O^2": 1 - t**2,
        "jax.grad(sigmoid)": jax.vmap(jax.grad(jax.nn.sigmoid))(z),
    }


def exact_sigmoid_derivative(z: np.ndarray) -> np.ndarray:
    """sigma'(z) = e^-|z| / (1 + e^-|z|)^2 in float64: a few ulp, the reference here."""
    e = np.exp(-np.abs(np.asarray(z, np.float64)))
    return e / (1 + e) ** 2


def precision() -> dict:
    """Measure where O(1-O) rounds to 0 while sigma(z) sigma(-z) does not."""
    out = {"thresholds": {}, "rows": []}
    row_z = np.array([-30.0, 5.0, 10.0, 15.0, 16.0, 17.0, 17.5, 20.0, 30.0, 36.0, 37.0, 40.0])
    exact_rows = exact_sigmoid_derivative(row_z)
    out["rows"] = [{"z": float(z), "exact": float(e)} for z, e in zip(row_z, exact_rows)]
    grad_fn = jax.jit(jax.grad(reference_loss))
    with jax.enable_x64(True):
        for dtype in ("float32", "float64"):
            z = jnp.arange(0, 60, 1e-3, dtype=dtype)
            d = {k: np.asarray(v, np.float64) for k, v in sigmoid_derivatives(z).items()}
            zg = np.asarray(z, np.float64)
            rel = np.abs(d["O(1-O)"] - exact_sigmoid_derivative(zg)) / exact_sigmoid_derivative(zg)
            out["thresholds"][dtype] = {
                "sigmoid_one_minus_O_is_0_from_z": float(zg[np.argmax(d["O(1-O)"] == 0)]),
                "sigmoid_rel_err_over_1pct_from_z": float(zg[np.argmax(rel > 0.01)]),
                "sigma_z_sigma_minus_z_positive_at_60": bool(d["sigma*sigma"][-1] > 0),
                "tanh_one_minus_O2_is_0_from_z": float(zg[np.argmax(d["tanh 1-O^2"] == 0)]),
                "jax_grad_sigmoid_is_0_from_z": float(zg[np.argmax(d["jax.grad(sigmoid)"] == 0)]),
            }
            r = sigmoid_derivatives(jnp.asarray(row_z, dtype))
            a, b = np.asarray(r["O(1-O)"], np.float64), np.asarray(r["sigma*sigma"], np.float64)
            for i, row in enumerate(out["rows"]):
                row[dtype] = {
                    "O(1-O)": float(a[i]),
                    "sigma*sigma": float(b[i]),
                    "rel_err_O(1-O)": float(abs(a[i] - exact_rows[i]) / exact_rows[i]),
                    "rel_err_sigma*sigma": float(abs(b[i] - exact_rows[i]) / exact_rows[i]),
                }
        # What it does to a gradient: one sigmoid output unit, net = z (x = 1), target 0.
        for dtype in ("float32", "float64"):
            for z in (20.0, 40.0):
                for loss in ("mse", "binary_cross_entropy"):
                    p = MLP.from_layers([([[z]], [0.0])], "sigmoid", loss, dtype=dtype)
                    X, Y = jnp.ones((1, 1), dtype), jnp.zeros((1, 1), dtype)
                    g = loss_and_gradient(p, X, Y)[1].layers[0].w
                    ga = grad_fn(p, X, Y).layers[0].w
                    sig, sig_neg = 1 / (1 + np.exp(-z)), 1 / (1 + np.exp(z))
                    exact = sig * sig * sig_neg if loss == "mse" else sig  # dE/dw, T = 0
                    out.setdefault("saturated_unit", []).append(
                        {
                            "dtype": dtype,
                            "z": z,
                            "loss": loss,
                            "hand_dE_dw": float(g[0, 0]),
                            "autodiff_dE_dw": float(ga[0, 0]),
                            "exact_dE_dw": float(exact),
                        }
                    )

    rows = out["rows"]
    hdr = [
        "z",
        "exact s(z)s(-z)",
        "f32 O(1-O)",
        "f32 s(z)s(-z)",
        "f32 rel.err O(1-O)",
        "f64 O(1-O)",
        "f64 s(z)s(-z)",
        "f64 rel.err O(1-O)",
    ]
    print(
        table(
            hdr,
            [
                [
                    f"{r['z']:g}",
                    f"{r['exact']:.3e}",
                    f"{r['float32']['O(1-O)']:.3e}",
                    f"{r['float32']['sigma*sigma']:.3e}",
                    f"{r['float32']['rel_err_O(1-O)']:.1e}",
                    f"{r['float64']['O(1-O)']:.3e}",
                    f"{r['float64']['sigma*sigma']:.3e}",
                    f"{r['float64']['rel_err_O(1-O)']:.1e}",
                ]
                for r in rows
            ],
        )
    )
    print()
    for dtype, th in out["thresholds"].items():
        print(
            f"{dtype}: O(1-O) error > 1% from z = {th['sigmoid_rel_err_over_1pct_from_z']:.3f}, "
            f"O(1-O) = 0 from z = {th['sigmoid_one_minus_O_is_0_from_z']:.3f} (sigma(z)"
            f"sigma(-z) still > 0 at z = 60: {th['sigma_z_sigma_minus_z_positive_at_60']}); "
            f"jax.grad(jax.nn.sigmoid) = 0 from z = {th['jax_grad_sigmoid_is_0_from_z']:.3f}; "
            f"tanh's 1 - O^2 = 0 from |z| = {th['tanh_one_minus_O2_is_0_from_z']:.3f}"
        )
    print("\none sigmoid output unit, net input z (x = 1, w = z), target 0: dE/dw")
    print(
        table(
            ["dtype", "loss", "z", "exact", "hand-derived", "jax.grad"],
            [
                [
                    s["dtype"],
                    s["loss"],
                    f"{s['z']:g}",
                    f"{s['exact_dE_dw']:.3e}",
                    f"{s['hand_dE_dw']:.3e}",
                    f"{s['autodiff_dE_dw']:.3e}",
                ]
                for s in out["saturated_unit"]
            ],
            left=2,
        )
    )
    s32 = out["thresholds"]["float32"]["sigmoid_one_minus_O_is_0_from_z"]
    s64 = out["thresholds"]["float64"]["sigmoid_one_minus_O_is_0_from_z"]
    tanh32 = out["thresholds"]["float32"]["tanh_one_minus_O2_is_0_from_z"]
    print(f"""
What jbpnn does: like the article, it writes every derivative from the unit's output
O (the sigmoid's f' = O(1-O)), so a sigmoid unit with net input z above {s32:.1f} (float32)
or {s64:.1f} (float64) passes no gradient at all: O rounds to 1 and 1 - O to 0, while the
true derivative sigma(z) sigma(-z) is still representable. On the negative side O is
tiny but exact and 1 - O = 1, so O(1-O) stays accurate. Autodiff does no better:
jax.nn.sigmoid's own derivative rule is written from its output too, and jax.grad
returns the same 0. The output layer avoids the factor where it matters: with the
pairs cross_entropy + softmax and binary_cross_entropy + sigmoid the output delta is
T - O, exact and nonzero for a saturated wrong unit, whereas mse + sigmoid multiplies
by O(1-O) and stalls (rows above). There the hand-derived gradient is right and
jax.grad is not: autodiff differentiates the loss's log, which has to be clipped
where 1 - O rounds to 0, and the clipped loss is flat (finite differences read 0
too). So a gradcheck mismatch on saturated sigmoid outputs with binary_cross_entropy
is the reference failing, not the backward pass. Hidden sigmoid units
have no escape; tanh's 1 - O^2 (XLA's tanh) is exactly 0 from |z| = {tanh32:.2f} in
float32. Keep inputs scaled and weights small (the article's init is U[-0.2, 0.2]).""")
    return out


# ---------------------------------------------------------------- 4. article mode
ARTICLE_DEMO1_X = [[1, 0, 1, 0, 1]] * 3 + [[1, 0, 1, 1, 1], [1, 0, 1, 0, 1], [1, 0, 1, 1, 1]]
ARTICLE_DEMO1_Y = [[1], [1], [1], [0], [1], [0]]


def article_mode(quick: bool = False) -> dict:
    """The article code's network (5-10-1, "sigmoid", its init) on its demo-1 data."""
    key = jax.random.key(0)
    X = np.asarray(ARTICLE_DEMO1_X, np.float32)
    Y = np.asarray(ARTICLE_DEMO1_Y, np.float32)
    bad = init_params(key, (5, 10, 1), "sigmoid", "mse", init="article", article_mode=True)
    good = init_params(key, (5, 10, 1), "tanh", "mse", init="article")
    report, good_report = gradcheck(bad, X, Y), gradcheck(good, X, Y)
    print(report)
    out = {**report.to_dict(), "correct_tanh": good_report.to_dict()}
    verdict = lambda r: "PASSED" if r.passed else f"FAILED {r.failed}"  # noqa: E731
    if not quick:
        fd = gradcheck(bad, X, Y, reference="finite_difference")
        good_fd = gradcheck(good, X, Y, reference="finite_difference")
        print(
            f"\nthe same article-mode network against finite differences (float64): {verdict(fd)}"
        )
        out |= {
            "finite_difference": fd.to_dict(),
            "correct_tanh_finite_difference": good_fd.to_dict(),
        }
    print(
        f"the same weights as a correct tanh network: jax.grad {verdict(good_report)} "
        f"(max rel err {good_report.max_rel_err:.1e})"
        + (
            ""
            if quick
            else f", finite differences {verdict(good_fd)} (max rel err {good_fd.max_rel_err:.1e})"
        )
    )
    return out


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny grid, in seconds")
    parser.add_argument("--out-dir", type=Path, default=Path("results"))
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=None,
        help="timed runs per configuration (default 7, quick 3)",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    # both outputs checked before the run (a file as --out-dir was a traceback after it)
    json_path = output_file(parser, "--out-dir", args.out_dir / "autodiff_comparison.json")
    png_path = output_file(parser, "--out-dir", args.out_dir / "autodiff_speed_ratio.png")
    t0 = time.perf_counter()
    meta = {
        "quick": args.quick,
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(
        f"jax {meta['jax']} on {meta['backend']} ({meta['devices'][0]}), "
        f"{meta['cpus_usable']} usable CPUs{' -- QUICK MODE' if args.quick else ''}"
    )

    banner("1. Correctness: max relative error of the hand-derived gradient")
    results = {"meta": meta, "correctness": correctness(args.quick)}
    banner("2. Speed: the same jitted SGD loop, hand-derived gradient vs jax.value_and_grad")
    results["speed"], results["speed_skipped"] = speed(args.quick, repeats)
    print("\nper-example gradients, jitted:")
    results["per_example_speed"] = per_example_speed(args.quick, repeats)
    banner("3. Precision: the sigmoid derivative O(1-O) against sigma(z) sigma(-z)")
    results["precision"] = precision()
    banner("4. The article mode (ARTICLE.md section 4): gradcheck report")
    results["article_mode"] = article_mode(args.quick)

    meta["run_time_s"] = time.perf_counter() - t0
    write_json(json_path, results)
    png = plot_speed(results["speed"], png_path)
    print(
        f"\nwrote {json_path}" + (f" and {png}" if png else "") + f" in {meta['run_time_s']:.0f} s"
    )
    ok = all(r["passed"] for r in results["correctness"]) and not results["article_mode"]["passed"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
