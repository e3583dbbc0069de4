"""The benchmark's contenders: one training problem, run by each implementation.

Used by ``experiments/bench.py`` and ``experiments/gpu_check.py``; not a script.

A :class:`Problem` fixes everything that decides the arithmetic: the data, the
initial weights, the minibatch order of every epoch (jbpnn's own, see
:func:`jbpnn_orders`), the loss, the learning rate and the momentum. Each
``run_*`` function trains it and returns a :class:`Result` with its epoch times
and epoch losses, so that contenders doing the same maths can be checked to agree.

Conventions shared by every contender (the maths of ``jbpnn.train``):

- loss ``"mse"``: sigmoid units everywhere, ``E = 1/2 sum_k (T_k - O_k)^2`` per
  example, the batch loss and gradient are means over the batch;
- the last partial batch is simply shorter (jbpnn pads it with zero-weight rows,
  which gives the same mean);
- classical momentum ``v = m v - lr g; w += v`` (jbpnn ``momentum(lr, m)``).
  ``torch.optim.SGD(momentum=m)`` keeps ``b = m b + g; w -= lr b``, the same rule
  with ``v = -lr b`` when ``lr`` is constant; scikit-learn's ``SGDOptimizer``
  (``nesterovs_momentum=False``) is ``v = m v - lr g`` literally;
- the epoch loss is the mean over the epoch's examples of each batch's loss
  measured before that batch's update (as jbpnn and scikit-learn report it).

scikit-learn's ``MLPClassifier`` cannot train a squared error: for several
classes it has a softmax output and the log-loss. It therefore runs the
problem with loss ``"cross_entropy"`` (sigmoid hidden units, softmax output,
``E = -sum_k T_k log O_k``), which jbpnn and the NumPy contender can run too, so
that scikit-learn is still checked to do the same work.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Layers = list[tuple[np.ndarray, np.ndarray]]
GradFn = Callable[..., Any]  # train's grad_fn: (params, X, Y, sample_weight) -> (loss, grads)


# ---------------------------------------------------------------- the problem
@dataclass
class Problem:
    """One training run, identical for every contender.

    Attributes:
        name: a label for tables.
        layers: initial ``[(w, b), ...]``, ``w`` of shape ``(n_in, n_out)``, float32.
        X: inputs, shape ``(n, n_in)``, float32.
        Y: one-hot targets, shape ``(n, n_out)``, float32.
        batch_size: examples per update (1: online).
        epochs: passes over the data.
        lr: learning rate.
        m: momentum (classical).
        seed: seed of jbpnn's minibatch order (``train(key=seed)``).
        loss: ``"mse"`` (sigmoid output) or ``"cross_entropy"`` (softmax output).
        orders: the example order of every epoch, ``epochs`` arrays of shape ``(n,)``.
    """

    name: str
    layers: Layers
    X: np.ndarray
    Y: np.ndarray
    batch_size: int
    epochs: int
    lr: float
    m: float
    seed: int = 0
    loss: str = "mse"
    orders: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.loss not in ("mse", "cross_entropy"):
            raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {self.loss!r}")
        if not self.orders:
            self.orders = jbpnn_orders(self.seed, len(self.X), self.batch_size, self.epochs)

    @property
    def n(self) -> int:
        return len(self.X)

    @property
    def n_params(self) -> int:
        return sum(w.size + b.size for w, b in self.layers)

    def with_loss(self, loss: str) -> Problem:
        """The same problem (data, weights, order) with another loss."""
        return Problem(**{**self.__dict__, "loss": loss})

    def batches(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """This epoch's minibatches ``(X_b, Y_b)``, in order; the last may be shorter."""
        order = self.orders[epoch]
        X, Y = self.X[order], self.Y[order]
        for start in range(0, self.n, self.batch_size):
            yield X[start : start + self.batch_size], Y[start : start + self.batch_size]


def jbpnn_orders(seed: int, n: int, batch_size: int, epochs: int) -> list[np.ndarray]:
    """The example order of every epoch of ``jbpnn.train(..., batch_size, key=seed)``.

    ``train`` shuffles by default when ``1 < batch_size < n``, epoch ``e`` taking
    ``jbpnn.training.shuffle_order(jax.random.fold_in(key, e), n)``; otherwise it keeps
    the data's order. (This mirrors ``jbpnn.training.epoch_batches``; the benchmark's
    loss-agreement check fails if the two ever part.)
    """
    if not 1 < batch_size < n:
        return [np.arange(n) for _ in range(epochs)]
    import jax

    from jbpnn.training import shuffle_order

    key = jax.random.PRNGKey(seed)
    orders = jax.jit(
        jax.vmap(lambda e: shuffle_order(jax.random.fold_in(key, e), n)),
    )(np.arange(epochs, dtype=np.int32))
    return list(np.asarray(orders))


