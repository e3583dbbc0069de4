"""``jbpnn train`` and ``jbpnn predict``: train on a table and save; predict with a model.

``train`` trains on the bundled digits (or ``--data FILE``), reports train and test
accuracy (or RMSE), optionally saves the model with its preprocessing record
(:class:`jbpnn.preprocessing.Preprocessing`: scaler, label encoding, column names)
and plots the loss curves; a :class:`ProgressBar` shows the epochs on stderr. It runs
in stages, one function each: load the rows, fit the preprocessing, build the
network and optimizer, train, report, save. The modelling decisions (which task,
which loss and output unit, what is saved to predict again) are the library's
(:mod:`jbpnn.preprocessing`). ``predict`` applies a saved model to a CSV/NPZ file.
"""

from __future__ import annotations

import argparse
import inspect
import io
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jbpnn import plots
from jbpnn.activations import ACTIVATIONS
from jbpnn.checks import as_key, check_targets
from jbpnn.cli.base import (
    CLIError,
    add_subparser,
    check_interrupted,
    say,
    stderr_is_terminal,
    stdout_closed,
)
from jbpnn.cli.files import check_outputs
from jbpnn.cli.imports import add_import_argument, imported_files
from jbpnn.cli.options import (
    batch_size,
    comma_list,
    damping,
    delimiter,
    fraction,
    learning_rate,
    momentum_m,
    number,
    open_fraction,
    patience,
    positive_int,
    seed,
    threshold,
)
from jbpnn.cli.progress import ProgressBar, unfinished
from jbpnn.data import (
    SCALERS,
    LabelEncoder,
    check_classes,
    digits_path,
    load_digits,
    train_test_split,
)
from jbpnn.files import atomic_write, write_files
from jbpnn.io import load, save_bytes
from jbpnn.loaders import Table, load_features, load_table
from jbpnn.losses import LOSSES
from jbpnn.network import predict
from jbpnn.optimizers import OPTIMIZERS, Optimizer, get_optimizer
from jbpnn.params import INITS, MLP, init_params, network_count
from jbpnn.preprocessing import (
    TASK_LOSSES,
    Preprocessing,
    infer_task,
    output_activation,
    task_loss,
)
from jbpnn.training import TrainResult, evaluate, train

__all__ = ["ProgressBar", "add_parsers", "cmd_predict", "cmd_train", "hidden_sizes"]

# --hidden: the hidden layers' widths; "none": no hidden layer
hidden_sizes = comma_list(
    positive_int,
    "layer widths such as 64 or 64,32, or none for no hidden layer",
    words={"none": ()},
)


DEFAULT_LR = 0.1  # --lr, for an optimizer with a learning rate
DEFAULT_BATCH = 32  # --batch-size, for an optimizer that takes mini-batches
AUTO = -1  # --batch-size not given (not a string: argparse leaves it unparsed)


class _Rows(NamedTuple):
    """The rows of one run: where they came from, their task and loss, and the three parts."""

    table: Table
    source: str
    task: str
    loss: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray


def cmd_train(args: argparse.Namespace) -> int:
    """``jbpnn train``: check the options, then load, preprocess, build, train, report, save.

    Every option and output file is checked before the data is read; nothing is
    written when training fails, diverges or scores a non-finite number.
    """
    start = time.perf_counter()
    hparams = _optimizer_hparams(args)
    # without --data the input is the bundled digits file: never a file to write either
    data = {"--data": args.data} if args.data is not None else {"digits": str(digits_path())}
    inputs = {**data, **imported_files(args.imports)}
    outputs = check_outputs({"--save": args.save, "--plot": args.plot}, inputs)
    if args.plot is not None:
        _require_matplotlib("--plot")
        try:  # a suffix matplotlib cannot write, refused before training (curve.xyz held PNG)
            plots.figure_format(args.plot)
        except ValueError as error:
            raise CLIError(f"--plot {error}") from None
    rows = _load_rows(args)
    prep = _fit_preprocessing(args, rows)
    params, optimizer = _build_network(args, prep, rows.loss, hparams)
    result = _train(args, rows, prep, params, optimizer)
    scores = _report(args, rows, prep, result)
    written = _save(args, outputs, rows, prep, result, scores)
    elapsed = time.perf_counter() - start
    headline = "test accuracy" if prep.task == "classification" else "test RMSE"
    where = "; saved " + ", ".join(written) if written else ""
    print(f"done in {elapsed:.1f} s: {headline} {_show(headline, scores[headline])}{where}")
    return 0


