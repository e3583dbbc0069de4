"""``jbpnn train`` and ``jbpnn predict``: train on a table and save; predict with a model.

``train`` trains on the bundled digits (or ``--data FILE``), reports train and test
accuracy (or RMSE), optionally saves the model with its scaler and label encoding
and plots the loss curves; a :class:`ProgressBar` shows the epochs on stderr.
``predict`` applies a saved model to a CSV/NPZ file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from jbpnn.cli import CLIError, add_subparser
from jbpnn.cli.files import check_outputs
from jbpnn.cli.options import (
    non_negative_int,
    number,
    positive_int,
    positive_number,
    seed,
    threshold,
)
from jbpnn.cli.progress import ProgressBar
from jbpnn.params import MLP

__all__ = ["TASK_LOSSES", "ProgressBar", "add_parsers", "cmd_predict", "cmd_train"]


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
    """``"64,32"`` -> ``(64, 32)``; ``"none"`` -> ``()`` (no hidden layer, said explicitly)."""
    if text.strip().lower() == "none":
        return ()
    if not text.strip():
        raise CLIError(
            "--hidden needs layer widths such as 64 or 64,32 (or 'none' for a network "
            "without a hidden layer), got an empty string"
        )
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise CLIError(
            f"--hidden must be comma-separated integers like 64,32; got {text!r}"
        ) from None
    if any(n < 1 for n in sizes):
        raise CLIError(
            f"--hidden widths must be at least 1, got {text!r}; for a network without a "
            "hidden layer say --hidden none"
        )
    return sizes


# Which losses each task trains with. A regression target is one standardised number,
# so only mse fits it: a 1-unit softmax is constant 1 (loss 0, nothing learnt), and
# the cross-entropies need targets in [0, 1].
TASK_LOSSES = {
    "classification": ("cross_entropy", "binary_cross_entropy", "mse"),
    "regression": ("mse",),
}


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
        names = [f"pixel{i}" for i in range(64)]
        table = data.Table(d.X.astype(np.float64), d.y, names, "digit", [*names, "digit"])
        return table, "the bundled UCI digits (1797 x 64, 10 classes)"
    kwargs = {}
    if args.header is not None:
        if Path(args.data).suffix.lower() == ".npz":
            raise CLIError("--header/--no-header apply to CSV files; an NPZ has no header")
        kwargs["header"] = args.header
    table = data.load_table(args.data, args.target, **kwargs)
    return table, f"{args.data} ({table.X.shape[0]} x {table.X.shape[1]})"


def _optimizer_hparams(args: argparse.Namespace) -> dict[str, Any]:
    """The optimizer's arguments; momentum options are refused for other optimizers."""
    hparams: dict[str, Any] = {"lr": args.lr}
    if args.optimizer == "momentum":
        hparams.update(
            m=0.9 if args.momentum is None else args.momentum,
            variant=args.momentum_variant or "classical",
        )
    else:
        for flag, value in (
            ("--momentum", args.momentum),
            ("--momentum-variant", args.momentum_variant),
        ):
            if value is not None:
                raise CLIError(
                    f"{flag} applies to --optimizer momentum only, not {args.optimizer}: "
                    f"drop {flag} or use --optimizer momentum"
                )
    if args.weight_decay:
        hparams["weight_decay"] = args.weight_decay
    return hparams


def _rmse(pred: np.ndarray, y: np.ndarray) -> float:
    """Root mean squared error without overflow for values near float64's limit."""
    with np.errstate(over="ignore", invalid="ignore"):
        diff = np.asarray(pred, np.float64) - np.asarray(y, np.float64)
    if not np.all(np.isfinite(diff)):
        raise CLIError("the test errors overflow float64: the targets are too large to compare")
    s = float(np.max(np.abs(diff))) if diff.size else 0.0
    return 0.0 if s == 0.0 else s * float(np.sqrt(np.mean((diff / s) ** 2)))


def _render_plot(history: dict[str, np.ndarray], title: str) -> bytes:
    """The loss-curve PNG, in memory: written only once every output can be."""
    from jbpnn.plots import plot_history

    with tempfile.TemporaryDirectory(prefix="jbpnn-plot-") as tmp:
        path = Path(tmp) / "curve.png"
        plot_history(path, history, title)
        return path.read_bytes()


def _written(flag_name: str, given: str, target: Path) -> str:
    """``model m.npz``, or ``model link.npz (symlink to /abs/real.npz)``."""
    if Path(given).is_symlink():
        return f"{flag_name} {given} (the symlink's target {target})"
    return f"{flag_name} {given}"