def glorot_layers(sizes: tuple[int, ...], seed: int) -> Layers:
    """Glorot-uniform weights ``+-sqrt(6 / (n_in + n_out))``, zero biases, float32 (NumPy)."""
    rng = np.random.default_rng(seed)
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        limit = np.sqrt(6.0 / (a + b))
        layers.append(
            (rng.uniform(-limit, limit, (a, b)).astype(np.float32), np.zeros(b, np.float32))
        )
    return layers


# ---------------------------------------------------------------- results
@dataclass
class Result:
    """What one contender measured on one problem.

    Attributes:
        contender: its name.
        steady_epoch_s: median seconds per epoch once warm (see ``timing``).
        first_epoch_s: seconds of the first epoch, compilation included.
        n_examples: examples in one timed epoch (``samples/s = n_examples / steady_epoch_s``).
        losses: the epoch losses.
        layers: the final weights, NumPy.
        timing: how the times were taken.
        note: anything that differs from the problem (e.g. scikit-learn's loss).
        raw_times: every measured time, seconds.
    """

    contender: str
    steady_epoch_s: float
    first_epoch_s: float
    n_examples: int
    losses: list[float]
    layers: Layers
    timing: str
    note: str = ""
    raw_times: list[float] = field(default_factory=list)
    best_epoch_s: float | None = None  # the fastest warm epoch

    @property
    def samples_per_s(self) -> float:
        return self.n_examples / self.steady_epoch_s

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1]) if self.losses else float("nan")


def per_epoch_result(
    name: str, problem: Problem, times: list[float], losses: list[float], layers: Layers, **kw: Any
) -> Result:
    """A :class:`Result` from one timing per epoch: first epoch apart, median of the rest."""
    steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
    return Result(
        name,
        steady,
        times[0],
        problem.n,
        [float(v) for v in losses],
        layers,
        timing=kw.pop("timing", f"median of epochs 2..{len(times)}, each timed"),
        raw_times=list(times),
        best_epoch_s=min(times[1:]) if len(times) > 1 else times[0],
        **kw,
    )


# ---------------------------------------------------------------- NumPy maths, shared
def _sigmoid(net: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-net) -> inf for net << 0 gives O = 0, as it should
        return 1.0 / (1.0 + np.exp(-net))