def _optimizer_hparams(args: argparse.Namespace) -> dict[str, Any]:
    """The optimizer's arguments from its flags; a flag of another optimizer is refused
    (``--lr`` for a full-batch optimizer without a learning rate, ``--mu`` for one
    without a damping)."""
    takes = _arguments(OPTIMIZERS[args.optimizer])
    flags = {
        "--lr": ("lr", args.lr),
        "--momentum": ("m", args.momentum),
        "--momentum-variant": ("variant", args.momentum_variant),
        "--weight-decay": ("weight_decay", args.weight_decay or None),
        "--mu": ("mu", args.mu),
    }
    # adam has a `variant` too (corrected|efficient), which momentum's values are not
    only = {"--momentum-variant": ["momentum"]}
    for flag, (name, value) in flags.items():
        users = only.get(flag) or sorted(
            o for o, f in OPTIMIZERS.items() if name in inspect.signature(f).parameters
        )
        if value is not None and (name not in takes or args.optimizer not in users):
            raise CLIError(
                f"{flag} applies to --optimizer {' or '.join(users)} only, not "
                f"{args.optimizer}: drop {flag} or use "
                + (f"--optimizer {users[0]}" if len(users) == 1 else "one of those optimizers")
            )
    hparams = {name: value for name, value in flags.values() if value is not None}
    if "lr" in takes:
        hparams.setdefault("lr", DEFAULT_LR)
    if args.optimizer == "momentum":
        hparams.setdefault("m", 0.9)
        hparams.setdefault("variant", "classical")
    return hparams


def _require_matplotlib(flag: str) -> None:
    """CLIError saying how to install matplotlib when it is missing (checked before training).

    matplotlib stays lazy: :mod:`jbpnn.plots` imports it inside its functions only.
    """
    try:
        plots.require_matplotlib(flag)
    except ImportError:
        raise CLIError(
            f"{flag} needs matplotlib, which is not installed; install it with: "
            'pip install "jbpnn[plot]"'
        ) from None


# ---------------------------------------------------------------- stage 1: the rows
def _load_rows(args: argparse.Namespace) -> _Rows:
    """Read the table, decide its task and loss, split it into train, validation, test."""
    table, source = _load_table(args)
    assert table.y is not None  # read with its target column
    task = infer_task(table.y, args.task)
    try:
        loss = task_loss(task, args.loss)
    except ValueError as e:
        classes = task == "regression" and args.loss in TASK_LOSSES["classification"]
        hint = "; for class labels pass --task classification" if classes else ""
        target = f"the target {table.target_name!r} of {source}"
        raise CLIError(f"--loss {e} ({target}){hint}") from None
    classification = task == "classification"
    forced = ""  # --task classification of numbers: each distinct value a class
    if classification:
        check_classes(table.y, f"the target {table.target_name!r} of {source}")
        if args.task == "classification" and table.y.dtype.kind in "fiu":
            forced = (
                f"; the target {table.target_name!r} has {len(np.unique(table.y))} distinct "
                f"values in {len(table.y)} rows, each a class with --task classification: "
                "for a continuous target use --task regression (or auto)"
            )
    X_tr, X_te, y_tr, y_te = _split(
        table.X, table.y, args.test_fraction, args.seed, task, "test", forced
    )
    X_val = y_val = None
    if args.validation_fraction > 0:
        X_tr, X_val, y_tr, y_val = _split(
            X_tr, y_tr, args.validation_fraction, args.seed + 1, task, "validation", forced
        )
    return _Rows(table, source, task, loss, X_tr, y_tr, X_val, y_val, X_te, y_te)


