"""The article's API: ``BPNN`` and ``get_data``, for readers of the article.

The article (ARTICLE.md section 3) teaches with a small class::

    net = BPNN(5, 1)                  # 5 inputs, 10 hidden sigmoid units, 1 output
    net.train(data)                   # data = [[x, y], ...], online, 1000 epochs
    print(net.fit(test_inputs))       # "fit" is the article's name for predicting

This module gives that API on top of jbpnn's pure functions; it holds no maths
of its own. One call of :meth:`BPNN.backpropagate` is

    grads = network.backward(params, cache, T)          # dE/dw = -Err O_prev
    updates = optimizers.momentum(lr, m, "article")     # w += lr change + m prev_change,
                                                        # change = -dE/dw = Err O_prev

and :meth:`BPNN.train` runs that same step over every example of every epoch
with the library's one training loop (:func:`jbpnn.training.train`, online,
in order, resuming the object's :class:`jbpnn.training.TrainState`), so it
equals calling ``update`` and ``backpropagate`` on each example in order, only
much faster.

Unlike the article's code (ARTICLE.md section 4): the sigmoid is the logistic
sigmoid and its derivative ``O(1 - O)`` matches it; every hidden and output
unit has a bias that reaches the forward pass and is trained; the weights and
biases start uniform in ``[-0.2, 0.2]`` like the article's.

Kept from the article: the momentum rule (``change`` stored without the
learning rate, bug 4, is what "article" momentum means), the error that
``backpropagate`` returns and ``train`` prints, and the length messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jbpnn.network import backward, check_batch, forward, predict
from jbpnn.optimizers import MomentumState, apply_updates, momentum, set_hyperparams
from jbpnn.params import MLP, init_params
from jbpnn.training import TrainState, init_state, train, train_config

__all__ = ["BPNN", "article_gradient", "get_data"]

Array = jax.Array

_INPUT_MESSAGE = "Your data length is %d, but our input needs %d"  # the article's words
_TARGET_MESSAGE = "Your target length is %d, but our output needs %d"


# ---------------------------------------------------------------- the one step
def _rms_error(o: Array, t: Array) -> Array:
    """The article's per-example error: ``sqrt(mean_k (T_k - O_k)^2)``."""
    return jnp.sqrt(jnp.mean((t - o) ** 2))


def article_gradient(
    params: MLP, X: Array, Y: Array, sample_weight: Array | None = None
) -> tuple[Array, MLP]:
    """A ``grad_fn`` for :func:`jbpnn.training.train`: one example's hand-derived gradient.

    For online batches of ONE example (``batch_size=1``): the gradient is
    :func:`jbpnn.network.backward`'s, and the "loss" it reports is the article's
    per-example error ``sqrt(mean_k (T_k - O_k)^2)`` on the outputs before the
    update, so the epoch loss times the number of examples is the article's
    epoch error.
    """
    if X.shape[0] != 1:  # static: known while tracing
        raise ValueError(
            f"article_gradient is the gradient of ONE example (train with batch_size=1), "
            f"got a batch of {X.shape[0]}; its other rows would be dropped"
        )
    x, y = X[0], Y[0]
    out, cache = forward(params, x)
    return _rms_error(out, y), backward(params, cache, y)


@jax.jit
def _backpropagate_step(params, state, cache, y):
    grads = backward(params, cache, y)
    kind = momentum(0.1, 0.1, variant="article").kind  # the values come from the state
    updates, state = kind.update(grads, state, params)
    return apply_updates(params, updates), state, _rms_error(cache[-1], y)


_forward_jit = jax.jit(forward)


