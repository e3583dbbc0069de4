"""For MATLAB users: ``feedforwardnet`` + ``train`` as one call, with MATLAB's defaults.

MATLAB's Deep Learning Toolbox trains a fitting network like this::

    net = feedforwardnet(10, 'trainlm');     % tansig hidden, purelin output
    net.divideParam.trainRatio = 0.70;        % dividerand: 70 / 15 / 15
    [net, tr] = train(net, x, t);             % mapminmax on inputs and targets,
                                              % stops on max_fail = 6 validation failures
    y = net(x);

:func:`feedforwardnet` does the same on jbpnn's core, and names its pieces as MATLAB
does: :func:`mapminmax` (every column to [-1, 1], kept to map back), :func:`dividerand`
(a random 70/15/15 split), ``train_fcn`` (``"trainlm"`` Levenberg-Marquardt,
``"trainbr"`` Bayesian regularization, ``"trainrp"`` Rprop, ``"traingdm"`` gradient
descent with momentum, ``"traingd"`` plain gradient descent) and ``net.trainParam``'s
``epochs``, ``goal``, ``max_fail``, ``min_grad``, ``mu``. Rows are examples (MATLAB's
columns): pass ``x.T`` if your data comes from MATLAB.

One difference is deliberate: MATLAB's ``goal`` and ``perf`` are the mean squared error
over all targets, ``mse = mean (t - y)^2``; jbpnn's loss is ``E = 1/2 mean_n sum_k
(t - y)^2``. :class:`FitResult` reports MATLAB's ``mse`` (of the scaled targets, as
``tr.perf`` is) and converts ``goal`` for you.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from jax.typing import ArrayLike

from jbpnn.checks import check_int, check_number, check_seed, host_or_device
from jbpnn.data import column_range
from jbpnn.network import loss, predict
from jbpnn.optimizers import OPTIMIZERS, get_optimizer
from jbpnn.params import MLP, init_params
from jbpnn.state import TrainResult, init_state, train_config
from jbpnn.stopping import Stopping
from jbpnn.training import train

__all__ = ["TRAIN_FCNS", "FitResult", "MapMinMax", "dividerand", "feedforwardnet", "mapminmax"]

# trainParam.min_grad's defaults (MATLAB's trainlm.m, trainbr.m and trainrp's
# documentation: the parameters they declare), on MATLAB's gradient
_MATLAB_MIN_GRAD = {"trainlm": 1e-7, "trainbr": 1e-7, "trainrp": 1e-5}

# MATLAB's training functions -> (jbpnn optimizer, its arguments, whether it validates)
TRAIN_FCNS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "trainlm": ("lm", {}, True),
    "trainbr": ("br", {}, False),  # MATLAB's trainbr uses no validation split
    "trainrp": ("rprop", {}, True),
    "traingdm": ("momentum", {"lr": 0.01, "m": 0.9}, True),
    "traingd": ("sgd", {"lr": 0.01}, True),
}


@dataclass(frozen=True)
class MapMinMax:
    """MATLAB's ``mapminmax`` settings: ``y = (ymax - ymin) (x - xmin) / (xmax - xmin) + ymin``
    per column; a constant column maps to ``ymin`` (MATLAB passes it through unchanged)."""

    xmin: np.ndarray
    xmax: np.ndarray
    ymin: float = -1.0
    ymax: float = 1.0

    def _gain(self) -> np.ndarray:
        span = self.xmax - self.xmin
        with np.errstate(over="ignore"):
            gain = (self.ymax - self.ymin) / np.where(span > 0, span, 1.0)
        if not np.isfinite(gain).all():  # a span of 1e-320, or ymax - ymin past float64
            j = int(np.flatnonzero(~np.isfinite(gain))[0])
            raise ValueError(
                f"MapMinMax: column {j} spans {span[j]:.3g} and [ymin, ymax] = [{self.ymin:g}, "
                f"{self.ymax:g}]: the scale (ymax - ymin) / span overflows; rescale the column "
                "or choose a narrower [ymin, ymax]"
            )
        return gain

    def apply(self, x: ArrayLike) -> np.ndarray:
        """``x`` (rows of columns) into ``[ymin, ymax]``, float32."""
        x = self._columns("x", x)
        with np.errstate(over="ignore"):
            y = ((x - self.xmin) * self._gain() + self.ymin).astype(np.float32)
        _finite("apply", y, "overflows float32")
        return y

    def reverse(self, y: ArrayLike) -> np.ndarray:
        """The inverse of :meth:`apply`: back to the original units."""
        with np.errstate(over="ignore"):
            x = (self._columns("y", y) - self.ymin) / self._gain() + self.xmin
        _finite("reverse", x, "overflows float64")
        return x

    def _columns(self, name: str, a: ArrayLike) -> np.ndarray:
        """``a`` as rows of this map's columns (a width of 1 was broadcast to every one)."""
        if np.iscomplexobj(a):
            raise ValueError(f"{name} must be real numbers, got complex ones")
        a = np.asarray(a, np.float64)
        width = len(self.xmin)
        if a.ndim != 2 or a.shape[1] != width:
            raise ValueError(
                f"{name} must be rows of {width} column(s), shape (n, {width}), as the data "
                f"the map was fitted on; got shape {a.shape}"
            )
        if not np.isfinite(a).all():
            raise ValueError(f"MapMinMax: {name} holds NaN or inf")
        return a


