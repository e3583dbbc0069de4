"""scikit-learn estimators on jbpnn's one training core, and a grid search at ``train_many`` speed.

scikit-learn is an optional extra (``pip install "jbpnn[sklearn]"``). This is the only
module that imports it, and ``import jbpnn`` does not import this module. (One job,
scikit-learn's contract, in one module: the two estimators and the
grid search share the settings, the splits and the fitted attributes, and read best
side by side with scikit-learn's own ``_multilayer_perceptron.py``.)

- :class:`BPNNClassifier` and :class:`BPNNRegressor` take the parameter names of
  ``MLPClassifier`` / ``MLPRegressor`` where the meaning is the same, and train with
  :func:`jbpnn.training.train`, the hand-derived backward pass:

  ``solver="sgd"`` is :func:`jbpnn.optimizers.momentum` (variant ``"nesterov"`` if
  ``nesterovs_momentum``, else ``"classical"``; or ``momentum_variant=``), ``"adam"`` is
  :func:`jbpnn.optimizers.adam` (``beta_1, beta_2, epsilon`` -> ``b1, b2, eps``),
  ``alpha`` is the optimizers' ``alpha`` (scikit-learn's own L2, ``(alpha/2) |W|^2 /
  n_batch`` on the weights only), ``learning_rate="invscaling"`` is scikit-learn's
  (:func:`jbpnn.optimizers.epoch_inverse_scaling`: ``t`` the samples seen, once per
  epoch; the core's own ``inverse_scaling`` counts updates), ``max_iter`` is ``epochs``, and
  ``early_stopping`` is the core's ``n_iter_no_change`` on a ``validation_fraction``
  split (the best params are kept).

  ``solver="lbfgs"`` is :func:`jbpnn.optimizers.lbfgs`, full batch, as scikit-learn's
  (``batch_size``, ``shuffle``, ``early_stopping``, ``n_iter_no_change`` and the
  learning-rate parameters are not used): ``max_iter`` iterations (one per epoch),
  ``tol`` is scipy's ``gtol`` (stop when ``max|g| <= tol``), ``max_fun`` the most
  evaluations of the loss and gradient, scipy's ``ftol`` (2.2e-9) its default; the
  loss it minimises includes ``(alpha/2) |W|^2 / n`` (``n`` the total sample weight),
  and ``loss_`` is that objective at the final params, as scikit-learn's. Not reaching
  ``gtol`` or ``ftol`` warns as scikit-learn does (``ConvergenceWarning``). ``n_iter_``
  counts iterations as scipy's ``nit``: a fit whose start already meets ``gtol`` (a
  warm refit of a converged network) takes no step and reports 0.

  ``solver="lm"`` (jbpnn's own) is :func:`jbpnn.optimizers.levenberg_marquardt`, full
  batch, on the squared error: ``max_iter`` epochs, ``tol`` its ``min_grad`` (stop when
  ``|dE/dtheta| < tol``, the meaning lbfgs gives ``tol``), ``alpha`` the same L2 term in
  the normal equations. The regressor's loss is the squared error already; the
  classifier needs ``loss="mse"`` (sigmoid outputs, squared error on one-hot targets)
  and refuses its cross-entropy with ``lm``, pointing to ``solver="lbfgs"``.

  ``fit`` starts from fresh params; ``warm_start=True`` and ``partial_fit`` (one epoch)
  resume ``state_``, the :class:`jbpnn.training.TrainState` of the last call, with its
  optimizer moments, step count and data-order key.

- :class:`SweepSearchCV` is a drop-in for ``GridSearchCV`` over these estimators.
  Candidates that differ only in values the core holds as data (the learning rate,
  momentum, ``alpha``, Adam's betas and epsilon, ``power_t``, ``random_state``) are
  trained together with every cross-validation fold in ONE
  :func:`jbpnn.many.train_many` call: each network its own training rows (``rows=``),
  init seed (``seeds=``) and data-order key (``keys=``). Candidates that change the
  architecture or another static setting are grouped, one call per group.

Where jbpnn's core defines things otherwise than scikit-learn (also in the README):

- **Stopping** is scikit-learn's, run by the core's rules: without
  ``early_stopping``, the core's ``loss_patience=n_iter_no_change + 1`` and
  ``loss_tol=tol`` (scikit-learn stops once its count exceeds ``n_iter_no_change``);
  with it, ``n_iter_no_change + 1`` epochs on the validation split, watching the
  accuracy (``monitor="val_accuracy"``, subset accuracy for multilabel) for the
  classifier and the R^2 for the regressor (``monitor="val_r2"``: ``r2_score``'s
  uniform average over the outputs, as ``MLPRegressor``), both weighted by the split's
  sample weights as scikit-learn's.
  ``learning_rate="adaptive"`` (sgd) is the core's ``lr_factor=0.2, min_lr=1e-6``: a
  plateau divides the learning rate by 5 until it is at most 1e-6.
  ``validation_scores_`` are exact fractions ``right / n`` without sample weights, and
  ``best_validation_score_`` is their maximum; a constant validation target scores 0.
- **The loss curve** holds the core's epoch loss, the mean error of each example
  measured before its batch's update, plus scikit-learn's ``0.5 alpha |W|^2 / n_batch``
  on each batch (:func:`jbpnn.optimizers.with_loss_penalty`), as scikit-learn; ``verbose``
  prints its ``Iteration 1, loss = 0.32264812`` lines (with early stopping its
  ``Validation score: ...`` lines too) and a plateau's stop line. The regressor's is scikit-learn's
  ``squared_error``, ``1/2`` the squared error averaged over the outputs (jbpnn's
  ``mse`` sums over them; the gradients are the same).
- **coefs_ / intercepts_** set by hand are the network of the next ``partial_fit``,
  warm-started ``fit`` and ``predict`` (as scikit-learn's ``test_fit`` sets them).
- **Adam** is scikit-learn's step (``adam(variant="efficient")``: ``epsilon`` added to
  ``sqrt(nu)``); the core's default ``adam`` adds it to the bias-corrected ``sqrt(nu_hat)``.
- **Init.** ``init="glorot"`` draws the weights uniform in ``+-sqrt(6/(n_in+n_out))``
  and sets the biases to 0; scikit-learn also draws the biases and uses the factor 2
  for ``logistic``. ``init`` may also be the initial params themselves.
- **warm_start** carries the optimizer state; scikit-learn makes a new optimizer at
  every ``fit`` (``partial_fit`` carries it in both).
- **dtype.** Float32 by default (``dtype="float64"`` needs ``jax_enable_x64``):
  ``coefs_`` are in that dtype, predictions in NumPy's type of ``X @ coefs_`` (float32
  for float32 input). Finite input that overflows it (``X``, a ``y`` whose squares do, a
  ``sample_weight`` sum) is refused before training. scipy.sparse input is densified
  after a memory check. ``MLPRegressor``'s ``loss="poisson"`` is not offered.
- **lbfgs** is L-BFGS with a strong-Wolfe line search written in JAX (scipy's L-BFGS-B
  uses More and Thuente's; here ``c1 = 1e-3`` as there, the zoom of Nocedal and
  Wright): the same stop rules, not the same iterates. ``partial_fit`` makes one
  iteration (scikit-learn offers it for sgd and adam only); ``warm_start`` carries the
  pairs, and each call has its own ``max_fun`` budget.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import inspect
import math
import numbers
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from itertools import product
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

try:
    from sklearn.base import (
        BaseEstimator,
        ClassifierMixin,
        MetaEstimatorMixin,
        RegressorMixin,
        clone,
        is_classifier,
    )
except ImportError as error:  # pragma: no cover - the extra is missing
    raise ImportError(
        'jbpnn.sklearn needs scikit-learn: pip install "jbpnn[sklearn]" (or scikit-learn>=1.3)'
    ) from error
from sklearn import get_config
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning
from sklearn.metrics import check_scoring
from sklearn.metrics._scorer import _check_multimetric_scoring, _MultimetricScorer
from sklearn.model_selection import ParameterGrid, check_cv, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import _safe_indexing, indexable
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    get_routing_for_object,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_is_fitted,
    check_random_state,
    column_or_1d,
)

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def validate_data(estimator, X="no_validation", y="no_validation", **kwargs):
        return estimator._validate_data(X, y, **kwargs)


from jbpnn import activations
from jbpnn.checks import as_key, check_weights, host_or_device, weight_sum_limit
from jbpnn.compilation_cache import default_compilation_cache
from jbpnn.lbfgs import LBFGSState
from jbpnn.many import InitSpec, train_many
from jbpnn.memory import EnsembleTooLarge, check_array_memory, check_memory, estimate_memory
from jbpnn.network import predict
from jbpnn.optimizers import (
    Optimizer,
    adam,
    epoch_inverse_scaling,
    lbfgs,
    levenberg_marquardt,
    momentum,
    with_loss_penalty,
)
from jbpnn.params import INITS, MLP, init_params
from jbpnn.state import TrainState
from jbpnn.stopping import Stopping
from jbpnn.training import RUNNING, TrainResult, train

__all__ = ["EXPECTED_FAILED_CHECKS", "BPNNClassifier", "BPNNRegressor", "SweepSearchCV"]

# scikit-learn's estimator checks these estimators fail, with the reason (for
# ``parametrize_with_checks(..., expected_failed_checks=EXPECTED_FAILED_CHECKS.get)``).
_FLOAT32 = (
    "weighted and repeated rows give the same predictions only up to float32 rounding "
    "(measured: relative differences of 1e-7 to 3e-7; the check asks rtol=1e-7); with "
    "dtype='float64' it passes"
)
_WEIGHTS = {  # the sparse input is densified: the same float32 rounding
    "check_sample_weight_equivalence_on_dense_data": _FLOAT32,
    "check_sample_weight_equivalence_on_sparse_data": _FLOAT32,
}
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "BPNNClassifier": dict(_WEIGHTS),
    "BPNNRegressor": dict(_WEIGHTS),
}

# scikit-learn's activation names (and jbpnn's own) -> jbpnn's.
ACTIVATION_NAMES = {
    "logistic": "sigmoid",
    "sigmoid": "sigmoid",
    "relu": "relu",
    "tanh": "tanh",
    "identity": "identity",
}


def hidden_activation(name: object) -> str:
    """jbpnn's name for the estimators' ``activation=``: scikit-learn's names, or any
    activation of jbpnn's table that may be a hidden unit (swish, gelu, softplus, and
    units registered with :func:`jbpnn.register_activation`)."""
    if isinstance(name, str) and name in ACTIVATION_NAMES:
        return ACTIVATION_NAMES[name]
    if isinstance(name, str) and name in activations.ACTIVATIONS:
        if not activations.ACTIVATIONS[name].output_only:
            return name
        raise ValueError(f"activation={name!r} is an output unit only; the estimators' "
                         "activation is the hidden layers'")  # fmt: skip
    hidden = sorted(k for k, v in activations.ACTIVATIONS.items() if not v.output_only)
    raise ValueError(
        f"activation must be one of {sorted(ACTIVATION_NAMES)} (scikit-learn's) or a jbpnn "
        f"hidden unit {[k for k in hidden if k not in ACTIVATION_NAMES]} (register your own "
        f"with jbpnn.register_activation), got {name!r}"
    )


# jbpnn's output activation -> scikit-learn's out_activation_ name.
_OUT_ACTIVATION = {"softmax": "softmax", "sigmoid": "logistic", "identity": "identity"}
_PREDICT_CHUNK = 512  # predictions run in fixed-size chunks: one program, row-order invariant
_SEED_LIMIT = 2**31 - 1
SOLVERS = ("sgd", "adam", "lbfgs", "lm")
_FULL_BATCH = ("lbfgs", "lm")  # scikit-learn's lbfgs, and jbpnn's lm: no batches, shuffle or split
_NEVER = (
    2**31 - 1
)  # n_iter_no_change=inf: the core still counts (_no_improvement_count), never stops


# ---------------------------------------------------------------- settings
class _ValSet(NamedTuple):
    """The validation split of an early-stopping fit: inputs, targets, weights or None."""

    X: np.ndarray
    Y: np.ndarray
    w: np.ndarray | None


class _Settings(NamedTuple):
    """One estimator's checked settings: the static part (a group key) and the values.

    ``values`` are the optimizer's hyperparameters (``lr``, ``alpha``, and ``m`` or
    ``b1, b2, eps``, plus ``power_t`` for ``invscaling``): data to the core, so
    networks that differ only there train in one ``train_many`` call.
    """

    hidden: tuple[int, ...]
    activation: str
    solver: str
    variant: str | None
    schedule: str
    batch_size: int | None
    shuffle: bool
    max_iter: int
    early_stopping: bool
    validation_fraction: float
    patience: int | None
    tol: float
    loss: str
    init: Any
    dtype: np.dtype
    values: dict[str, float]

    def static(self) -> tuple:
        """What must be equal for two networks to train in one ``train_many`` call."""
        init = _init_key(self.init)
        # tol and n_iter_no_change are data (per-network thresholds); whether a rule is on is not
        stop = (self.validation_fraction,) if self.early_stopping else ()
        stop = (*stop, _stopping(self, "val_loss", 0.0).switches)
        return (
            self.hidden,
            self.activation,
            self.solver,
            self.variant,
            self.schedule,
            self.shuffle,
            self.max_iter,
            self.early_stopping,
            stop,
            self.loss,
            init,
            self.dtype.name,
            tuple(sorted(self.values)),
        )


def _number(
    name: str, value: Any, low: float, high: float | None = None, *, open_low=False, open_high=True
) -> float:
    # The ignores: typeshed's numbers.Real declares no conversions or comparisons.
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):  # type: ignore[call-overload]
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    bad = value < low or (open_low and value == low)
    if high is not None:
        bad = bad or value > high or (open_high and value == high)  # type: ignore[operator]
    if bad:
        lo = f"> {low}" if open_low else f">= {low}"
        hi = "" if high is None else f" and {'<' if open_high else '<='} {high}"
        raise ValueError(f"{name} must be {lo}{hi}, got {value!r}")
    return float(value)


def _integer(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _stopping(s: _Settings, monitor: str, validation_tol: float | None) -> Stopping:
    """scikit-learn's stopping rules as the core's: ``early_stopping`` is
    ``n_iter_no_change`` on the validation split (``validation_tol``, ``monitor``);
    without it, ``tol`` / ``n_iter_no_change`` are the training-loss plateau
    (``loss_patience``); ``learning_rate="adaptive"`` makes a plateau divide lr by 5."""
    rules: dict[str, Any] = {}
    if s.solver in _FULL_BATCH:  # scikit-learn's lbfgs: scipy's own rules only (the optimizer's)
        return Stopping()
    if s.early_stopping:
        rules = {
            "n_iter_no_change": s.max_iter + 1 if s.patience is None else s.patience,
            "validation_tol": validation_tol,
            "monitor": monitor,
        }
    else:  # the training-loss rule (n_iter_no_change=inf: counted, never fires)
        rules = {"loss_patience": _NEVER if s.patience is None else s.patience, "loss_tol": s.tol}
    if s.schedule == "adaptive" and s.patience is not None:
        rules.update(lr_factor=0.2, min_lr=1e-6)  # scikit-learn: lr / 5 while lr > 1e-6
    return Stopping(**rules)


def _settings(est: _BPNNBase) -> _Settings:
    """Check every constructor parameter (as scikit-learn does, at fit time)."""
    hidden = est.hidden_layer_sizes
    if not hasattr(hidden, "__iter__") or isinstance(hidden, str):
        hidden = [hidden]
    hidden = tuple(_integer("hidden_layer_sizes", h, 1) for h in hidden)
    activation = hidden_activation(est.activation)
    if est.solver not in SOLVERS:
        raise ValueError(f"solver must be 'sgd', 'adam', 'lbfgs' or 'lm', got {est.solver!r}")
    full_batch = est.solver in _FULL_BATCH
    if est.learning_rate not in ("constant", "invscaling", "adaptive"):
        raise ValueError(
            "learning_rate must be 'constant', 'invscaling' or 'adaptive', "
            f"got {est.learning_rate!r}"
        )
    # scikit-learn: learning_rate and power_t are only used when solver='sgd'
    schedule = est.learning_rate if est.solver == "sgd" else "constant"
    values = {
        "lr": _number("learning_rate_init", est.learning_rate_init, 0.0, open_low=True),
        "alpha": _number("alpha", est.alpha, 0.0),
    }
    max_fun = _integer("max_fun", est.max_fun, 1)
    if est.solver == "lbfgs":  # scipy's gtol is scikit-learn's tol
        del values["lr"]
        values.update(gtol=_number("tol", est.tol, 0.0), max_fun=max_fun)
    elif est.solver == "lm":  # tol as lbfgs's: stop when the gradient is that small (min_grad)
        del values["lr"]
        values["min_grad"] = _number("tol", est.tol, 0.0)
    # Every parameter is checked, whether this solver uses it or not (scikit-learn's
    # ranges); the ones it uses go to the optimizer.
    power_t = _number("power_t", est.power_t, 0.0)
    # scikit-learn's range is [0, 1]; sgd's core needs m < 1, said first (not "<= 1")
    _number("momentum", est.momentum, 0.0, 1.0, open_high=est.solver == "sgd")
    if not isinstance(est.nesterovs_momentum, (bool, np.bool_)):
        raise ValueError(
            f"nesterovs_momentum must be True or False, got {est.nesterovs_momentum!r}"
        )
    if est.momentum_variant not in (None, "classical", "nesterov", "article"):
        raise ValueError(
            "momentum_variant must be None, 'classical', 'nesterov' or 'article', "
            f"got {est.momentum_variant!r}"
        )
    adam = {
        "b1": _number("beta_1", est.beta_1, 0.0, 1.0),
        "b2": _number("beta_2", est.beta_2, 0.0, 1.0),
        "eps": _number("epsilon", est.epsilon, 0.0, open_low=True),
    }
    verbose = est.verbose
    if not isinstance(verbose, (bool, np.bool_)) and (
        not isinstance(verbose, numbers.Integral) or verbose < 0
    ):
        raise ValueError(f"verbose must be True, False or an integer >= 0, got {verbose!r}")
    if schedule == "invscaling":
        values["power_t"] = power_t
    variant = None
    if est.solver == "sgd":
        values["m"] = _number("momentum", est.momentum, 0.0, 1.0)  # the core needs m < 1
        variant = est.momentum_variant
        if variant is None:
            variant = "nesterov" if est.nesterovs_momentum else "classical"
    elif est.solver == "adam":
        values.update(adam)
    batch = est.batch_size
    if not (isinstance(batch, str) and batch == "auto"):
        batch = _integer("batch_size", batch, 1)
    else:
        batch = None
    for name in ("shuffle", "early_stopping", "warm_start"):
        if not isinstance(getattr(est, name), (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {getattr(est, name)!r}")
    patience = est.n_iter_no_change
    if isinstance(patience, numbers.Real) and not isinstance(patience, bool) and patience == np.inf:
        patience = None  # never stops; the best params are still kept
    else:
        patience = _integer("n_iter_no_change", patience, 1) + 1  # scikit-learn stops at count > n
    fraction = _number("validation_fraction", est.validation_fraction, 0.0, 1.0)
    if est.early_stopping and fraction == 0 and not full_batch:  # lbfgs, lm: not used
        raise ValueError("early_stopping needs validation_fraction > 0")
    if est.init is None or (isinstance(est.init, str) and est.init not in INITS):
        raise ValueError(
            f"init must be one of {list(INITS)}, an MLP, or a sequence of (coef, intercept) "
            f"pairs; got {est.init!r}"
        )
    try:
        dtype = np.dtype(est.dtype)
    except TypeError:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {est.dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {est.dtype!r}")
    # jax.config's options are attributes set at run time: mypy cannot see them.
    if dtype == np.float64 and not jax.config.jax_enable_x64:  # type: ignore[attr-defined]
        raise ValueError(
            "dtype='float64' needs 64-bit JAX: jax.config.update('jax_enable_x64', True) "
            "before anything else runs"
        )
    loss = est._check_loss()
    if est.solver == "lm" and loss == "log_loss":
        raise ValueError(
            "solver='lm' (Levenberg-Marquardt) minimises a sum of squared residuals, and "
            "the classifier's loss is the cross-entropy: use solver='lbfgs' for a full-batch "
            "second-order fit of that loss, or loss='mse' with solver='lm' (sigmoid outputs, "
            "squared error on one-hot targets: the article's network)"
        )
    return _Settings(
        hidden=hidden,
        activation=activation,
        solver=est.solver,
        variant=variant,
        schedule=schedule,
        batch_size=batch,
        shuffle=bool(est.shuffle) and not full_batch,
        max_iter=_integer("max_iter", est.max_iter, 1),
        early_stopping=bool(est.early_stopping) and not full_batch,
        validation_fraction=fraction,
        patience=patience,
        tol=_number("tol", est.tol, 0.0),
        loss=loss,
        init=est.init,
        dtype=dtype,
        values=values,
    )


def _build_optimizer(solver: str, variant: str | None, schedule: str, **values: Any) -> Optimizer:
    """The core optimizer of one network: ``momentum`` (sgd), ``adam``, ``lbfgs`` (with
    scipy's line-search constant ``c1 = 1e-3``) or ``levenberg_marquardt``, scikit-learn's
    alpha, and the alpha term in the training loss (``loss_alpha``, see :func:`_data_values`).

    ``alpha`` is always passed as an array, so the penalty is part of every kind (adding
    ``0 * w`` is exact): a network with ``alpha=0`` and one with ``alpha=1e-4`` share a
    compiled program, and a ``train_many`` sweep over alpha is the same kind as a fit.
    ``invscaling`` is scikit-learn's (:func:`jbpnn.optimizers.epoch_inverse_scaling`).
    """
    # host values stay NumPy: the compiled call copies them with its arguments (a
    # jax.device_put costs about 20 us an array)
    alpha = host_or_device(values["alpha"])
    if solver == "lbfgs":
        opt = lbfgs(c1=1e-3, gtol=values["gtol"], max_fun=values["max_fun"], alpha=alpha)
    elif solver == "lm":
        opt = levenberg_marquardt(min_grad=values["min_grad"], alpha=alpha)
    else:
        rate = values["lr"]
        if schedule == "invscaling":
            names = ("samples_per_epoch", "updates_per_epoch", "samples_before", "updates_before")
            rate = epoch_inverse_scaling(rate, values["power_t"], *(values[k] for k in names))
        # "adaptive" is a constant lr that the core's plateau rule divides (lr_factor)
        if solver == "sgd":
            assert variant is not None  # _settings sets it for sgd
            opt = momentum(rate, values["m"], variant, alpha=alpha)
        else:
            # scikit-learn's order of computation: eps on sqrt(nu), not sqrt(nu_hat)
            opt = adam(
                rate, values["b1"], values["b2"], values["eps"], alpha=alpha, variant="efficient"
            )
    return with_loss_penalty(opt, host_or_device(values["loss_alpha"]))


def _data_values(
    s: _Settings, n_train: int, k: int | None, n_out: int, t_before: int = 0, count_before: int = 0
) -> dict[str, float]:
    """The optimizer values that depend on the data, beside ``s.values``.

    ``loss_alpha``: the alpha term of the training loss in the core's units, so that the
    loss curve carries scikit-learn's ``(alpha/2) |W|^2 / n_batch`` (the regressor's curve
    is the core's loss over ``n_out``, so its term is ``alpha * n_out`` there).
    ``invscaling``: scikit-learn's ``t`` (samples seen, once per epoch) as
    :func:`jbpnn.optimizers.epoch_inverse_scaling`'s data: this call's rows per epoch,
    updates per epoch, and the samples and updates of the calls before.
    """
    values = {"loss_alpha": s.values["alpha"] * (n_out if s.loss == "squared_error" else 1)}
    if s.schedule == "invscaling":
        values.update(
            samples_per_epoch=n_train,
            updates_per_epoch=-(-n_train // (k or n_train)),
            samples_before=t_before,
            updates_before=count_before,
        )
    return values


# scipy's L-BFGS-B status and message for the stop reasons scikit-learn warns about
_LBFGS_STATUS = {
    "max_epochs": (1, "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"),
    "max_fun_reached": (1, "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT"),
    "line_search_failed": (2, "ABNORMAL_TERMINATION_IN_LNSRCH"),
}


@contextlib.contextmanager
def _unchanged_on_failure(est: Any) -> Iterator[None]:
    """Around ``fit`` / ``partial_fit``: when they raise (a refused argument found after the
    labels were encoded, a run that kept no update, Ctrl-C), the estimator's attributes are
    put back, so ``classes_`` never names labels its network was not trained on.
    (scikit-learn's ``MLPClassifier`` keeps the network it was training on Ctrl-C; here the
    interrupted call is undone, whole.) A context, not a wrapper: the warnings' stack
    levels stay the user's call."""
    before = dict(est.__dict__)  # a fit replaces attributes, never edits them in place
    try:
        yield
    except BaseException:
        est.__dict__.clear()
        est.__dict__.update(before)
        raise


def _jbpnn_version() -> str:
    from jbpnn import __version__  # at call time: jbpnn imports this module lazily

    return __version__


def _kept_epochs(run: TrainResult) -> int:
    """The epochs of ``run``'s own history whose params were kept: all, or those before a
    diverging epoch (undone: the run returns the params from before it)."""
    if run.diverged_at is None:
        return len(run.history["loss"])
    return max(run.diverged_at - 1 - run.start_epoch, 0)


def _kept_nothing(run: TrainResult, s: _Settings) -> bool:
    """A run without early stopping whose first epoch diverged: scikit-learn raises on the
    non-finite weights such a fit ends with (jbpnn's kept the weights it started from)."""
    return run.stop_reason == "diverged" and not _kept_epochs(run) and not s.early_stopping


def _diverged_at_once(call: str) -> ValueError:
    """What a ``fit`` / ``partial_fit`` (and a sweep's network) raise when
    :func:`_kept_nothing`: the estimator stays as it was (:func:`_unchanged_on_failure`)."""
    return ValueError(
        f"training diverged in the first epoch of this {call} (a loss or weight became NaN "
        "or inf, or the loss grew past the divergence bound): no update was kept, and the "
        "estimator is left as it was. Lower learning_rate_init, or scale the inputs "
        "(StandardScaler)"
    )


def _converged_at_start(run: TrainResult) -> int:
    """1 if ``run`` is an L-BFGS fit that found ``max|g| <= gtol`` at its start, else 0.

    That epoch evaluated the start and took no step (its line search had no budget), so
    scipy's ``nit``, scikit-learn's ``n_iter_``, counts it as 0 iterations; the loss it
    evaluated stays in ``loss_curve_``. Only a run's first epoch can be one: any later
    start is the previous epoch's end, whose gradient the stop rule has already tested.
    """
    opt = None if run.state is None else run.state.opt_state
    if run.stop_reason != "min_grad_reached" or not isinstance(opt, LBFGSState):
        return 0
    return int(np.isnan(np.asarray(opt.loss_reduction)).item())  # no step: no reduction


def _warn_lbfgs(stop_reason: str, n_iter: int, max_iter: int) -> None:
    """scikit-learn's ``ConvergenceWarning`` for an lbfgs fit that stopped before ``gtol``
    or ``ftol`` (its ``_check_optimize_result``, word for word)."""
    if stop_reason not in _LBFGS_STATUS:
        return
    status, message = _LBFGS_STATUS[stop_reason]
    text = f"lbfgs failed to converge after {n_iter} iteration(s) (status={status}):\n{message}\n"
    if n_iter == max_iter:
        text += (
            f"\nIncrease the number of iterations to improve the convergence (max_iter={max_iter})."
        )
    text += (
        "\nYou might also want to scale the data as shown in:\n"
        "    https://scikit-learn.org/stable/modules/preprocessing.html"
    )
    warnings.warn(text, ConvergenceWarning, stacklevel=4)


def _optimizer_factory(s: _Settings) -> partial:
    return partial(_build_optimizer, s.solver, s.variant, s.schedule)


def _batch_size(s: _Settings, n: int) -> int | None:
    """scikit-learn's rule: ``"auto"`` is ``min(200, n)``; a larger size is clipped to ``n``;
    lbfgs and lm: None, full batch (``batch_size`` is not used)."""
    if s.solver in _FULL_BATCH:
        return None
    if s.batch_size is None:
        return min(200, n)
    if s.batch_size > n:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
            stacklevel=3,
        )
    return min(s.batch_size, n)


