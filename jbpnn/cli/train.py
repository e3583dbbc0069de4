"""``jbpnn train`` and ``jbpnn predict``: train on a table and save; predict with a model.

``train`` trains on the bundled digits (or ``--data FILE``), reports train and test
accuracy (or RMSE), optionally saves the model with its scaler and label encoding
and plots the loss curves; a :class:`ProgressBar` shows the epochs on stderr.
``predict`` applies a saved model to a CSV/NPZ file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jbpnn.cli import CLIError, add_subparser
from jbpnn.params import MLP

__all__ = ["ProgressBar", "add_parsers", "cmd_predict", "cmd_train"]


def _require_matplotlib(flag: str) -> None:
    from jbpnn.plots import require_matplotlib

    try:
        require_matplotlib(flag)
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


class ProgressBar:
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
    from jbpnn.plots import plot_history
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
        progress=ProgressBar() if show_progress else None,
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
        plot_history(
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


def add_parsers(sub: Any) -> None:
    """Add the ``train`` and ``predict`` subcommands to ``sub`` (an argparse subparsers)."""
    from jbpnn.activations import ACTIVATIONS
    from jbpnn.data import SCALERS
    from jbpnn.losses import LOSSES
    from jbpnn.optimizers import OPTIMIZERS
    from jbpnn.params import INITS

    tr = add_subparser(
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

    pr = add_subparser(
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
