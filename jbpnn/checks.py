"""Every argument check in one place: numbers, integers, thresholds, seeds and keys, arrays.

The API and the command line both call these, so they accept and refuse the same
things (scikit-learn keeps its ``_parameter_constraints`` in one place for the same
reason). Each check raises ``ValueError`` (or ``TypeError`` for a value of the wrong
kind) naming the argument, what it got and what was expected, *before* anything is
traced. Values that are traced JAX arrays (hyperparameters inside the user's own ``jit`` or
``vmap``) pass the number checks unchecked: their values are unknown at trace time.
A concrete JAX array's values are known: they are checked as NumPy's
(:func:`host_value`).

PRNG keys: one kind, ``jax.random.key``. :func:`as_key` turns an int seed into one,
passes a typed key through, and wraps a legacy ``uint32[2]`` key
(``jax.random.PRNGKey``) with ``jax.random.wrap_key_data``; the bits, and so every
shuffle, are the same as with the legacy key.

This module imports only JAX and NumPy.
"""

from __future__ import annotations

import numbers
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "input_ndim",
    "as_key",
    "check_data",
    "check_finite",
    "check_flag",
    "check_int",
    "check_number",
    "check_seed",
    "check_targets",
    "check_threshold",
    "HOST_CHECK_BYTES",
    "INT32_MAX",
    "host_value",
    "is_concrete",
    "scalar_value",
    "keys_from_seeds",
    "weight_sum_limit",
    "on_cpu",
    "to_device",
]

Array = jax.Array


INT32_MAX = 2**31 - 1  # the largest count a compiled program carries (int32)


@overload
def check_int(
    name: str,
    value: Any,
    low: int,
    *,
    allow_none: Literal[False] = False,
    none_means: str = "",
    high: int | None = None,
) -> int: ...


@overload
def check_int(
    name: str,
    value: Any,
    low: int,
    *,
    allow_none: bool,
    none_means: str = "",
    high: int | None = None,
) -> int | None: ...


