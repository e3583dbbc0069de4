"""Shared fixtures: float64 per test, and a tree comparison helper.

The whole session runs with ``JBPNN_NO_CACHE=1``: a test that calls ``jbpnn.cli.main``
in-process would otherwise turn JAX's persistent compilation cache on (in the user's
``~/.cache/jbpnn/jax``) for every later test, and subprocesses inherit the setting.
"""

from __future__ import annotations

import os

os.environ["JBPNN_NO_CACHE"] = "1"  # before any test imports jbpnn.cli

import jax
import numpy as np
import pytest


@pytest.fixture
def x64():
    """Enable float64 for one test only (never for the whole library)."""
    with jax.enable_x64(True):
        yield


def tree_allclose(a, b, rtol=1e-7, atol=0.0, err_msg=""):
    """Assert two pytrees have the same structure and allclose leaves."""
    sa, sb = jax.tree.structure(a), jax.tree.structure(b)
    assert sa == sb, f"tree structures differ: {sa} vs {sb}"
    for i, (x, y) in enumerate(zip(jax.tree.leaves(a), jax.tree.leaves(b))):
        np.testing.assert_allclose(
            np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, err_msg=f"{err_msg} leaf {i}"
        )