def _split(
    X: np.ndarray, y: np.ndarray, fraction: float, seed: int, task: str, part: str, why: str = ""
) -> Any:
    """``train_test_split``, stratified by class for classification: on the labels' class
    indices, so that numeric labels (a CSV's float column) are stratified as text is.
    ``why`` ends the message of a class with a single row (what made the classes)."""
    if len(y) < 2:
        raise CLIError(
            f"{len(y)} row left for the {part} split: it needs at least 2 (one on each side); "
            "give more rows"
        )
    if task != "classification":
        return train_test_split(X, y, fraction, seed=seed, stratify=False)
    encoder = LabelEncoder().fit(y)
    codes = encoder.transform(y)
    counts = np.bincount(codes)
    if np.any(counts < 2):
        label = encoder.inverse_transform(np.flatnonzero(counts < 2)[:1]).tolist()[0]
        raise CLIError(
            f"class {label!r} has a single row left for the {part} split, which keeps "
            f"every class's share in both parts; give more rows of it{why}"
        )
    rest, held, _, _ = train_test_split(np.arange(len(y)), codes, fraction, seed)
    return X[rest], X[held], y[rest], y[held]


def _load_table(args: argparse.Namespace) -> tuple[Table, str]:
    """The ``--data`` table (the bundled digits without it) and a description of it."""
    if args.data is None:
        d = load_digits(scale=False)  # scaled later, with the chosen scaler
        names = [f"pixel{i}" for i in range(64)]
        table = Table(d.X.astype(np.float64), d.y, names, "digit", [*names, "digit"])
        return table, "the bundled UCI digits (1797 x 64, 10 classes)"
    kwargs = _csv_options(args)
    table = load_table(args.data, args.target, **kwargs)
    return table, f"{args.data} ({table.X.shape[0]} x {table.X.shape[1]})"