def check_int(
    name: str,
    value: Any,
    low: int,
    *,
    allow_none: bool = False,
    none_means: str = "",
    high: int | None = None,
) -> int | None:
    """``value`` as a Python int ``>= low`` (and ``<= high``, e.g. :data:`INT32_MAX` for a
    count a compiled program carries), or None when ``allow_none``; bools are refused.

    ``none_means`` says what None does, in the message (e.g. ``"early stopping off"``).
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        none = ""
        if allow_none:
            none = f" or None (None: {none_means})" if none_means else " or None"
        raise ValueError(f"{name} must be an integer >= {low}{none}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return int(value)


def check_flag(name: str, value: Any) -> bool:
    """``value`` as a bool: True or False (NumPy's too). None, 0, 1 and strings are refused:
    ``check_finite=None`` switched the NaN check off, ``"False"`` switched it on."""
    value = scalar_value(value)  # a 0-d bool array (jnp.array(False)) as its bool
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_number(
    name: str,
    value: Any,
    low: float,
    high: float | None = None,
    *,
    integer: bool = False,
) -> None:
    """Check a hyperparameter given as a plain number: finite, ``low <= value < high``.

    A 0-d NumPy array is a number, and so is a concrete 0-d JAX array; a traced one
    passes unchecked (its value is unknown here: data the caller vouches for).
    """
    if isinstance(value, jax.Array):
        if value.ndim:  # e.g. jnp.array([0.1, 0.2]) as one optimizer's lr: a raw error later
            raise ValueError(
                f"{name} must be one number, got an array of shape {value.shape} (one value "
                f"per network: train_many's hparams={{{name!r}: [...]}})"
            )
    value = scalar_value(value)  # sgd(jnp.array(-1.0)) ran gradient ascent unchecked
    if isinstance(value, jax.Array):  # traced: its value is the caller's
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        # a Fraction or Decimal is a numbers.Real NumPy cannot hold: give it as a float
        raise ValueError(f"{name} must be a number (an int or a float), got {value!r}")
    # an int is finite however large (NumPy's isfinite refused one past int64: 2**70 bytes)
    finite = isinstance(value, numbers.Integral) or np.isfinite(value)
    if not finite or value < low or (high is not None and value >= high):
        upper = f" and below {high}" if high is not None else ""
        raise ValueError(f"{name} must be finite, at least {low}{upper}; got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}")


def check_threshold(name: str, value: Any) -> float | None:
    """A stop-rule threshold: a finite number ``>= 0``, or None (the rule is off)."""
    if value is None:
        return None
    value = scalar_value(value)  # np.array(0.1) as 0.1 (the optimizers take it too)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name} must be a non-negative number or None, got {value!r}")
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0 or None, got {value!r}")
    return float(value)


def keys_from_seeds(seeds: np.ndarray) -> Array:
    """``jax.random.key(seed)`` for every seed of a ``uint32`` array (any shape).

    Under JAX's default threefry the key of ``seed`` holds the bits ``[0, seed]``: built
    by NumPy and wrapped as it is, no program is compiled (``jax.random.key`` compiles
    one) and no separate copy is made (a ``jax.device_put`` first cost 4x the time: 96
    against 24 us for one key).
    """
    # jax.config's options are attributes set at run time: mypy cannot see them.
    if jax.config.jax_default_prng_impl == "threefry2x32":  # type: ignore[attr-defined]
        data = np.stack([np.zeros_like(seeds), seeds], axis=-1).astype(np.uint32)
        return jax.random.wrap_key_data(data)  # type: ignore[arg-type]  # NumPy works too
    if seeds.ndim == 0:
        return jax.random.key(int(seeds))
    return jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))


def as_key(key: Any, name: str = "key") -> Array:
    """A typed ``jax.random.key`` from an int seed, a typed key or a legacy ``uint32[2]`` key.

    ``None`` means seed 0 (runs are reproducible by default).

    Raises:
        ValueError: a seed outside ``0 .. 2**32 - 1``, or an array of the wrong shape.
        TypeError: anything else (a string, a float, ...).
    """
    if key is None:
        key = 0
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if not 0 <= int(key) < 2**32:
            raise ValueError(f"{name}: a seed must lie in 0 .. 2**32 - 1, got {key!r}")
        return keys_from_seeds(np.asarray(int(key), np.uint32))
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{name} must be ONE jax.random key, got key array shape {key.shape}")
        return key
    if isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32:
        if key.shape != (2,):
            raise ValueError(
                f"{name}: a raw uint32 key must have shape (2,) (jax.random.PRNGKey), "
                f"got shape {key.shape}"
            )
        return jax.random.wrap_key_data(jnp.asarray(key))
    raise TypeError(
        f"{name} must be an int seed or a jax.random.key, got {type(key).__name__} {key!r}"
    )


def host_or_device(x: Any, dtype: Any = None) -> Any:
    """``x`` as an array of ``dtype`` where it is: a host value (Python number, NumPy array)
    as a NumPy array, a JAX array cast on its device (tracers too).

    For the arguments of a compiled program, such as a training state's constants: the
    call copies its NumPy arguments to the device together (about 0.2 us each), where a
    ``jax.device_put`` per array costs about 20 us.
    """
    if isinstance(x, jax.Array):
        return to_device(x, dtype)
    return np.asarray(x, None if dtype is None else np.dtype(dtype))


def input_ndim(name: str, a: Any) -> int:
    """``np.ndim(a)``; a ragged sequence (rows of different lengths) is a ``ValueError``
    naming ``name`` (NumPy's own message points inside NumPy)."""
    try:
        return int(np.ndim(a))
    except (ValueError, TypeError):
        raise ValueError(
            f"{name} must be an array of numbers with the same length in every row, got a "
            f"ragged {type(a).__name__}"
        ) from None


def to_device(x: Any, dtype: Any = None) -> Array:
    """``x`` as a JAX array of ``dtype``, without compiling an XLA program when it can.

    Host values (Python numbers, NumPy arrays) are converted by NumPy and moved with
    ``jax.device_put`` (``jnp.asarray`` compiles a small program per new shape);
    JAX arrays are cast on their device only if the dtype differs; tracers go
    through ``jnp.asarray``.
    """
    if isinstance(x, jax.Array):
        if not is_concrete(x):
            return jnp.asarray(x, dtype)
        return x if dtype is None or x.dtype == jnp.dtype(dtype) else x.astype(dtype)
    return jax.device_put(np.asarray(x, None if dtype is None else np.dtype(dtype)))


def _host_or_device(a: Any, dtype: Any, name: str) -> Any:
    """A JAX array (or tracer) cast on its device; anything else a NumPy array on the host.
    Complex values are refused: the cast would drop their imaginary parts."""
    try:
        complex_values = np.iscomplexobj(a)
    except (TypeError, ValueError):  # ragged rows: the conversion below says so
        complex_values = False
    if complex_values:
        raise ValueError(
            f"{name} has complex values ({np.asarray(a).dtype.name}); a network takes real "
            "numbers: give the real part, the magnitude, or both as separate features"
        )
    if isinstance(a, jax.Array):
        return a if a.dtype == dtype else a.astype(dtype)
    if isinstance(a, np.ma.MaskedArray) and np.ma.count_masked(a):  # np.asarray drops the mask
        raise ValueError(
            f"{name} is a masked array with {np.ma.count_masked(a)} masked values, which "
            f"would be used as data: fill them ({name}.filled(value)) or drop their rows"
        )
    kind = getattr(getattr(a, "dtype", None), "kind", "")
    if kind in ("M", "m"):  # NumPy casts dates and durations to their raw counts
        raise ValueError(
            f"{name} holds dates or durations ({a.dtype}); a network takes numbers: convert "
            "them first, e.g. (t - t.min()) / np.timedelta64(1, 'D') for days"
        )
    try:
        with np.errstate(over="ignore"):  # an overflow is reported by check_data, by name
            out = np.asarray(a, dtype=np.dtype(dtype))  # host data stays on the host
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} must be an array of numbers (the same length in every row), got "
            f"{type(a).__name__}: {error}"
        ) from None
    return out


