"""For MATLAB users: ``feedforwardnet`` + ``train`` as one call, with MATLAB's defaults.

MATLAB's Deep Learning Toolbox trains a fitting network like this::

    net = feedforwardnet(10, 'trainlm');     % tansig hidden, purelin output, initnw
    net.divideParam.trainRatio = 0.70;        % dividerand: 70 / 15 / 15
    [net, tr] = train(net, x, t);             % removeconstantrows and mapminmax on inputs
                                              % and targets, stops on max_fail = 6
                                              % validation failures
    y = net(x);

:func:`feedforwardnet` does the same on jbpnn's core, and names its pieces as MATLAB
does: :func:`initnw` (Nguyen-Widrow's initial weights), :func:`mapminmax` (every column
to [-1, 1], kept to map back; a constant one passes through), :func:`dividerand` (a
random 70/15/15 split), ``train_fcn`` (``"trainlm"`` Levenberg-Marquardt, ``"trainbr"``
Bayesian regularization, ``"trainrp"`` Rprop, ``"traingdm"`` gradient descent with
momentum, ``"traingd"`` plain gradient descent) and ``net.trainParam``'s ``epochs``,
``goal``, ``max_fail``, ``min_grad``, ``mu``. Rows are examples (MATLAB's columns): pass
``x.T`` and ``t.T`` if your data comes from MATLAB (``feedforwardnet`` refuses data that
looks untransposed).

One difference is deliberate: MATLAB's ``goal`` and ``perf`` are the mean squared error
over all targets, ``mse = mean (t - y)^2``, in the targets' own units (its ``mse``'s
``normalization = 'none'``: the outputs are mapped back before the error is taken);
jbpnn trains on ``E = 1/2 mean_n sum_k (t - y)^2`` of the mapped targets. :class:`FitResult`
reports MATLAB's ``mse`` and ``feedforwardnet`` converts ``goal`` and ``min_grad`` for you
(``normalization="standard"`` measures both on the targets mapped to [-1, 1] instead,
MATLAB's other setting). The random numbers (the split, the initial weights) come from
NumPy's generator, not MATLAB's: the same seed does not give MATLAB's network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jbpnn.checks import check_int, check_number, check_seed, host_or_device
from jbpnn.data import column_range
from jbpnn.network import loss, predict
from jbpnn.optimizers import OPTIMIZERS, get_optimizer
from jbpnn.params import MLP, _requested_dtype, init_params, layer_sizes
from jbpnn.state import TrainResult, init_state, train_config
from jbpnn.stopping import Stopping
from jbpnn.training import train

__all__ = [
    "NORMALIZATIONS",
    "TRAIN_FCNS",
    "FitResult",
    "MapMinMax",
    "dividerand",
    "feedforwardnet",
    "initnw",
    "mapminmax",
]

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

# MATLAB's mse performParam.normalization: "none" (its default) measures the errors in
# the targets' own units, "standard" on outputs and targets mapped to [-1, 1]
NORMALIZATIONS = ("none", "standard")

# MATLAB's transfer functions, by jbpnn's names: the active input range initnw spreads
# the units over (tansig.m, logsig.m: activeInputRange; purelin has none: rands), and
# the range of their outputs, the next layer's inputs
_ACTIVE_INPUT_RANGE: dict[str, tuple[float, float] | None] = {
    "tanh": (-2.0, 2.0),  # tansig
    "sigmoid": (-4.0, 4.0),  # logsig
    "identity": None,  # purelin
}
_OUTPUT_RANGE = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}

# mapminmax.m: a column whose gain (ymax - ymin) / (xmax - xmin) exceeds this passes
# through unchanged, as a constant one does
_MAX_GAIN = 1e14


@dataclass(frozen=True)
class MapMinMax:
    """MATLAB's ``mapminmax`` settings, per column: ``y = (x - xoffset) gain + ymin``
    with ``gain = (ymax - ymin) / (xmax - xmin)`` and ``xoffset = xmin``, so that
    ``y = (ymax - ymin) (x - xmin) / (xmax - xmin) + ymin``; float64 throughout, as MATLAB
    computes in double.

    A column that MATLAB's ``mapminmax.m`` cannot scale passes through unchanged
    (``gain = 1``, ``xoffset = ymin``, so ``y = x``): a constant one (``xmax == xmin``)
    and one whose gain exceeds 1e14 (a span below ``(ymax - ymin) / 1e14``). Where MATLAB
    passes a range wider than float64 through too, :func:`mapminmax` refuses it.
    """

    xmin: np.ndarray
    xmax: np.ndarray
    ymin: float = -1.0
    ymax: float = 1.0

    @property
    def gain(self) -> np.ndarray:
        """MATLAB's ``settings.gain``: ``(ymax - ymin) / (xmax - xmin)``, 1 where the
        column passes through."""
        return self._gain_offset()[0]

    @property
    def xoffset(self) -> np.ndarray:
        """MATLAB's ``settings.xoffset``: ``xmin``, ``ymin`` where the column passes through."""
        return self._gain_offset()[1]

    @property
    def passed(self) -> np.ndarray:
        """Which columns pass through unchanged (constant, or a gain above 1e14)."""
        return self._gain_offset()[2]

    def _gain_offset(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(gain, xoffset, passed)`` as mapminmax.m computes them."""
        yrange = self.ymax - self.ymin
        if not np.isfinite(yrange):
            raise ValueError(
                f"MapMinMax: [ymin, ymax] = [{self.ymin:g}, {self.ymax:g}]: ymax - ymin "
                "overflows float64; choose a narrower [ymin, ymax]"
            )
        span = self.xmax - self.xmin
        with np.errstate(over="ignore", divide="ignore"):
            gain = yrange / np.where(span > 0, span, 1.0)
        passed = (span == 0) | ~(np.abs(gain) <= _MAX_GAIN)  # inf (a subnormal span) too
        return np.where(passed, 1.0, gain), np.where(passed, self.ymin, self.xmin), passed

    def apply(self, x: ArrayLike) -> np.ndarray:
        """``x`` (rows of columns) into ``[ymin, ymax]``: ``y = (x - xoffset) gain + ymin``,
        float64 (cast it to a network's dtype yourself: ``feedforwardnet`` does)."""
        x = self._columns("x", x)
        gain, xoffset, _ = self._gain_offset()
        with np.errstate(over="ignore"):
            y = (x - xoffset) * gain + self.ymin
        _finite("apply", y, "overflows float64")
        return y

    def reverse(self, y: ArrayLike) -> np.ndarray:
        """The inverse of :meth:`apply`, back to the original units:
        ``x = (y - ymin) / gain + xoffset``, float64."""
        y = self._columns("y", y)
        gain, xoffset, _ = self._gain_offset()
        with np.errstate(over="ignore"):
            x = (y - self.ymin) / gain + xoffset
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
    """MATLAB's ``[y, settings] = mapminmax(x', ymin, ymax)``: every column of ``x`` to
    ``[ymin, ymax]`` by ``y = (ymax - ymin) (x - xmin) / (xmax - xmin) + ymin``.

    Rows are examples and columns variables, the transpose of MATLAB's layout: MATLAB maps
    each row, so data written as MATLAB writes it needs ``x.T`` in and ``y.T`` out
    (MATLAB's documentation example ``x1 = [1 2 4; 1 1 1; 3 2 2; 0 0 0]`` gives its numbers
    as ``mapminmax(x1.T)[0].T``; untransposed, the columns are mapped instead). A constant
    column passes through unchanged, as in MATLAB (see :class:`MapMinMax`).

    Args:
        x: shape ``(n, d)``, ``n >= 1``, finite.
        ymin, ymax: the target range, finite, ``ymin < ymax``.
        name: what the errors call ``x`` (``feedforwardnet`` maps its ``t`` too).

    Returns:
        ``(y, settings)``: ``y`` of shape ``(n, d)``, float64, as MATLAB computes in
        double; ``settings`` a :class:`MapMinMax` to apply to new data and to reverse.
    """
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


def initnw(
    seed: int,
    sizes: Sequence[int],
    activations: Sequence[str] | None = None,
    *,
    dtype: Any = jnp.float32,
) -> MLP:
    """MATLAB's ``initnw``: Nguyen-Widrow's initial weights, ``feedforwardnet``'s default.

    A layer of ``S`` units with ``R`` inputs whose transfer function has a finite active
    input range ``[amin, amax]`` (``tanh``, MATLAB's ``tansig``: ``[-2, 2]``; ``sigmoid``,
    ``logsig``: ``[-4, 4]``) spreads its units over that range, for inputs in ``[-1, 1]``:

        wMag = 0.7 S^(1/R)
        wDir = randnr(S, R)           (normr(rands(S, R)): rows of entries uniform in
                                       [-1, 1], each scaled to unit length)
        w = wMag wDir
        b = 0 if S == 1 else wMag linspace(-1, 1, S) sign(w[:, 0])
        x = (amax - amin) / 2,  y = (amax + amin) / 2
        w = x w,  b = x b + y

    Inputs in ``[lo, hi]`` instead (a layer after a ``sigmoid`` one: ``[0, 1]``) are
    brought to ``[-1, 1]`` as MATLAB's ``calcnw`` does: with ``s = 2 / (hi - lo)``,
    ``b = b + (1 - s hi) sum_j w_j`` first, then ``w = s w``. The first layer's inputs
    are taken as ``[-1, 1]``, :func:`mapminmax`'s, and a ``tanh`` layer's outputs are in
    ``[-1, 1]``. A transfer function without a finite active range (``identity``,
    ``purelin``: the output layer of a fitting network) gets MATLAB's fallback,
    ``rands``: weights and biases uniform in ``[-1, 1]``.

    The formulas are MATLAB's (``S x R`` as MATLAB draws them, stored transposed in
    jbpnn's ``(R, S)`` layout); the random numbers come from NumPy's generator
    (``np.random.default_rng(seed)``: per layer the ``S x R`` uniforms of the weights,
    then, for ``rands``, the biases'), not MATLAB's, so the same seed does not give
    MATLAB's weights.

    Args:
        seed: NumPy's seed, ``0 .. 2**32 - 1``.
        sizes: layer widths, input first: ``(d, 10, k)``.
        activations: one name per layer, hidden ``"tanh"`` or ``"sigmoid"``, the output
            also ``"identity"``; default ``tanh`` hidden layers and an ``identity``
            output (``feedforwardnet``'s ``tansig`` and ``purelin``).
        dtype: the params' floating dtype (float64 needs ``jax_enable_x64``).

    Returns:
        An :class:`jbpnn.params.MLP` with the ``mse`` loss.

    Raises:
        ValueError: bad sizes, a seed out of range, an activation MATLAB's ``initnw``
            has no rule for here.
    """
    sizes = layer_sizes(sizes)
    rng = np.random.default_rng(check_seed("seed", seed))
    n_layers = len(sizes) - 1
    names = ("tanh",) * (n_layers - 1) + ("identity",) if activations is None else activations
    if isinstance(names, str) or len(names) != n_layers:
        raise ValueError(
            f"initnw: activations must be one name per layer ({n_layers}), got {names!r}"
        )
    layers = []
    lo, hi = -1.0, 1.0  # the first layer's inputs: mapminmax's range
    for i, (r, s, name) in enumerate(zip(sizes[:-1], sizes[1:], names)):
        hidden = i < n_layers - 1
        if name not in (_OUTPUT_RANGE if hidden else _ACTIVE_INPUT_RANGE):
            allowed = list(_OUTPUT_RANGE if hidden else _ACTIVE_INPUT_RANGE)
            raise ValueError(
                f"initnw: layer {i}'s activation {name!r} has no rule here; "
                f"{'a hidden' if hidden else 'the output'} layer takes one of {allowed}"
            )
        active = _ACTIVE_INPUT_RANGE[name]
        if active is None:  # rands: uniform in [-1, 1]
            w = rng.uniform(-1.0, 1.0, (s, r)).T
            b = rng.uniform(-1.0, 1.0, s)
        else:
            w, b = _nguyen_widrow(rng, r, s, active, (lo, hi))
            lo, hi = _OUTPUT_RANGE[name]
        layers.append((w, b))
    return MLP.from_layers(layers, tuple(names), "mse", dtype=dtype)


def _nguyen_widrow(
    rng: np.random.Generator,
    r: int,
    s: int,
    active: tuple[float, float],
    inputs: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's ``calcnw``: one layer's ``(w, b)``, ``w`` of shape ``(r, s)``."""
    w_mag = 0.7 * s ** (1.0 / r)
    w_dir = rng.uniform(-1.0, 1.0, (s, r))  # randnr = normr(rands(S, R))
    w_dir = w_dir / np.sqrt(np.sum(w_dir**2, axis=1, keepdims=True))
    w = (w_mag * w_dir).T  # jbpnn's layout: w[j, k], input j to unit k
    b = np.zeros(s) if s == 1 else w_mag * np.linspace(-1.0, 1.0, s) * np.sign(w[0])
    amin, amax = active  # net inputs of [-1, 1] to the active range [amin, amax]
    x, y = (amax - amin) / 2, (amax + amin) / 2
    w, b = x * w, x * b + y
    lo, hi = inputs  # inputs of [lo, hi] to [-1, 1]: z = x_in p + y_in
    x_in = 2.0 / (hi - lo)
    y_in = 1.0 - hi * x_in
    b = b + y_in * w.sum(axis=0)  # calcnw's b = w*y + b, with w before the next line
    w = x_in * w
    return w, b


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
        net: the trained :class:`jbpnn.params.MLP`, on the mapped data: its inputs are
            the non-constant columns ``input_cols`` of ``x`` mapped by ``input_map``, its
            outputs the non-constant columns ``target_cols`` of ``t`` as mapped.
        result: jbpnn's :class:`TrainResult` (history, stop reason, state to resume). Its
            history is jbpnn's, on the mapped targets, and one epoch apart from MATLAB's
            ``tr``: ``history["loss"][i]`` is ``E = mse / 2`` (one output; ``k/2`` mse
            for ``k``) of the training rows for the network at the start of epoch
            ``i + 1``, ``history["val_loss"][i]`` that of the validation rows for the
            network after epoch ``i + 1``; MATLAB's ``tr.perf(i + 1)`` and
            ``tr.vperf(i + 1)`` are the mse of the network after epoch ``i`` (so, with
            one output and ``normalization="standard"``, ``tr.perf(i + 1)`` is
            ``2 history["loss"][i]`` and ``tr.vperf(i + 2)`` is
            ``2 history["val_loss"][i]``; with ``"none"``, ``c`` times these, see
            :func:`feedforwardnet`).
        input_map, target_map: the :class:`MapMinMax` settings of every column of ``x``
            and ``t`` (a constant column passes through).
        train_ind, val_ind, test_ind: the rows of each part (``tr.trainInd`` ...).
        perf, vperf, tperf: MATLAB's ``mse`` of each part (``tr.best_perf``,
            ``best_vperf``, ``best_tperf``: of ``net``): with ``normalization="none"``
            (MATLAB's default) the mean of ``(net(x) - t)^2`` in the targets' own
            units, over every target column; with ``"standard"`` of the outputs and
            targets mapped to [-1, 1]. NaN for an empty part.
        best_epoch: the epoch of ``net`` (``tr.best_epoch``).
        stop: why training stopped (``tr.stop``), as jbpnn names it.
        normalization: ``"none"`` or ``"standard"``, the units of ``perf`` and ``goal``.
        input_cols: the columns of ``x`` the network takes (MATLAB's
            ``removeconstantrows`` drops the constant ones).
        target_cols: the columns of ``t`` the network predicts; each constant one is
            predicted as its constant.
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
    normalization: str
    input_cols: np.ndarray
    target_cols: np.ndarray

    def __call__(self, x: ArrayLike) -> np.ndarray:
        """``y = net(x)`` in the targets' own units, float64: ``x`` of the original width
        (shape ``(n, d)``) is mapped, its non-constant columns go through the network,
        the outputs are mapped back and each constant target column is its constant
        (MATLAB's ``removeconstantrows`` and ``mapminmax``, reversed). Shape ``(n, k)``."""
        xs = self.input_map.apply(x)
        return self.target_map.reverse(
            _mapped_outputs(self.net, xs, self.input_cols, self.target_map, self.target_cols)
        )


def _mapped_outputs(
    net: MLP, xs: np.ndarray, input_cols: np.ndarray, target_map: MapMinMax, target_cols: np.ndarray
) -> np.ndarray:
    """The network's outputs for mapped inputs ``xs`` (every column of ``x``) as mapped
    targets of every column of ``t``, float64: a constant target column passes through
    mapminmax, so its mapped value is the constant itself."""
    with np.errstate(over="ignore"):
        z = xs[:, input_cols].astype(net.dtype)
    if not np.isfinite(z).all():  # in [-1, 1] on the data the map was fitted on
        i, j = np.argwhere(~np.isfinite(z))[0]
        raise ValueError(
            f"x: row {i}, column {input_cols[j]} is far outside the range the map was fitted "
            f"on: mapped, it overflows {np.dtype(net.dtype).name}"
        )
    out = np.repeat(target_map.xmin[None, :], len(xs), axis=0)
    out[:, target_cols] = np.asarray(predict(net, z), np.float64)
    return out


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
    init: str = "initnw",
    normalization: str = "none",
    dtype: Any = None,
) -> FitResult:
    """MATLAB's ``net = feedforwardnet(hidden, train_fcn); [net, tr] = train(net, x, t)``.

    ``tansig`` (tanh) hidden layers, a ``purelin`` (identity) output, the mse loss,
    :func:`initnw`'s initial weights (Nguyen-Widrow, MATLAB's; ``init="glorot"`` draws
    jbpnn's glorot weights and zero biases instead). Inputs and targets go through
    MATLAB's processing, ``removeconstantrows`` then :func:`mapminmax`: constant input
    columns are dropped from the network's inputs, constant target columns are predicted
    as their constant and the network fits the others. Rows are split by
    :func:`dividerand` (``trainbr`` validates on nothing: its validation rows join the
    training rows, as MATLAB's ``trainbr`` does). Training stops on ``epochs``, ``goal``,
    ``max_fail`` validation failures in a row (the best epoch's net is kept, the initial
    net included as epoch 0, as MATLAB's), ``min_grad`` (``trainlm``, ``trainbr``:
    default 1e-7, ``trainrp``: 1e-5, MATLAB's; jbpnn's sgd and momentum have no gradient
    stop, so ``traingd`` and ``traingdm`` run without MATLAB's 1e-5) and ``mu_max`` (lm,
    br).

    Units. jbpnn trains on ``E = 1/2 mean_n sum_k e^2`` of the mapped targets (``e`` the
    mapped error). MATLAB's ``mse`` with ``normalization = 'none'`` (its default) takes
    the error in the targets' own units, ``e / gain`` with ``gain = 2 / span`` per column
    (``span = xmax - xmin``), and averages over all ``k`` target columns (a constant one
    adds 0): ``mse = (2 / k) E (span / 2)^2`` when one ``span`` is shared. So ``goal``
    becomes jbpnn's ``tol = goal k / (2 c)`` with ``c = (span / 2)^2``, and ``min_grad``,
    which MATLAB tests on its gradient (``trainlm``, ``trainrp``: of the mse, ``(2 / k)
    c |dE/dx|``; ``trainbr``: of the sse, ``2 n c |dE/dx|``), becomes ``min_grad k /
    (2 c)`` and ``min_grad / (2 n c)`` on jbpnn's ``|dE/dx|``; ``normalization="standard"``
    (MATLAB's other setting: outputs and targets mapped to [-1, 1]) is ``c = 1``.
    With several target columns of different spans MATLAB's objective weighs each column
    by ``span^2`` where jbpnn's weighs the mapped columns equally: no tolerance on ``E``
    is MATLAB's ``goal``, so a ``goal > 0`` or an explicit ``min_grad`` is refused there
    (use ``normalization="standard"``, whose objective is jbpnn's), the default
    ``min_grad`` is converted as ``"standard"``, and the network found differs from
    MATLAB's (which fits the wide columns at the narrow ones' expense). ``perf`` is
    reported in the chosen units either way; the validation stop compares jbpnn's mapped
    validation loss, the same order as MATLAB's ``vperf`` with one shared span. The other
    ``trainParam`` values are MATLAB's on the mapped loss: ``lr`` as
    ``normalization="standard"`` would step (MATLAB's ``'none'`` gradient, ``c`` times
    larger, steps ``c`` times further), ``mu`` as given.

    Precision. MATLAB trains in double; jbpnn in float32 unless ``dtype="float64"``
    (which needs ``jax.config.update("jax_enable_x64", True)``). In float32 ``trainlm``
    stops near an mse of 1e-9 to 1e-8 of the mapped targets (usually at ``mu_max``),
    where MATLAB goes on.

    Args:
        x: inputs, shape ``(n, d)`` (MATLAB's ``x.'``: one example per row).
        t: targets, shape ``(n,)`` or ``(n, k)`` (MATLAB's ``t.'``).
        hidden: hidden layer sizes (``feedforwardnet(10)`` or ``[10 5]``).
        train_fcn: one of :data:`TRAIN_FCNS`.
        epochs, goal, max_fail, min_grad, mu: ``net.trainParam``'s (``goal`` and
            ``min_grad`` in the units of ``normalization``).
        ratios: ``divideParam``'s train / validation / test ratios.
        seed: the initial weights' and the split's seed (NumPy's generator, not MATLAB's).
        init: ``"initnw"`` (MATLAB's) or ``"glorot"``.
        normalization: ``performParam.normalization``: ``"none"`` (MATLAB's default: the
            targets' units) or ``"standard"`` (targets mapped to [-1, 1]).
        dtype: ``None`` (float32, jbpnn's default), ``"float32"`` or ``"float64"``.

    Raises:
        ValueError: an unknown ``train_fcn`` (listing the known ones), bad shapes or
            values, data in MATLAB's layout (one example per column), only constant
            columns in ``x`` or in ``t``, a ``goal`` or ``min_grad`` that has no
            equivalent (above), float64 without 64-bit JAX.
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
    if init not in ("initnw", "glorot"):
        raise ValueError(f"init must be 'initnw' (MATLAB's) or 'glorot', got {init!r}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"normalization must be one of {list(NORMALIZATIONS)} (MATLAB's "
            f"performParam.normalization; 'none' is its default), got {normalization!r}"
        )
    dtype = _network_dtype(dtype)
    t = np.asarray(t)
    t = t[:, None] if t.ndim == 1 else t
    _check_layout(np.shape(x), t.shape)
    xs_all, input_map = mapminmax(x, name="x")
    ts_all, target_map = mapminmax(t, name="t")
    if len(ratios) != 3:
        raise ValueError(
            f"ratios are divideParam's (train, validation, test) ratios, three numbers; got "
            f"{tuple(ratios)!r}"
        )
    if len(xs_all) != len(ts_all):
        raise ValueError(
            f"x has {len(xs_all)} rows and t {len(ts_all)}: one target row per input row"
            + (
                " (x looks like MATLAB's layout, one example per column: pass x.T)"
                if xs_all.shape[1] == len(ts_all)
                else ""
            )
        )
    # removeconstantrows: the network takes and predicts the columns that vary
    input_cols = np.flatnonzero(input_map.xmax > input_map.xmin)
    target_cols = np.flatnonzero(target_map.xmax > target_map.xmin)
    if not len(target_cols):
        raise ValueError(
            f"every column of t is constant ({target_map.xmin.tolist()}): nothing to fit "
            "(MATLAB's removeconstantrows would leave the network no outputs)"
        )
    if not len(input_cols):
        raise ValueError(
            "every column of x is constant: the network would have no inputs (MATLAB's "
            "removeconstantrows removes them all), and could only predict the mean of t"
        )
    xs = xs_all[:, input_cols].astype(dtype)
    ts = ts_all[:, target_cols].astype(dtype)
    train_ind, val_ind, test_ind = dividerand(len(xs), *ratios, seed=seed)
    if not validates:  # trainbr: no early stopping, the validation rows train too
        train_ind, val_ind = np.sort(np.concatenate([train_ind, val_ind])), val_ind[:0]
    k = t.shape[1]  # E = 1/2 mean_n sum_k e^2 = (k / 2) mse: MATLAB's units to E's
    # c: MATLAB's squared errors per squared mapped error, 1 / gain^2 = (span / 2)^2 in
    # the targets' units ("none"); None where the columns' gains differ (no one c)
    gains = target_map.gain[target_cols]
    c: float | None = 1.0
    if normalization == "none":
        c = 1 / gains[0] ** 2 if np.allclose(gains, gains[0], rtol=1e-12, atol=0) else None
    spans = (target_map.xmax - target_map.xmin)[target_cols]
    if c is None and (goal > 0 or min_grad is not None):
        what = "goal" if goal > 0 else "min_grad"
        raise ValueError(
            f"{what} with normalization='none' is MATLAB's on the mse in the targets' own "
            f"units, which weighs each column of t by its span^2 (spans "
            f"{np.round(spans, 6).tolist()}), where jbpnn's loss weighs the mapped columns "
            f"equally: no threshold on jbpnn's loss is MATLAB's {what}; pass "
            f"normalization='standard' (the mse of the targets mapped to [-1, 1]) or drop {what}"
        )
    c_grad = 1.0 if c is None else c  # the default min_grad there: as "standard"
    if name in ("lm", "br", "rprop"):
        # MATLAB tests min_grad on its own gradient: trainlm's and trainrp's of the mse,
        # |d mse/dx| = (2 / k) c |dE/dx| (trainlm's 2 c |J^T e| / (n k)), trainbr's of the
        # sse, 2 c |J^T e|; jbpnn's |dE/dx| is |J^T e| / n
        n = len(train_ind)
        given = _MATLAB_MIN_GRAD[train_fcn] if min_grad is None else min_grad
        min_grad_e = given / (2 * n * c_grad) if name == "br" else given * k / (2 * c_grad)
        kwargs = {**kwargs, "min_grad": min_grad_e}
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
    sizes = (len(input_cols), *hidden, len(target_cols))
    activations = ("tanh",) * len(hidden) + ("identity",)
    if init == "initnw":
        params = initnw(seed, sizes, activations, dtype=dtype)
    else:
        params = init_params(seed, sizes, activations, "mse", "glorot", dtype=dtype)
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
        tol=goal * k / (2 * c) if goal > 0 and c is not None else None,
        **val,
    )
    net = result.params
    # MATLAB's mse: of the outputs mapped back ("none") or of the mapped ones ("standard")
    outputs = _mapped_outputs(net, xs_all, input_cols, target_map, target_cols)
    if normalization == "none":
        e = target_map.reverse(outputs) - np.asarray(t, np.float64)
    else:
        e = outputs - ts_all

    def mse(rows: np.ndarray) -> float:
        return float(np.mean(e[rows] ** 2)) if len(rows) else float("nan")

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
        normalization=normalization,
        input_cols=input_cols,
        target_cols=target_cols,
    )


def _network_dtype(dtype: Any) -> np.dtype:
    """``feedforwardnet``'s ``dtype``: None as float32; float32, or float64 as MATLAB
    trains, which needs 64-bit JAX (:func:`jbpnn.params.init_params`'s rule)."""
    if dtype is None:
        return np.dtype(np.float32)
    try:
        name = np.dtype(dtype).name
    except TypeError:  # a name NumPy does not know ("bfloat16" without ml_dtypes' type)
        name = repr(dtype)
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
    return _requested_dtype(dtype)


def _check_layout(x_shape: tuple[int, ...], t_shape: tuple[int, ...]) -> None:
    """Refuse MATLAB's layout, one example per column: ``x`` with fewer rows than columns
    and ``t`` with as many columns as ``x`` (MATLAB's 1 x 94 ``simplefit_dataset``, passed
    as it is, trained a 94-input network on one example and reported a perfect fit)."""
    if (
        len(x_shape) == 2
        and len(t_shape) == 2
        and x_shape[0] < x_shape[1]
        and t_shape[1] == x_shape[1]
    ):
        raise ValueError(
            f"x has shape {x_shape} and t {t_shape}: fewer rows than columns, and as many "
            "columns in t as in x, is MATLAB's layout (one example per column); jbpnn's rows "
            "are examples: pass x.T and t.T"
        )