def _init_key(init: Any) -> Any:
    """``init`` as a key of :meth:`_Settings.static`: the name, or the given params' shapes,
    dtypes and bytes (``clone`` copies them: equal params in new objects must group)."""
    if isinstance(init, str):
        return init
    try:
        layers = init.layers if isinstance(init, MLP) else init
        arrays = [np.ascontiguousarray(a) for pair in layers for a in pair]
    except (TypeError, ValueError):  # refused with the reason by _initial_params
        return ("params", id(init))
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(f"{a.shape}{a.dtype.str}".encode())
        digest.update(a.tobytes())
    return ("params", digest.hexdigest())


def _value_key(value: Any) -> Any:
    """A grid value as a key: numbers, strings and None by value, anything else (an
    estimator, an array, a dict) by identity (the grid hands out the same object to every
    candidate it belongs to)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return (type(value).__name__, value)
    return ("object", id(value))


def _going_on(incremental: bool) -> str:
    return "partial_fit" if incremental else "fit with warm_start=True"


def _afresh(incremental: bool) -> str:
    """How to start afresh from where the refused call was made."""
    if incremental:
        return (
            "partial_fit goes on from the fitted network: call fit (it starts afresh) or use "
            "a new estimator"
        )
    return "Set warm_start=False to start afresh"


def _draw_seeds(random_state: Any) -> tuple[int, int, np.random.RandomState]:
    """``(init seed, data-order seed, rng)`` from ``random_state`` (the rng then splits
    off the early-stopping validation set, as scikit-learn's ``_random_state`` does)."""
    rng = check_random_state(random_state)
    init_seed, order_seed = (int(v) for v in rng.randint(0, _SEED_LIMIT, size=2))
    return init_seed, order_seed, rng


def _initial_params(
    s: _Settings, n_in: int, n_out: int, output: tuple[str, str], init_seed: int
) -> MLP:
    """Fresh params: ``init_params(jax.random.key(init_seed), ...)``, or the given ones."""
    loss, out_act = output
    sizes = (n_in, *s.hidden, n_out)
    activations = (s.activation,) * len(s.hidden) + (out_act,)
    if isinstance(s.init, str):
        return init_params(as_key(init_seed), sizes, activations, loss, s.init, s.dtype)
    if isinstance(s.init, MLP) and s.init.article_mode:
        raise ValueError(
            "init is an article_mode MLP (the article code's bugs, for comparison studies); "
            "the estimators train the correct derivatives: give its (coef, intercept) pairs "
            "for its weights, or train it in article mode with jbpnn.train"
        )
    if isinstance(s.init, MLP) and (s.init.activations, s.init.loss) != (activations, loss):
        # its units would be replaced without a word: the estimator's settings decide them
        raise ValueError(
            f"init is an MLP with activations {s.init.activations} and loss "
            f"{s.init.loss!r}, but this estimator trains activations {activations} and loss "
            f"{loss!r} (activation={s.activation!r} and its output unit); set activation= "
            "to match, or pass init as its (coef, intercept) pairs to use only the weights"
        )
    layers = s.init.layers if isinstance(s.init, MLP) else s.init
    try:
        layers = [(np.asarray(w), np.asarray(b)) for w, b in layers]
    except (TypeError, ValueError):
        raise ValueError(
            "init must be an init name, an MLP, or a sequence of (coef, intercept) pairs"
        ) from None
    # the widths before the network is built: a wrong one is the first thing to say (a
    # 3-class softmax given one output unit was refused as a degenerate softmax)
    plain = bool(layers) and all(np.ndim(w) == 2 for w, _ in layers)
    given = (layers[0][0].shape[0], *(w.shape[1] for w, _ in layers)) if plain else sizes
    if given != sizes:
        raise ValueError(
            f"init params have layer sizes {given}, but the data and "
            f"hidden_layer_sizes={s.hidden} need {sizes}"
        )
    return MLP.from_layers(layers, activations, loss, dtype=s.dtype, host=True)  # for train


def _set_now(est: _BPNNBase) -> tuple[str, np.dtype]:
    """The hidden activation and dtype the estimator is set to now, checked as
    :func:`_settings` checks them (``predict`` checks nothing else). A float64 that JAX
    cannot give (x64 off) reads as the fitted dtype: only ``fit`` refuses it."""
    activation = hidden_activation(est.activation)
    try:
        dtype = np.dtype(est.dtype)
    except TypeError:
        dtype = None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {est.dtype!r}")
    return activation, dtype


def _as_set(params: MLP, activation: str, dtype: np.dtype) -> MLP:
    """``params`` with the estimator's hidden activation and dtype as set now: after
    ``set_params(activation=...)`` (or ``dtype=``) the existing weights with the new
    hidden activation (as ``MLPClassifier``'s ``predict`` and warm-started ``fit``)."""
    if dtype == np.float64 and not jax.config.jax_enable_x64:  # type: ignore[attr-defined]
        dtype = params.dtype  # fit refuses it; predict goes on in the fitted dtype
    activations = (activation,) * (len(params.layers) - 1) + params.activations[-1:]
    if activations == params.activations and params.dtype == dtype:
        return params
    layers = [(layer.w, layer.b) for layer in params.layers]
    return MLP.from_layers(
        layers, activations, params.loss, dtype=dtype, article_mode=params.article_mode
    )


def _renamed(tree: Any, activations: tuple[str, ...]) -> Any:
    """Every :class:`MLP` in ``tree`` (a TrainState: params, optimizer moments) with these
    activation names; the arrays are kept."""
    return jax.tree.map(
        lambda m: MLP(m.layers, activations, m.loss, m.article_mode) if isinstance(m, MLP) else m,
        tree,
        is_leaf=lambda m: isinstance(m, MLP),
    )


def _predict_outputs(params: MLP, X: np.ndarray) -> np.ndarray:
    """The network's outputs, in fixed chunks of ``_PREDICT_CHUNK`` rows (padded), in
    NumPy's type of ``X @ coefs_`` (as scikit-learn: float32 for float32 input and
    params, float64 when either is float64).

    One compiled program for every batch size, and each row's output does not depend
    on the rows next to it (scikit-learn checks both orders and subsets).
    """
    n = X.shape[0]
    rows = -(-max(n, 1) // _PREDICT_CHUNK) * _PREDICT_CHUNK
    padded = np.zeros((rows, X.shape[1]), params.dtype)
    padded[:n] = X
    outs = [
        np.asarray(predict(params, padded[i : i + _PREDICT_CHUNK], check_finite=False))
        for i in range(0, rows, _PREDICT_CHUNK)
    ]
    return np.concatenate(outs)[:n].astype(np.result_type(X.dtype, params.dtype))


def _dense(X: Any, dtype: np.dtype, what: str = "X") -> np.ndarray:
    """``X`` as a dense array (a scipy.sparse matrix densified after a memory check)."""
    if sp.issparse(X):
        # toarray: one dense array of X's own dtype, and a second where the network's
        # dtype differs (the caller's np.asarray(X, dtype))
        same = np.dtype(dtype) == X.dtype
        check_array_memory(X.shape, (X.dtype,) if same else (X.dtype, dtype), f"the sparse {what}")
        X = X.toarray()
    return np.asarray(X)


def _column_ranges(columns: np.ndarray) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    runs, start = [], None
    for i, c in enumerate(columns):
        if start is None:
            start = c
        if i + 1 == len(columns) or columns[i + 1] != c + 1:
            runs.append(f"{start}" if start == c else f"{start}-{c}")
            start = None
    return ", ".join(runs)


def _check_magnitudes(name: str, A: np.ndarray, dtype: np.dtype, squared: bool = False) -> None:
    """Refuse finite values that overflow the network's dtype (``squared``: whose square,
    the squared error, does), naming the argument, its columns and the dtype; and NaN or
    inf, which scikit-learn's ``assume_finite=True`` lets past its own check (a fit on
    them "diverged" at once and kept its untrained weights)."""
    if get_config().get("assume_finite"):
        bad = ~np.isfinite(np.asarray(A, np.float64).reshape(len(A), -1))
        if bad.any():
            raise ValueError(
                f"{name} contains NaN or infinity in column(s) "
                f"{_column_ranges(np.flatnonzero(bad.any(axis=0)))}: a network can neither "
                "train on them nor predict from them (scikit-learn's assume_finite=True "
                "skipped its own check)"
            )
    info = np.finfo(dtype)
    if np.dtype(A.dtype).kind == "f" and np.finfo(A.dtype).max <= info.max and not squared:
        return  # cannot overflow (float32 data for a float32 network)
    limit = float(np.sqrt(info.max)) if squared else float(info.max)
    big = np.abs(np.asarray(A, np.float64).reshape(len(A), -1)) > limit
    if not big.any():
        return
    cols = np.flatnonzero(big.any(axis=0))
    largest = float(np.max(np.abs(np.asarray(A, np.float64))))
    what = "whose squares (the squared error) overflow" if squared else "which overflow"
    raise ValueError(
        f"{name} has values of magnitude up to {largest:.3g} in column(s) {_column_ranges(cols)} "
        f"(of {big.shape[1]}), {what} the network's dtype {info.dtype.name} (largest value "
        f"{info.max:.3g}); scale them (e.g. sklearn.preprocessing.StandardScaler) first"
    )


def _zero_weights_error(sw: np.ndarray, X: np.ndarray) -> Exception:
    """The error a fit on one fold's training rows raises for weights that are all 0:
    scikit-learn's ``_check_sample_weight`` (as the estimators' fit calls it), or, in a
    scikit-learn that takes them, the training core's own check after it."""
    try:
        _check_sample_weight(sw, X, dtype=np.float64)
        check_weights("sample_weight", sw)
    except ValueError as error:
        return error
    raise AssertionError("weights that sum to 0 passed both checks")  # pragma: no cover


def _check_sample_weight_sum(sw: np.ndarray | None, dtype: np.dtype) -> None:
    """Refuse sample weights whose sum (the loss's denominator) overflows ``dtype``."""
    if sw is None:
        return
    total = float(np.sum(np.asarray(sw, np.float64)))
    if not total <= weight_sum_limit(dtype):
        raise ValueError(
            f"sample_weight sums to {total:.3g}, more than the network's dtype "
            f"{np.dtype(dtype).name} divides a mean by ({weight_sum_limit(dtype):.3g}, 1 over "
            "its smallest normal number: the loss and gradient would round to 0); rescale "
            "the weights (only their ratios matter)"
        )


def _check_label_types(y: Any, name: str = "y") -> None:
    """Class labels all strings or all numbers, never None: scikit-learn's ``ValueError``
    ("Mix of label input types (string and number)", ``unique_labels``) before NumPy's
    sort of the labels fails with "'<' not supported"."""
    values = np.asarray(y, dtype=object).ravel() if np.asarray(y).dtype == object else None
    if values is None:  # a numeric or a string array: one type
        return
    for i, v in enumerate(values):
        if v is None:
            raise ValueError(
                f"{name} holds None at index {i}: class labels must be all strings or all "
                "numbers, never None (drop those rows or give them a label)"
            )
    strings = [isinstance(v, str) for v in values]
    if any(strings) and not all(strings):
        text, number = values[strings.index(True)], values[strings.index(False)]
        raise ValueError(
            f"Mix of label input types (string and number) in {name}: e.g. {text!r} and "
            f"{number!r}; class labels must be all strings or all numbers"
        )


def _same_weights(params: MLP, coefs: list, intercepts: list) -> bool:
    """``coefs`` and ``intercepts`` hold ``params``'s values (in its dtype)."""
    if len(coefs) != len(params.layers) or len(intercepts) != len(params.layers):
        return False
    for layer, w, b in zip(params.layers, coefs, intercepts):
        for ours, theirs in ((layer.w, w), (layer.b, b)):
            theirs = np.asarray(theirs)
            if theirs.size != ours.size or not np.array_equal(
                np.asarray(ours), theirs.astype(params.dtype, copy=False).reshape(ours.shape)
            ):
                return False
    return True


class _Verbose:
    """``verbose``: scikit-learn's lines, as its ``_fit_stochastic`` prints them.

    After each epoch (a ``progress`` callback of one epoch per chunk):
    ``Iteration 1, loss = 0.32264812`` (counted from 1 in each call, ``before`` the
    epochs of earlier calls, as its ``n_iter_``); with early stopping
    ``Validation score: 0.266667`` (``monitor``'s value); and where the plateau rule of
    ``learning_rate="adaptive"`` divided the learning rate by 5 (the history's
    ``lr_scale`` fell), its ``... Setting learning rate to 0.000200``. At the end,
    :meth:`stop`: the line of the plateau that stopped the run.
    """

    def __init__(
        self, est: Any, s: _Settings, scale: float, monitor: str, before: int, lr_scale: float
    ):
        self.scale, self.monitor, self.before, self.lr_scale = scale, monitor, before, lr_scale
        self.lr_init = float(est.learning_rate_init)
        self.adaptive = s.solver == "sgd" and s.schedule == "adaptive"
        what = "Validation score" if s.early_stopping else "Training loss"
        self.plateau = (
            f"{what} did not improve more than tol={s.tol:f} for "
            f"{int(est.n_iter_no_change)} consecutive epochs."
        )

    def __call__(self, info: dict[str, Any]) -> None:
        loss = math.nan if info["loss"] is None else info["loss"] * self.scale
        print(f"Iteration {info['epoch'] - self.before}, loss = {loss:.8f}", flush=True)
        if info.get(self.monitor) is not None:
            print(f"Validation score: {info[self.monitor]:f}", flush=True)
        lr_scale = info.get("lr_scale")
        if lr_scale is not None and lr_scale < self.lr_scale:  # scikit-learn: lr /= 5
            reductions = round(math.log(lr_scale) / math.log(0.2))
            lr = self.lr_init / 5.0**reductions
            print(f"{self.plateau} Setting learning rate to {lr:f}", flush=True)
        self.lr_scale = self.lr_scale if lr_scale is None else lr_scale

    def stop(self, stop_reason: str) -> None:
        if stop_reason in ("no_validation_improvement", "no_loss_improvement"):
            too_small = "Learning rate too small. " if self.adaptive else ""
            print(f"{self.plateau} {too_small}Stopping.", flush=True)


class _OptimizerView(NamedTuple):
    """What scikit-learn's tests read of ``MLPClassifier._optimizer``: the learning rate
    the next update would use (see :meth:`_BPNNBase._record_private`)."""

    learning_rate: float


# ---------------------------------------------------------------- the estimators
class _BPNNBase(BaseEstimator):
    """What the classifier and the regressor share: settings, fit, partial fit, record."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        loss="auto",
        init="glorot",
        momentum_variant=None,
        dtype="float32",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.loss = loss
        self.init = init
        self.momentum_variant = momentum_variant
        self.dtype = dtype

    # -- subclass hooks --------------------------------------------------
    def _check_loss(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _output(self) -> tuple[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _validate_input(self, X, y, incremental: bool, reset: bool, dtype) -> tuple:
        raise NotImplementedError  # pragma: no cover - abstract

    def _curve_scale(self, n_out: int) -> float:
        return 1.0

    def _validation_scores(self, run: TrainResult, val: _ValSet) -> list[float]:
        raise NotImplementedError  # pragma: no cover - abstract

    def _fold_targets(self, y: np.ndarray, rows: np.ndarray, dtype) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - abstract

    def _encoding_of(self, other: Any) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    def _validation_tol(self, s: _Settings, val: _ValSet | None) -> float:
        return s.tol

    _monitor = "val_loss"  # what the core's early stopping watches

    def _stopping(self, s: _Settings, val: _ValSet | None = None) -> Stopping:
        """scikit-learn's stopping as the core's :class:`jbpnn.stopping.Stopping`."""
        vtol = self._validation_tol(s, val) if s.early_stopping else None
        return _stopping(s, self._monitor, vtol)

    # -- fitting ---------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)``: fresh params, or (``warm_start``) ``max_iter`` more epochs.

        Args:
            X: inputs, shape ``(n_samples, n_features)``.
            y: targets, shape ``(n_samples,)`` or ``(n_samples, n_outputs)``.
            sample_weight: optional non-negative weights, shape ``(n_samples,)``.

        Returns:
            self.
        """
        with _unchanged_on_failure(self):
            return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X, y, sample_weight, incremental: bool):
        default_compilation_cache()  # as train does, before the params' programs compile
        s = _settings(self)
        if incremental and s.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        # as scikit-learn: a fit starts afresh unless warm_start; partial_fit goes on from
        # coefs_ / intercepts_ (the fitted ones, or ones the user set by hand)
        first = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first, dtype=s.dtype)
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
            _check_magnitudes("sample_weight", sw, s.dtype)
            _check_sample_weight_sum(sw, s.dtype)
            # weights all 1 are no weights: the same program and rounding as without
            sw = None if np.all(sw == 1) else sw.astype(s.dtype)
        init_seed, order_seed, rng = _draw_seeds(self.random_state)
        output = self._output()
        count_before = 0
        if first:
            start, key = _initial_params(s, X.shape[1], Y.shape[1], output, init_seed), order_seed
        else:
            params = self._current_params(s)
            expected = (X.shape[1], *s.hidden, Y.shape[1])
            if params.sizes != expected or (params.loss, params.activations[-1]) != output:
                raise ValueError(
                    f"{_going_on(incremental)}: the fitted network has sizes {params.sizes}, "
                    f"loss {params.loss!r}; these settings and data need sizes {expected}, "
                    f"loss {output[0]!r}. {_afresh(incremental)}"
                )
            state = getattr(self, "state_", None)
            fitted = getattr(self, "_fitted_solver", None)
            if (
                state is None
                or state.params.sizes != params.sizes
                or state.params.dtype != params.dtype
                # a warm fit with another solver or schedule (adaptive -> constant kept
                # the plateau rule's reduced rate): a new optimizer, as the README says
                or (not incremental and fitted not in (None, (s.solver, self.learning_rate)))
            ):
                # weights set by hand, or a new dtype: a fresh optimizer
                start, key = params, order_seed
            else:
                # coefs_ set by hand, a new activation, or early stopping's best epoch (the
                # state holds the last epoch's network): they take effect, as scikit-learn's.
                # The best epoch's network goes on with its early-stopping record (best
                # score, epochs without improvement), as scikit-learn's warm start keeps
                # _best_coefs, best_validation_score_ and _no_improvement_count
                if params is not state.params:
                    best = state.best_params
                    kept = best is not None and _same_weights(
                        best, [lay.w for lay in params.layers], [lay.b for lay in params.layers]
                    )
                    state = state._replace(params=params, best_params=params if kept else None)
                    state = _renamed(state, params.activations)
                start, key = state._replace(stop=jax.device_put(np.int32(RUNNING))), None
                count_before = int(np.max(np.asarray(getattr(state.opt_state, "count", 0))))
            if isinstance(start, TrainState) and hasattr(start.opt_state, "n_evals"):
                # lbfgs: each call its own max_fun budget, as scikit-learn's
                no_evals = jnp.zeros_like(start.opt_state.n_evals)
                start = start._replace(opt_state=start.opt_state._replace(n_evals=no_evals))
        val, val_set = {}, None
        X_tr, Y_tr, sw_tr = X, Y, sw
        if s.early_stopping:
            X_tr, Y_tr, sw_tr, val_set = self._split(X, Y, sw, s, rng)
            val = {"X_val": val_set.X, "Y_val": val_set.Y, "val_sample_weight": val_set.w}
        k = _batch_size(s, X_tr.shape[0])
        t_before = 0 if first else int(getattr(self, "t_", 0))
        scale = self._curve_scale(Y.shape[1])

        verbose: list[Any] = [None]  # the last run's printer (its stop line)

        def run_from(start: Any, key: Any, count_before: int) -> TrainResult:
            values = {
                **s.values,
                **_data_values(s, len(X_tr), k, Y.shape[1], t_before, count_before),
            }
            if isinstance(start, TrainState):  # earlier fits' epochs and reductions
                before, lr_scale = int(start.epoch), float(np.asarray(start.lr_scale))
            else:
                before, lr_scale = 0, 1.0
            progress = None
            if self.verbose:
                progress = _Verbose(self, s, scale, self._monitor, before, lr_scale)
            verbose[:] = [progress]
            return train(
                start,
                X_tr,
                Y_tr,
                optimizer=_optimizer_factory(s)(**values),
                epochs=1 if incremental else s.max_iter,
                # one batch of every row is full batch: a chunk of 1 row too (train would
                # take batch_size=1 as online training, never padded to its row bucket)
                batch_size=None if k == len(X_tr) else k,
                key=key,
                shuffle=s.shuffle,
                sample_weight=sw_tr,
                progress=progress,
                progress_every=1 if progress else None,
                check_finite=False,  # validate_data checked X and y
                **val,
                stopping=self._stopping(s, val_set),
            )

        try:
            run = run_from(start, key, count_before)
        except ValueError as error:
            if "another kind of optimizer" not in str(error):
                raise
            if incremental:
                solver, schedule = getattr(self, "_fitted_solver", ("another", "another"))
                raise ValueError(
                    f"{_going_on(incremental)}: the fitted state was trained with "
                    f"solver={solver!r}, learning_rate={schedule!r}, not solver="
                    f"{self.solver!r}, learning_rate={self.learning_rate!r}. "
                    f"{_afresh(incremental)}"
                ) from None
            # a warm fit with another solver or schedule: a new optimizer from coefs_, as
            # scikit-learn makes one at every fit (sgd, then lbfgs, goes on from sgd's weights)
            run = run_from(params, order_seed, 0)
        if verbose[0] is not None:
            verbose[0].stop(run.stop_reason)
        if _kept_nothing(run, s):
            raise _diverged_at_once("partial_fit" if incremental else "fit")
        weight = None if sw_tr is None else float(np.sum(sw_tr, dtype=np.float64))
        self._record(run, s, X_tr.shape[0], first, val_set, weight_total=weight)
        if not incremental and s.solver == "lbfgs":
            _warn_lbfgs(run.stop_reason, self.n_iter_, s.max_iter)
        elif not incremental and run.stop_reason == "max_epochs":
            name = "Levenberg-Marquardt" if s.solver == "lm" else "Stochastic Optimizer"
            warnings.warn(  # scikit-learn's warning, word for word
                f"{name}: Maximum iterations ({s.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _current_params(self, s: _Settings | None = None) -> MLP:
        """The network ``coefs_`` / ``intercepts_`` describe: ``params_``, or, when they
        were set (or changed) by hand, a network made of them, which the next
        ``partial_fit``, warm-started ``fit`` or ``predict`` uses (as scikit-learn's); with
        the hidden activation and dtype the estimator is set to now (``set_params``)."""
        params = getattr(self, "params_", None)
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        if params is not None and _same_weights(params, coefs, intercepts):
            return _as_set(params, *(_set_now(self) if s is None else (s.activation, s.dtype)))
        if params is not None:
            activations, loss, dtype = params.activations, params.loss, params.dtype
        else:
            s = s or _settings(self)
            loss, out = self._output()
            activations = (s.activation,) * (len(coefs) - 1) + (out,)
            dtype = s.dtype
        try:
            layers = [(np.asarray(w), np.asarray(b).reshape(-1)) for w, b in zip(coefs, intercepts)]
            params = MLP.from_layers(layers, activations, loss, dtype=dtype)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"coefs_ and intercepts_ do not make a network of {len(activations)} layers: "
                f"{error}"
            ) from None
        return _as_set(params, *(_set_now(self) if s is None else (s.activation, s.dtype)))

    def _split(self, X, Y, sw, s: _Settings, rng):
        """scikit-learn's validation split: ``(X_tr, Y_tr, sw_tr, _ValSet)``."""
        tr, va = self._split_rows(Y, s, rng)
        sw_tr, sw_va = (None, None) if sw is None else (sw[tr], sw[va])
        return X[tr], Y[tr], sw_tr, _ValSet(X[va], Y[va], sw_va)

    def _split_rows(self, Y, s: _Settings, rng) -> tuple[np.ndarray, np.ndarray]:
        """The row indices of scikit-learn's validation split of ``Y``'s rows:
        ``validation_fraction`` of them, from ``random_state``; stratified for a
        single-output classifier (as ``train_test_split`` of the arrays themselves)."""
        # as scikit-learn's, on the binarized labels as booleans (its message names 'True')
        stratify = Y.astype(bool) if is_classifier(self) and Y.shape[1] == 1 else None
        tr, va = train_test_split(
            np.arange(len(Y)), random_state=rng, test_size=s.validation_fraction, stratify=stratify
        )
        if len(va) < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
        return tr, va

    def _record(
        self,
        run: TrainResult,
        s: _Settings,
        n_train: int,
        first: bool,
        val: _ValSet | None = None,
        weight_total: float | None = None,
    ) -> None:
        """Set the fitted attributes from one run of the core (a fit, or a sweep's network).

        ``weight_total``: the training rows' total sample weight (None: ``n_train``).
        A diverging epoch was undone (its params are not kept): it is not counted in
        ``n_iter_`` or ``t_``, and its loss and validation score are not recorded.
        """
        kept = _kept_epochs(run)
        if kept < len(run.history["loss"]):
            run = dataclasses.replace(run, history={k: v[:kept] for k, v in run.history.items()})
        n_out = run.params.n_out
        losses = np.asarray(run.history["loss"], np.float64) * self._curve_scale(n_out)
        if first or not hasattr(self, "loss_curve_"):
            self.loss_curve_: list[float] = []
            self.t_ = 0
            self.validation_scores_: list[float] | None = None
            self.best_validation_score_ = None
            self.validation_loss_curve_ = None
        self.loss_curve_ = self.loss_curve_ + losses.tolist()
        # the last epoch's, as scikit-learn's (NaN: no epoch was kept, a sweep's network
        # that diverged at once)
        self.loss_ = float(self.loss_curve_[-1]) if self.loss_curve_ else float("nan")
        self.n_iter_ = int(losses.size) - _converged_at_start(run)
        self.t_ = int(self.t_ + self.n_iter_ * n_train)
        self.params_ = run.params
        self.state_ = run.state
        self.stop_reason_ = run.stop_reason
        # what partial_fit's refusal of another solver or schedule names as the fitted one
        self._fitted_solver = (s.solver, self.learning_rate)
        self._fitted_dtype = np.dtype(s.dtype)  # predict's check (not a dtype set since)
        assert run.state is not None  # train and train_many return their final states
        self._record_private(run.state)
        if s.early_stopping:
            assert val is not None  # early stopping splits one off (_split)
            self.best_loss_ = None
            self.validation_scores_ = (self.validation_scores_ or []) + self._validation_scores(
                run, val
            )
            self.validation_loss_curve_ = (self.validation_loss_curve_ or []) + np.asarray(
                run.history["val_loss"], np.float64
            ).tolist()
            # scikit-learn's: the largest score so far (NaN never counts), the same numbers
            scores = [v for v in self.validation_scores_ if not np.isnan(v)]
            self.best_validation_score_ = max(scores) if scores else -np.inf
        else:  # scikit-learn's: no validation scores without early stopping (an earlier
            # fit's are dropped, as its best_loss_ covers this fit too)
            self.validation_scores_ = self.best_validation_score_ = None
            self.validation_loss_curve_ = None
            finite = [v for v in self.loss_curve_ if np.isfinite(v)]
            self.best_loss_ = float(min(finite)) if finite else float("nan")
        if s.solver == "lbfgs":  # scikit-learn's t_ stays 0 (no samples are "seen" in order)
            self.t_ = 0
        # writable copies in the network's dtype; assigning other values makes them the
        # network of the next partial_fit / predict (_current_params)
        self.coefs_ = [np.array(layer.w) for layer in run.params.layers]
        self.intercepts_ = [np.array(layer.b) for layer in run.params.layers]
        self.n_layers_ = len(self.coefs_) + 1
        self.n_outputs_ = n_out
        self.out_activation_ = _OUT_ACTIVATION[run.params.activations[-1]]
        if s.solver == "lbfgs":
            self.loss_ = self._lbfgs_loss(run, s, n_train if weight_total is None else weight_total)
            if self.best_loss_ is not None and np.isfinite(self.loss_):
                # the curve holds each iteration's start; loss_ is the final weights' (lower)
                self.best_loss_ = min(self.best_loss_, self.loss_)
        if run.stop_reason == "diverged":
            warnings.warn(
                f"training diverged at epoch {run.diverged_at} (a loss or weight became NaN or "
                "inf); the last finite params are kept. Lower learning_rate_init",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _lbfgs_loss(self, run: TrainResult, s: _Settings, weight_total: float) -> float:
        """scikit-learn's lbfgs ``loss_``: the objective at the final params, the loss (in
        the loss curve's units) plus ``(alpha/2) |W|^2 / n``; the curve's last without it."""
        assert run.state is not None  # train and train_many return their final states
        objective = float(np.asarray(run.state.opt_state.loss))  # E + penalty, the core's E
        if not np.isfinite(objective):  # no iteration was kept (diverged at once)
            return self.loss_
        squares = sum(float(np.sum(np.square(w, dtype=np.float64))) for w in self.coefs_)
        penalty = s.values["alpha"] / (2 * weight_total) * squares
        return (objective - penalty) * self._curve_scale(self.n_outputs_) + penalty

    # -- what scikit-learn's tests read of MLPClassifier's private state ------
    def _record_private(self, state: TrainState) -> None:
        """``_optimizer`` and ``_no_improvement_count`` as ``MLPClassifier`` has them after
        a fit (plain attributes, as there): the learning rate the next update would use,
        and the core's count of epochs without improvement by ``tol``.

        ``_optimizer.learning_rate``: sgd's schedule at the state's step (``invscaling``:
        ``learning_rate_init / (t_ + 1) ** power_t``, ``t_`` the samples seen, as
        scikit-learn's) times the plateau reductions (``adaptive``); adam's
        ``learning_rate_init sqrt(1 - beta_2^t) / (1 - beta_1^t)``; evaluated in float64
        from the estimator's own values (the core computes it in the params' dtype).
        lbfgs and lm have neither, as scikit-learn's lbfgs has no ``_optimizer``.
        """
        for name in ("_optimizer", "_no_improvement_count"):
            self.__dict__.pop(name, None)
        if self.solver not in ("sgd", "adam"):
            return
        lr = float(self.learning_rate_init) * float(np.asarray(state.lr_scale))
        count = int(np.asarray(state.opt_state.count))
        if self.solver == "adam":
            lr *= np.sqrt(1 - self.beta_2**count) / (1 - self.beta_1**count) if count else 1.0
        elif self.learning_rate == "invscaling":
            hp = state.opt_state.hyperparams
            done = (count - int(hp["updates_before"])) // int(hp["updates_per_epoch"])
            t = int(hp["samples_before"]) + done * int(hp["samples_per_epoch"])
            lr = float(self.learning_rate_init) / (t + 1) ** self.power_t
        self._optimizer = _OptimizerView(lr)
        bad = state.bad_epochs if self.early_stopping else state.loss_bad_epochs
        self._no_improvement_count = int(np.asarray(bad))

    def __getstate__(self):
        """Pickled with its arrays as NumPy arrays: a JAX float64 array unpickled where
        JAX's float64 is off comes back float32, and the fit with it (``predict`` there
        refuses; a process with float64 on gets the float64 params back)."""
        state = super().__getstate__()

        def host(a: Any) -> Any:
            if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.floating):
                return np.asarray(a)
            return a

        out = {k: jax.tree.map(host, v) for k, v in state.items()}
        out["_jbpnn_version"] = _jbpnn_version()  # as scikit-learn records its own
        return out

    def __setstate__(self, state):
        """Warn when the pickle is another jbpnn version's (as scikit-learn warns for its
        own version): its attributes may mean something else here."""
        state = dict(state)
        pickled = state.pop("_jbpnn_version", None)
        if pickled is not None and pickled != _jbpnn_version():
            warnings.warn(
                f"this {type(self).__name__} was pickled by jbpnn {pickled} and is "
                f"unpickled by jbpnn {_jbpnn_version()}: it may not work or give other "
                "results; fit it again with this version",
                UserWarning,
                stacklevel=2,
            )
        super().__setstate__(state)

    # -- predicting ------------------------------------------------------
    def _outputs(self, X) -> np.ndarray:
        """The network's outputs for ``X``, shape ``(n_samples, n_outputs)``, in NumPy's
        type of ``X @ coefs_``."""
        check_is_fitted(self)
        # a float64 fit unpickled where JAX's float64 is off would predict in float32 (a
        # float64 set since on a float32 fit predicts in the fitted dtype: _as_set)
        fitted = getattr(self, "_fitted_dtype", np.dtype(self.dtype))
        if fitted == np.float64 and not jax.config.jax_enable_x64:  # type: ignore[attr-defined]
            raise ValueError(
                "this estimator was fitted with dtype='float64', and JAX's float64 is off "
                "here: jax.config.update('jax_enable_x64', True) before anything else runs "
                "to predict with its float64 params (JAX would compute in float32)"
            )
        X = validate_data(
            self, X, reset=False, dtype=(np.float64, np.float32), accept_sparse=["csr", "csc"]
        )
        params = self._current_params()
        X = _dense(X, params.dtype)
        _check_magnitudes("X", X, params.dtype)
        return _predict_outputs(params, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified (after a memory check)
        return tags


class BPNNClassifier(ClassifierMixin, _BPNNBase):
    """``MLPClassifier``'s interface on jbpnn's core (see the module docstring).

    Outputs: for more than two classes, softmax with cross-entropy; for two classes
    (and one), ONE sigmoid unit with binary cross-entropy, as scikit-learn; for
    multilabel targets (``y`` of shape ``(n, k)`` of 0/1), ``k`` sigmoid units with binary
    cross-entropy. ``loss="mse"`` trains the article's network instead: sigmoid
    outputs, ``E = 1/2 sum_k (T_k - O_k)^2``, one-hot targets (``predict_proba`` then
    normalises the outputs to sum to 1).

    Parameters are ``MLPClassifier``'s (``hidden_layer_sizes``, ``activation``:
    ``"logistic"`` or ``"sigmoid"``, ``"relu"``, ``"tanh"``, ``"identity"``; ``solver``:
    ``"sgd"``, ``"adam"``, ``"lbfgs"``, or jbpnn's ``"lm"`` (Levenberg-Marquardt, only
    with ``loss="mse"``: it needs squared residuals; for the cross-entropy use
    ``"lbfgs"``); ``alpha``, ``batch_size``, ``learning_rate``:
    ``"constant"``, ``"invscaling"`` or ``"adaptive"`` (sgd only, as scikit-learn),
    ``learning_rate_init``, ``power_t``,
    ``max_iter``, ``shuffle``, ``random_state``, ``tol``, ``verbose``, ``warm_start``,
    ``momentum``, ``nesterovs_momentum``, ``early_stopping``, ``validation_fraction``,
    ``beta_1``, ``beta_2``, ``epsilon``, ``n_iter_no_change``, ``max_fun``) plus jbpnn's own:

    Args:
        loss: ``"auto"`` or ``"log_loss"`` (the outputs above) or ``"mse"``.
        init: ``"glorot"``, ``"he"``, ``"article"`` (uniform in [-0.2, 0.2]), or the
            initial params: a :class:`jbpnn.MLP` or a sequence of ``(coef, intercept)``
            pairs in ``coefs_`` layout (``coef`` of shape ``(n_in, n_out)``).
        momentum_variant: ``None`` (from ``nesterovs_momentum``), ``"classical"``,
            ``"nesterov"`` or ``"article"`` (the article's rule).
        dtype: ``"float32"`` or ``"float64"`` (needs ``jax_enable_x64``).

    Attributes:
        classes_, coefs_, intercepts_, loss_, loss_curve_, best_loss_, validation_scores_,
        best_validation_score_, n_iter_, t_, n_layers_, n_outputs_, out_activation_,
        n_features_in_, feature_names_in_: as ``MLPClassifier``'s (see the module
            docstring for the loss curve's definition).
        params_: the trained :class:`jbpnn.MLP` (the best params under early stopping).
        state_: the :class:`jbpnn.TrainState` that ``warm_start`` and ``partial_fit`` resume.
        stop_reason_: why the last call stopped (:data:`jbpnn.training.STOP_REASONS`).
        validation_loss_curve_: the validation loss per epoch (None without early
            stopping); early stopping watches ``validation_scores_`` (accuracy; the
            regressor's R^2), as scikit-learn's does.
    """

    def _check_loss(self) -> str:
        if self.loss not in ("auto", "log_loss", "mse"):
            raise ValueError(f"loss must be 'auto', 'log_loss' or 'mse', got {self.loss!r}")
        return "mse" if self.loss == "mse" else "log_loss"

    def _output(self) -> tuple[str, str]:
        if self.loss == "mse":
            return ("mse", "sigmoid")
        if self._label_binarizer.y_type_ == "multiclass":
            return ("cross_entropy", "softmax")
        return ("binary_cross_entropy", "sigmoid")

    def _validate_input(self, X, y, incremental, reset, dtype):
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
            accept_sparse=["csr", "csc"],
        )
        X = _dense(X, dtype)
        _check_magnitudes("X", X, dtype)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        _check_label_types(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        Y = self._label_binarizer.transform(y).astype(dtype)
        return np.asarray(X, dtype), Y

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``, resuming the optimizer state of the previous call.

        Args:
            X: inputs, shape ``(n_samples, n_features)``.
            y: labels, shape ``(n_samples,)`` (or a multilabel indicator matrix).
            sample_weight: optional weights, shape ``(n_samples,)``.
            classes: every class of all calls; required on the first call.

        Returns:
            self.
        """
        if classes is not None:
            _check_label_types(classes, "classes")
        with _unchanged_on_failure(self):
            if _check_partial_fit_first_call(self, classes):
                self._label_binarizer = LabelBinarizer()
                # scikit-learn's test: a multilabel indicator y (dense, DataFrame or sparse: a
                # sparse matrix is no array to np.asarray, which made it multiclass) fits itself
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)
            return self._fit(X, y, sample_weight, incremental=True)

    _monitor = "val_accuracy"

    def _validation_scores(self, run: TrainResult, val: _ValSet) -> list[float]:
        """The core's accuracy per epoch (argmax, one unit at 0.5, or subset accuracy) as
        scikit-learn's ``accuracy_score``: without sample weights (or with equal ones) the
        exact fraction ``right / n`` (``right`` recovered from the float32 mean, exact for
        ``n < 2**23``); with unequal weights the core's weighted mean."""
        acc = np.asarray(run.history["val_accuracy"], np.float64)
        n = len(val.Y)
        if val.w is None or np.all(val.w == val.w[0]):
            with np.errstate(invalid="ignore"):
                return [float(v) if np.isnan(v) else int(round(v * n)) / n for v in acc]
        return acc.tolist()

    def _fold_targets(self, y: np.ndarray, rows: np.ndarray, dtype) -> np.ndarray:
        """Targets of the rows ``rows`` as a fit on ``y[rows]`` encodes them (zeros elsewhere);
        sets ``classes_`` as that fit would."""
        self._label_binarizer = LabelBinarizer().fit(y[rows])
        self.classes_ = self._label_binarizer.classes_
        Y = np.zeros((len(y), len(self.classes_) if self._n_outputs() > 1 else 1), dtype)
        Y[rows] = self._label_binarizer.transform(y[rows])
        return Y

    def _encoding_of(self, other: Any) -> None:
        """The classes (and their encoding) ``other``'s fit found, as ``_fold_targets``
        on the same rows would set them."""
        self._label_binarizer = copy.deepcopy(other._label_binarizer)
        self.classes_ = self._label_binarizer.classes_

    def _n_outputs(self) -> int:
        lb = self._label_binarizer
        return len(lb.classes_) if lb.y_type_ != "binary" else 1

    def _labels(self, out: np.ndarray) -> np.ndarray:
        if out.shape[1] == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def predict(self, X):
        """Class labels, shape ``(n_samples,)`` (multilabel: ``(n_samples, n_classes)``)."""
        return self._labels(self._outputs(X))

    def predict_proba(self, X):
        """Class probabilities, shape ``(n_samples, n_classes)``, in ``classes_`` order."""
        out = self._outputs(X)
        if len(self.classes_) == 1:
            return np.ones((out.shape[0], 1))
        if out.shape[1] == 1:
            return np.hstack([1 - out, out])
        if self.loss == "mse" and self._label_binarizer.y_type_ == "multiclass":
            total = out.sum(axis=1, keepdims=True)
            return np.where(total > 0, out / np.where(total > 0, total, 1), 1.0 / out.shape[1])
        return out

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class BPNNRegressor(RegressorMixin, _BPNNBase):
    """``MLPRegressor``'s interface on jbpnn's core: identity outputs, squared error.

    Parameters and attributes as :class:`BPNNClassifier` (no ``classes_``);
    ``solver="lm"`` is Levenberg-Marquardt (full batch, ``tol`` its gradient-norm stop,
    ``alpha`` in its normal equations; see the module docstring). ``loss="auto"`` or
    ``"squared_error"`` (jbpnn's ``mse``; ``loss_curve_`` reports
    scikit-learn's value, ``1/2`` the squared error averaged over the outputs).
    Multi-output ``y`` of shape ``(n, k)`` trains ``k`` outputs.
    """

    def _check_loss(self) -> str:
        if self.loss not in ("auto", "squared_error"):
            raise ValueError(
                f"loss must be 'auto' or 'squared_error', got {self.loss!r}"
                + (" (poisson is not offered)" if self.loss == "poisson" else "")
            )
        return "squared_error"

    def _output(self) -> tuple[str, str]:
        return ("mse", "identity")

    def _validate_input(self, X, y, incremental, reset, dtype):
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
            accept_sparse=["csr", "csc"],
        )
        if y.dtype.kind in "US":  # NumPy would read "1.5" as 1.5 (MLPRegressor fails on it)
            raise ValueError(
                f"y holds text (dtype {y.dtype}): BPNNRegressor fits numeric targets; convert "
                "numbers written as text first (np.asarray(y, float)), or use BPNNClassifier "
                "for labels"
            )
        X = _dense(X, dtype)
        _check_magnitudes("X", X, dtype)
        _check_magnitudes("y", y, dtype, squared=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return np.asarray(X, dtype), np.asarray(y, dtype).reshape(y.shape[0], -1)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``, resuming the optimizer state of the previous call."""
        with _unchanged_on_failure(self):
            return self._fit(X, y, sample_weight, incremental=True)

    def _curve_scale(self, n_out: int) -> float:
        return 1.0 / n_out  # scikit-learn's squared_error averages over the outputs

    _monitor = "val_r2"  # MLPRegressor's validation score: r2_score, uniform average

    def _validation_scores(self, run: TrainResult, val: _ValSet) -> list[float]:
        """The core's R^2 per epoch (:func:`jbpnn.network.r2_kernel`): scikit-learn's
        ``r2_score`` of the validation split with its sample weights, averaged uniformly
        over the outputs (a constant output scores 0, or 1 if fitted exactly)."""
        return np.asarray(run.history["val_r2"], np.float64).tolist()

    def _fold_targets(self, y: np.ndarray, rows: np.ndarray, dtype) -> np.ndarray:
        """Every row's targets, shape ``(n, n_outputs)``."""
        return np.asarray(y, dtype).reshape(len(y), -1)

    def _encoding_of(self, other: Any) -> None:
        """Nothing: a regressor's targets need no encoding."""

    def predict(self, X):
        """Predictions, shape ``(n_samples,)`` for one output, else ``(n_samples, n_outputs)``."""
        out = self._outputs(X)
        return out.ravel() if out.shape[1] == 1 else out


# ---------------------------------------------------------------- the grid search
class _Job(NamedTuple):
    """One (candidate, fold) network of a sweep."""

    candidate: int
    split: int
    estimator: _BPNNBase
    settings: _Settings
    train: np.ndarray
    test: np.ndarray
    fit_rows: np.ndarray | None = None  # early stopping: the rows it trains on ...
    val_rows: np.ndarray | None = None  # ... and its validation split, both into X


def _search_has(method: str) -> Any:
    """GridSearchCV's ``_search_estimator_has``: ``method`` exists on the search (so
    ``hasattr`` answers) only with ``refit`` and when the best (or, before ``fit``, the
    given) estimator has it."""

    def check(search: SweepSearchCV) -> bool:
        if not search.refit:
            raise _no_refit(method)
        getattr(getattr(search, "best_estimator_", search.estimator), method)
        return True

    return check


def _no_refit(method: str) -> AttributeError:
    return AttributeError(
        f"This SweepSearchCV instance was initialized with refit=False; {method} is "
        "available only after refitting on the best parameters"
    )


class SweepSearchCV(MetaEstimatorMixin, BaseEstimator):
    """``GridSearchCV`` for :class:`BPNNClassifier` / :class:`BPNNRegressor`, at train_many speed.

    The same candidates (``ParameterGrid(param_grid)``, in its order), folds
    (``check_cv(cv, y, classifier=...)``), scoring and ``cv_results_`` keys as
    ``GridSearchCV``; every (candidate, fold) network trains exactly as
    ``clone(estimator).set_params(**candidate).fit(X[train], y[train])`` would, so
    the scores equal ``GridSearchCV``'s up to float32 rounding.

    How: the networks are grouped by everything that is static to the core (the
    architecture, activation, solver, schedule kind, batch size, shuffle,
    ``max_iter``, loss, init, dtype, early stopping and its ``validation_fraction``,
    whether ``n_iter_no_change`` is finite; and per fold the resolved batch size, the
    number of index bits of its row count, and its classes). Each group is ONE
    :func:`jbpnn.many.train_many` call: the folds' training rows as ``rows=``, each
    network's init seed and data-order key (drawn from its ``random_state``) as
    ``seeds=`` / ``keys=``, and the optimizer values (learning rate, momentum,
    ``alpha``, Adam's betas and epsilon, ``power_t``) as ``hparams=``, and the stop
    thresholds (``tol``, ``n_iter_no_change``) as per-network thresholds. Given
    ``sample_weight``, the fits are weighted and the test folds scored with their
    weights, as ``GridSearchCV`` does. With
    ``early_stopping=True`` each network also gets its own validation split (the one
    its fit would draw) as ``val_rows=``.

    A ``Pipeline`` whose last step is one of them works as in ``GridSearchCV``: per fold
    (and per setting of the preceding steps' parameters in the grid) the preceding steps
    are fitted on the training rows only and transform both sides; the transformed folds
    are stacked into one table, and the networks of every fold train together on their
    own rows of it (folds the steps give different numbers of columns, e.g. a
    ``OneHotEncoder`` that meets a category in some folds only, make one table and one
    call per width); ``best_estimator_`` is the refitted pipeline.

    A fit that would fail records ``error_score`` (with a ``FitFailedWarning``), as in
    ``GridSearchCV``: a setting the estimator refuses, a fold whose training weights are
    all 0, an early-stopping split the fold cannot give, a preceding step that fails.

    Args:
        estimator: a :class:`BPNNClassifier` or :class:`BPNNRegressor`, or a ``Pipeline``
            ending with one (grid keys ``<step>__<param>``, as ``GridSearchCV``'s).
        param_grid: a dict of lists, or a list of such dicts (``GridSearchCV``'s).
        scoring: None (the estimator's ``score``: accuracy or R^2), a scorer name or a
            callable ``scorer(estimator, X, y)``; or several metrics, as ``GridSearchCV``: a
            list, tuple or set of scorer names, or a dict ``{name: scorer}`` (or a callable
            returning such a dict), giving ``mean_test_<name>`` etc. in ``cv_results_``.
        refit: refit the best candidate on all the data (``best_estimator_``); True,
            False, or a callable ``cv_results_ -> best index``; with several metrics, the
            name of the one that picks the best candidate (or a callable, or False).
        cv: folds: an int (stratified k-fold for classifiers), a splitter, or an
            iterable of ``(train, test)`` index arrays or boolean masks (indices outside
            X's rows are refused, naming the fold).
        n_jobs, pre_dispatch: accepted for ``GridSearchCV``'s signature and not used:
            each group of networks is ONE ``train_many`` call that already uses the
            device (there are no separate fits to spread over workers).
        verbose: above 0, ``GridSearchCV``'s "Fitting k folds for each of n candidates"
            line, then one line per ``train_many`` call.
        error_score: the score recorded when a scorer raises on a fold (with a
            ``UserWarning``) or a fit fails (a setting the estimator refuses; one
            ``FitFailedWarning`` for them all), as ``GridSearchCV`` records them, or
            ``"raise"`` to raise.
        return_train_score: also score every network on its training fold
            (``split<k>_train_<metric>``, ``mean_train_<metric>``, ``std_train_<metric>``).
        mesh: a jbpnn extension: a ``jax.sharding.Mesh`` with one axis over whose devices
            every ``train_many`` call splits its networks (``train_many(mesh=)``). After
            ``jax.distributed.initialize`` it may span several processes or hosts: every
            process then runs the same ``fit`` on the same data (checked before the first
            collective), trains its share of the networks, and ends with the same
            ``cv_results_`` as one process; the refit runs in every process. None:
            ``train_many``'s default, the networks spread over this process's devices.

    Attributes:
        cv_results_, best_index_, best_params_, best_score_, best_estimator_,
        refit_time_, n_splits_, scorer_, multimetric_: as ``GridSearchCV``'s.
            ``mean_fit_time`` shares each ``train_many`` call's time evenly among its
            networks.
        sweep_calls_: one entry per ``train_many`` call: ``{"networks", "seconds",
            "hparams"}``.
    """

    def __init__(
        self,
        estimator,
        param_grid,
        *,
        scoring=None,
        n_jobs=None,
        refit=True,
        cv=5,
        verbose=0,
        pre_dispatch="2*n_jobs",
        error_score=np.nan,
        return_train_score=False,
        mesh=None,
    ):
        self.estimator = estimator
        self.param_grid = param_grid
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.refit = refit
        self.cv = cv
        self.verbose = verbose
        self.pre_dispatch = pre_dispatch
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.mesh = mesh

    def fit(self, X, y=None, *, groups=None, sample_weight=None, **fit_params):
        """Score every candidate on every fold, then refit the best (see the class docstring).

        Args:
            X: inputs, shape ``(n_samples, n_features)`` (array or DataFrame).
            y: targets, shape ``(n_samples,)`` or ``(n_samples, n_outputs)``.
            groups: group labels for the splitter (e.g. ``GroupKFold``).
            sample_weight: optional weights, passed to every fit (and ``train_many``) and,
                as ``GridSearchCV`` does, to the scorer of every test fold; with
                scikit-learn's metadata routing on, only where requested
                (``set_fit_request``, ``set_score_request``), as ``GridSearchCV`` routes them.
            **fit_params: for a Pipeline, ``<last step>__sample_weight`` (e.g.
                ``net__sample_weight=w``), as ``GridSearchCV`` passes it: weights for the
                network's fits only (the test folds are scored unweighted).

        Returns:
            self.
        """
        self._check_search_params()
        # as GridSearchCV: rows a fold can index (sparse X to CSR; array-likes that only
        # convert, __array__, to arrays); scored folds index the inputs as given
        X, y, groups = indexable(X, y, groups)
        sample_weight = None if sample_weight is None else indexable(sample_weight)[0]
        fit_params = {k: indexable(v)[0] for k, v in fit_params.items()}
        if get_config().get("enable_metadata_routing") and not getattr(self, "_nested", False):
            return self._fit_routed(X, y, groups, sample_weight, fit_params)
        return self._fit(X, y, groups, sample_weight, fit_params)

    def _fit(self, X, y, groups, sample_weight, fit_params, routed=None):
        """``fit``'s search; ``routed``: what metadata routing gave each consumer (see
        ``_fit_routed``), None without it."""
        base = self.estimator
        fit_weight = None
        if fit_params:
            accepted = f"{base.steps[-1][0]}__sample_weight" if isinstance(base, Pipeline) else None
            if set(fit_params) != {accepted} or sample_weight is not None:
                takes = f" or {accepted}= (the network's fits only)" if accepted else ""
                raise TypeError(
                    f"SweepSearchCV.fit takes sample_weight={takes}, one of them; got "
                    f"{sorted(fit_params)}"
                    + (" with sample_weight= too" if sample_weight is not None else "")
                )
            fit_weight = next(iter(fit_params.values()))  # the one accepted
        if isinstance(base, Pipeline):
            return self._fit_pipeline(X, y, groups, sample_weight, fit_weight, routed)
        if not isinstance(base, _BPNNBase):
            raise TypeError(
                "SweepSearchCV trains BPNNClassifier or BPNNRegressor networks (or a Pipeline "
                f"that ends with one) with train_many; got {type(base).__name__}. Use "
                "GridSearchCV for other estimators"
            )
        candidates = list(ParameterGrid(self.param_grid))
        if is_classifier(base) and y is not None:
            _check_label_types(y)
        scorers, refit_metric = self._scorers(base)
        cv = check_cv(self.cv, y, classifier=is_classifier(base))
        # The data as every fold's fit sees it (validated once; a fold is a row subset).
        probe = clone(base)
        Xf, yv = validate_data(
            probe,
            X,
            y,
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=True,
            accept_sparse=["csr", "csc"],  # densified, as the estimators' fit does
        )
        Xf = _dense(Xf, Xf.dtype)
        if yv.ndim == 2 and yv.shape[1] == 1:
            yv = column_or_1d(yv, warn=True)
        n_rows = Xf.shape[0]
        splits = [
            (_fold_rows(k, "train", tr, n_rows), _fold_rows(k, "test", te, n_rows))
            for k, (tr, te) in enumerate(cv.split(X, y, groups))
        ]
        self.n_splits_ = len(splits)
        sw = None if sample_weight is None else _check_sample_weight(sample_weight, Xf)
        # A fold whose training weights are all 0: its fits fail with the error a fit
        # raises there, and score error_score (GridSearchCV goes on with the other folds).
        unfit: dict[int, Exception] = {}
        if sw is not None:
            for k, (tr, _) in enumerate(splits):
                if not np.sum(sw[tr], dtype=np.float64) > 0:
                    unfit[k] = _zero_weights_error(sw[tr], Xf[tr])

        self._check_size(base, len(candidates), splits, Xf.shape[1], yv)
        fit_times = np.zeros((len(candidates), len(splits)))
        score_times = np.zeros_like(fit_times)
        values: dict[tuple[int, int], Any] = {}
        train_values: dict[tuple[int, int], Any] = {}
        failures: list[str] = []

        def failed(c: int, k: int, error: Exception) -> None:
            """A fit that failed: error_score for its scores, as GridSearchCV records it
            (with a FitFailedWarning), or the error itself with error_score='raise'."""
            if isinstance(self.error_score, str) and self.error_score == "raise":
                raise error
            failures.append(f"{type(error).__name__}: {error}")
            named = scorers if isinstance(scorers, dict) else {None: scorers}
            value = {name: self.error_score for name in named}
            values[c, k] = value if isinstance(scorers, dict) else value[None]
            if self.return_train_score:
                train_values[c, k] = values[c, k]

        jobs = []
        for c, params in enumerate(candidates):
            for k, (tr, te) in enumerate(splits):
                est = clone(base).set_params(**params)
                try:
                    settings = _settings(est)
                    if k in unfit:
                        raise unfit[k]
                    job = _Job(c, k, est, settings, tr, te)
                    if job.settings.early_stopping:  # a split the fold cannot give fails
                        job = self._with_validation_split(job, yv)
                except (ValueError, TypeError) as error:  # what the fit would refuse
                    failed(c, k, error)
                    continue
                jobs.append(job)
        self.sweep_calls_ = []

        # the scores' weights and which scorers take them: set by an outer search (metadata
        # routing; a Pipeline's <step>__sample_weight, fits only: none), else GridSearchCV's
        # default: the fits' weights, where the scorers take them
        routed = getattr(self, "_score_routing", None)
        if routed is not None:
            score_weight, requested = routed
        else:
            weigh = sample_weight is not None and self._scorer_accepts_sample_weight(scorers)
            score_weight = sample_weight if weigh else None
            requested = None  # every scorer

        def on(rows: np.ndarray, fitted: _BPNNBase) -> Any:
            """The score(s) of ``fitted`` on ``rows``; ``error_score`` where a scorer raises."""
            y_part = None if y is None else _safe_indexing(y, rows)
            weights = None if score_weight is None else _safe_indexing(score_weight, rows)
            X_part = _safe_indexing(X, rows)
            named = scorers if isinstance(scorers, dict) else {None: scorers}
            out = {}
            for name, sc in named.items():
                takes = weights is not None and (requested is None or requested[name])
                kw = {"sample_weight": weights} if takes else {}
                try:
                    out[name] = sc(fitted, X_part, y_part, **kw)
                except Exception:
                    if isinstance(self.error_score, str) and self.error_score == "raise":
                        raise
                    warnings.warn(
                        "Scoring failed. The score on this train-test partition for these "
                        f"parameters will be set to {self.error_score}. Details: \n"
                        f"{traceback.format_exc()}",
                        UserWarning,
                        stacklevel=2,
                    )
                    out[name] = self.error_score
            return out if isinstance(scorers, dict) else out[None]

        def score(job: _Job, fitted: _BPNNBase) -> None:
            start = time.perf_counter()
            values[job.candidate, job.split] = on(job.test, fitted)
            score_times[job.candidate, job.split] = time.perf_counter() - start
            if self.return_train_score:
                train_values[job.candidate, job.split] = on(job.train, fitted)

        groups_of: dict[tuple, list[_Job]] = {}
        for job in jobs:
            groups_of.setdefault(self._group_key(job, yv), []).append(job)
        if self.verbose > 0:  # GridSearchCV's line
            print(
                f"Fitting {len(splits)} folds for each of {len(candidates)} candidates, "
                f"totalling {len(jobs)} fits"
            )
        for members in groups_of.values():
            start = time.perf_counter()
            try:
                fitted = self._train_group(members, Xf, yv, sw, probe)
            except MemoryError:  # EnsembleTooLarge, ArrayTooLarge: a refusal, not a failed fit
                raise
            except (ValueError, TypeError, FloatingPointError) as error:  # the fits' own
                for job in members:
                    failed(job.candidate, job.split, error)
                continue
            seconds = time.perf_counter() - start
            if self.verbose > 0:
                print(f"[SweepSearchCV] train_many: {len(members)} networks in {seconds:.1f}s")
            for job, est in zip(members, fitted):
                fit_times[job.candidate, job.split] = seconds / len(members)
                if isinstance(est, ValueError):  # its network diverged at once
                    failed(job.candidate, job.split, est)
                else:
                    score(job, est)

        self._failures = failures  # a Pipeline's inner sweeps hand theirs to the outer one
        if not getattr(self, "_nested", False):
            _report_failures(failures, len(candidates) * len(splits), self.error_score)
        scores = self._score_arrays(values, len(candidates), len(splits))
        train_scores = None
        if self.return_train_score:
            train_scores = self._score_arrays(train_values, len(candidates), len(splits))
        return self._conclude(
            X,
            y,
            sample_weight,
            candidates,
            (scores, train_scores, fit_times, score_times),
            scorers,
            refit_metric,
        )

    def _fit_routed(self, X, y, groups, sample_weight, fit_params):
        """``fit`` under scikit-learn's metadata routing (``sklearn.set_config(
        enable_metadata_routing=True)``), routed as ``GridSearchCV`` routes it: the
        estimator's fits get the metadata it requested (``set_fit_request``; in a
        Pipeline, each step what it requested), each scorer what it requested
        (``set_score_request``), the splitter ``groups``; metadata that nothing
        requested is refused with scikit-learn's own error."""
        given = {"groups": groups, "sample_weight": sample_weight, **fit_params}
        routed = process_routing(self, "fit", **{k: v for k, v in given.items() if v is not None})
        fit_kw = dict(routed.estimator.fit)
        weights = fit_kw.pop("sample_weight", None)
        if fit_kw:  # a jbpnn network takes no other fit metadata; a Pipeline's steps neither
            raise TypeError(
                f"SweepSearchCV routes sample_weight to the fits; {sorted(fit_kw)} were "
                "routed to the estimator too: use GridSearchCV"
            )
        base = self.estimator
        last = base.steps[-1][1] if isinstance(base, Pipeline) else base
        scorers, _ = self._scorers(last)
        named = scorers if isinstance(scorers, dict) else {None: scorers}
        requested = {name: _consumes(sc, "score") for name, sc in named.items()}
        score = (routed.scorer.score.get("sample_weight"), requested)
        split_groups = routed.splitter.split.get("groups")
        if not isinstance(base, Pipeline):
            self._score_routing = score
            try:
                return self._fit(X, y, split_groups, weights, {})
            finally:
                del self._score_routing
        head = [step for _, step in base.steps[:-1] if step not in (None, "passthrough")]
        net_weights = weights if _consumes(last, "fit") else None
        head_weights = weights if any(_consumes(step, "fit") for step in head) else None
        return self._fit(X, y, split_groups, None, {}, (weights, net_weights, head_weights, score))

    def _conclude(
        self, X, y, sample_weight, candidates, arrays, scorers, refit_metric, fit_kw=None
    ):
        """``cv_results_``, the best candidate and the refit, from the score arrays
        ``(test, train or None, fit times, score times)`` of every candidate and fold."""
        scores, train_scores, fit_times, score_times = arrays
        base = self.estimator
        # several metrics: a dict of scorers, or a callable that returns a dict (GridSearchCV's)
        self.multimetric_ = list(scores) != ["score"] or isinstance(scorers, dict)
        if self.multimetric_ and not isinstance(scorers, dict):
            self._check_refit_for_multimetric(scores)
            refit_metric = self.refit
        self.scorer_ = scorers
        self.cv_results_ = _cv_results(candidates, scores, fit_times, score_times, train_scores)
        if self.refit or not self.multimetric_:  # as GridSearchCV
            self.best_index_ = self._best_index(refit_metric)
            self.best_params_ = candidates[self.best_index_]
            if not callable(self.refit):  # GridSearchCV: none when refit is a function
                mean = self.cv_results_[f"mean_test_{refit_metric}"]
                self.best_score_ = float(mean[self.best_index_])
        if self.refit:
            start = time.perf_counter()
            if fit_kw is None:
                fit_kw = {} if sample_weight is None else {"sample_weight": sample_weight}
            best = clone(self.best_params_, safe=False)  # the grid's objects stay unfitted
            self.best_estimator_ = clone(base).set_params(**best).fit(X, y, **fit_kw)
            self.refit_time_ = time.perf_counter() - start
        return self

    def _check_search_params(self) -> None:
        """GridSearchCV's own checks of its arguments (its ``_parameter_constraints``): a
        string ``error_score`` other than ``'raise'`` was stored as a score (``'0.5'`` made a
        failing candidate win), ``verbose='loud'`` failed inside."""
        es = self.error_score
        if not (es == "raise" if isinstance(es, str) else isinstance(es, numbers.Real)):
            raise ValueError(f"error_score must be 'raise' or a number (e.g. np.nan), got {es!r}")
        if not isinstance(self.return_train_score, (bool, np.bool_)):
            raise ValueError(
                f"return_train_score must be True or False, got {self.return_train_score!r}"
            )
        refit = self.refit
        if not (isinstance(refit, (bool, np.bool_, str)) or callable(refit)):
            raise ValueError(
                f"refit must be True, False, a metric name or a callable, got {refit!r}"
            )
        if self.n_jobs is not None and (
            isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, numbers.Integral)
        ):
            raise ValueError(f"n_jobs must be None or an integer, got {self.n_jobs!r}")
        v = self.verbose
        if not (
            isinstance(v, (bool, np.bool_)) or (isinstance(v, numbers.Integral) and int(v) >= 0)
        ):
            raise ValueError(f"verbose must be an integer >= 0, got {v!r}")
        pd = self.pre_dispatch
        if not (pd is None or isinstance(pd, str) or isinstance(pd, numbers.Integral)):
            raise ValueError(f"pre_dispatch must be None, an integer or a string, got {pd!r}")

    def _fit_pipeline(self, X, y, groups, sample_weight, fit_weight=None, routed=None):
        """A ``Pipeline`` that ends with a jbpnn estimator, as ``GridSearchCV`` fits it: per
        fold (and per setting of the preceding steps' parameters in the grid) the preceding
        steps are fitted on the training rows only and transform both sides; then the
        networks of all folds train together, one inner sweep over the transformed folds
        stacked into one table (one per width, where the steps give folds different
        numbers of columns), and are scored on their fold's transformed test rows."""
        pipe = self.estimator
        last_name, last = pipe.steps[-1]
        if not isinstance(last, _BPNNBase):
            raise TypeError(
                "SweepSearchCV trains a Pipeline whose last step is a BPNNClassifier or "
                f"BPNNRegressor; its last step is {type(last).__name__}. Use GridSearchCV"
            )
        if is_classifier(last) and y is not None:
            _check_label_types(y)
        candidates = list(ParameterGrid(self.param_grid))
        prefix = f"{last_name}__"
        for params in candidates:
            if last_name in params:  # the inner sweeps train the pipeline's own last step
                raise ValueError(
                    f"param_grid replaces the Pipeline's last step {last_name!r} itself; "
                    f"SweepSearchCV sweeps its parameters ({prefix}...): give them as "
                    f"{prefix}<name> values, or use GridSearchCV to swap whole estimators"
                )
        if callable(self.scoring) or (
            isinstance(self.scoring, Mapping) and any(map(callable, self.scoring.values()))
        ):
            raise ValueError(
                "a callable scoring with a Pipeline: GridSearchCV calls it with the pipeline and "
                "the raw rows, SweepSearchCV would call it with the network and the transformed "
                "rows; give scorer names (e.g. 'accuracy'), or use GridSearchCV"
            )
        n_rows = _num_samples(X)
        cv = check_cv(self.cv, y, classifier=is_classifier(last))
        splits = [
            (_fold_rows(k, "train", tr, n_rows), _fold_rows(k, "test", te, n_rows))
            for k, (tr, te) in enumerate(cv.split(X, y, groups))
        ]
        self.n_splits_ = len(splits)
        if self.verbose > 0:  # GridSearchCV's line, once (the inner sweeps print none)
            print(
                f"Fitting {len(splits)} folds for each of {len(candidates)} candidates, "
                f"totalling {len(splits) * len(candidates)} fits"
            )
        by_head: dict[tuple, tuple[dict, list]] = {}  # the preceding steps' settings -> candidates
        for c, params in enumerate(candidates):
            head = {k: v for k, v in params.items() if not k.startswith(prefix)}
            final = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
            # grouped by the grid's own values: a repr abbreviates (two long arrays that
            # differ at one entry read alike) and trained one with the other's steps
            key = tuple(sorted((k, _value_key(v)) for k, v in head.items()))
            by_head.setdefault(key, (head, []))[1].append((c, final))
        scorers, refit_metric = self._scorers(last)  # what every inner sweep scores with
        arrays: dict[str, dict[str, np.ndarray]] = {"test": {}, "train": {}}
        times = np.zeros((2, len(candidates), len(splits)))
        self.sweep_calls_ = []
        names = list(scorers) if isinstance(scorers, dict) else ["score"]
        weights = sample_weight if fit_weight is None else fit_weight  # the fits' weights
        head_weights, score = None, None
        if routed is not None:  # metadata routing: each consumer what it requested
            given, weights, head_weights, score = routed
        failures: list[str] = []

        def block(side: str, metric: str) -> np.ndarray:
            """One side's scores of one metric, (candidates, folds), NaN until recorded."""
            return arrays[side].setdefault(metric, np.full((len(candidates), len(splits)), np.nan))

        for head, members in by_head.values():
            # each fold's transformed (train, test) rows; folds the steps give the same
            # number of columns share a table and one inner sweep (e.g. a OneHotEncoder that
            # meets a category in some folds' training rows only makes the others narrower)
            by_width: dict[int, list[tuple[int, Any, Any]]] = {}
            for k, (tr, te) in enumerate(splits):
                # clones of the grid's objects: the caller's stay unfitted, as GridSearchCV's
                setting = clone(pipe).set_params(**clone(head, safe=False))
                X_tr, X_te = _safe_indexing(X, tr), _safe_indexing(X, te)
                if len(setting.steps) > 1:  # a network alone: nothing to transform
                    steps = Pipeline(setting.steps[:-1])
                    head_kw = {}
                    if head_weights is not None:  # routed: the Pipeline passes it on by request
                        head_kw = {"sample_weight": _safe_indexing(head_weights, tr)}
                    try:
                        X_tr = steps.fit_transform(X_tr, _safe_indexing(y, tr), **head_kw)
                        X_te = steps.transform(X_te)
                    except Exception as error:  # a preceding step fails: error_score, as
                        if isinstance(self.error_score, str) and self.error_score == "raise":
                            raise  # GridSearchCV records for the whole pipeline's fit
                        failures += [f"{type(error).__name__}: {error}"] * len(members)
                        for (c, _), side, metric in product(members, ("test", "train"), names):
                            block(side, metric)[c, k] = self.error_score
                        continue
                width = X_tr.shape[1] if len(np.shape(X_tr)) == 2 else -1
                by_width.setdefault(width, []).append((k, X_tr, X_te))
            for same_width in by_width.values():
                parts, rows, start, folds = [], [], 0, []
                for k, X_tr, X_te in same_width:
                    tr, te = splits[k]
                    parts.append((X_tr, tr))
                    parts.append((X_te, te))
                    fit_rows = np.arange(start, start + len(tr))  # the fold's rows in the table
                    rows.append((fit_rows, np.arange(len(te)) + start + len(tr)))
                    start += len(tr) + len(te)
                    folds.append(k)  # the inner sweep's split i is this fold
                if any(sp.issparse(a) for a, _ in parts):  # e.g. a OneHotEncoder's output
                    X_all = sp.vstack([sp.csr_matrix(a) for a, _ in parts]).tocsr()
                else:
                    X_all = np.concatenate([np.asarray(a) for a, _ in parts])
                take = np.concatenate([r for _, r in parts])
                y_all = None if y is None else _safe_indexing(y, take)
                w_all = None if weights is None else np.asarray(weights)[take]
                inner = SweepSearchCV(
                    clone(last),
                    [{k: [v] for k, v in final.items()} for _, final in members],
                    scoring=self.scoring,
                    refit=False,
                    cv=rows,
                    verbose=0,
                    error_score=self.error_score,
                    return_train_score=self.return_train_score,
                )
                inner._nested = True  # its failures are reported once, by this search
                scoring: tuple[Any, Any] | None = None  # the inner scores' (weights, takers)
                if score is not None:  # routed: the scorers' own weights, by request
                    scoring = (None if score[0] is None else np.asarray(score[0])[take], score[1])
                elif fit_weight is not None:  # <step>__sample_weight: the fits' only
                    scoring = (None, None)
                if scoring is not None:
                    inner._score_routing = scoring
                inner.fit(X_all, y_all, sample_weight=w_all)
                failures += inner._failures
                self.sweep_calls_ += inner.sweep_calls_
                res = inner.cv_results_
                for i, (c, _) in enumerate(members):
                    for column, value in res.items():
                        for side in ("test", "train"):
                            tag = f"_{side}_"
                            if column.startswith("split") and tag in column:
                                at, metric = column[len("split") :].split(tag, 1)
                                block(side, metric)[c, folds[int(at)]] = value[i]
                    times[0, c, folds] = res["mean_fit_time"][i]  # this table's folds
                    times[1, c, folds] = res["mean_score_time"][i]
        _report_failures(failures, len(candidates) * len(splits), self.error_score)
        fit_kw = {} if weights is None else {f"{last_name}__sample_weight": weights}
        if routed is not None:  # the refit's Pipeline routes them, as GridSearchCV's does
            fit_kw = {} if given is None else {"sample_weight": given}
        train = arrays["train"] if self.return_train_score else None
        return self._conclude(
            X,
            y,
            sample_weight,
            candidates,
            (arrays["test"], train, times[0], times[1]),
            scorers,
            refit_metric,
            fit_kw,
        )

    def _scorers(self, base: _BPNNBase) -> tuple[Any, Any]:
        """``(scorer or {name: scorer}, refit metric)`` as GridSearchCV's ``_get_scorers``:
        one scorer for None, a name or a callable; a dict of them for a list, tuple, set or
        dict of scorer names or callables (multi-metric: ``refit`` must name one, be a
        callable, or be False)."""
        if callable(self.scoring) or self.scoring is None or isinstance(self.scoring, str):
            return check_scoring(base, self.scoring), "score"
        scorers = _check_multimetric_scoring(base, self.scoring)
        self._check_refit_for_multimetric(scorers)
        return scorers, self.refit

    def _check_refit_for_multimetric(self, scorers: Mapping[str, Any]) -> None:
        """GridSearchCV's rule: with several metrics, ``refit`` names the one that picks the
        best candidate (or is a callable, or False)."""
        if self.refit is not False and not callable(self.refit):
            if not (isinstance(self.refit, str) and self.refit in scorers):
                raise ValueError(
                    "For multi-metric scoring, the parameter refit must be set to a scorer "
                    f"key ({sorted(scorers)}) or a callable to refit an estimator with the "
                    "best parameter setting on the whole data and make the best_* attributes "
                    "available for that metric. If this is not needed, refit should be set to "
                    f"False explicitly. {self.refit!r} was passed."
                )

    @staticmethod
    def _score_arrays(
        values: Mapping[tuple[int, int], Any], n_candidates: int, n_splits: int
    ) -> dict[str, np.ndarray]:
        """The scores as ``{metric: (candidates, splits) array}``: ``"score"`` for one
        metric, the scorer names for a dict of scorers (or a callable returning a dict)."""
        first = next(iter(values.values()))
        names = list(first) if isinstance(first, Mapping) else None
        scores = {name: np.full((n_candidates, n_splits), np.nan) for name in names or ["score"]}
        for (c, k), value in values.items():
            if (names is None) == isinstance(value, Mapping) or (
                names is not None and list(value) != names
            ):
                raise ValueError(
                    f"scoring returned {value!r} for candidate {c}, fold {k}, but {first!r} for "
                    "another: a scorer returns one number, or always a dict of the same names"
                )
            for name, v in value.items() if names is not None else [("score", value)]:
                try:
                    scores[name][c, k] = v
                except (TypeError, ValueError):
                    metric = "" if names is None else f", metric {name!r}"
                    raise ValueError(
                        f"scoring returned {v!r} ({type(v).__name__}) for candidate {c}, fold "
                        f"{k}{metric}; a score must be a number"
                    ) from None
        return scores

    def _scorer_accepts_sample_weight(self, scorers: Any) -> bool:
        """As GridSearchCV: the test folds are scored with their sample weights when the
        scorers take them, else it warns."""
        ok = True
        for scorer in scorers.values() if isinstance(scorers, dict) else [scorers]:
            accept = getattr(scorer, "_accept_sample_weight", None)
            ok = ok and (
                accept()
                if callable(accept)
                else "sample_weight" in inspect.signature(scorer).parameters
            )
        if not ok:
            warnings.warn(
                f"The scoring {scorers} does not support sample_weight, which may lead to "
                f"statistically incorrect results when fitting {self} with sample_weight. ",
                stacklevel=3,
            )
        return ok

    def _best_index(self, metric: str = "score") -> int:
        if callable(self.refit):
            index = self.refit(self.cv_results_)
            # typeshed's numbers.Integral declares no comparisons
            if not isinstance(index, numbers.Integral) or not 0 <= index < len(  # type: ignore[operator]
                self.cv_results_["params"]
            ):
                raise IndexError("best_index_ returned by the refit callable is out of range")
            return int(index)
        return int(self.cv_results_[f"rank_test_{metric}"].argmin())

    @staticmethod
    def _with_validation_split(job: _Job, yv: np.ndarray) -> _Job:
        """The job with the validation split its fit would draw (scikit-learn's split of
        the fold's training rows, from its ``random_state``), as row indices into X."""
        est = job.estimator
        Y = est._fold_targets(yv, job.train, job.settings.dtype)[job.train]
        rng = _draw_seeds(copy.deepcopy(est.random_state))[2]
        fit, val = est._split_rows(Y, job.settings, rng)
        return job._replace(fit_rows=job.train[fit], val_rows=job.train[val])

    # Grid parameters that are data of one train_many call (per-network values); every
    # other one (sizes, activation, solver, batch_size, ...) makes a group of its own.
    _DATA_PARAMS = frozenset(
        ("learning_rate_init", "momentum", "alpha", "beta_1", "beta_2", "epsilon", "power_t")
        + ("random_state", "tol", "n_iter_no_change", "max_fun")
    )

    def _check_size(self, base, n_candidates: int, splits: list, n_in: int, yv) -> None:
        """Refuse, before any network is set up, a sweep one of whose train_many calls
        cannot fit in memory (:func:`jbpnn.memory.check_memory`), naming the numbers.

        A call trains every candidate that differs from another only in data
        parameters (learning rates, alpha, seeds, ...), on every fold. Each such group
        is estimated with its own settings by :func:`jbpnn.memory.estimate_memory`, as
        train_many then estimates it: its hidden layers, dtype and solver (the
        optimizer's state; lbfgs's line search, lm's normal equations), its batch size
        (full batch for lbfgs and lm), early stopping's validation split and best
        params, and its epochs (the history). A candidate whose settings its fit
        refuses is left to fail as that fit.
        """
        from jbpnn.state import HISTORY_CHUNK

        n_out = (
            yv.shape[1]
            if yv.ndim == 2
            else max(1, len(np.unique(yv)) if is_classifier(base) else 1)
        )
        n_rows = max(len(tr) for tr, _ in splits)
        # the grid's static parameters (each combination a group, one train_many call on
        # every fold) and how many candidates differ only in data parameters; read off
        # the parameters, not _settings (no job is set up before this check, and a grid
        # of 10**6 alphas is one group, sized at once)
        grid_list = self.param_grid
        grids = [grid_list] if isinstance(grid_list, Mapping) else list(grid_list)
        groups = []  # (estimator with the group's settings, candidates)
        for grid in grids:
            static = {k: v for k, v in grid.items() if k not in self._DATA_PARAMS}
            count = int(np.prod([len(v) for k, v in grid.items() if k not in static]))
            for params in ParameterGrid(static):
                groups.append((clone(base).set_params(**params), count))
        optimizer_of = {"adam": "adam", "sgd": "momentum", "lbfgs": "lbfgs", "lm": "lm"}
        for est, count in groups:
            try:  # settings its fits refuse: left to fail as those fits
                hidden = est.hidden_layer_sizes
                hidden = (hidden,) if isinstance(hidden, numbers.Integral) else tuple(hidden)
                dtype = np.dtype(est.dtype)
                optimizer = optimizer_of[est.solver]
                epochs = _integer("max_iter", est.max_iter, 1)
                sizes = (n_in, *(_integer("hidden_layer_sizes", h, 1) for h in hidden), n_out)
            except (ValueError, TypeError, KeyError):
                continue
            full_batch = est.solver in _FULL_BATCH
            early = bool(est.early_stopping) and not full_batch
            n_networks = count * len(splits)
            n_val = 0
            fraction = est.validation_fraction
            if early and isinstance(fraction, (int, float)) and 0 < fraction < 1:  # sklearn: ceil
                n_val = min(n_rows - 1, int(np.ceil(float(fraction) * n_rows)))
            n_fit = n_rows - n_val
            batch = est.batch_size
            if full_batch:
                k = None
            elif (
                isinstance(batch, (int, np.integer)) and not isinstance(batch, bool) and batch >= 1
            ):
                k = min(int(batch), n_fit)
            else:  # "auto", or a size its fits refuse
                k = min(200, n_fit)
            # shapes only (jax.eval_shape draws nothing, so compiles no draw for the estimate)
            template = jax.eval_shape(
                lambda sizes=sizes, dtype=dtype: init_params(0, sizes, "tanh", "mse", dtype=dtype)
            )
            estimate = estimate_memory(
                template,
                n_networks,
                n_examples=n_fit,
                batch_size=k,
                epochs=epochs,
                n_val=n_val,
                optimizer=optimizer,
                early_stopping=early,
                own_data_order=True,
                own_validation=early,
                history_chunk=HISTORY_CHUNK,  # train_many's ring buffer
            )
            try:
                check_memory(estimate, what=f"{n_networks} networks")
            except EnsembleTooLarge as e:
                raise EnsembleTooLarge(
                    f"SweepSearchCV: {n_candidates} candidates x {len(splits)} folds; one "
                    f"train_many call (the {count} candidates with solver={est.solver!r}, "
                    f"hidden_layer_sizes={hidden}, dtype {dtype.name}, that "
                    f"differ only in data parameters, every fold) would train {n_networks} "
                    f"networks of {'-'.join(map(str, sizes))}, one of {len(groups)} compiled "
                    f"program(s) in all: {e}. Split the grid into several searches, or use "
                    "fewer folds"
                ) from None

    @staticmethod
    def _group_key(job: _Job, yv: np.ndarray) -> tuple:
        s = job.settings
        n = len(job.train if job.fit_rows is None else job.fit_rows)
        k = _batch_size(s, n)
        classes = None  # the output layer and the targets' encoding follow the fold's classes
        if is_classifier(job.estimator):
            labels = yv[job.train]
            classes = ("multilabel", yv.shape[1]) if yv.ndim == 2 else tuple(np.unique(labels))
        # rows= equals train on X[rows] when the row counts need the same index bits
        return (s.static(), k, k is None or k >= n, (n - 1).bit_length(), classes)

    def _train_group(
        self, jobs: list[_Job], X: np.ndarray, y: np.ndarray, sw: np.ndarray | None, probe
    ) -> list[_BPNNBase | ValueError]:
        """ONE train_many call for networks that differ only in data; fitted estimators (the
        error its fit raises for a network that diverged at once: :func:`_kept_nothing`)."""
        first = jobs[0]
        s = first.settings
        est0 = first.estimator
        _check_magnitudes("X", X, s.dtype)
        X = np.asarray(X, s.dtype)
        # Targets as each fold's fit encodes them (the folds of a group have the same classes).
        rows = np.unique(np.concatenate([job.train for job in jobs]))
        Y = est0._fold_targets(y, rows, s.dtype)
        output = est0._output()
        draws = [_draw_seeds(copy.deepcopy(job.estimator.random_state)) for job in jobs]
        n_out = Y.shape[1]
        if isinstance(s.init, str):
            activations = (s.activation,) * len(s.hidden) + (output[1],)
            spec = InitSpec((X.shape[1], *s.hidden, n_out), activations, output[0], s.init, s.dtype)
            nets: InitSpec | list[MLP]
            nets, seeds = spec, [d[0] for d in draws]
        else:
            nets, seeds = [_initial_params(s, X.shape[1], n_out, output, 0)] * len(jobs), None
        fit_rows = [job.train if job.fit_rows is None else job.fit_rows for job in jobs]
        n_train = len(fit_rows[0])
        k = _batch_size(s, n_train)
        values = [
            {**job.settings.values, **_data_values(job.settings, len(rows), k, n_out)}
            for job, rows in zip(jobs, fit_rows)
        ]
        hparams = {name: np.array([v[name] for v in values]) for name in values[0]}
        val: dict[str, Any] = {}
        splits: list[_ValSet | None] = [None] * len(jobs)
        if s.early_stopping:  # each network its own validation split, weighted as its fit's
            val = {"X_val": X, "Y_val": Y, "val_rows": [job.val_rows for job in jobs]}
            val["val_sample_weight"] = sw
            splits = [
                _ValSet(X[j.val_rows], Y[j.val_rows], None if sw is None else sw[j.val_rows])
                for j in jobs
            ]
        # each network its own thresholds (tol, n_iter_no_change; the regressor's tol as its
        # split's variance makes it): one value when all agree
        stopping = [job.estimator._stopping(job.settings, v) for job, v in zip(jobs, splits)]
        start = time.perf_counter()
        result = train_many(
            nets,
            X,
            Y,
            seeds=seeds,
            optimizer=_optimizer_factory(s),
            hparams=hparams,
            keys=[d[1] for d in draws],
            rows=fit_rows,
            epochs=s.max_iter,
            batch_size=k,
            shuffle=s.shuffle,
            sample_weight=sw,
            check_finite=False,
            stopping=stopping,
            mesh=self.mesh,
            **val,
        )
        self.sweep_calls_.append(
            {"networks": len(jobs), "seconds": time.perf_counter() - start, "hparams": hparams}
        )
        fitted = []
        for i, job in enumerate(jobs):
            est = job.estimator
            for name in ("n_features_in_", "feature_names_in_"):
                if hasattr(probe, name):
                    setattr(est, name, getattr(probe, name))
            # classes_ as its own fit finds them: every fold of a group has the group's
            # classes (_group_key), so est0's encoding above is each one's (a
            # LabelBinarizer fit per network was 0.15 s of a 16 x 5 sweep)
            if est is not est0:
                est._encoding_of(est0)
            if _kept_nothing(result[i], job.settings):  # the fit raises: a failed fit
                fitted.append(_diverged_at_once("fit"))
                continue
            weight = None if sw is None else float(np.sum(sw[fit_rows[i]]))
            est._record(
                result[i], job.settings, len(fit_rows[i]), True, splits[i], weight_total=weight
            )
            fitted.append(est)
        return fitted

    # -- the best estimator's methods ------------------------------------
    def get_metadata_routing(self):
        """``GridSearchCV``'s routing (scikit-learn's metadata routing, when it is on): the
        estimator's ``fit`` from ``fit``, the scorers' ``score`` from ``fit`` and
        ``score``, the splitter's ``split`` (``groups``) from ``fit``."""
        scorers, _ = self._scorers(self.estimator)
        if isinstance(scorers, dict):
            scorers = _MultimetricScorer(scorers=scorers, raise_exc=self.error_score == "raise")
        return (
            MetadataRouter(owner=self)
            .add(
                estimator=self.estimator,
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
            .add(
                scorer=scorers,
                method_mapping=MethodMapping()
                .add(caller="score", callee="score")
                .add(caller="fit", callee="score"),
            )
            .add(splitter=self.cv, method_mapping=MethodMapping().add(caller="fit", callee="split"))
        )

    def _check_refit(self, method: str) -> None:
        if not self.refit:
            raise _no_refit(method)
        check_is_fitted(self, "best_estimator_")

    def __sklearn_tags__(self):
        """GridSearchCV's: the wrapped estimator's type (so ``is_classifier`` holds and
        ``cross_val_score`` stratifies a nested cross-validation) and input tags."""
        from sklearn.utils import get_tags  # scikit-learn >= 1.6, which calls this method

        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = copy.deepcopy(inner.classifier_tags)
        tags.regressor_tags = copy.deepcopy(inner.regressor_tags)
        tags.input_tags.sparse = inner.input_tags.sparse
        return tags

    @available_if(_search_has("predict"))
    def predict(self, X):
        """``best_estimator_.predict(X)``."""
        self._check_refit("predict")
        return self.best_estimator_.predict(X)

    @available_if(_search_has("predict_proba"))
    def predict_proba(self, X):
        """``best_estimator_.predict_proba(X)`` (classifiers)."""
        self._check_refit("predict_proba")
        return self.best_estimator_.predict_proba(X)

    @available_if(_search_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """``best_estimator_.predict_log_proba(X)`` (classifiers)."""
        self._check_refit("predict_log_proba")
        return self.best_estimator_.predict_log_proba(X)

    def score(self, X, y=None, **params):
        """The scorer on the best estimator: ``scorer_(best_estimator_, X, y)`` (with
        several metrics, the one ``refit`` names). ``params`` (e.g. ``sample_weight``):
        only with scikit-learn's metadata routing on, for the scorer that requested them,
        as ``GridSearchCV.score``."""
        self._check_refit("score")
        if params and not get_config().get("enable_metadata_routing"):
            raise ValueError(
                f"SweepSearchCV.score got {sorted(params)}: passing them needs scikit-learn's "
                "metadata routing (sklearn.set_config(enable_metadata_routing=True)), as for "
                "GridSearchCV"
            )
        if params:
            params = process_routing(self, "score", **params).scorer["score"]
        if isinstance(self.scorer_, dict):
            scorer = self.scorer_[self.refit]
            return scorer(self.best_estimator_, X, y, **_requested(scorer, params))
        value = self.scorer_(self.best_estimator_, X, y, **params)
        return value[self.refit] if self.multimetric_ else value

    @property
    def classes_(self):
        self._check_refit("classes_")
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self):
        self._check_refit("n_features_in_")
        return self.best_estimator_.n_features_in_

    @property
    def feature_names_in_(self):
        """The best estimator's column names (fitted on a DataFrame), as ``GridSearchCV``'s;
        none (AttributeError) where it has none."""
        self._check_refit("feature_names_in_")
        return self.best_estimator_.feature_names_in_


def _consumes(obj: Any, method: str) -> bool:
    """Whether ``obj`` requested ``sample_weight`` for ``method`` (metadata routing; a
    plain function requests nothing)."""
    return "sample_weight" in get_routing_for_object(obj).consumes(method, ["sample_weight"])


def _requested(scorer: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The ``params`` one scorer of several requested (metadata routing)."""
    consumed = get_routing_for_object(scorer).consumes("score", list(params))
    return {k: v for k, v in params.items() if k in consumed}


def _report_failures(failures: list[str], n_fits: int, error_score: Any) -> None:
    """GridSearchCV's word on the fits that failed: an error when every one did (nothing
    was trained: the best candidate would be one that never ran), else a warning."""
    if failures and len(failures) == n_fits:
        raise ValueError(
            f"All the {n_fits} fits failed.\nIt is very likely that your model is "
            "misconfigured.\nYou can try to debug the error by setting "
            "error_score='raise'.\n\nBelow are more details about the failures:\n"
            + "\n".join(sorted(set(failures)))
        )
    if failures:
        warnings.warn(
            f"{len(failures)} fits failed out of a total of {n_fits}. The score on these "
            f"train-test partitions for these parameters will be set to {error_score}. "
            "Their errors: " + "; ".join(sorted(set(failures))),
            FitFailedWarning,
            stacklevel=3,
        )


def _masked_params(candidates: Sequence[Mapping[str, Any]]) -> dict[str, np.ma.MaskedArray]:
    """``param_<name>`` arrays as ``GridSearchCV`` builds them (masked where a candidate
    lacks the parameter; object dtype for strings and sequences)."""
    names: dict[str, dict[int, Any]] = {}
    for i, params in enumerate(candidates):
        for name, value in params.items():
            names.setdefault(f"param_{name}", {})[i] = value
    out = {}
    for key, found in names.items():
        values = list(found.values())
        try:
            arr = np.array(values)
            dtype = arr.dtype if arr.dtype.kind != "U" and arr.ndim == 1 else object
        except ValueError:
            dtype = np.dtype(object)
        ma = np.ma.MaskedArray(np.empty(len(candidates), dtype=dtype), mask=True)
        for i, value in found.items():
            ma[i] = value
        out[key] = ma
    return out


def _cv_results(
    candidates: list[dict],
    scores: Mapping[str, np.ndarray],
    fit_times: np.ndarray,
    score_times: np.ndarray,
    train_scores: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """``GridSearchCV``'s ``cv_results_`` (same keys, same order, same ranking rule):
    ``scores`` maps each metric (``"score"`` for one) to its ``(candidates, splits)``
    scores, giving ``split<k>_test_<metric>``, ``mean_``, ``std_`` and ``rank_test_<metric>``;
    ``train_scores`` (``return_train_score``) adds ``split<k>_train_<metric>``, ``mean_``
    and ``std_train_<metric>`` after each metric's test keys."""
    from scipy.stats import rankdata

    results: dict[str, Any] = {}
    for name, array in (("fit_time", fit_times), ("score_time", score_times)):
        results[f"mean_{name}"] = array.mean(axis=1)
        results[f"std_{name}"] = array.std(axis=1)
    results.update(_masked_params(candidates))
    results["params"] = candidates
    for metric, array in scores.items():
        for k in range(array.shape[1]):
            results[f"split{k}_test_{metric}"] = array[:, k]
        means = array.mean(axis=1)
        results[f"mean_test_{metric}"] = means
        results[f"std_test_{metric}"] = np.sqrt(np.mean((array - means[:, None]) ** 2, axis=1))
        if not np.isfinite(means).all():
            warnings.warn(f"One or more of the test scores are non-finite: {means}", stacklevel=3)
        if np.isnan(means).all():
            rank = np.ones_like(means, dtype=np.int32)
        else:
            filled = np.where(np.isnan(means), np.nanmin(means) - 1, means)
            rank = rankdata(-filled, method="min").astype(np.int32)
        results[f"rank_test_{metric}"] = rank
        if train_scores is not None:
            train = train_scores[metric]
            for k in range(train.shape[1]):
                results[f"split{k}_train_{metric}"] = train[:, k]
            mean = train.mean(axis=1)
            if not np.isfinite(mean).all():  # GridSearchCV warns for either side
                warnings.warn(
                    f"One or more of the train scores are non-finite: {mean}", stacklevel=3
                )
            results[f"mean_train_{metric}"] = mean
            results[f"std_train_{metric}"] = np.sqrt(np.mean((train - mean[:, None]) ** 2, axis=1))
    return results


def _fold_rows(k: int, part: str, rows: Any, n: int) -> np.ndarray:
    """One side of cv fold ``k`` as row indices into X, checked: a boolean mask (as
    ``GridSearchCV`` takes them) becomes its indices, negative indices count from the end
    (as NumPy's), and indices outside X's ``n`` rows are refused, naming the fold."""
    a = np.asarray(rows)
    if a.dtype == bool:
        if a.shape != (n,):
            raise ValueError(
                f"cv fold {k}: the {part} mask has shape {a.shape}, expected ({n},): one "
                "entry per row of X"
            )
        a = np.flatnonzero(a)
    elif a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise ValueError(
            f"cv fold {k}: {part} must be a 1-D array of row indices or a boolean mask, got "
            f"shape {a.shape} and dtype {a.dtype}"
        )
    if a.size == 0:
        raise ValueError(f"cv fold {k}: its {part} rows are empty")
    if a.min() < -n or a.max() >= n:
        raise ValueError(
            f"cv fold {k}: {part} indices run from {a.min()} to {a.max()}, but X has {n} rows "
            f"(indices 0 .. {n - 1})"
        )
    return np.where(a < 0, a + n, a)
