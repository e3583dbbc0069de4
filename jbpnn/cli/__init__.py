"""The ``jbpnn`` command (also ``python -m jbpnn``).

Subcommands:
    train     the main job: train on the bundled digits (or --data FILE), report
              train and test accuracy, optionally save the model and plot the curves.
    predict   predictions of a saved model for a CSV/NPZ file.
    example   the article's worked examples, printed in the article's layout.
    demo      the article's two demos (binary and cat/dog) through the BPNN facade.

The command line holds no maths of its own: it calls the library. It turns on
JAX's persistent compilation cache (see :func:`enable_compilation_cache`).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jbpnn.compilation_cache import enable_compilation_cache
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


# ---------------------------------------------------------------- train
class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _require_matplotlib(flag: str) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError(
            f"{flag} needs matplotlib, which is not installed; install it with: "
            'pip install "jbpnn[plot]"'
        ) from None


def _parse_hidden(text: str) -> tuple[int, ...]:
    if text.strip() in ("", "none", "0"):
        return ()
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise CLIError(
            f"--hidden must be comma-separated integers like 64,32; got {text!r}"
        ) from None
    if any(n < 1 for n in sizes):
        raise CLIError(f"--hidden sizes must be positive, got {text!r}")
    return sizes


def _is_classification(y: np.ndarray, task: str) -> bool:
    if task != "auto":
        return task == "classification"
    if y.dtype.kind in "USO":  # text labels
        return True
    values = np.unique(y)
    return bool(np.all(values == np.round(values)) and len(values) <= 20)


def _load_training_data(args: argparse.Namespace) -> tuple[Any, str]:
    from jbpnn import data

    if args.data is None:
        d = data.load_digits(scale=False)  # scaled below with the chosen scaler
        table = data.Table(d.X.astype(np.float64), d.y, [f"pixel{i}" for i in range(64)], "digit")
        return table, "the bundled UCI digits (1797 x 64, 10 classes)"
    table = data.load_table(args.data, args.target)
    return table, f"{args.data} ({table.X.shape[0]} x {table.X.shape[1]})"


def _write_plot(path: str, history: dict[str, np.ndarray], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="train loss")
    if "val_loss" in history:
        ax.plot(epochs, history["val_loss"], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean E per example)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if "val_accuracy" in history:
        ax2 = ax.twinx()
        ax2.plot(epochs, history["val_accuracy"], color="tab:green", ls="--", label="val accuracy")
        ax2.set_ylabel("validation accuracy")
        ax2.set_ylim(0, 1.0)
        ax2.legend(loc="center right")
    ax.legend(loc="upper right")
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


class _ProgressBar:
    """One updating line on stderr: epoch, loss, validation loss, elapsed."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream

    def __call__(self, info: dict[str, Any]) -> None:
        width = 24
        done = int(width * info["epoch"] / info["epochs"])
        val = f" val_loss {info['val_loss']:.4g}" if info.get("val_loss") is not None else ""
        line = (
            f"\r[{'#' * done}{'.' * (width - done)}] epoch {info['epoch']}/{info['epochs']}"
            f" loss {info['loss']:.4g}{val} {info['elapsed']:.1f}s"
        )
        self.stream.write(line)
        if info.get("stop_reason"):
            self.stream.write("\n")
        self.stream.flush()