def _finite_in_dtype(name: str, a: Any, raw: Any, dtype: Any) -> None:
    """NaN/inf in ``a``: say whether the data had them, or the cast to ``dtype`` made them."""
    try:
        _require_finite(name, a)
    except ValueError:
        # a JAX array is copied only here, to say which: one on several processes cannot be
        readable = not isinstance(raw, jax.Array) or raw.is_fully_addressable
        host = np.asarray(raw) if readable else None
        if host is not None and np.issubdtype(host.dtype, np.number) and np.isfinite(host).all():
            big, kind = float(np.max(np.abs(host))), np.dtype(dtype).name
            top = float(jnp.finfo(dtype).max)
            raise ValueError(
                f"{name} has values too large for {kind} (largest |value| {big:.3g}; {kind} "
                f"holds up to {top:.3g}): scale the data, or use a wider dtype"
            ) from None
        raise


def check_finite_in(name: str, raw: Any, dtype: Any) -> None:
    """``raw`` (concrete) has no NaN or inf once cast to ``dtype``: the data's own NaN/inf
    are named as such, finite values that overflow ``dtype`` (1e39 in float32) as too
    large for it."""
    if isinstance(raw, jax.Array):
        if jnp.issubdtype(raw.dtype, jnp.number):
            _finite_in_dtype(name, raw.astype(dtype), raw, dtype)
        return
    host = np.asarray(raw)
    if host.dtype.kind in "bO":  # numbers held as objects (or bools): as float64 if they are
        try:
            host = host.astype(np.float64)
        except (TypeError, ValueError):
            return  # text among them: the shape and type checks name it
    if host.dtype.kind in "iuf":  # text, complex: the shape and type checks name them
        with np.errstate(over="ignore", invalid="ignore"):
            _finite_in_dtype(name, host.astype(dtype), host, dtype)