def cmd_train(args: argparse.Namespace) -> int:
    from jbpnn import data
    from jbpnn.checks import as_key, check_targets
    from jbpnn.io import save_bytes, write_files
    from jbpnn.optimizers import get_optimizer
    from jbpnn.params import init_params
    from jbpnn.training import accuracy, evaluate, train

    start = time.perf_counter()
    hidden = _parse_hidden(args.hidden)
    hparams = _optimizer_hparams(args)
    outputs = check_outputs({"--save": args.save, "--plot": args.plot}, {"--data": args.data})
    if args.plot is not None:
        _require_matplotlib("--plot")
    if not 0.0 < args.test_fraction < 1.0:
        raise CLIError(f"--test-fraction must be in (0, 1), got {args.test_fraction}")
    if not 0.0 <= args.validation_fraction < 1.0:
        raise CLIError(f"--validation-fraction must be in [0, 1), got {args.validation_fraction}")

    table, source = _load_training_data(args)
    classification = _is_classification(table.y, args.task)
    task = "classification" if classification else "regression"
    loss_name = args.loss or ("cross_entropy" if classification else "mse")
    if loss_name not in TASK_LOSSES[task]:
        raise CLIError(
            f"--loss {loss_name} cannot train a {task} target ({table.target_name!r} of "
            f"{source}); {task} trains with {' or '.join(TASK_LOSSES[task])}"
            + (" (or pass --task classification for class labels)" if not classification else "")
        )
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
        "task": task,
        "feature_names": list(table.feature_names),
        "target_name": table.target_name,
        "columns": table.columns,
        "scaler": scaler.to_dict(),
        "source": source,
    }
    if classification:
        encoder = data.LabelEncoder().fit(table.y)
        n_out = encoder.n_classes
        targets = lambda y: data.one_hot(encoder.transform(y), n_out)  # noqa: E731
        metadata["classes"] = encoder.to_dict()
    else:
        y_scaler = data.Standardizer().fit(np.asarray(y_tr, np.float64).reshape(-1, 1))
        n_out = 1
        targets = lambda y: y_scaler.transform(np.asarray(y, np.float64).reshape(-1, 1))  # noqa: E731
        metadata["target_scaler"] = y_scaler.to_dict()

    sizes = (table.X.shape[1], *hidden, n_out)
    output = None
    if not classification and loss_name == "mse":
        output = "identity"
    activations: Any = args.activation
    if output is not None:
        activations = (args.activation,) * len(hidden) + (output,)
    params = init_params(as_key(args.seed, "--seed"), sizes, activations, loss_name, args.init)
    optimizer = get_optimizer(args.optimizer, **hparams)

    Xs_tr, Y_tr = scaler.transform(X_tr), targets(y_tr)
    check_targets("the training targets", loss_name, Y_tr)
    val = {}
    if X_val is not None:
        val = {"X_val": scaler.transform(X_val), "Y_val": targets(y_val)}
    patience = args.n_iter_no_change or None  # 0: early stopping off, as in jbpnn sweep
    show_progress = args.progress if args.progress is not None else sys.stderr.isatty()
    bar = ProgressBar(args.epochs) if show_progress else None
    result = None
    try:
        result = train(
            params,
            Xs_tr,
            Y_tr,
            optimizer=optimizer,
            epochs=args.epochs,
            # like scikit-learn, a batch larger than the data means full batch; 0: full batch
            batch_size=args.batch_size if 0 < args.batch_size < len(Xs_tr) else None,
            key=args.seed,
            tol=args.tol,
            min_weight_change=args.min_weight_change,
            n_iter_no_change=patience if val else None,
            progress=bar,
            progress_every=_progress_every(args.epochs) if bar else None,
            **val,
        )
    finally:
        if bar is not None:
            if result is not None:
                bar.close(result.epochs_run, result.stop_reason)
            else:
                bar.close()
    if result.stop_reason == "diverged":
        raise CLIError(
            f"training diverged at epoch {result.diverged_at} (the loss or a weight became NaN "
            "or inf, or blew up: loss over 1e6 x the starting loss, or |w| over 1e9); "
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
        scores = {"train accuracy": train_score, "test accuracy": test_score}
    else:
        train_score = evaluate(result.params, Xs_tr, Y_tr)["loss"]
        test_score = evaluate(result.params, Xs_te, targets(y_te))["loss"]
        pred = _regression_values(result.params, Xs_te, metadata)
        rmse = _rmse(pred, np.asarray(y_te, np.float64))
        print(f"train loss {train_score:.4g}   test loss {test_score:.4g}   test RMSE {rmse:.4g}")
        metadata.update(train_loss=train_score, test_loss=test_score, test_rmse=rmse)
        scores = {"train loss": train_score, "test loss": test_score, "test RMSE": rmse}
    bad = [name for name, v in scores.items() if not np.isfinite(v)]
    if bad:
        raise CLIError(f"the {' and '.join(bad)} are not finite numbers; nothing was saved")

    # Every output is rendered first, then all are written at once (or none).
    files: list[tuple[Path, bytes]] = []
    if "--save" in outputs:
        metadata.update(epochs_run=result.epochs_run, stop_reason=result.stop_reason)
        files.append((outputs["--save"], save_bytes(result.params, **metadata)))
    if "--plot" in outputs:
        title = f"jbpnn {arch} on {Path(args.data or 'digits').name}"
        files.append((outputs["--plot"], _render_plot(result.history, title)))
    write_files(files)
    written = []
    if args.save is not None:
        written.append(_written("model", args.save, outputs["--save"]))
    if args.plot is not None:
        written.append(_written("curves", args.plot, outputs["--plot"]))
    elapsed = time.perf_counter() - start
    score = f"test accuracy {test_score:.4f}" if classification else f"test RMSE {rmse:.4g}"
    where = "; saved " + ", ".join(written) if written else ""
    print(f"done in {elapsed:.1f} s: {score}{where}")
    return 0


def _progress_every(epochs: int) -> int:
    """Epochs per progress update: about 20 updates a run (under 5% of its time)."""
    return max(1, -(-epochs // 20))


def _regression_values(params: MLP, X: np.ndarray, metadata: dict[str, Any]) -> np.ndarray:
    from jbpnn import data
    from jbpnn.network import predict

    y_scaler = data.scaler_from_dict(metadata["target_scaler"])
    return y_scaler.inverse_transform(np.asarray(predict(params, X)))[:, 0]


def _model_metadata(model: str, params: MLP, meta: dict[str, Any]) -> dict[str, Any]:
    """What predict needs from a model's metadata, every entry checked; CLIError if unusable."""
    from jbpnn import data

    def broken(what: str) -> CLIError:
        return CLIError(
            f"{model}: its metadata {what}; it was not written by 'jbpnn train', or it was "
            "altered. Use jbpnn.io.load and jbpnn.predict from Python"
        )

    task = meta.get("task")
    if task not in TASK_LOSSES or "scaler" not in meta:
        raise broken("has no 'task' and 'scaler'")
    try:
        scaler = data.scaler_from_dict(meta["scaler"])
        if len(scaler.offset_) != params.n_in:
            raise ValueError(f"it scales {len(scaler.offset_)} features, not {params.n_in}")
    except (ValueError, TypeError, AttributeError) as e:
        raise broken(f"holds an unusable 'scaler' ({e})") from None
    names = meta.get("feature_names")
    if names is None:
        names = [f"col{j}" for j in range(params.n_in)]
    if not isinstance(names, list) or len(names) != params.n_in:
        raise broken(f"'feature_names' is not a list of {params.n_in} names")
    found: dict[str, Any] = {
        "task": task,
        "scaler": scaler,
        "feature_names": [str(n) for n in names],
        "target_name": meta.get("target_name"),
        "columns": meta.get("columns"),
    }
    if task == "classification":
        if "classes" not in meta:
            raise broken("has no 'classes' (the class labels of a classification model)")
        try:
            encoder = data.LabelEncoder.from_dict(meta["classes"])
            if encoder.n_classes != params.n_out:
                raise ValueError(f"{encoder.n_classes} classes for {params.n_out} outputs")
        except (ValueError, TypeError, AttributeError) as e:
            raise broken(f"holds unusable 'classes' ({e})") from None
        found["encoder"] = encoder
    else:
        if "target_scaler" not in meta:
            raise broken("has no 'target_scaler' (how a regression model's outputs are scaled)")
        try:
            y_scaler = data.scaler_from_dict(meta["target_scaler"])
            if len(y_scaler.offset_) != 1 or params.n_out != 1:
                raise ValueError("a regression model has one output and one target scale")
        except (ValueError, TypeError, AttributeError) as e:
            raise broken(f"holds an unusable 'target_scaler' ({e})") from None
        found["target_scaler"] = y_scaler
    return found


def cmd_predict(args: argparse.Namespace) -> int:
    from jbpnn import data
    from jbpnn.io import atomic_write, load
    from jbpnn.network import predict

    outputs = check_outputs({"--out": args.out}, {"MODEL": args.model, "DATA": args.data})
    params, meta = load(args.model)
    model = _model_metadata(args.model, params, meta)
    table = data.load_features(
        args.data,
        model["feature_names"],
        model["target_name"],
        columns=model["columns"],
        header="auto" if args.header is None else args.header,
    )
    X = model["scaler"].transform(table.X)
    if model["task"] == "classification":
        labels = np.argmax(np.asarray(predict(params, X)), axis=1)
        lines = [str(v) for v in model["encoder"].inverse_transform(labels)]
    else:
        y_scaler = model["target_scaler"]
        values = y_scaler.inverse_transform(np.asarray(predict(params, X)))[:, 0]
        lines = [f"{v:.6g}" for v in values]
    text = "\n".join(lines) + "\n"
    if "--out" in outputs:
        atomic_write(outputs["--out"], text.encode(), what="write --out")
        print(
            f"wrote {len(lines)} predictions to {_written('', args.out, outputs['--out'])[1:]}",
            file=sys.stderr,
        )
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
    tr.add_argument(
        "--data",
        help="CSV (header and delimiter detected) or NPZ (arrays X, y) file "
        "(default: the bundled digits)",
    )
    tr.add_argument("--target", help="target column name or index (CSV; default: the last)")
    tr.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the CSV's first row is (--header) or is not (--no-header) a header "
        "(default: detected)",
    )
    tr.add_argument(
        "--task",
        choices=["auto", "classification", "regression"],
        default="auto",
        help="auto: a text or integer target with at most 20 values is classes",
    )
    tr.add_argument(
        "--hidden",
        default="64",
        help="hidden layer widths, e.g. 64,32; 'none' for no hidden layer (default 64)",
    )
    tr.add_argument(
        "--activation",
        default="sigmoid",
        choices=[a for a in ACTIVATIONS if a != "softmax"],
        help="hidden activation",
    )
    tr.add_argument(
        "--loss",
        choices=sorted(LOSSES),
        default=None,
        help="default: cross_entropy (softmax output) for classes, mse for regression "
        "(the only loss for regression)",
    )
    tr.add_argument("--init", choices=INITS, default="glorot", help="weight initialisation")
    tr.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="momentum", help="optimizer")
    tr.add_argument("--lr", type=positive_number, default=0.1, help="learning rate")
    tr.add_argument(
        "--momentum",
        type=number(0.0, 1.0),
        default=None,
        help="momentum m, in [0, 1) (default 0.9; --optimizer momentum only)",
    )
    tr.add_argument(
        "--momentum-variant",
        choices=["classical", "nesterov", "article"],
        default=None,
        help="the momentum rule (default classical; --optimizer momentum only)",
    )
    tr.add_argument("--weight-decay", type=threshold, default=0.0, help="L2 penalty")
    tr.add_argument("--epochs", type=positive_int, default=100, help="maximum epochs")
    tr.add_argument(
        "--batch-size",
        type=non_negative_int,
        default=32,
        help="1 = online (the article's), 0 = full batch; a batch larger than the data "
        "is full batch (default 32)",
    )
    tr.add_argument(
        "--seed", type=seed, default=0, help="init, split and order seed, 0 .. 2**32 - 1"
    )
    tr.add_argument(
        "--tol", type=threshold, help="stop when the epoch loss is below this (default: off)"
    )
    tr.add_argument(
        "--min-weight-change",
        type=threshold,
        help="stop when every weight change of an epoch is below this (default: off)",
    )
    tr.add_argument(
        "--n-iter-no-change",
        type=non_negative_int,
        default=10,
        help="early stopping patience on the validation loss, in epochs; 0: off (default 10)",
    )
    tr.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="share of the training rows held out for early stopping, in [0, 1)",
    )
    tr.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of rows held out for the test"
    )
    tr.add_argument(
        "--scale",
        choices=sorted(SCALERS),
        default="minmax",
        help="feature scaling fitted on the training rows",
    )
    tr.add_argument(
        "--save", metavar="MODEL.npz", help="save the trained model here (default: not saved)"
    )
    tr.add_argument(
        "--plot",
        metavar="CURVE.png",
        help="save the loss curves here; needs matplotlib (default: no plot)",
    )
    tr.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    tr.set_defaults(func=cmd_train)

    pr = add_subparser(
        sub,
        "predict",
        "predict with a saved model",
        "Print one prediction per row of DATA (class labels, or values for regression), "
        "applying the scaler saved with the model. Columns are matched to the model's "
        "features by name when DATA has a header (reordered; a missing or unknown column "
        "is an error), by position and count when it has none. DATA may keep its target "
        "column.",
        "jbpnn predict model.npz new_rows.csv --out predictions.txt",
    )
    pr.add_argument("model", help="a model saved by 'jbpnn train --save'")
    pr.add_argument(
        "data",
        help="CSV or NPZ file of feature rows: with a header its columns are matched to "
        "the model's by name (in any order; the target column may stay), without one by "
        "position",
    )
    pr.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="DATA's first row is (--header) or is not (--no-header) a header (default: detected)",
    )
    pr.add_argument("--out", help="write the predictions here (default: stdout)")
    pr.set_defaults(func=cmd_predict)