def cmd_train(args: argparse.Namespace) -> int:
    from jbpnn import data
    from jbpnn.io import save
    from jbpnn.optimizers import get_optimizer
    from jbpnn.params import init_params
    from jbpnn.training import accuracy, evaluate, train

    start = time.perf_counter()
    hidden = _parse_hidden(args.hidden)
    if args.plot:
        _require_matplotlib("--plot")
    for flag, value in (("--save", args.save), ("--plot", args.plot)):
        if value and not Path(value).resolve().parent.is_dir():
            raise CLIError(f"{flag} {value}: folder {Path(value).parent} does not exist")
    if not 0.0 < args.test_fraction < 1.0:
        raise CLIError(f"--test-fraction must be in (0, 1), got {args.test_fraction}")
    if not 0.0 <= args.validation_fraction < 1.0:
        raise CLIError(f"--validation-fraction must be in [0, 1), got {args.validation_fraction}")

    table, source = _load_training_data(args)
    classification = _is_classification(table.y, args.task)
    if classification:
        data.check_classes(table.y, f"the target {table.target_name!r} of {source}")
    X_tr, X_te, y_tr, y_te = data.train_test_split(
        table.X, table.y, test_fraction=args.test_fraction, seed=args.seed, stratify=classification
    )
    X_val = y_val = None
    if args.validation_fraction > 0:
        X_tr, X_val, y_tr, y_val = data.train_test_split(
            X_tr, y_tr, args.validation_fraction, seed=args.seed + 1, stratify=classification
        )
    scaler = data.SCALERS[args.scale]().fit(X_tr)
    metadata: dict[str, Any] = {
        "task": "classification" if classification else "regression",
        "feature_names": list(table.feature_names),
        "target_name": table.target_name,
        "scaler": scaler.to_dict(),
        "source": source,
    }
    if classification:
        encoder = data.LabelEncoder().fit(table.y)
        n_out = encoder.n_classes
        targets = lambda y: data.one_hot(encoder.transform(y), n_out)  # noqa: E731
        metadata["classes"] = encoder.to_dict()
        loss_name = args.loss or "cross_entropy"
    else:
        y_scaler = data.Standardizer().fit(np.asarray(y_tr, np.float64).reshape(-1, 1))
        n_out = 1
        targets = lambda y: y_scaler.transform(np.asarray(y, np.float64).reshape(-1, 1))  # noqa: E731
        metadata["target_scaler"] = y_scaler.to_dict()
        loss_name = args.loss or "mse"

    sizes = (table.X.shape[1], *hidden, n_out)
    output = None
    if not classification and loss_name == "mse":
        output = "identity"
    activations: Any = args.activation
    if output is not None:
        activations = (args.activation,) * len(hidden) + (output,)
    params = init_params(jax.random.key(args.seed), sizes, activations, loss_name, args.init)
    hparams: dict[str, Any] = {"lr": args.lr}
    if args.optimizer == "momentum":
        hparams.update(m=args.momentum, variant=args.momentum_variant)
    if args.weight_decay:
        hparams["weight_decay"] = args.weight_decay
    optimizer = get_optimizer(args.optimizer, **hparams)

    Xs_tr, Y_tr = scaler.transform(X_tr), targets(y_tr)
    val = {}
    if X_val is not None:
        val = {"X_val": scaler.transform(X_val), "Y_val": targets(y_val)}
    show_progress = args.progress if args.progress is not None else sys.stderr.isatty()
    result = train(
        params,
        Xs_tr,
        Y_tr,
        optimizer=optimizer,
        epochs=args.epochs,
        # like scikit-learn, a batch larger than the data means full batch
        batch_size=args.batch_size if 0 < args.batch_size < len(Xs_tr) else None,
        key=args.seed,
        tol=args.tol,
        min_weight_change=args.min_weight_change,
        n_iter_no_change=args.n_iter_no_change if val else None,
        progress=_ProgressBar() if show_progress else None,
        progress_every=max(1, args.epochs // 50) if show_progress else None,
        **val,
    )
    if result.stop_reason == "diverged":
        raise CLIError(
            f"training diverged at epoch {result.diverged_at} (the loss became NaN or inf); "
            "nothing was saved. Try a smaller --lr"
        )
    arch = "-".join(str(n) for n in sizes)
    print(
        f"data: {source}; {len(X_tr)} train, {len(X_val) if val else 0} validation, "
        f"{len(X_te)} test rows"
    )
    print(
        f"network: {arch}, {', '.join(params.activations)}, loss {loss_name}, "
        f"optimizer {args.optimizer} (lr {args.lr})"
    )
    print(
        f"stopped after {result.epochs_run} epochs: {result.stop_reason}"
        + (f" (best epoch {result.best_epoch})" if result.best_epoch else "")
    )
    Xs_te = scaler.transform(X_te)
    if classification:
        train_score = accuracy(result.params, Xs_tr, encoder.transform(y_tr))
        test_score = accuracy(result.params, Xs_te, encoder.transform(y_te))
        print(f"train accuracy {train_score:.4f}   test accuracy {test_score:.4f}")
        metadata.update(train_accuracy=train_score, test_accuracy=test_score)
    else:
        train_score = evaluate(result.params, Xs_tr, Y_tr)["loss"]
        test_score = evaluate(result.params, Xs_te, targets(y_te))["loss"]
        pred = _regression_values(result.params, Xs_te, metadata)
        rmse = float(np.sqrt(np.mean((pred - np.asarray(y_te, np.float64)) ** 2)))
        print(f"train loss {train_score:.4g}   test loss {test_score:.4g}   test RMSE {rmse:.4g}")
        metadata.update(train_loss=train_score, test_loss=test_score, test_rmse=rmse)

    written = []
    if args.save:
        metadata.update(epochs_run=result.epochs_run, stop_reason=result.stop_reason)
        save(args.save, result.params, **metadata)
        written.append(f"model {args.save}")
    if args.plot:
        _write_plot(
            args.plot, result.history, f"jbpnn {arch} on {Path(args.data or 'digits').name}"
        )
        written.append(f"curves {args.plot}")
    elapsed = time.perf_counter() - start
    score = f"test accuracy {test_score:.4f}" if classification else f"test RMSE {rmse:.4g}"
    where = "; saved " + ", ".join(written) if written else ""
    print(f"done in {elapsed:.1f} s: {score}{where}")
    return 0


def _regression_values(params: MLP, X: np.ndarray, metadata: dict[str, Any]) -> np.ndarray:
    from jbpnn import data
    from jbpnn.network import predict

    y_scaler = data.scaler_from_dict(metadata["target_scaler"])
    return y_scaler.inverse_transform(np.asarray(predict(params, X)))[:, 0]


# ---------------------------------------------------------------- predict
def _load_features(path: str, n_in: int, target_name: str | None, model: str):
    """The feature rows of ``path``, with or without the model's target column."""
    from jbpnn import data

    first_error = None
    tried = []
    # features only; or the target column by its saved name; or the last column
    for kwargs in ({"has_target": False}, {"target": target_name}, {}):
        try:
            table = data.load_table(path, **kwargs)
        except data.DataError as error:
            first_error = first_error or error
            continue
        if table.X.shape[1] == n_in:
            return table
        tried.append(table.X.shape[1] + (0 if kwargs.get("has_target") is False else 1))
    if not tried and first_error is not None:
        raise first_error
    raise CLIError(
        f"{path} has {tried[0]} columns, but the model {model} needs {n_in} features "
        f"(or {n_in + 1} columns with the target column)"
    )


def cmd_predict(args: argparse.Namespace) -> int:
    from jbpnn import data
    from jbpnn.io import load
    from jbpnn.network import predict

    params, meta = load(args.model)
    if "scaler" not in meta or "task" not in meta:
        raise CLIError(
            f"{args.model} was not written by 'jbpnn train' (no scaler/task in its metadata); "
            "use jbpnn.io.load and jbpnn.predict from Python"
        )
    table = _load_features(args.data, params.n_in, meta.get("target_name"), args.model)
    X = data.scaler_from_dict(meta["scaler"]).transform(table.X)
    if meta["task"] == "classification":
        encoder = data.LabelEncoder.from_dict(meta["classes"])
        labels = np.argmax(np.asarray(predict(params, X)), axis=1)
        lines = [str(v) for v in encoder.inverse_transform(labels)]
    else:
        lines = [f"{v:.6g}" for v in _regression_values(params, X, meta)]
    text = "\n".join(lines) + "\n"
    if args.out:
        tmp = Path(args.out).with_name(f".{Path(args.out).name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, args.out)
        print(f"wrote {len(lines)} predictions to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


# ---------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from jbpnn.article import BPNN
    from jbpnn.oracles import DEMO_2_ARTICLE, DEMO_A, DEMO_B, DEMO_TEST, DEMO_TRAIN

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
    print("\n== Demo 2 (cat/dog): two outputs, cat when output 0 > output 1")
    data2 = [[x, [1, 0] if y == [1] else [0, 1]] for x, y in DEMO_TRAIN]
    net2 = BPNN(5, 2, seed=args.seed)
    net2.train(data2, epochs=args.epochs)
    result = ["cat" if o[0] > o[1] else "dog" for o in net2.fit(DEMO_TEST)]
    print(f"  {result}")
    print(f"  article: {DEMO_2_ARTICLE} ({'same' if result == DEMO_2_ARTICLE else 'differs'})")
    return 0 if ok1 and result == DEMO_2_ARTICLE else 1


# ---------------------------------------------------------------- experiments from a checkout
def _experiment_path(name: str) -> Path:
    """``experiments/NAME.py`` of the checkout this package lives in, or of the cwd."""
    places = [Path(__file__).resolve().parents[2], Path.cwd()]
    for root in places:
        path = root / "experiments" / f"{name}.py"
        if path.is_file():
            return path
    raise CLIError(
        f"'jbpnn {name}' runs experiments/{name}.py from a source checkout of jbpnn; "
        f"none was found in {' or '.join(str(p) for p in places)}. Run it from the "
        "repository's root folder, or install the checkout with pip install -e ."
    )


def cmd_bench(bench_args: Sequence[str]) -> int:
    """``jbpnn bench ARGS``: ``python experiments/bench.py ARGS`` (its own parser and --help)."""
    import importlib.util

    path = _experiment_path("bench")
    sys.path.insert(0, str(path.parent))  # bench.py imports its sibling _contenders.py
    spec = importlib.util.spec_from_file_location("jbpnn_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.main(list(bench_args))


# ---------------------------------------------------------------- parser
def _subparser(sub, name: str, help: str, description: str, example: str):
    return sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, 79),
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    from jbpnn.activations import ACTIVATIONS
    from jbpnn.data import SCALERS
    from jbpnn.losses import LOSSES
    from jbpnn.optimizers import OPTIMIZERS
    from jbpnn.params import INITS

    parser = argparse.ArgumentParser(
        prog="jbpnn",
        description="Back-propagation neural networks in JAX, gradients derived by hand.",
        epilog="example:\n  jbpnn train --hidden 64 --epochs 100 --save model.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    tr = _subparser(
        sub,
        "train",
        "train a network (default: the bundled digits) and report accuracy",
        "Train a network and print train and test accuracy. With no --data it trains on "
        "the bundled UCI 8x8 digits with a held-out test split. A text or integer target "
        "with at most 20 values is a classification task, anything else regression "
        "(override with --task). Features are scaled with the scaler fitted on the "
        "training rows, which is saved with the model.",
        "jbpnn train --data iris.csv --target species --hidden 16 --save iris.npz --plot curve.png",
    )
    tr.add_argument("--data", help="CSV (header detected) or NPZ (arrays X, y) file")
    tr.add_argument("--target", help="target column name or index (CSV; default: last)")
    tr.add_argument("--task", choices=["auto", "classification", "regression"], default="auto")
    tr.add_argument("--hidden", default="64", help="hidden layer widths, e.g. 64,32 (default 64)")
    tr.add_argument(
        "--activation",
        default="sigmoid",
        choices=[a for a in ACTIVATIONS if a != "softmax"],
        help="hidden activation (default sigmoid)",
    )
    tr.add_argument(
        "--loss",
        choices=sorted(LOSSES),
        default=None,
        help="default: cross_entropy (softmax output) for classes, mse for regression",
    )
    tr.add_argument("--init", choices=INITS, default="glorot")
    tr.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="momentum")
    tr.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    tr.add_argument("--momentum", type=float, default=0.9, help="momentum m (default 0.9)")
    tr.add_argument(
        "--momentum-variant", choices=["classical", "nesterov", "article"], default="classical"
    )
    tr.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty")
    tr.add_argument("--epochs", type=int, default=100, help="maximum epochs (default 100)")
    tr.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="1 = online (the article's), 0 = full batch (default 32)",
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--tol", type=float, help="stop when the epoch loss is below this")
    tr.add_argument(
        "--min-weight-change",
        type=float,
        help="stop when every weight change of an epoch is below this",
    )
    tr.add_argument(
        "--n-iter-no-change",
        type=int,
        default=10,
        help="early stopping patience on the validation loss (default 10)",
    )
    tr.add_argument("--validation-fraction", type=float, default=0.1)
    tr.add_argument("--test-fraction", type=float, default=0.2)
    tr.add_argument(
        "--scale",
        choices=sorted(SCALERS),
        default="minmax",
        help="feature scaling fitted on the training rows (default minmax)",
    )
    tr.add_argument("--save", metavar="MODEL.npz", help="save the trained model here")
    tr.add_argument("--plot", metavar="CURVE.png", help="save the loss curves (needs matplotlib)")
    tr.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    tr.set_defaults(func=cmd_train)

    pr = _subparser(
        sub,
        "predict",
        "predict with a saved model",
        "Print one prediction per row of DATA (class labels, or values for regression), "
        "applying the scaler saved with the model. DATA may keep its target column.",
        "jbpnn predict model.npz new_rows.csv --out predictions.txt",
    )
    pr.add_argument("model", help="a model saved by 'jbpnn train --save'")
    pr.add_argument("data", help="CSV or NPZ file of feature rows")
    pr.add_argument("--out", help="write the predictions here instead of stdout")
    pr.set_defaults(func=cmd_predict)

    ex = _subparser(
        sub,
        "example",
        "the article's worked examples, one forward/backward step each",
        "Compute the worked examples of the article (9-2-1) and the textbook (3-2-1) with "
        "the library and print them in the article's layout: unit / net input / output, "
        "unit / error, then the updated weights and biases.",
        "jbpnn example --which textbook",
    )
    ex.add_argument("--which", choices=["all", *EXAMPLES], default="all")
    ex.set_defaults(func=cmd_example)

    de = _subparser(
        sub,
        "demo",
        "the article's two demos (binary and cat/dog)",
        "Train the article's BPNN(5, 1) and BPNN(5, 2) online on its six patterns and "
        "print the outputs for its ten test rows; exit 1 if they disagree with the article.",
        "jbpnn demo --epochs 1000",
    )
    de.add_argument("--epochs", type=int, default=1000)
    de.add_argument("--seed", type=int, default=0)
    de.set_defaults(func=cmd_demo)

    from jbpnn import gradcheck  # the autodiff comparison: only for this subcommand

    gc = _subparser(
        sub,
        "gradcheck",
        "compare the hand-derived gradient with jax.grad or finite differences",
        "Build a random network and batch, compare the hand-derived batch gradient with "
        "autodiff (jax.grad) of the same loss (or central finite differences in float64), print a "
        "table per layer, and exit 1 when a check fails.",
        "jbpnn gradcheck --sizes 64,32,10 --activation tanh --reference finite_difference",
    )
    gradcheck.add_arguments(gc)
    gc.set_defaults(func=gradcheck.run)

    from jbpnn.cli.sweep import add_sweep_arguments, run_sweep

    sw = _subparser(
        sub,
        "sweep",
        "train a learning-rate x momentum x seed grid of networks at once",
        "Train 8 learning rates x 4 momenta x 8 seeds = 256 digits networks in one compiled "
        "call (train_many), print the best cells (mean +- std over seeds), write sweep.csv, "
        "sweep.json and heatmap.png, and time train_many against sequential train.",
        "jbpnn sweep --quick --out sweep",
    )
    add_sweep_arguments(sw, timing=False)
    sw.set_defaults(func=run_sweep)

    be = _subparser(
        sub,
        "bench",
        "benchmark against an autodiff loop, NumPy, PyTorch, scikit-learn (source checkout only)",
        "Run experiments/bench.py from a source checkout; every argument after 'bench' "
        "is passed on to it, --help included.",
        "jbpnn bench --quick",
    )
    be.add_argument("bench_args", nargs="*", help="arguments of experiments/bench.py")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from jbpnn.data import DataError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # every later argument belongs to bench.py's own parser
        try:
            return cmd_bench(argv[1:])
        except CLIError as error:
            print(f"jbpnn bench: error: {error}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["example"])
    enable_compilation_cache()
    try:
        return args.func(args)
    except (CLIError, DataError, FileNotFoundError, ValueError, TypeError) as error:
        print(f"jbpnn {args.command}: error: {error}", file=sys.stderr)
        return 2