# ---------------------------------------------------------------- the facade
class BPNN:
    """The article's network: ``n_in`` inputs, one hidden layer, ``n_out`` outputs.

    Sigmoid units throughout, error ``E = 1/2 sum_k (T_k - O_k)^2``, online
    updates with the article's momentum rule::

        w += lr * change + m * prev_change,    change = Err_j * O_i = -dE/dw_ij

    (``change`` is stored without ``lr``, as the article's code does).

    Args:
        n_in: number of inputs.
        n_out: number of outputs.
        n_hidden: number of hidden units.
        lr: learning rate ``l``.
        m: momentum factor.
        seed: seed of the ``jax.random`` key that draws the initial weights.
        dtype: float dtype of the params (default float32; float64 needs
            ``jax.enable_x64``).

    Attributes:
        params: the current :class:`jbpnn.MLP` (sizes ``(n_in, n_hidden, n_out)``);
            usable with every jbpnn function, e.g. :func:`jbpnn.io.save`.
        opt_state: the momentum state (``trace`` holds the previous change).
        state: the :class:`jbpnn.training.TrainState` that every call carries on.
        lr, m: the learning rate and momentum factor the next update uses; setting
            them (``net.lr = 0.05``) changes them from then on, as the article's object
            reads ``self.lr`` at every step.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        n_hidden: int = 10,
        lr: float = 0.1,
        m: float = 0.1,
        seed: int = 0,
        dtype: Any = jnp.float32,
    ):
        for name, value in (("n_in", n_in), ("n_out", n_out), ("n_hidden", n_hidden)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        if not 0 <= int(seed) < 2**32:  # init_params would name its own argument, key
            raise ValueError(f"seed must lie in 0 .. 2**32 - 1, got {seed!r}")
        if np.dtype(dtype) == np.float64 and not jax.config.read("jax_enable_x64"):
            raise ValueError(
                "dtype float64 needs 64-bit JAX (jax.config.update('jax_enable_x64', True), "
                "or jax.enable_x64 around the work); without it the params would be float32"
            )
        self._optimizer = momentum(lr, m, variant="article")  # checks 0 <= lr, 0 <= m < 1
        params = init_params(int(seed), (n_in, n_hidden, n_out), "sigmoid", "mse", "article", dtype)
        config = train_config(1, batch_size=1)
        self.state: TrainState = init_state(params, self._optimizer, config)
        self._cache: tuple[Array, ...] | None = None

    @property
    def lr(self) -> float:
        """The learning rate the next update uses."""
        return float(self._optimizer.hyperparams["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        self._set(lr=value)

    @property
    def m(self) -> float:
        """The momentum factor the next update uses."""
        return float(self._optimizer.hyperparams["m"])

    @m.setter
    def m(self, value: float) -> None:
        self._set(m=value)

    def _set(self, **value: float) -> None:
        """New ``lr`` or ``m`` from the next update on: checked as at construction, and
        put in the optimizer state that every update reads."""
        hp = {**self._optimizer.hyperparams, **value}
        self._optimizer = momentum(**hp, variant="article")  # checks 0 <= lr, 0 <= m < 1
        opt_state = set_hyperparams(self.state.opt_state, **value)
        self.state = self.state._replace(opt_state=opt_state)

    @property
    def params(self) -> MLP:
        """The current network (sizes ``(n_in, n_hidden, n_out)``)."""
        return self.state.params

    @property
    def opt_state(self) -> MomentumState:
        """The momentum state (``trace`` holds the previous change)."""
        return self.state.opt_state

    @property
    def n_in(self) -> int:
        return self.params.n_in

    @property
    def n_out(self) -> int:
        return self.params.n_out

    def __repr__(self) -> str:
        n_in, n_hidden, n_out = self.params.sizes
        return f"BPNN(n_in={n_in}, n_out={n_out}, n_hidden={n_hidden}, lr={self.lr}, m={self.m})"

    # -- one example -----------------------------------------------------
    def update(self, inputs: Sequence[float]) -> list[float]:
        """Forward pass of one example; remembers it for :meth:`backpropagate`.

        Args:
            inputs: ``n_in`` numbers.

        Returns:
            The ``n_out`` outputs, as a list of floats.

        Raises:
            ValueError: "Your data length is %d, but our input needs %d".
        """
        x = self._row(inputs, self.n_in, _INPUT_MESSAGE)
        out, self._cache = _forward_jit(self.params, x)
        return np.asarray(out).tolist()

    def backpropagate(self, targets: Sequence[float]) -> float:
        """One update of every weight and bias from the last :meth:`update`'s example.

        Args:
            targets: the example's ``n_out`` targets ``T``.

        Returns:
            The example's error as the article's code computes it, the root mean
            square over the outputs, ``sqrt(mean_k (T_k - O_k)^2)``, with ``O`` the
            outputs of the forward pass (before this update).

        Raises:
            ValueError: "Your target length is %d, but our output needs %d" (the
                article reuses its input message here), or no :meth:`update` first.
        """
        if self._cache is None:
            raise ValueError("call update(inputs) before backpropagate(targets)")
        y = self._row(targets, self.n_out, _TARGET_MESSAGE)
        params, opt_state, err = _backpropagate_step(self.params, self.opt_state, self._cache, y)
        self.state = self.state._replace(params=params, opt_state=opt_state)
        self._cache = None  # the article's outputs are stale once the weights moved
        return float(err)

    # -- many examples ---------------------------------------------------
    def train(
        self, data: Sequence[Sequence[Sequence[float]]], epochs: int = 1000, verbose: bool = True
    ) -> np.ndarray:
        """Online training: ``update(x)`` then ``backpropagate(y)`` for each pair, in order.

        The whole run is the library's compiled loop (:func:`jbpnn.training.train`
        with ``batch_size=1``, no shuffling and :func:`article_gradient`); the
        momentum state carries over from earlier calls, as in the article's object.

        Args:
            data: ``[[x, y], ...]`` with ``len(x) == n_in`` and ``len(y) == n_out``.
            epochs: passes over ``data``.
            verbose: print the best epoch error as the article does (``Err: ...``).

        Returns:
            The article's epoch errors, shape ``(epochs,)``: each the sum over the
            epoch's examples of their RMS errors (see :meth:`backpropagate`).

        Raises:
            ValueError: a pair of the wrong shape or length (the message names
                the example), no data, or ``epochs < 1``.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        X, Y = self._pairs(data)
        result = train(
            self.state,
            X,
            Y,
            optimizer=self._optimizer,
            epochs=int(epochs),
            batch_size=1,
            shuffle=False,
            grad_fn=article_gradient,
            check_finite=False,  # checked by _pairs
            # the article's loop has no divergence guard: update/backpropagate in order
            max_loss_growth=None,
            max_abs_param=None,
        )
        assert result.state is not None  # train always returns its final state
        self.state = result.state
        self._cache = None
        errors = result.history["loss"] * len(X)  # mean RMS error per example -> the sum
        if verbose:
            print(f"Err: {float(errors.min())}")
        return errors

    def predict(self, xs: ArrayLike | Sequence[Any]) -> np.ndarray:
        """Outputs for many inputs, shape ``(len(xs), n_out)``; does not change the net."""
        rows = [self._row(x, self.n_in, _INPUT_MESSAGE, i) for i, x in enumerate(_rows(xs))]
        if not rows:
            return np.zeros((0, self.n_out), np.dtype(self.params.dtype))
        return np.asarray(predict(self.params, np.stack(rows)))

    def fit(self, xs: ArrayLike | Sequence[Any]) -> list[list[float]]:
        """The article's name for predicting: ``[update(x) for x in xs]``, as lists.

        Unlike the article's ``fit`` (which calls ``update``), it leaves nothing
        to :meth:`backpropagate`.
        """
        return self.predict(xs).tolist()

    # -- input checks (before anything is traced) -------------------------
    def _row(
        self, values: Any, expected: int, message: str, index: int | None = None
    ) -> np.ndarray:
        where = "" if index is None else f" (example {index})"
        flat = f"expected a flat list of {expected} numbers{where}"
        try:
            kind = np.asarray(values).dtype.kind  # None among numbers: an object array
            wide = np.asarray(values, dtype=np.float64)  # the values as given
        except (TypeError, ValueError):
            raise ValueError(f"{flat}, got {values!r}") from None
        if kind not in "biuf" and wide.ndim:  # None or text read as NaN or a number
            raise ValueError(f"{flat}, got {values!r}")
        if wide.ndim != 1:
            number = not wide.ndim and kind in "biuf"
            one = f" (a single number is written as a list: [{values!r}])" if number else ""
            raise ValueError(f"{flat}, got shape {wide.shape}: {values!r}{one}")
        if wide.shape[0] != expected:
            raise ValueError(message % (wide.shape[0], expected) + where)
        if not np.isfinite(wide).all():  # as train and predict refuse them
            raise ValueError(f"expected finite numbers{where}, got {values!r} (NaN or inf)")
        dtype = np.dtype(self.params.dtype)
        top = float(np.finfo(dtype).max)
        if np.max(np.abs(wide)) > top:  # as predict names it: too large, not NaN
            raise ValueError(
                f"expected numbers{where} that {dtype.name} holds (up to {top:.3g}), got "
                f"{values!r}: scale them"
            )
        return wide.astype(dtype)

    def _pairs(self, data: Any) -> tuple[Array, Array]:
        xs, ys = [], []
        for i, pair in enumerate(_rows(data)):
            try:
                x, y = pair
            except (TypeError, ValueError):
                raise ValueError(f"example {i}: expected an [x, y] pair, got {pair!r}") from None
            xs.append(self._row(x, self.n_in, _INPUT_MESSAGE, i))
            ys.append(self._row(y, self.n_out, _TARGET_MESSAGE, i))
        if not xs:
            raise ValueError("train() needs at least one [x, y] pair; got no data")
        X, Y, _ = check_batch(self.params, np.stack(xs), np.stack(ys))  # NaN/inf check
        return X, Y