def check_data(
    X: Any,
    Y: Any = None,
    sample_weight: Any = None,
    *,
    n_in: int,
    n_out: int,
    dtype: Any,
    check_finite: bool = True,
    names: tuple[str, str] = ("X", "Y"),
    min_rows: int = 0,
    weight_name: str = "sample_weight",
    host: bool = False,
) -> tuple[Array, Array | None, Array | None]:
    """Validate a batch for a network of ``n_in`` inputs and ``n_out`` outputs; cast it.

    Raises ``ValueError`` naming the argument (``names``, e.g. ``("X_val", "Y_val")``)
    and the sizes: a wrong feature count (the article's "Your data length is %d,
    but our input needs %d"), a wrong target width, mismatched batch sizes, strings
    or ragged rows, sample weights of the wrong shape or values (see
    :func:`check_weights`; ``weight_name`` names them), and (with ``check_finite``)
    NaN or inf values with the index of the first.

    Returns:
        ``(X, Y, sample_weight)`` as JAX arrays of ``dtype`` (``Y`` and
        ``sample_weight`` may be None); with ``host``, host data (NumPy, lists) as NumPy
        arrays, for a compiled call that copies its NumPy arguments itself (about 0.2 us
        an array, where ``jax.device_put`` costs about 20 us).
    """
    check_finite = check_flag("check_finite", check_finite)
    move = (lambda a: a) if host else to_device
    xn, yn = names
    raw_x, raw_y = X, Y
    X = _host_or_device(X, dtype, xn)
    if X.ndim != 2:
        raise ValueError(
            f"{xn} must have shape (batch, {n_in}), got shape {X.shape}; "
            "for one example use forward(params, x) or X[None, :]"
        )
    if X.shape[1] != n_in:
        raise ValueError(
            f"Your data length is {X.shape[1]}, but our input needs {n_in} "
            f"({xn} has shape {X.shape})"
        )
    if X.shape[0] < min_rows:
        raise ValueError(f"{xn} has {X.shape[0]} examples; this needs at least {min_rows}")
    if check_finite:
        _finite_in_dtype(xn, X, raw_x, dtype)
    if Y is not None:
        Y = _host_or_device(Y, dtype, yn)
        if Y.ndim != 2:
            raise ValueError(
                f"{yn} must have shape (batch, {n_out}), got shape {Y.shape}; "
                "class labels need one-hot encoding first, e.g. jax.nn.one_hot(labels, "
                f"{n_out})"
            )
        if Y.shape[1] != n_out:
            raise ValueError(
                f"Your target length is {Y.shape[1]}, but our output needs {n_out} "
                f"({yn} has shape {Y.shape})"
            )
        if Y.shape[0] != X.shape[0]:
            raise ValueError(
                f"{xn} has {X.shape[0]} examples but {yn} has {Y.shape[0]}; they must match"
            )
        if check_finite:
            _finite_in_dtype(yn, Y, raw_y, dtype)
        Y = move(Y)
    if sample_weight is not None:
        raw_w = sample_weight
        sample_weight = move(_host_or_device(sample_weight, dtype, weight_name))
        if sample_weight.shape != (X.shape[0],):
            raise ValueError(
                f"{weight_name} must have shape ({X.shape[0]},), got {sample_weight.shape}"
            )
        _weights_in_dtype(weight_name, raw_w, dtype)
        check_weights(weight_name, sample_weight)
    return move(X), Y, sample_weight