def _csv_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--header``/``--no-header`` and ``--delimiter`` as the CSV loaders' arguments;
    refused for an NPZ, which has neither."""
    kwargs: dict[str, Any] = {}
    if args.header is not None:
        kwargs["header"] = args.header
    if args.delimiter is not None:
        kwargs["delimiter"] = args.delimiter
    if Path(args.data).suffix.lower() == ".npz":
        if "header" in kwargs:
            raise CLIError("--header/--no-header apply to CSV files; an NPZ has no header")
        if "delimiter" in kwargs:
            raise CLIError("--delimiter applies to CSV files; an NPZ has no delimiter")
    return kwargs


# ---------------------------------------------------------------- stage 2: preprocessing
def _fit_preprocessing(args: argparse.Namespace, rows: _Rows) -> Preprocessing:
    """The ``--scale`` scaler and the target coding, fitted on the training rows.

    The class labels come from the whole target column, so that a class absent from
    the training rows is still known.
    """
    return Preprocessing.fit(
        rows.X_train,
        rows.y_train,
        rows.task,
        scale=args.scale,
        feature_names=rows.table.feature_names,
        target_name=rows.table.target_name,
        columns=rows.table.columns,
        labels=rows.table.y,
    )


# ---------------------------------------------------------------- stage 3: network
def _build_network(
    args: argparse.Namespace, prep: Preprocessing, loss: str, hparams: dict[str, Any]
) -> tuple[MLP, Optimizer]:
    """The initial network (``--hidden``, ``--activation``, ``--init``) and the optimizer."""
    sizes = (prep.n_features, *args.hidden, prep.n_outputs)
    output = output_activation(prep.task, loss, LOSSES[loss].output_activations)
    activations: Any = args.activation
    if output is not None:
        activations = (args.activation,) * len(args.hidden) + (output,)
    params = init_params(as_key(args.seed, "--seed"), sizes, activations, loss, args.init)
    return params, get_optimizer(args.optimizer, **hparams)


# ---------------------------------------------------------------- stage 4: training
def _train(
    args: argparse.Namespace,
    rows: _Rows,
    prep: Preprocessing,
    params: MLP,
    optimizer: Optimizer,
) -> TrainResult:
    """Train with the stop rules and progress the options ask for; CLIError if it diverged."""
    Xs_tr, Y_tr = prep.transform(rows.X_train), prep.targets(rows.y_train)
    check_targets("the training targets", rows.loss, Y_tr)
    val: dict[str, Any] = {}
    if rows.X_val is not None:
        val = {"X_val": prep.transform(rows.X_val), "Y_val": prep.targets(rows.y_val)}
    # like scikit-learn, a batch larger than the data means full batch (None: 0 given)
    size = _batch_size(args, optimizer, len(Xs_tr))
    bar = _progress_bar(args)
    try:
        result = train(
            params,
            Xs_tr,
            Y_tr,
            optimizer=optimizer,
            epochs=args.epochs,
            batch_size=size,
            key=args.seed,
            tol=args.tol,
            min_weight_change=args.min_weight_change,
            n_iter_no_change=_patience(args, bool(val)),
            progress=bar,
            progress_every=_progress_every(args.epochs) if bar else None,
            **val,
        )
    except BaseException as error:  # the line ends where the run was, not "done"
        if bar is not None:
            bar.close(stop_reason=unfinished(error))
        raise
    if bar is not None:
        bar.close(result.epochs_run, result.stop_reason)
    if result.stop_reason == "diverged":
        raise CLIError(
            f"training diverged at epoch {result.diverged_at} (the loss or a weight became NaN "
            "or inf, or blew up: loss over 1e6 x the starting loss, or |w| over 1e9); "
            "nothing was saved. Try a smaller --lr"
        )
    return result


def _batch_size(args: argparse.Namespace, optimizer: Optimizer, n_rows: int) -> int | None:
    """``train``'s batch_size: ``--batch-size`` (default 32 mini-batches, or the full batch
    for a full-batch optimizer); one at least as large as the data is the full batch."""
    size = args.batch_size
    if optimizer.full_batch and size not in (AUTO, None):
        raise CLIError(
            f"--optimizer {args.optimizer} trains full batch (one update per epoch): drop "
            f"--batch-size {size} or give --batch-size 0"
        )
    if size == AUTO:
        size = None if optimizer.full_batch else DEFAULT_BATCH
    return None if size is None or size >= n_rows else size  # as scikit-learn


def _arguments(factory: Any) -> set[str]:
    """The hyperparameters an optimizer factory takes."""
    return set(inspect.signature(factory).parameters)


def _describe(optimizer: Optimizer) -> str:
    """``momentum (lr 0.1)``; a full-batch optimizer without a learning rate: ``lm (full
    batch)``."""
    lr = optimizer.hyperparams.get("lr")
    return f"{optimizer.name} ({'full batch' if lr is None else f'lr {lr}'})"


def _patience(args: argparse.Namespace, validates: bool) -> int | None:
    """``--n-iter-no-change``: 10 when not given and there are validation rows; given
    without any (``--validation-fraction 0``), refused, as ``train`` refuses it."""
    given = getattr(args, "n_iter_no_change", _NOT_GIVEN)
    if not validates:
        if given is not _NOT_GIVEN and given is not None:
            raise CLIError(
                "--n-iter-no-change watches the validation rows, but --validation-fraction 0 "
                "holds none out: give a fraction, or --n-iter-no-change off"
            )
        return None
    if given is _NOT_GIVEN:
        return 10
    assert given is None or isinstance(given, int)  # the patience flag's values
    return given


_NOT_GIVEN = object()


def _progress_bar(args: argparse.Namespace) -> ProgressBar | None:
    """The ``--progress`` bar (default: when stderr is a terminal), or None."""
    show = args.progress if args.progress is not None else stderr_is_terminal()
    return ProgressBar(args.epochs) if show else None


def _progress_every(epochs: int) -> int:
    """Epochs per progress update: about 20 updates a run (under 5% of its time)."""
    return max(1, -(-epochs // 20))


# ---------------------------------------------------------------- stage 5: report
def _report(
    args: argparse.Namespace, rows: _Rows, prep: Preprocessing, result: TrainResult
) -> dict[str, float]:
    """Print the run (data, network, stop, scores); the scores by name, all finite."""
    params = result.params
    n_val = 0 if rows.X_val is None else len(rows.X_val)
    print(
        f"data: {rows.source}; {len(rows.X_train)} train, {n_val} validation, "
        f"{len(rows.X_test)} test rows"
    )
    print(
        f"network: {_arch(params)}, {', '.join(params.activations)}, loss {rows.loss}, "
        f"optimizer {_describe(result.optimizer)}"
    )
    print(
        f"stopped after {result.epochs_run} epochs: {result.stop_reason}"
        + (f" (best epoch {result.best_epoch})" if result.best_epoch else "")
    )
    Xs_tr, Xs_te = prep.transform(rows.X_train), prep.transform(rows.X_test)
    if prep.task == "classification":
        scores = {
            "train accuracy": _label_accuracy(params, Xs_tr, prep.class_indices(rows.y_train)),
            "test accuracy": _label_accuracy(params, Xs_te, prep.class_indices(rows.y_test)),
        }
    else:
        pred = prep.decode(np.asarray(predict(params, Xs_te)))
        scores = {
            "train loss": evaluate(params, Xs_tr, prep.targets(rows.y_train))["loss"],
            "test loss": evaluate(params, Xs_te, prep.targets(rows.y_test))["loss"],
            "test RMSE": _rmse(pred, np.asarray(rows.y_test, np.float64)),
        }
    print("   ".join(f"{name} {_show(name, value)}" for name, value in scores.items()))
    bad = [name for name, v in scores.items() if not np.isfinite(v)]
    if bad:
        raise CLIError(f"the {' and '.join(bad)} are not finite numbers; nothing was saved")
    return scores


def _show(name: str, value: float) -> str:
    """A score as printed: an accuracy to 4 decimals, a loss or RMSE to 4 digits."""
    return f"{value:.4f}" if "accuracy" in name else f"{value:.4g}"


def _arch(params: MLP) -> str:
    """``64-32-10``: the layer widths."""
    return "-".join(str(n) for n in params.sizes)


def _rmse(pred: np.ndarray, y: np.ndarray) -> float:
    """Root mean squared error without overflow for values near float64's limit."""
    with np.errstate(over="ignore", invalid="ignore"):
        diff = np.asarray(pred, np.float64) - np.asarray(y, np.float64)
    if not np.all(np.isfinite(diff)):
        raise CLIError("the test errors overflow float64: the targets are too large to compare")
    s = float(np.max(np.abs(diff))) if diff.size else 0.0
    return 0.0 if s == 0.0 else s * float(np.sqrt(np.mean((diff / s) ** 2)))