def _rows(data: Any) -> list[Any]:
    try:
        return list(data)
    except TypeError:
        raise ValueError(f"expected a list of examples, got {type(data).__name__}") from None


# ---------------------------------------------------------------- getData
def get_data(
    m: int, n: int, c: int | None = None, seed: int = 0, same_value: bool = False
) -> list[Any]:
    """Random data, as the article's ``getData(m, n, c=None)`` returns it.

    Args:
        m: number of rows.
        n: features per row, each uniform in ``[0, 2)``.
        c: when given, each row also gets a label drawn uniformly from the
            integers ``0..c`` inclusive (Python's ``random.randint(0, c)``, so
            ``c + 1`` classes).
        seed: seed of the NumPy generator.
        same_value: False (default): the ``n`` features are drawn independently.
            True reproduces the article's code exactly, whose
            ``[random.uniform(0.0, 2.0)] * n`` repeats ONE draw ``n`` times per row.

    Returns:
        With ``c``: ``[[x, [label]], ...]``, ready for :meth:`BPNN.train` (with
        ``n_out=1``); without: ``[x, ...]``, ready for :meth:`BPNN.fit`. ``x`` is
        a list of ``n`` floats, ``label`` an int.
    """
    for name, value in (("m", m), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if c is not None and (isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0):
        raise ValueError(f"c must be None or a non-negative integer, got {c!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    if same_value:
        X = np.repeat(rng.uniform(0.0, 2.0, size=(m, 1)), n, axis=1)
    else:
        X = rng.uniform(0.0, 2.0, size=(m, n))
    rows = X.tolist()
    if c is None:
        return rows
    labels = rng.integers(0, c, size=m, endpoint=True).tolist()
    return [[x, [label]] for x, label in zip(rows, labels)]
