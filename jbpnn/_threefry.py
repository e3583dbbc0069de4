"""JAX's threefry-2x32 draws, computed on the host with NumPy, bit for bit.

Why: the first weight draw of a process compiled a program of threefry's 20 unrolled
rounds, 0.3-0.7 s on a 2-core CPU, before any training could start; the same draw in
NumPy takes about half a millisecond for a small network and compiles nothing. Only what
:func:`jbpnn.params._bucketed_draws` needs is here: a key from an integer seed, ``split``
and ``uniform``'s unit draws (float32 or float64), under JAX's partitionable threefry (the
default; ``jax_threefry_partitionable``). ``host_unit_draws`` returns None for anything
else, and the caller draws with JAX. A test compares every value with JAX's own draw.

JAX's definitions (``jax/_src/random``): a key from a seed is ``[seed >> 32, seed &
0xFFFFFFFF]``; ``split(key, n)`` and ``random_bits(key, 32, (n,))`` hash the counters
``(0, i)`` of a 64-bit iota with the key: ``split`` keeps both words of the hash, the bits
are their XOR (64-bit bits: the first word shifted up, OR the second); ``uniform`` puts
the top mantissa bits under the exponent of 1.0, subtracts 1, scales and shifts, and
takes the maximum with the lower bound.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["host_unit_draws"]

_U32 = np.uint32
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(
    k1: np.ndarray, k2: np.ndarray, x1: np.ndarray, x2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The Threefry-2x32 hash (20 rounds) of the counter pairs ``(x1, x2)`` under the keys
    ``(k1, k2)``, as JAX's ``threefry2x32_p`` (uint32 arithmetic wraps around; the
    arguments broadcast against each other)."""
    k1, k2 = np.asarray(k1, _U32), np.asarray(k2, _U32)
    ks = (k1, k2, k1 ^ k2 ^ _U32(0x1BD11BDA))
    a = np.asarray(x1, _U32) + ks[0]  # the two words, updated in place below
    b = np.asarray(x2, _U32) + ks[1]
    a, b = np.broadcast_arrays(a, b)
    a, b, t = a.copy(), b.copy(), np.empty(a.shape, _U32)
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            a += b  # x0 = x0 + x1
            np.left_shift(b, _U32(r), out=t)  # x1 = rotl(x1, r) ^ x0
            b >>= _U32(32 - r)
            b |= t
            b ^= a
        a += ks[(i + 1) % 3]
        b += ks[(i + 2) % 3] + _U32(i + 1)
    return a, b


def _hash(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Both words of the hash of the counters ``0 .. n-1`` (high word 0) under each key
    of ``keys`` (shape ``(..., 2)``): two arrays of shape ``(..., n)``."""
    k1, k2 = keys[..., 0, None], keys[..., 1, None]
    return threefry2x32(k1, k2, np.zeros(n, _U32), np.arange(n, dtype=_U32))


def _split(keys: np.ndarray, n: int) -> np.ndarray:
    """``jax.random.split(key, n)``'s key data for each key of ``keys``: ``(..., n, 2)``."""
    return np.stack(_hash(keys, n), axis=-1)


def _unit_floats(keys: np.ndarray, n: int, dtype: np.dtype) -> np.ndarray:
    """``jax.random.uniform(key, (n,), dtype)``'s values before scaling, for each key of
    ``keys``: the random bits under the exponent of 1.0, minus 1 (exact: no rounding), in
    ``[0, 1)``; shape ``(..., n)``."""
    b1, b2 = _hash(keys, n)
    if dtype == np.float32:  # 32 bits: the XOR of the two words; 23 mantissa bits
        bits: np.ndarray = b1 ^ b2
        top = (bits >> np.uint32(32 - 23)) | np.uint32(0x3F800000)
    else:  # float64: 64 bits, the first word high; 52 mantissa bits
        bits = (b1.astype(np.uint64) << np.uint64(32)) | b2.astype(np.uint64)
        top = (bits >> np.uint64(64 - 52)) | np.uint64(0x3FF0000000000000)
    return top.view(dtype) - dtype.type(1.0)


def host_unit_draws(
    keys: np.ndarray, count: int, width: int, b_width: int, init: str, dtype: Any
) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`jbpnn.params._bucketed_draws`' uniform draws before they are scaled to
    ``[lo, hi)``, for each threefry key's data in ``keys`` (shape ``(..., 2)``, uint32; an
    integer seed ``s`` is ``[0, s]``): ``count`` layer keys split from it, each split
    again into a weight key and a bias key, ``width`` unit floats from each weight key
    (and ``b_width`` from each bias key): shapes ``(..., count, width)`` and
    ``(..., count, b_width)``. The scaling, ``max(lo, u (hi - lo) + lo)``, stays with JAX
    (XLA fuses it into one multiply-add, rounded once). None where it would not be JAX's
    draw bit for bit: "he" (a normal draw), a dtype other than float32 and float64, or
    JAX's original (non-partitionable) threefry."""
    dtype = np.dtype(dtype)
    if init == "he" or dtype not in (np.float32, np.float64):
        return None
    if not jax.config.jax_threefry_partitionable:  # type: ignore[attr-defined]
        return None
    keys = np.asarray(keys)
    if keys.shape[-1:] != (2,) or keys.dtype != np.uint32:
        return None
    pairs = _split(_split(keys, count), 2)  # (..., count, 2 [weight, bias], 2)
    w = _unit_floats(pairs[..., 0, :], width, dtype)
    b = _unit_floats(pairs[..., 1, :], b_width, dtype)
    return w, b