# ---------------------------------------------------------------- stage 6: save
def _save(
    args: argparse.Namespace,
    outputs: dict[str, Path],
    rows: _Rows,
    prep: Preprocessing,
    result: TrainResult,
    scores: dict[str, float],
) -> list[str]:
    """Render every output, then write all at once (or none); what was written, as shown.

    The model's metadata is the preprocessing record (:meth:`Preprocessing.to_dict`),
    the data's description, the scores and how training stopped.
    """
    files: list[tuple[Path, bytes]] = []
    if "--save" in outputs:
        metadata = {
            **prep.to_dict(),
            "source": rows.source,
            **{name.lower().replace(" ", "_"): value for name, value in scores.items()},
            "epochs_run": result.epochs_run,
            "stop_reason": result.stop_reason,
        }
        files.append((outputs["--save"], save_bytes(result.params, **metadata)))
    if "--plot" in outputs:
        title = f"jbpnn {_arch(result.params)} on {Path(args.data or 'digits').name}"
        plot = _render_plot(result.history, title, Path(args.plot).suffix)
        files.append((outputs["--plot"], plot))
    check_interrupted()  # a Ctrl-C swallowed during the run: write nothing
    write_files(files)
    written = []
    if args.save is not None:
        written.append(_written("model", args.save, outputs["--save"]))
    if args.plot is not None:
        written.append(_written("curves", args.plot, outputs["--plot"]))
    return written