def weight_sum_limit(dtype: Any) -> float:
    """The largest sum of sample weights (or count of rows) a weighted mean in ``dtype``
    divides by: ``1 / finfo(dtype).tiny`` (float32 8.5e37, float16 16384). XLA computes
    ``x / sum`` as ``x * (1 / sum)``, and a reciprocal below the smallest normal number
    rounds to 0 on the CPU (flush to zero), and the mean with it."""
    return 1 / float(np.finfo(dtype).tiny)


def _weights_in_dtype(name: str, raw: Any, dtype: Any) -> None:
    """Positive weights that the cast to ``dtype`` turns into 0 or inf, named as such
    (checked after the cast, float16's 1e-30 read "values from 0 to 0, sum 0")."""
    if not is_concrete(raw) or (isinstance(raw, jax.Array) and not raw.is_fully_addressable):
        return
    kind = np.dtype(dtype)
    try:
        a = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        return  # not numbers: check_weights names them
    positive = a[np.isfinite(a) & (a > 0)]
    if not jnp.issubdtype(kind, jnp.floating) or not positive.size:  # bfloat16's kind is "V"
        return
    finfo = jnp.finfo(kind)
    low, high = float(positive.min()), float(positive.max())
    # (a few tiny weights that round to 0 change the mean by as little as they weigh)
    if high > float(finfo.max) or high < float(finfo.smallest_subnormal) / 2:
        to = "inf" if high > float(finfo.max) else "0, every one"
        raise ValueError(
            f"{name} has values from {low:g} to {high:g}, outside what the network's dtype "
            f"{kind.name} holds ({float(finfo.smallest_subnormal):g} to {float(finfo.max):g}): "
            f"they would round to {to}; scale them (only their ratios matter)"
        )


def check_weights(name: str, w: Any) -> None:
    """Refuse sample weights that make a weighted mean meaningless.

    A weighted mean ``sum(s E) / sum(s)`` needs finite weights ``s >= 0`` with a
    positive sum: all zeros (or a zero sum) give 0/0 = NaN, a NaN weight makes the
    mean NaN, and a negative weight turns an error into a reward. Individual zeros
    are fine (those rows count for nothing). Traced arrays pass.

    Raises:
        ValueError: naming ``name`` and the range and sum found.
    """
    if not is_concrete(w):
        return
    if isinstance(w, jax.Array) and not w.is_fully_addressable:  # rows of several processes
        _check_global_weights(name, w)
        return
    a = np.asarray(w, dtype=np.float64)
    if a.size and np.isfinite(a).all() and (a >= 0).all() and a.sum() > 0:
        kind = np.dtype(getattr(w, "dtype", np.float64))
        if kind.kind == "f" and a.sum() > weight_sum_limit(kind):  # the mean's divisor
            raise ValueError(
                f"{name}: the weights sum to {a.sum():g}, more than {kind.name} divides by "
                f"({weight_sum_limit(kind):g}, 1 over its smallest normal number: XLA "
                "divides by the sum as a product with its reciprocal, which rounds to 0 "
                "beyond it, and the loss and gradient with it); scale them down (only their "
                "ratios matter)"
            )
        if kind.kind == "f" and a.max() < np.finfo(kind).tiny:  # subnormal: digits lost
            raise ValueError(
                f"{name}: the largest weight is {a.max():g}, below the smallest normal "
                f"{kind.name} ({float(np.finfo(kind).tiny):g}), where the weighted mean loses "
                "its digits (a run then stops as diverged); scale them up (only their "
                "ratios matter)"
            )
        return
    nan = int(np.isnan(a).sum())
    if not a.size:
        found = "none"
    elif nan:  # np.min would say "from nan to nan"
        rest = a[~np.isnan(a)]
        others = f", the others from {rest.min():g} to {rest.max():g}" if rest.size else ""
        found = f"{nan} NaN value(s){others}"
    else:
        found = f"values from {np.min(a):g} to {np.max(a):g}, sum {a.sum():g}"
    raise ValueError(f"{name} must be finite and >= 0 with a positive sum; got {found}")