def _softmax(net: np.ndarray) -> np.ndarray:
    z = np.exp(net - net.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def numpy_forward(layers: Layers, X: np.ndarray, loss: str = "mse") -> list[np.ndarray]:
    """Every layer's outputs ``[X, O_1, ..., O_L]`` for a batch (sigmoid; softmax output for CE)."""
    outs = [X]
    for i, (w, b) in enumerate(layers):
        net = outs[-1] @ w + b  # net_j = sum_i w_ij O_i + theta_j
        last = i == len(layers) - 1
        outs.append(_softmax(net) if last and loss == "cross_entropy" else _sigmoid(net))
    return outs


def numpy_accuracy(layers: Layers, X: np.ndarray, Y: np.ndarray) -> float:
    """Fraction of rows whose largest output is the target's class."""
    out = numpy_forward(layers, X)[-1]
    return float(np.mean(np.argmax(out, axis=1) == np.argmax(Y, axis=1)))


# ---------------------------------------------------------------- contenders
def run_numpy(problem: Problem) -> Result:
    """Vectorised NumPy, backprop written by hand (the article's formulas over a batch)."""
    layers = [(w.copy(), b.copy()) for w, b in problem.layers]
    vel = [(np.zeros_like(w), np.zeros_like(b)) for w, b in layers]
    lr, m, ce = np.float32(problem.lr), np.float32(problem.m), problem.loss == "cross_entropy"
    times, losses = [], []
    for epoch in range(problem.epochs):
        start = time.perf_counter()
        total = 0.0
        for xb, yb in problem.batches(epoch):
            k = len(xb)
            outs = numpy_forward(layers, xb, problem.loss)
            o = outs[-1]
            if ce:
                total += -np.sum(yb * np.log(np.maximum(o, np.finfo(o.dtype).tiny)))
                err = yb - o  # Err_k = T_k - O_k (softmax + log-loss)
            else:
                total += 0.5 * np.sum((yb - o) ** 2)
                err = o * (1 - o) * (yb - o)  # Err_k = O_k (1 - O_k) (T_k - O_k)
            for l in range(len(layers) - 1, -1, -1):  # noqa: E741
                w, b = layers[l]
                gw = -(outs[l].T @ err) / k  # dE/dw_ij = -O_i Err_j, batch mean
                gb = -err.sum(axis=0) / k
                if l > 0:  # Err_j = O_j (1 - O_j) sum_k Err_k w_jk, with w before the update
                    err = outs[l] * (1 - outs[l]) * (err @ w.T)
                vw, vb = vel[l]
                vw *= m
                vw -= lr * gw  # v = m v - lr g
                vb *= m
                vb -= lr * gb
                w += vw  # w += v
                b += vb
        times.append(time.perf_counter() - start)
        losses.append(total / problem.n)
    return per_epoch_result("numpy (hand backprop)", problem, times, losses, layers)


@functools.cache
def autodiff_grad_fn() -> GradFn:
    """``jax.value_and_grad(jbpnn.network.loss_kernel)``: an autodiff ``grad_fn`` for ``train``.

    Passed as ``train(..., grad_fn=...)``, the seam of :func:`jbpnn.training.train`:
    the same loss and forward pass, the same loop, optimizer and bookkeeping, only
    the gradient differs. ``value_and_grad`` of ``loss_kernel(params, X, Y,
    sample_weight)`` with respect to ``params`` returns ``(mean loss, grads)``,
    ``grads`` an :class:`jbpnn.MLP` of the params' structure, as ``train`` wants.

    ``grad_fn`` is a static argument of train's compiled loop (part of its cache
    key), so it can never silently run the hand-derived gradient; this returns
    ONE function per process so that repeated calls reuse the compiled program.
    """
    import jax

    from jbpnn.network import loss_kernel

    return jax.value_and_grad(loss_kernel)


def jbpnn_params(problem: Problem):
    """The problem's initial weights as a float32 :class:`jbpnn.MLP`."""
    from jbpnn.params import MLP

    L = len(problem.layers)
    if problem.loss == "cross_entropy":
        acts = ("sigmoid",) * (L - 1) + ("softmax",)
    else:
        acts = ("sigmoid",) * L
    return MLP.from_layers(problem.layers, acts, problem.loss, dtype=np.float32)


# A contender of run_jax: its name, and a function giving its train(grad_fn=...) (None:
# jbpnn's hand-derived gradient), called when it runs so that JAX is imported late.
Variant = tuple[str, Callable[[], GradFn | None]]
JBPNN: Variant = ("jbpnn train", lambda: None)
JAX_GRAD: Variant = ("jax.grad loop (same train)", autodiff_grad_fn)


def run_jax(
    problem: Problem,
    variants: Sequence[Variant] = (JBPNN,),
    *,
    repeats: int = 5,
    per_epoch: bool = False,
) -> list[Result]:
    """``jbpnn.train`` with one or more gradients (:data:`JBPNN`, :data:`JAX_GRAD`), interleaved.

    Every variant runs ``repeats`` rounds, the variants taking turns in each round,
    so that a busy moment of a shared machine hits them alike.

    Args:
        variants: ``(name, grad_fn_of)`` pairs; ``grad_fn_of()`` is the ``grad_fn``
            passed to ``train`` (None: the hand-derived default); see
            :func:`autodiff_grad_fn`.
        repeats: rounds. Whole-run timing (``per_epoch=False``, needs ``>= 2``): the
            first call compiles; the steady epoch time is the median over the other
            calls of (call time / epochs); the first-epoch time is (first call -
            (epochs - 1) x steady).
        per_epoch: time every epoch of a call with ``progress_every=1`` (one compiled
            chunk per epoch), for runs whose epochs take seconds; the first epoch of
            the first round includes compiling, every other epoch counts as steady.
    """
    from jbpnn.optimizers import momentum
    from jbpnn.training import train

    params = jbpnn_params(problem)
    # The variants' grad_fn (a static argument of train's compiled loop, part of its
    # cache key) keeps their compiled programs apart; the optimizer is only values.
    grad_fns = {name: grad_fn_of() for name, grad_fn_of in variants}
    rounds: dict[str, list[Any]] = {name: [] for name, _ in variants}
    last: dict[str, Any] = {}
    for _ in range(max(repeats, 1 if per_epoch else 2)):
        for name, _ in variants:
            kwargs = dict(optimizer=momentum(problem.lr, problem.m), epochs=problem.epochs)
            kwargs.update(key=problem.seed, batch_size=problem.batch_size, grad_fn=grad_fns[name])
            stamps = [time.perf_counter()]
            if per_epoch:
                kwargs["progress"] = lambda _, stamps=stamps: stamps.append(time.perf_counter())
                kwargs["progress_every"] = 1
            res = train(params, problem.X, problem.Y, **kwargs)
            stamps.append(time.perf_counter())
            rounds[name].append(list(np.diff(stamps[:-1])) if per_epoch else stamps[1] - stamps[0])
            last[name] = res
    results = []
    for name, _ in variants:
        res, runs = last[name], rounds[name]
        if per_epoch:
            steady_runs = runs[0][1:] + [t for run in runs[1:] for t in run]
            steady, first = statistics.median(steady_runs), runs[0][0]
            best = min(steady_runs)
            timing = (
                f"progress_every=1 (one compiled chunk per epoch), {len(runs)} interleaved "
                f"round(s); median of {len(steady_runs)} warm epochs"
            )
            raw = [t for run in runs for t in run]
        else:
            steady = statistics.median(runs[1:]) / problem.epochs
            best = min(runs[1:]) / problem.epochs
            first = runs[0] - (problem.epochs - 1) * steady
            timing = (
                f"whole {problem.epochs}-epoch train() call; median of {len(runs) - 1} warm "
                "calls (interleaved with the other JAX contender) / epochs; first epoch = "
                "first call - (epochs-1) x steady"
            )
            raw = runs
        results.append(
            Result(
                name,
                steady,
                first,
                problem.n,
                [float(v) for v in res.history["loss"]],
                _np_layers(res.params),
                timing=timing,
                raw_times=raw,
                best_epoch_s=best,
            )
        )
    return results


def run_jbpnn(
    problem: Problem, *, repeats: int = 5, autodiff: bool = False, name: str | None = None
) -> Result:
    """One JAX contender alone: ``jbpnn.train``, or with ``autodiff`` the ``jax.grad`` loop.

    ``repeats <= 1`` times every epoch of one call (see :func:`run_jax`).
    """
    default, grad_fn_of = JAX_GRAD if autodiff else JBPNN
    (result,) = run_jax(
        problem, [(name or default, grad_fn_of)], repeats=repeats, per_epoch=repeats <= 1
    )
    return result


def _np_layers(params) -> Layers:
    return [(np.asarray(l.w), np.asarray(l.b)) for l in params.layers]  # noqa: E741


def torch_available() -> str | None:
    """None when PyTorch imports, else why not."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        return f"PyTorch not installed ({error}); pip install 'jbpnn[bench]'"
    return None


def sklearn_available() -> str | None:
    """None when scikit-learn imports, else why not."""
    try:
        import sklearn  # noqa: F401
    except ImportError as error:
        return f"scikit-learn not installed ({error}); pip install 'jbpnn[bench]'"
    return None


def run_torch(problem: Problem) -> Result:
    """PyTorch eager: ``torch.nn.Linear`` + ``Sigmoid``, autograd, ``torch.optim.SGD(momentum)``."""
    import torch

    layers: list[torch.nn.Module] = []
    for i, (w, b) in enumerate(problem.layers):
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))  # torch keeps (n_out, n_in)
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(problem.layers) - 1 or problem.loss == "mse":
            layers.append(torch.nn.Sigmoid())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=problem.lr, momentum=problem.m)
    X, Y = torch.from_numpy(problem.X), torch.from_numpy(problem.Y)
    times, losses = [], []
    for epoch in range(problem.epochs):
        start = time.perf_counter()
        order = torch.from_numpy(problem.orders[epoch])
        Xe, Ye = X[order], Y[order]
        total = torch.zeros(())
        for s in range(0, problem.n, problem.batch_size):
            xb, yb = Xe[s : s + problem.batch_size], Ye[s : s + problem.batch_size]
            opt.zero_grad()
            out = net(xb)
            if problem.loss == "mse":
                loss = 0.5 * ((yb - out) ** 2).sum(dim=1).mean()
            else:
                loss = -(yb * torch.log_softmax(out, dim=1)).sum(dim=1).mean()
            loss.backward()
            opt.step()
            total += loss.detach() * len(xb)
        losses.append(float(total) / problem.n)
        times.append(time.perf_counter() - start)
    final = [
        (lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy())
        for lin in net
        if isinstance(lin, torch.nn.Linear)
    ]
    note = f"intra-op threads: {torch.get_num_threads()}"
    return per_epoch_result("pytorch eager", problem, times, losses, final, note=note)


def run_sklearn(problem: Problem, threads: int | None = None) -> Result:
    """scikit-learn ``MLPClassifier(solver="sgd")``, one ``partial_fit`` per epoch.

    Always softmax output and log-loss (scikit-learn has no squared-error
    classifier); ``alpha=0`` (no L2), ``nesterovs_momentum=False``, ``shuffle=False``
    with the data given in the problem's order each epoch, and the problem's
    initial weights set in place of scikit-learn's own.

    Args:
        threads: BLAS threads (``threadpoolctl.threadpool_limits``); None leaves
            OpenBLAS's default. On a loaded machine one thread can be much faster.
    """
    from contextlib import nullcontext

    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits  # ships with scikit-learn

    initial = problem.layers

    class FixedInit(MLPClassifier):
        def _initialize(self, y, layer_units, dtype):
            super()._initialize(y, layer_units, dtype)
            self.coefs_ = [w.astype(dtype, copy=True) for w, _ in initial]
            self.intercepts_ = [b.astype(dtype, copy=True) for _, b in initial]

    hidden = tuple(w.shape[1] for w, _ in problem.layers[:-1])
    clf = FixedInit(
        hidden_layer_sizes=hidden,
        activation="logistic",
        solver="sgd",
        alpha=0.0,
        batch_size=problem.batch_size,
        learning_rate="constant",
        learning_rate_init=problem.lr,
        momentum=problem.m,
        nesterovs_momentum=False,
        shuffle=False,
        random_state=0,
    )
    labels = np.argmax(problem.Y, axis=1)
    classes = np.arange(problem.Y.shape[1])
    times, losses = [], []
    with nullcontext() if threads is None else threadpool_limits(threads):
        for epoch in range(problem.epochs):
            order = problem.orders[epoch]
            start = time.perf_counter()
            clf.partial_fit(problem.X[order], labels[order], classes=classes)
            times.append(time.perf_counter() - start)
            losses.append(float(clf.loss_))
    final = [(w.copy(), b.copy()) for w, b in zip(clf.coefs_, clf.intercepts_)]
    return per_epoch_result(
        "scikit-learn MLPClassifier" + ("" if threads is None else f" ({threads} BLAS thread)"),
        problem,
        times,
        losses,
        final,
        note="log-loss with softmax output (no MSE in scikit-learn)",
    )


def run_pure_python(problem: Problem, limit: int | None = None) -> Result:
    """The article-style pure-Python loop (``experiments/pure_python_bpnn.py``), online only.

    Args:
        limit: train on the first ``limit`` examples of each epoch only (pure
            Python takes milliseconds per example); ``n_examples`` is then ``limit``.
    """
    from pure_python_bpnn import PureBPNN

    if problem.batch_size != 1 or problem.loss != "mse":
        raise ValueError("the pure-Python contender trains online (batch_size=1) with mse only")
    n_in, n_out = problem.layers[0][0].shape[0], problem.layers[-1][0].shape[1]
    net = PureBPNN(
        n_in,
        n_out,
        lr=problem.lr,
        m=problem.m,
        momentum="classical",
        layers=[(w.tolist(), b.tolist()) for w, b in problem.layers],
    )
    count = problem.n if limit is None else min(limit, problem.n)
    times, losses = [], []
    for epoch in range(problem.epochs):
        order = problem.orders[epoch][:count]
        xs, ys = problem.X[order].tolist(), problem.Y[order].tolist()
        start = time.perf_counter()
        total = 0.0
        for x, y in zip(xs, ys):
            net.update(x)
            net.backpropagate(y)
            total += net.last_loss
        times.append(time.perf_counter() - start)
        losses.append(total / count)
    layers = [(np.asarray(w, np.float32), np.asarray(b, np.float32)) for w, b in zip(net.w, net.b)]
    result = per_epoch_result("pure Python (article loop)", problem, times, losses, layers)
    result.n_examples = count
    if len(times) == 1:
        result.timing = "one timed pass (no compilation to separate)"
    if count < problem.n:
        result.note = f"first {count} of {problem.n} examples per epoch, float64"
    else:
        result.note = "float64 (Python floats)"
    return result