def _render_plot(history: dict[str, np.ndarray], title: str, suffix: str) -> bytes:
    """The loss-curve figure, in memory, in the format the suffix names (PNG for one
    matplotlib does not know): written only once every output can be."""
    buffer = io.BytesIO()  # no temporary file: nothing to leave behind if killed
    plots.plot_history(buffer, history, title, suffix=suffix)
    return buffer.getvalue()


def _written(flag_name: str, given: str, target: Path) -> str:
    """``model m.npz``, or ``model link.npz (symlink to /abs/real.npz)``."""
    if Path(given).is_symlink():
        return f"{flag_name} {given} (the symlink's target {target})"
    return f"{flag_name} {given}"


def _label_accuracy(params: Any, X: Any, labels: np.ndarray) -> float:
    """The share of rows whose largest output is their class: the labels ``jbpnn predict``
    prints (:meth:`Preprocessing.decode`). ``jbpnn.accuracy`` of binary_cross_entropy counts
    a row only when every output is on its side of 0.5 (multilabel); a table's class is one
    label, and with that rule the report scored 0.0 where predict's labels were 47% right."""
    if not len(labels):
        return float("nan")
    return float(np.mean(np.argmax(np.asarray(predict(params, X)), axis=1) == labels))


# ---------------------------------------------------------------- predict
def cmd_predict(args: argparse.Namespace) -> int:
    """``jbpnn predict``: one prediction per row of DATA, with the model's preprocessing."""
    if args.out is None and stdout_closed():
        raise CLIError(
            "stdout is closed (started with >&-): nowhere to print the predictions; give --out FILE"
        )
    # "-" is a file name here, not stdin/stdout: said, not written to a file named "-"
    if args.out == "-":
        raise CLIError("--out -: the predictions go to stdout without --out; drop it")
    if args.data == "-":
        raise CLIError("DATA -: predict reads a CSV or NPZ file, not stdin; give its path")
    inputs = {"MODEL": args.model, "DATA": args.data, **imported_files(args.imports)}
    outputs = check_outputs({"--out": args.out}, inputs)
    kwargs = _csv_options(args)
    params, meta = load(args.model)
    prep = _model_preprocessing(args.model, params, meta)
    assert prep.feature_names is not None  # Preprocessing.__post_init__ always sets them
    table = load_features(
        args.data,
        list(prep.feature_names),
        prep.target_name,
        columns=None if prep.columns is None else list(prep.columns),
        **kwargs,
    )
    values = prep.decode(np.asarray(predict(params, prep.transform(table.X))))
    if prep.task == "classification":
        lines = [str(v) for v in values]
    else:
        # every digit the value has (the shortest text that reads back as it): 6
        # significant digits printed 1e+06 for 1000000.4 and 999999 for 999999.6
        lines = [repr(float(v)) for v in values]
    text = "\n".join(lines) + "\n"
    if "--out" in outputs:
        check_interrupted()
        atomic_write(outputs["--out"], text.encode(), what="write --out")
        say(f"wrote {len(lines)} predictions to {_written('', args.out, outputs['--out'])[1:]}")
    else:
        sys.stdout.write(text)
    return 0