@jax.jit
def _global_sum(w: jax.Array) -> jax.Array:
    """The sum of a global array's every row (one program, compiled once per shape)."""
    return jnp.sum(w.astype(jnp.float32))


def _check_global_weights(name: str, w: jax.Array) -> None:
    """:func:`check_weights` of a global array over several processes: each process
    checks the rows it holds, and the positive sum is the whole array's (one small
    program, a collective: every process checks the same arguments at the same point)."""
    a = local_values(w).astype(np.float64)
    if a.size and not (np.isfinite(a).all() and (a >= 0).all()):
        raise ValueError(
            f"{name} must be finite and >= 0 with a positive sum; got values from "
            f"{np.min(a):g} to {np.max(a):g} in this process's rows"
        )
    total = float(_global_sum(w))
    if not total > 0:
        raise ValueError(
            f"{name} must be finite and >= 0 with a positive sum; got sum {total:g} "
            "over every process's rows"
        )


def on_cpu(a: jax.Array) -> bool:
    """Every device holding ``a`` is a CPU (NumPy can then read it in place)."""
    return all(d.platform == "cpu" for d in a.devices())


def host_value(value: Any) -> Any:
    """A JAX array's values as NumPy (a 0-d one as a Python number), or None when they are
    not known here: traced (inside the caller's ``jit``/``vmap``) or on other processes'
    devices. Anything else comes back as given."""
    if not isinstance(value, jax.Array):
        return value
    if not is_concrete(value) or not value.is_fully_addressable:
        return None
    known = np.asarray(value)
    return known.item() if known.ndim == 0 else known


def scalar_value(value: Any) -> Any:
    """One value known here as the Python scalar it holds: a 0-d NumPy array, a NumPy
    scalar or a concrete 0-d JAX array (:func:`host_value`). Anything else comes back as
    given: a tracer, an array of several values, a number, a string."""
    if isinstance(value, jax.Array):
        known = host_value(value) if value.ndim == 0 else None
        return value if known is None else known
    if isinstance(value, (np.ndarray, np.generic)) and np.ndim(value) == 0:
        return value.item()
    return value


def is_concrete(a: Any) -> bool:
    """True unless ``a`` is a tracer (inside the user's ``jit``/``vmap``: values unknown).

    Uses only public API: a tracer has no devices, and asking raises
    ``jax.errors.ConcretizationTypeError``.
    """
    if not isinstance(a, jax.Array):
        return True
    try:
        a.devices()
    except jax.errors.ConcretizationTypeError:
        return False
    return True


def local_values(a: Any) -> np.ndarray:
    """``a`` on the host; for a global array of several processes, this process's shards
    (stacked along the first axis: each process checks the rows it holds)."""
    if isinstance(a, jax.Array) and not a.is_fully_addressable:
        shards = [np.asarray(s.data) for s in a.addressable_shards]
        return np.concatenate(shards) if shards else np.zeros((0,) + a.shape[1:], a.dtype)
    return np.asarray(a)


def check_finite(name: str, a: Any) -> None:
    """Raise ``ValueError`` naming ``name`` and the first index if ``a`` holds NaN or inf.

    Host (NumPy) data, JAX arrays on the CPU (read in place) and arrays of at most
    :data:`HOST_CHECK_BYTES` on an accelerator (copied back: a copy of a few MB takes
    far less than compiling a program) are checked with NumPy, so no XLA program is
    compiled; a larger array on an accelerator with one small program; a traced array
    is skipped.
    """
    if isinstance(a, np.ndarray):
        if np.isfinite(a).all():
            return
    else:
        if not is_concrete(a):
            return
        if _read_on_host(a):
            if np.isfinite(np.asarray(a)).all():
                return
        else:
            with jax.ensure_compile_time_eval():  # a concrete array inside someone's trace
                if bool(_all_finite(a)):
                    return
    bad = np.argwhere(~np.isfinite(local_values(a)))
    first = tuple(int(i) for i in bad[0])
    raise ValueError(
        f"{name} contains {len(bad)} NaN or inf value(s); the first is at index {first}. "
        "Clean the data, or pass check_finite=False to skip this check"
    )


