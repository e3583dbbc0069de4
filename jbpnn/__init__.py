"""jbpnn: back-propagation neural networks in JAX, with gradients derived by hand.

The maths follows the article in ``docs/ARTICLE.md``: sigmoid units, the
error ``E = 1/2 sum (T - O)^2``, output delta ``O(1-O)(T-O)``, hidden delta
``O(1-O) sum_k Err_k w_jk`` and updates ``w += lr Err O_prev``.

Modules, one job each (the maths imports nothing of ours above it):

- :mod:`jbpnn.activations`  name -> (function, derivative from the output or the net input)
- :mod:`jbpnn.losses`       name -> (error, output delta); the valid pairs
- :mod:`jbpnn.units`        ``register_activation``, ``register_loss``: your own, by name,
  checked against autodiff when registered
- :mod:`jbpnn.params`       ``Layer``, the ``MLP`` pytree, ``init_params``
- :mod:`jbpnn.network`      ``forward``, ``backward``, ``deltas`` and batched forms;
  ``apply`` and ``jvp``, differentiable by JAX through the hand rules
- :mod:`jbpnn.tangents`      forward mode by hand: tangents carried through the layers
- :mod:`jbpnn.curvature`    ``hvp`` (Pearlmutter's R-operator), ``gnvp`` (Gauss-Newton),
  ``per_example_grad_norms``, all by hand
- :mod:`jbpnn.jacobian`     ``jacobian``, ``normal_equations``: dO/dtheta by the Marquardt
  back-propagation (Hagan and Menhaj 1994), ``J^T J`` and ``J^T e`` without storing J
- :mod:`jbpnn.optimizers`   ``sgd``, ``momentum`` (classical, nesterov, article), ``adam``;
  full batch ``rprop``, ``levenberg_marquardt``, ``bayesian_regularization``, ``lbfgs``
  (their rules in :mod:`jbpnn.marquardt` and :mod:`jbpnn.lbfgs`)
- :mod:`jbpnn.stopping`     ``Stopping``: a run's stop rules, declared and checked once
- :mod:`jbpnn.training`     ``train``: one compiled loop over epochs, the chunk driver
- :mod:`jbpnn.devices`      devices and meshes: which a run uses, placing arrays on them
- :mod:`jbpnn.many`         ``train_many``: N networks in one compiled call; grids, tables
- :mod:`jbpnn.files`        the one atomic write (fsync, rename) and the checks of a target
- :mod:`jbpnn.io`           ``save`` / ``load`` (the ``.npz`` model format)
- :mod:`jbpnn.loaders`      reading a user's files: CSV / NPZ tables, a model's features
- :mod:`jbpnn.data`         bundled digits, splits, scalers, label encoding
- :mod:`jbpnn.preprocessing`  ``Preprocessing``: a table's scaling and target coding,
  saved with a model; ``infer_task`` (classes or numbers?)
- :mod:`jbpnn.matlab`       ``feedforwardnet`` with MATLAB's defaults, ``mapminmax``, ``dividerand``
- :mod:`jbpnn.article`      the article's ``BPNN`` class and ``get_data``
- :mod:`jbpnn.gradcheck`    hand-derived gradients against autodiff (the only
  module that calls autodiff, ``jax.grad``; not imported here)
- :mod:`jbpnn.compilation_cache`  JAX's persistent cache, on by default for ``train``
- :mod:`jbpnn.cli`          the ``jbpnn`` command
"""

# ruff: noqa: E402  (the imports below come after the Ctrl-C handler is set)
from jbpnn import _starting

# Loading as the ``jbpnn`` command: a Ctrl-C while JAX loads is one line until the
# command's main takes over (see _starting); a program that imports jbpnn is not touched.
_previous_sigint = _starting.hold() if _starting.is_command() else None

from jbpnn.activations import ACTIVATIONS, Activation
from jbpnn.article import BPNN, get_data
from jbpnn.compilation_cache import disable_compilation_cache, enable_compilation_cache
from jbpnn.curvature import gnvp, hvp, per_example_grad_norms
from jbpnn.data import load_digits, one_hot, train_test_split
from jbpnn.io import Saved, load, save
from jbpnn.jacobian import (
    NormalEquations,
    flatten_params,
    n_params,
    normal_equations,
    unflatten_params,
)
from jbpnn.losses import LOSSES, VALID_PAIRS, Loss
from jbpnn.many import InitSpec, ManyResult, train_many
from jbpnn.memory import EnsembleTooLarge
from jbpnn.network import (
    apply,
    backward,
    batch_gradient,
    check_batch,
    deltas,
    example_loss,
    forward,
    jvp,
    jvp_kernel,
    loss,
    loss_and_gradient,
    per_example_grads,
    predict,
)
from jbpnn.optimizers import (
    OPTIMIZERS,
    Optimizer,
    adam,
    apply_updates,
    bayesian_regularization,
    get_optimizer,
    levenberg_marquardt,
    momentum,
    rprop,
    set_hyperparams,
    sgd,
)
from jbpnn.params import INITS, MLP, Layer, init_params
from jbpnn.preprocessing import Preprocessing, infer_task
from jbpnn.stopping import Stopping
from jbpnn.tables import ResultsTable, grid
from jbpnn.training import (
    STOP_REASONS,
    TrainResult,
    TrainState,
    accuracy,
    evaluate,
    train,
    train_epoch,
)
from jbpnn.units import register_activation, register_loss

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "BPNN",
    "EnsembleTooLarge",
    "INITS",
    "InitSpec",
    "LOSSES",
    "MLP",
    "ManyResult",
    "OPTIMIZERS",
    "STOP_REASONS",
    "VALID_PAIRS",
    "Activation",
    "Layer",
    "Loss",
    "NormalEquations",
    "Optimizer",
    "Preprocessing",
    "ResultsTable",
    "Saved",
    "Stopping",
    "TrainResult",
    "TrainState",
    "accuracy",
    "adam",
    "apply",
    "apply_updates",
    "backward",
    "batch_gradient",
    "bayesian_regularization",
    "check_batch",
    "deltas",
    "disable_compilation_cache",
    "enable_compilation_cache",
    "evaluate",
    "example_loss",
    "flatten_params",
    "forward",
    "get_data",
    "get_optimizer",
    "gnvp",
    "grid",
    "hvp",
    "infer_task",
    "init_params",
    "jvp",
    "jvp_kernel",
    "levenberg_marquardt",
    "load",
    "load_digits",
    "loss",
    "loss_and_gradient",
    "momentum",
    "n_params",
    "normal_equations",
    "one_hot",
    "per_example_grad_norms",
    "per_example_grads",
    "predict",
    "register_activation",
    "register_loss",
    "rprop",
    "save",
    "set_hyperparams",
    "sgd",
    "train",
    "train_epoch",
    "train_many",
    "train_test_split",
    "unflatten_params",
]