def _model_preprocessing(model: str, params: MLP, meta: Any) -> Preprocessing:
    """The preprocessing record of a saved model, checked against its network."""
    n = network_count(params)
    if n:
        raise CLIError(
            f"{model} holds {n} stacked networks (a train_many ensemble); predict uses one: "
            "save one of them (jbpnn.save(path, result[i].params, ...)) or predict from Python"
        )
    try:
        prep = Preprocessing.from_dict(meta)
        prep.check_network(params.n_in, params.n_out)
    except ValueError as e:
        raise CLIError(
            f"{model}: its metadata is unusable: {e}; it was not written by 'jbpnn train', "
            "or it was altered. Use jbpnn.io.load and jbpnn.predict from Python"
        ) from None
    return prep


def add_parsers(sub: Any) -> None:
    """Add the ``train`` and ``predict`` subcommands to ``sub`` (an argparse subparsers)."""
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
        "--delimiter",
        type=delimiter,
        default=None,
        help="the CSV's field separator, one character or tab (default: detected; tab for .tsv)",
    )
    tr.add_argument(
        "--task",
        choices=["auto", "classification", "regression"],
        default="auto",
        help="auto: a text or integer target with at most 20 values is classes",
    )
    tr.add_argument(
        "--hidden",
        type=hidden_sizes,
        default="64",
        help="hidden layer widths, e.g. 64,32; 'none' for no hidden layer (default 64)",
    )
    tr.add_argument(
        "--activation",
        default="sigmoid",
        choices=[name for name, act in ACTIVATIONS.items() if not act.output_only],
        help="hidden activation (with --import, also the units your module registers)",
    )
    tr.add_argument(
        "--loss",
        choices=sorted(LOSSES),
        default=None,
        help="default: cross_entropy (softmax output) for classes, mse for regression "
        "(the only built-in loss for regression); with --import, also the losses your "
        "module registers with tasks=",
    )
    tr.add_argument("--init", choices=INITS, default="glorot", help="weight initialisation")
    tr.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="momentum", help="optimizer")
    tr.add_argument(
        "--lr",
        type=learning_rate,
        default=None,
        help=f"learning rate, >= 0 (default {DEFAULT_LR}; optimizers with a learning rate)",
    )
    tr.add_argument(
        "--mu",
        type=damping,
        default=None,
        help="the initial damping of --optimizer lm or br (MATLAB's mu; "
        "default 0.001 for lm, 0.005 for br)",
    )
    tr.add_argument(
        "--momentum",
        type=momentum_m,
        default=None,
        help="momentum m, in [0, 1) (default 0.9; --optimizer momentum only)",
    )
    tr.add_argument(
        "--momentum-variant",
        choices=["classical", "nesterov", "article"],
        default=None,
        help="the momentum rule (default classical; --optimizer momentum only)",
    )
    tr.add_argument("--weight-decay", type=number(0.0), default=0.0, help="L2 penalty, >= 0")
    tr.add_argument("--epochs", type=positive_int, default=100, help="maximum epochs")
    tr.add_argument(
        "--batch-size",
        type=batch_size,
        default=AUTO,
        help="1 = online (the article's), 0 = full batch; a batch larger than the data "
        f"is full batch (default {DEFAULT_BATCH}; full batch for rprop, lm, br, lbfgs)",
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
        type=patience,
        default=argparse.SUPPRESS,  # not given: 10 where there are validation rows
        help="early stopping patience on the validation loss, in epochs, or off (default 10)",
    )
    tr.add_argument(
        "--validation-fraction",
        type=fraction,
        default=0.1,
        help="share of the training rows held out for early stopping, in [0, 1)",
    )
    tr.add_argument(
        "--test-fraction",
        type=open_fraction,
        default=0.2,
        help="share of rows held out for the test, in (0, 1)",
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
        help="save the loss curves here, in the format its suffix names (.png, .pdf, .svg, "
        "...); needs matplotlib (default: no plot)",
    )
    tr.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    add_import_argument(tr)
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
    pr.add_argument(
        "--delimiter",
        type=delimiter,
        default=None,
        help="DATA's field separator, one character or tab (default: detected; tab for .tsv)",
    )
    pr.add_argument("--out", help="write the predictions here (default: stdout)")
    add_import_argument(pr)
    pr.set_defaults(func=cmd_predict)