HOST_CHECK_BYTES = 8 * 2**20  # an accelerator's arrays up to this size are checked on the host


def _read_on_host(a: jax.Array) -> bool:
    """Check ``a`` with NumPy: it is this process's, and on the CPU or small."""
    if not a.is_fully_addressable:
        return False
    return on_cpu(a) or a.nbytes <= HOST_CHECK_BYTES


_require_finite = check_finite  # for check_data, whose check_finite flag shadows the name
_all_finite = jax.jit(lambda a: jnp.all(jnp.isfinite(a)))  # one fused program per shape


def check_seed(name: str, value: Any) -> int:
    """``value`` as an int seed that :func:`as_key` accepts (``0 .. 2**32 - 1``).

    The command line checks its ``--seed`` options with this, so it refuses exactly
    the seeds the API refuses, with the same message; unlike :func:`as_key` it
    creates no key, so JAX does not start (``jbpnn sweep`` sets up its devices first).

    Raises:
        ValueError: a seed out of range.
        TypeError: not an int (bools included).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int seed, got {type(value).__name__} {value!r}")
    if not 0 <= int(value) < 2**32:  # as_key's range
        raise ValueError(f"{name}: a seed must lie in 0 .. 2**32 - 1, got {value!r}")
    return int(value)


# Losses whose targets are probabilities: one-hot rows (or soft labels), or 0/1 values.
_PROBABILITY_TARGETS = ("cross_entropy", "binary_cross_entropy")


def check_targets(name: str, loss: str, Y: Any, dtype: Any = None) -> None:
    """Refuse targets that ``loss`` cannot learn: the cross-entropies need values in [0, 1].

    A target of -1 (a "negative class" of some other convention) or a standardised
    regression value makes ``-T log O`` unbounded below, and training reports a
    meaningless loss. Other losses accept any finite targets whose row's sum of squares
    ``sum_k T_k^2`` (the squared error's scale, summed before it is halved) the network's
    ``dtype`` holds: 1e20 in float32 gave a loss of inf, and a "diverged" run that never
    moved; so did ten outputs of 100 in float16, each square well inside it. Traced
    arrays pass.

    Raises:
        ValueError: naming ``name``, the loss and the range found.
    """
    if not is_concrete(Y):
        return
    if loss not in _PROBABILITY_TARGETS:
        if dtype is not None and jnp.issubdtype(dtype, jnp.floating):  # bfloat16 too
            a = local_values(Y)
            top = float(jnp.finfo(dtype).max)
            rows = a.reshape(a.shape[0], -1) if a.ndim else a.reshape(1, 1)
            with np.errstate(over="ignore"):  # a float64 square of 1e200 is inf: too large
                squares = np.sum(np.square(rows, dtype=np.float64), axis=1)
            worst = float(np.max(squares)) if squares.size else 0.0
            if worst > top:
                largest = float(np.max(np.abs(a)))
                raise ValueError(
                    f"{name} has values of magnitude up to {largest:.3g} and a row whose "
                    f"sum of squares (the squared error's) is {worst:.3g}, which overflows the "
                    f"network's dtype {np.dtype(dtype).name} (largest {top:.3g}); scale them "
                    "first (e.g. jbpnn.preprocessing or sklearn.preprocessing.StandardScaler)"
                )
        return
    a = local_values(Y)
    if a.size == 0:
        return
    lo, hi = float(np.min(a)), float(np.max(a))
    if lo < 0 or hi > 1:
        raise ValueError(
            f"{name}: {loss} needs targets in [0, 1] (one-hot rows or probabilities), got "
            f"values from {lo:g} to {hi:g}; for class labels use one_hot(labels, n_classes), "
            "for regression the mse loss"
        )
