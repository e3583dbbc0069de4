"""jbpnn: back-propagation neural networks in JAX, with gradients derived by hand.

The maths follows the article in ``shared/ARTICLE.md``: sigmoid units, the
error ``E = 1/2 sum (T - O)^2``, output delta ``O(1-O)(T-O)``, hidden delta
``O(1-O) sum_k Err_k w_jk`` and updates ``w += lr Err O_prev``.

Modules, one job each:

- :mod:`jbpnn.activations`  name -> (function, derivative from the output)
- :mod:`jbpnn.losses`       name -> (error, output delta); the valid pairs
- :mod:`jbpnn.params`       ``Layer``, the ``MLP`` pytree, ``init_params``
- :mod:`jbpnn.network`      ``forward``, ``backward``, ``deltas`` and batched forms
"""

from jbpnn.activations import ACTIVATIONS, Activation
from jbpnn.losses import LOSSES, VALID_PAIRS, Loss
from jbpnn.network import (
    backward,
    batch_gradient,
    check_batch,
    deltas,
    example_loss,
    forward,
    loss,
    loss_and_gradient,
    per_example_grads,
    predict,
)
from jbpnn.params import INITS, MLP, Layer, init_params

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "LOSSES",
    "MLP",
    "VALID_PAIRS",
    "Activation",
    "Layer",
    "Loss",
    "backward",
    "batch_gradient",
    "check_batch",
    "deltas",
    "example_loss",
    "forward",
    "init_params",
    "loss",
    "loss_and_gradient",
    "per_example_grads",
    "predict",
]