def _finite(method: str, out: np.ndarray, what: str) -> None:
    """Refuse a mapped value that is not finite (the inputs were: it overflowed)."""
    if not np.isfinite(out).all():
        i, j = np.argwhere(~np.isfinite(out))[0]
        raise ValueError(
            f"MapMinMax.{method}: row {i}, column {j} is far outside the range the map was "
            f"fitted on: mapped, it {what}"
        )


def mapminmax(
    x: ArrayLike, ymin: float = -1.0, ymax: float = 1.0, *, name: str = "x"
) -> tuple[np.ndarray, MapMinMax]:
    """Every column of ``x`` (shape ``(n, d)``) to ``[ymin, ymax]``; returns ``(y, settings)``.
    ``name`` is what the errors call ``x`` (``feedforwardnet`` maps its ``t`` too)."""
    if np.iscomplexobj(x):
        raise ValueError(f"mapminmax: {name} must be real numbers, got complex ones")
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or not len(x):
        raise ValueError(
            f"mapminmax takes rows of columns, shape (n, d) with n >= 1; {name} has shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError(f"mapminmax: {name} holds NaN or inf")
    if not (np.isfinite(ymin) and np.isfinite(ymax) and ymin < ymax):
        raise ValueError(f"mapminmax needs finite ymin < ymax, got {ymin} and {ymax}")
    lo, hi = column_range(x, "mapminmax", f" of {name}")
    settings = MapMinMax(lo, hi, float(ymin), float(ymax))
    return settings.apply(x), settings


def dividerand(
    n: int,
    train_ratio: float = 0.70,
    val_ratio: float = 0.15,
    test_ratio: float = 0.15,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MATLAB's ``dividerand``: row indices of a random train / validation / test split.

    The ratios are normalised by their sum, and the sizes are MATLAB's: validation and test
    get their share rounded (half away from zero, MATLAB's ``round``), training the rest
    (5 rows: 3 / 1 / 1; 2 rows: 2 / 0 / 0). Which rows go where comes from NumPy's
    generator, not MATLAB's.
    """
    check_int("n", n, 1)
    ratios = {"train_ratio": train_ratio, "val_ratio": val_ratio, "test_ratio": test_ratio}
    for name, value in ratios.items():
        check_number(name, value, 0.0)
    if train_ratio <= 0:
        raise ValueError(f"train_ratio must be > 0, got {train_ratio}")
    shares = np.asarray(list(ratios.values()), np.float64) / sum(ratios.values())
    order = np.random.default_rng(check_seed("seed", seed)).permutation(n)
    n_val, n_test = (int(np.floor(share * n + 0.5)) for share in shares[1:])
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(
            f"dividerand({n}) with ratios {tuple(ratios.values())} leaves no training rows "
            f"({n_val} validation, {n_test} test); give more rows or a larger train_ratio"
        )
    return (
        np.sort(order[:n_train]),
        np.sort(order[n_train : n_train + n_val]),
        np.sort(order[n_train + n_val :]),
    )


@dataclass(frozen=True)
class FitResult:
    """What :func:`feedforwardnet` returns: the network, MATLAB's ``tr`` and the mappings.

    Attributes:
        net: the trained :class:`jbpnn.params.MLP` (on the mapped data).
        result: jbpnn's :class:`TrainResult` (history, stop reason, state to resume).
        input_map, target_map: the :class:`MapMinMax` settings of ``x`` and ``t``.
        train_ind, val_ind, test_ind: the rows of each part (``tr.trainInd`` ...).
        perf, vperf, tperf: MATLAB's ``mse`` of each part, on the mapped targets.
        best_epoch: the epoch of ``net`` (``tr.best_epoch``).
        stop: why training stopped (``tr.stop``), as jbpnn names it.
    """

    net: MLP
    result: TrainResult
    input_map: MapMinMax
    target_map: MapMinMax
    train_ind: np.ndarray
    val_ind: np.ndarray
    test_ind: np.ndarray
    perf: float
    vperf: float
    tperf: float
    best_epoch: int
    stop: str

    def __call__(self, x: ArrayLike) -> np.ndarray:
        """``y = net(x)`` in the targets' own units (inputs mapped, outputs mapped back)."""
        return self.target_map.reverse(np.asarray(predict(self.net, self.input_map.apply(x))))


def feedforwardnet(
    x: ArrayLike,
    t: ArrayLike,
    hidden: int | tuple[int, ...] = 10,
    train_fcn: str = "trainlm",
    *,
    epochs: int = 1000,
    goal: float = 0.0,
    max_fail: int = 6,
    min_grad: float | None = None,
    mu: float | None = None,
    ratios: tuple[float, float, float] = (0.70, 0.15, 0.15),
    seed: int = 0,
) -> FitResult:
    """MATLAB's ``net = feedforwardnet(hidden, train_fcn); [net, tr] = train(net, x, t)``.

    ``tansig`` (tanh) hidden layers, a ``purelin`` (identity) output, the mse loss,
    glorot initial weights and zero biases (MATLAB draws Nguyen-Widrow's, ``initnw``);
    inputs and targets through :func:`mapminmax`; rows split by :func:`dividerand`
    (``trainbr`` validates on nothing: its validation rows join the training rows, as
    MATLAB's ``trainbr`` does); stops on ``epochs``, ``goal`` (MATLAB's mse),
    ``max_fail`` validation failures in a row (the best epoch's net is kept, the initial
    net included as epoch 0, as MATLAB's),
    ``min_grad`` (``trainlm``, ``trainbr``: default 1e-7, ``trainrp``: 1e-5, MATLAB's; jbpnn's
    sgd and momentum have no gradient stop, so ``traingd`` and ``traingdm`` run without
    MATLAB's 1e-5) and ``mu_max`` (lm, br).

    Args:
        x: inputs, shape ``(n, d)`` (MATLAB's ``x.'``).
        t: targets, shape ``(n,)`` or ``(n, k)``.
        hidden: hidden layer sizes (``feedforwardnet(10)`` or ``[10 5]``).
        train_fcn: one of :data:`TRAIN_FCNS`.
        epochs, goal, max_fail, min_grad, mu: ``net.trainParam``'s.
        ratios: ``divideParam``'s train / validation / test ratios.
        seed: the initial weights' and the split's seed.

    Raises:
        ValueError: an unknown ``train_fcn`` (listing the known ones), bad shapes or values.
    """
    if train_fcn not in TRAIN_FCNS:
        raise ValueError(f"unknown train_fcn {train_fcn!r}; expected one of {list(TRAIN_FCNS)}")
    name, kwargs, validates = TRAIN_FCNS[train_fcn]
    if name not in OPTIMIZERS:
        raise ValueError(f"train_fcn {train_fcn!r} needs jbpnn's {name!r} optimizer, not built in")
    hidden = (hidden,) if isinstance(hidden, (int, np.integer)) else hidden
    if not isinstance(hidden, (tuple, list, np.ndarray)) or not all(
        isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h >= 1 for h in hidden
    ):
        raise ValueError(
            f"hidden must be a layer size or a list of them, integers >= 1 (feedforwardnet(10), "
            f"[10 5]); got {hidden!r}"
        )
    hidden = tuple(int(h) for h in hidden)
    check_seed("seed", seed)
    check_int("epochs", epochs, 1)
    check_int("max_fail", max_fail, 1)
    check_number("goal", goal, 0.0)
    t = np.asarray(t, np.float64)
    t = t[:, None] if t.ndim == 1 else t
    xs, input_map = mapminmax(x, name="x")
    ts, target_map = mapminmax(t, name="t")
    if len(ratios) != 3:
        raise ValueError(
            f"ratios are divideParam's (train, validation, test) ratios, three numbers; got "
            f"{tuple(ratios)!r}"
        )
    if len(xs) != len(ts):
        raise ValueError(f"x has {len(xs)} rows and t {len(ts)}: one target row per input row")
    train_ind, val_ind, test_ind = dividerand(len(xs), *ratios, seed=seed)
    if not validates:  # trainbr: no early stopping, the validation rows train too
        train_ind, val_ind = np.sort(np.concatenate([train_ind, val_ind])), val_ind[:0]
    k = ts.shape[1]  # E = 1/2 mean_n sum_k e^2 = (k / 2) mse: MATLAB's units to E's
    if name in ("lm", "br", "rprop"):
        # MATLAB tests min_grad on its own gradient: trainlm's and trainrp's of the mse,
        # |d mse/dx| = (2 / k) |dE/dx| (trainlm's 2 |J^T e| / (n k)), trainbr's of the sse,
        # 2 |J^T e|; jbpnn's |dE/dx| is |J^T e| / n
        n = len(train_ind)
        given = _MATLAB_MIN_GRAD[train_fcn] if min_grad is None else min_grad
        kwargs = {**kwargs, "min_grad": given / (2 * n) if name == "br" else given * k / 2}
    elif min_grad is not None:  # traingd, traingdm: jbpnn's sgd and momentum have no such rule
        raise ValueError(
            f"train_fcn {train_fcn!r}: jbpnn's {name} has no min_grad stop (MATLAB's "
            f"{train_fcn} has one, default 1e-5; here the run stops on epochs, goal and "
            "max_fail): drop min_grad, or use 'trainrp', 'trainlm' or 'trainbr'"
        )
    if name not in ("lm", "br") and mu is not None:  # refused in MATLAB's names
        raise ValueError(
            f"mu is trainlm's and trainbr's (net.trainParam); train_fcn {train_fcn!r} has no "
            "mu: drop it, or use 'trainlm' or 'trainbr'"
        )
    if mu is not None:
        kwargs = {**kwargs, "mu": mu}
    if name in ("sgd", "momentum"):
        # MATLAB steps along -lr d(mse)/dx; d E/dx is k/2 of it. traingdm's step is
        # mc dX + (1 - mc) lr g, jbpnn's momentum m v - lr g: the same with lr (1 - mc)
        scale = 2 / k * (1 - kwargs.get("m", 0.0))
        kwargs = {**kwargs, "lr": kwargs["lr"] * scale}
    optimizer = get_optimizer(name, **kwargs)
    sizes = (xs.shape[1], *hidden, ts.shape[1])
    params = init_params(seed, sizes, ("tanh",) * len(hidden) + ("identity",), "mse", "glorot")
    val = {}
    start: Any = params
    if len(val_ind):
        # max_fail: epochs in a row whose validation mse does not beat the best (any gain
        # counts, as in MATLAB: validation_tol 0; a tie resets the count, MATLAB leaves it)
        val = {
            "X_val": xs[val_ind],
            "Y_val": ts[val_ind],
            "n_iter_no_change": max_fail,
            "validation_tol": 0.0,
        }
        # MATLAB's best starts as the initial net (epoch 0, its validation performance):
        # max_fail epochs none of which beats it stop the run, which returns that net
        rules = Stopping(n_iter_no_change=max_fail, validation_tol=0.0)
        config = train_config(len(train_ind), stopping=rules, has_validation=True)
        state = init_state(params, optimizer, config)
        v0 = host_or_device(loss(params, xs[val_ind], ts[val_ind]), params.dtype)
        start = state._replace(best_val=v0)
    result = train(
        start,
        xs[train_ind],
        ts[train_ind],
        optimizer=optimizer,
        epochs=epochs,
        batch_size=None,  # MATLAB trains these functions in batch mode
        tol=goal * k / 2 if goal > 0 else None,
        **val,
    )
    net = result.params

    def mse(rows: np.ndarray) -> float:
        if not len(rows):
            return float("nan")
        return float(np.mean((np.asarray(predict(net, xs[rows])) - ts[rows]) ** 2))

    return FitResult(
        net=net,
        result=result,
        input_map=input_map,
        target_map=target_map,
        train_ind=train_ind,
        val_ind=val_ind,
        test_ind=test_ind,
        perf=mse(train_ind),
        vperf=mse(val_ind),
        tperf=mse(test_ind),
        best_epoch=result.epochs_run if result.best_epoch is None else result.best_epoch,
        stop=result.stop_reason,
    )
