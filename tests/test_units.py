"""Units and losses of the user's own (jbpnn.register_activation / register_loss), and the
built-ins written that way (swish, gelu, softplus: derivatives from the net input).

The references are JAX's autodiff of the plain forward pass in float64. Every test leaves
the tables as it found them (``_tables``), so registrations never leak into other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import one_line_error, run_cli, tree_allclose, write_flowers

import jbpnn
from jbpnn import activations, losses, preprocessing
from jbpnn.gradcheck import check_activation, check_loss, reference_loss

ROOT = Path(__file__).resolve().parents[1]
NET_UNITS = ("swish", "gelu", "softplus")
TOL = dict(rtol=1e-10, atol=1e-12)


@pytest.fixture(autouse=True)
def _tables():
    """Restore the activation and loss tables after each test (same dict objects)."""
    saved = [(t, dict(t)) for t in (activations.ACTIVATIONS, activations.ARTICLE_MODE_ACTIVATIONS)]
    saved.append((losses.LOSSES, dict(losses.LOSSES)))
    saved.append((losses.CHECKED_TARGETS, dict(losses.CHECKED_TARGETS)))
    saved.append((preprocessing.TASK_LOSSES, dict(preprocessing.TASK_LOSSES)))
    yield
    for table, copy in saved:
        table.clear()
        table.update(copy)


def softsign(net):
    return net / (1 + jnp.abs(net))


def softsign_d(net):
    return 1 / (1 + jnp.abs(net)) ** 2  # f'(net) = 1 / (1 + |net|)^2


def softsign_d2(net):
    return -2 * jnp.sign(net) / (1 + jnp.abs(net)) ** 3  # f''(net)


def _register_softsign(name="softsign", **kwargs):
    kwargs.setdefault("uses", "net")
    kwargs.setdefault("second", softsign_d2)
    return jbpnn.register_activation(name, softsign, softsign_d, **kwargs)


def _network(seed, sizes, acts, loss="mse"):
    rng = np.random.default_rng(seed)
    params = jbpnn.init_params(jax.random.key(seed), sizes, acts, loss, "glorot", jnp.float64)
    params = jax.tree.map(lambda a: a + 0.3 * jnp.asarray(rng.normal(size=a.shape)), params)
    return params, rng


def _plain_forward(params, X):
    """The forward pass written again from the table's ``fn`` only: the autodiff reference."""
    o = X
    for layer, name in zip(params.layers, params.activations):
        o = jax.vmap(activations.ACTIVATIONS[name].fn)(o @ layer.w + layer.b)
    return o


@jax.jit
def _autodiff(params, X, Y, dparams, dX):
    grads = jax.grad(reference_loss)(params, X, Y)
    return grads, jax.jvp(_plain_forward, (params, X), (dparams, dX))[1]


@jax.jit
def _hvp_reference(params, X, Y, v):
    return jax.jvp(jax.grad(lambda p: reference_loss(p, X, Y)), (params,), (v,))[1]


# ---------------------------------------------------------------- the built-ins
@pytest.mark.parametrize("name", NET_UNITS)
def test_builtins_use_the_net_input_and_pass_the_registration_check(name):
    act = activations.ACTIVATIONS[name]
    assert act.uses == "net" and act.second is not None and not act.output_only
    errors = check_activation(act, name)
    assert set(errors) == {"backprop", "tangent", "second"}
    # the rows within |net| 8, grid included (swish's f'' measured 6e-13 near 8): far
    # inside the 1e-6 accepted, and a wrong derivative's 0.1 to 1
    assert max(errors.values()) < 1e-11


# Every depth 1-4; each unit is an output unit once and a hidden unit in the deeper ones.
DEPTH_CASES = [
    ("swish",),
    ("softplus", "gelu"),
    ("gelu", "swish", "softplus"),
    ("softplus", "gelu", "swish", "swish"),
]


@pytest.mark.parametrize("acts", DEPTH_CASES, ids=lambda acts: f"depth{len(acts)}")
def test_hand_backward_and_jvp_equal_autodiff(x64, acts):
    """Hand gradient (mse) and hand JVP against autodiff of the plain forward pass."""
    sizes = (3, 5, 4, 4, 2)[: len(acts) + 1]
    params, rng = _network(len(acts), sizes, acts)
    X = jnp.asarray(rng.normal(size=(6, sizes[0])))
    Y = jnp.asarray(rng.normal(size=(6, sizes[-1])))
    dparams = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)), params)
    dX = jnp.asarray(rng.normal(size=X.shape))
    grads_ref, dout_ref = _autodiff(params, X, Y, dparams, dX)
    tree_allclose(jbpnn.batch_gradient(params, X, Y), grads_ref, **TOL, err_msg=str(acts))
    np.testing.assert_allclose(jbpnn.jvp(params, X, dparams, dX)[1], dout_ref, **TOL)
    assert float(jnp.max(jnp.abs(dout_ref))) > 1e-6


# ---------------------------------------------------------------- registering a unit
def test_register_a_unit_and_train_with_it(x64):
    act = _register_softsign()
    assert jbpnn.ACTIVATIONS["softsign"] is act and act.uses == "net"
    assert "softsign" in losses.LOSSES["mse"].output_activations  # a valid mse output unit
    params, rng = _network(0, (3, 6, 2), ("softsign", "softsign"))
    X = jnp.asarray(rng.normal(size=(20, 3)))
    Y = 0.5 * jnp.tanh(X[:, :2])
    grads_ref, _ = _autodiff(params, X, Y, params, X)
    tree_allclose(jbpnn.batch_gradient(params, X, Y), grads_ref, **TOL)
    p = params  # ten steps of gradient descent, the hand gradient each time
    for _ in range(10):
        loss, g = jbpnn.loss_and_gradient(p, X, Y)
        p = jax.tree.map(lambda a, d: a - 0.5 * d, p, g)
    assert float(jbpnn.loss_and_gradient(p, X, Y)[0]) < 0.8 * float(jbpnn.loss(params, X, Y))
    # curvature with the registered second derivative: hvp equals autodiff's
    v = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)), params)
    hv = jbpnn.hvp(params, X, Y, v)
    tree_allclose(hv, _hvp_reference(params, X, Y, v), **TOL)


def test_a_unit_written_from_its_output():
    # the logistic sigmoid again, f' = O (1 - O) from the output, under another name
    jbpnn.register_activation(
        "logistic",
        jax.nn.sigmoid,
        lambda o: o * (1 - o),
        second=lambda o: o * (1 - o) * (1 - 2 * o),
    )
    params = jbpnn.init_params(0, (4, 3, 2), "logistic")
    same = jbpnn.MLP(params.layers, ("sigmoid", "sigmoid"), "mse")
    X, Y = np.ones((5, 4), np.float32), np.zeros((5, 2), np.float32)
    got, want = jbpnn.batch_gradient(params, X, Y), jbpnn.batch_gradient(same, X, Y)
    tree_allclose(got.layers, want.layers, rtol=1e-6)


def test_a_wrong_derivative_is_refused_with_the_measured_error():
    with pytest.raises(
        ValueError,
        match=r"register_activation\('bad'\): the derivative "
        r"disagrees with autodiff of fn: relative error \d",
    ):
        jbpnn.register_activation("bad", jnp.tanh, lambda o: 1 - o)  # tanh' is 1 - O^2
    assert "bad" not in jbpnn.ACTIVATIONS
    with pytest.raises(ValueError, match="the second derivative disagrees"):
        _register_softsign("bad", second=lambda net: 0 * net)
    with pytest.raises(ValueError, match="relative error not finite"):
        jbpnn.register_activation("bad", jnp.tanh, lambda o: (1 - o**2) / 0.0)
    with pytest.raises(ValueError, match=r"fn gives NaN or inf at \d+ of 834 net inputs"):
        jbpnn.register_activation("bad", jnp.log, lambda net: 1 / net, uses="net")
    assert "bad" not in jbpnn.ACTIVATIONS
    # the same unit, written from the wrong thing: f' of the output given uses="net"
    with pytest.raises(ValueError, match="relative error"):
        jbpnn.register_activation("bad", jnp.tanh, lambda o: 1 - o**2, uses="net")


def test_the_check_judges_each_row_and_skips_where_autodiff_itself_overflows():
    # a derivative 33% off for |net| < 0.8 was accepted: one norm over every input let the
    # entries at +-1000 (f' = 3e6) outweigh the rest
    wrong = lambda n: jnp.where(jnp.abs(n) < 0.8, 2.0, 3.0) * n**2  # noqa: E731
    with pytest.raises(ValueError, match=r"relative error 0\.\d+ .*of each row of 6 net inputs"):
        jbpnn.register_activation("cube", lambda n: n**3, wrong, uses="net")
    assert "cube" not in jbpnn.ACTIVATIONS
    # the textbook sigmoid was refused ("relative error not finite"): autodiff of
    # 1 / (1 + exp(-net)) is NaN at -1000 (inf / inf), where fn and O (1 - O) are fine
    jbpnn.register_activation(
        "logistic_text", lambda n: 1 / (1 + jnp.exp(-n)), lambda o: o * (1 - o)
    )
    assert "logistic_text" in jbpnn.ACTIVATIONS
    # a derivative whose autodiff is NaN almost everywhere cannot be checked: refused
    nan_grad = jax.custom_jvp(lambda n: jnp.tanh(n))
    nan_grad.defjvp(lambda primals, tangents: (jnp.tanh(primals[0]), tangents[0] * jnp.nan))
    with pytest.raises(ValueError, match=r"autodiff of fn is NaN or inf at \d+ of \d+"):
        jbpnn.register_activation("unknowable", nan_grad, lambda o: 1 - o**2)
    # a forgotten return (or a tuple) is the documented ValueError, naming the unit
    with pytest.raises(ValueError, match=r"register_activation\('none'\): fn must return an array"):
        jbpnn.register_activation("none", lambda n: None, lambda o: o)


def test_registration_arguments_are_checked():
    with pytest.raises(ValueError, match="'tanh' is a built-in activation; pass replace=True"):
        jbpnn.register_activation("tanh", jnp.tanh, lambda o: 1 - o**2)
    with pytest.raises(TypeError, match=r"backprop must be callable, got float"):
        jbpnn.register_activation("mine", jnp.tanh, 1.0)
    with pytest.raises(TypeError, match=r"fn must be callable"):
        jbpnn.register_activation("mine", "tanh", lambda o: 1 - o**2)
    with pytest.raises(ValueError, match=r"uses must be 'output'"):
        jbpnn.register_activation("mine", jnp.tanh, lambda o: 1 - o**2, uses="input")
    with pytest.raises(ValueError, match="the name must be one word"):
        jbpnn.register_activation("my unit", jnp.tanh, lambda o: 1 - o**2)
    _register_softsign()
    with pytest.raises(ValueError, match="'softsign' is an already registered activation"):
        _register_softsign()
    _register_softsign(replace=True)  # allowed when asked
    # replacing a built-in (here by an equal one) is allowed when asked
    jbpnn.register_activation("tanh", jnp.tanh, lambda o: 1 - o**2, replace=True)
    assert jbpnn.ACTIVATIONS["tanh"].uses == "output"


def test_replacing_a_unit_rechecks_the_losses_paired_with_it(x64):
    """binary_cross_entropy's delta T - O is the sigmoid's: a replaced sigmoid (its own f'
    right) left it silently off by 2x; now refused, naming the loss and the error."""
    with pytest.raises(ValueError, match=r"the loss 'binary_cross_entropy'.*relative error"):
        jbpnn.register_activation("sigmoid", lambda n: jax.nn.sigmoid(2 * n),
                                  backprop=lambda o: 2 * o * (1 - o), replace=True)  # fmt: skip
    assert jbpnn.ACTIVATIONS["sigmoid"].fn(jnp.ones(1)) == jax.nn.sigmoid(1.0)  # kept


def test_a_replaced_mse_is_not_extended_to_new_units(x64):
    """mse's built-in delta is J^T (T - O) with any unit; a user's mse registered for
    identity only was extended to every unit registered later, unchecked."""
    jbpnn.register_loss("mse", lambda o, t: 0.5 * jnp.sum((t - o) ** 2),
                        lambda o, t, act: t - o, ("identity",), replace=True)  # fmt: skip
    _register_softsign()
    assert jbpnn.LOSSES["mse"].output_activations == ("identity",)
    with pytest.raises(ValueError, match="'mse' cannot be used with output activation 'softsign'"):
        jbpnn.init_params(0, (3, 4, 2), ("tanh", "softsign"), "mse")


def test_a_rule_that_fails_to_run_is_a_value_error_naming_the_registration():
    with pytest.raises(ValueError, match=r"register_activation\('a1'\): a rule fails to run"):
        jbpnn.register_activation("a1", lambda n: np.tanh(n), backprop=lambda o: 1 - o**2)
    with pytest.raises(ValueError, match=r"register_activation\('a3'\): .*AttributeError"):
        jbpnn.register_activation("a3", jnp.tanh, backprop=lambda o: o.nope)
    with pytest.raises(ValueError, match=r"register_loss\('l1'\).*fails to run"):
        jbpnn.register_loss("l1", lambda o, t: jnp.sum((t - o) ** 2), lambda o, t, a: a.nope,
                            "identity")  # fmt: skip
    assert "a1" not in jbpnn.ACTIVATIONS and "l1" not in jbpnn.LOSSES


def test_hvp_refuses_a_unit_without_its_second_derivative():
    _register_softsign(second=None)
    params = jbpnn.init_params(0, (3, 4, 2), "softsign")
    X, Y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    with pytest.raises(
        ValueError,
        match=r"hvp: the activation 'softsign' \(layer 0\) has no "
        "second derivative; register it with second=",
    ):
        jbpnn.hvp(params, X, Y, params)
    assert np.all(np.isfinite(jbpnn.flatten_params(jbpnn.gnvp(params, X, Y, params))))


# ---------------------------------------------------------------- registering a loss
def _register_half_mse(delta=None, **kwargs):
    kwargs.setdefault("tasks", "regression")  # checked on targets of either sign too
    return jbpnn.register_loss(
        "half_mse",
        error=lambda o, t: 0.25 * jnp.sum((t - o) ** 2),  # E = 1/4 sum (T - O)^2
        delta=delta or (lambda o, t, act: act.backprop(o, 0.5 * (t - o))),  # J^T (T - O) / 2
        output_activations=("identity", "swish"),
        delta_r=lambda o, t, act, r: 0.5 * losses.mse_delta_r(o, t, act, r),
        **kwargs,
    )


def test_register_a_loss_and_train_with_it(x64):
    loss = _register_half_mse()
    assert jbpnn.LOSSES["half_mse"] is loss
    errors = check_loss(loss, jbpnn.ACTIVATIONS)
    assert set(errors) == {f"{a}: {r}" for a in ("identity", "swish") for r in ("delta", "delta_r")}
    params, rng = _network(3, (3, 4, 2), ("tanh", "swish"), "half_mse")
    X, Y = jnp.asarray(rng.normal(size=(8, 3))), jnp.asarray(rng.normal(size=(8, 2)))
    grads_ref, _ = _autodiff(params, X, Y, params, X)
    tree_allclose(jbpnn.batch_gradient(params, X, Y), grads_ref, **TOL)
    v = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)), params)
    tree_allclose(jbpnn.hvp(params, X, Y, v), _hvp_reference(params, X, Y, v), **TOL)
    with pytest.raises(ValueError, match="gnvp: the loss 'half_mse' has no delta_gn"):
        jbpnn.gnvp(params, X, Y, v)
    with pytest.raises(ValueError, match="cannot be used with output activation 'sigmoid'"):
        jbpnn.init_params(0, (3, 2), "sigmoid", "half_mse")


def test_a_wrong_loss_delta_is_refused():
    with pytest.raises(
        ValueError,
        match=r"register_loss\('half_mse'\): delta with output "
        r"'identity' disagrees with autodiff of E\(fn\(net\), T\): relative error",
    ):
        _register_half_mse(delta=lambda o, t, act: act.backprop(o, t - o))  # twice too large
    assert "half_mse" not in jbpnn.LOSSES
    with pytest.raises(ValueError, match="unknown output activation 'nope'"):
        jbpnn.register_loss("l", lambda o, t: jnp.sum(o), lambda o, t, a: o, ("nope",))
    with pytest.raises(ValueError, match="'mse' is a built-in loss"):
        jbpnn.register_loss("mse", lambda o, t: jnp.sum(o), lambda o, t, a: o, "identity")


# ---------------------------------------------------------------- saved by name
UNITS_MODULE = """
import jax.numpy as jnp
import jbpnn

jbpnn.register_activation(
    "softsign",
    lambda net: net / (1 + jnp.abs(net)),
    backprop=lambda net: 1 / (1 + jnp.abs(net)) ** 2,
    uses="net",
)
jbpnn.register_loss(
    "half_mse",
    error=lambda o, t: 0.25 * jnp.sum((t - o) ** 2),
    delta=lambda o, t, act: act.backprop(o, 0.5 * (t - o)),
    output_activations=("identity", "softsign"),
    tasks="regression",
)
"""


@pytest.fixture
def units_module(tmp_path, monkeypatch):
    """``tmp_path/my_units.py`` registering softsign and half_mse, importable here."""
    (tmp_path / "my_units.py").write_text(UNITS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_units", raising=False)
    yield "my_units"
    sys.modules.pop("my_units", None)


def _python(*args, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(cwd)]))
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_save_and_load_in_a_process_with_and_without_the_registration(tmp_path, units_module):
    import my_units  # noqa: F401 -- registers softsign and half_mse here

    params = jbpnn.init_params(0, (3, 4, 1), ("softsign", "softsign"), "half_mse")
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    result = jbpnn.train(params, X, X[:, :1] * 0.5, optimizer=jbpnn.sgd(0.3), epochs=5)
    jbpnn.save(tmp_path / "m.npz", result.params)
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import jbpnn
        try:
            jbpnn.load("m.npz")
        except ValueError as e:
            print("refused:", e)
        else:
            sys.exit("loaded without the registration")
        import my_units
        params = jbpnn.load("m.npz").params
        print(params.activations, params.loss)
        np.save("pred.npy", np.asarray(jbpnn.predict(params, np.load("X.npy"))))
        """
    )
    proc = _python("-c", script, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    refused, names = proc.stdout.splitlines()
    assert "layer 0 uses the activation 'softsign', which is not registered" in refused
    assert "import the module that calls jbpnn.register_activation('softsign'" in refused
    assert names == "('softsign', 'softsign') half_mse"
    np.testing.assert_array_equal(
        np.load(tmp_path / "pred.npy"), np.asarray(jbpnn.predict(result.params, X))
    )


def test_load_names_a_missing_loss(tmp_path, units_module):
    import my_units  # noqa: F401

    jbpnn.save(tmp_path / "m.npz", jbpnn.init_params(0, (2, 1), "identity", "half_mse"))
    del jbpnn.LOSSES["half_mse"]  # as in a process that never registered it
    with pytest.raises(ValueError, match="uses the loss 'half_mse', which is not registered"):
        jbpnn.load(tmp_path / "m.npz")


def test_cli_import_hook(tmp_path, units_module, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_flowers(tmp_path)
    rc, out, err = run_cli(
        capsys, "train", "--import", units_module, "--data", "flowers.csv", "--target",
        "colour", "--activation", "softsign", "--hidden", "4", "--epochs", "2",
        "--save", "m.npz",
    )  # fmt: skip
    assert rc == 0, err
    assert "softsign" in out
    assert jbpnn.load(tmp_path / "m.npz").params.activations[0] == "softsign"
    # a fresh process: predict with the same --import
    proc = _python("-m", "jbpnn", "predict", "--import", units_module, "m.npz", "flowers.csv",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 90
    # without the registration (as in a process that never imported it): one line naming it
    del activations.ACTIVATIONS["softsign"]
    rc, _, err = run_cli(capsys, "predict", "m.npz", "flowers.csv")
    one_line_error(rc, err, "'softsign'", "not registered", "--import")
    # a module that does not import: one line, exit 2, no traceback
    rc, _, err = run_cli(capsys, "train", "--import", "no_such_units_module", "--epochs", "1")
    one_line_error(rc, err, "jbpnn train: error: --import no_such_units_module: cannot import")
    rc, _, err = run_cli(capsys, "predict", "--import", "no_such_units.py", "m.npz", "x.csv")
    one_line_error(rc, err, "--import no_such_units.py: no such file")
    (tmp_path / "broken_units.py").write_text(
        "import jbpnn\njbpnn.register_activation('x', 1, 2)\n"
    )
    rc, _, err = run_cli(capsys, "gradcheck", "--import", "broken_units")
    one_line_error(rc, err, "--import broken_units", "TypeError", "fn must be callable")


def test_cli_never_writes_over_an_imported_module(tmp_path, units_module, capsys, monkeypatch):
    """--save, --plot and predict --out were not checked against the --import module's own
    file: the model overwrote my_units.py (the next --import failed on its bytes)."""
    monkeypatch.chdir(tmp_path)
    write_flowers(tmp_path)
    source = (tmp_path / "my_units.py").read_text()
    common = ("--import", units_module, "--data", "flowers.csv", "--target", "colour")
    rc, _, err = run_cli(capsys, "train", *common, "--epochs", "1", "--save", "my_units.py")
    one_line_error(rc, err, "--save my_units.py is the command's input --import my_units")
    rc, _, err = run_cli(capsys, "train", *common, "--epochs", "1", "--save", "m.npz")
    assert rc == 0, err
    rc, _, err = run_cli(capsys, "predict", "--import", units_module, "m.npz", "flowers.csv",
                         "--out", "my_units.py")  # fmt: skip
    one_line_error(rc, err, "--out my_units.py is the command's input --import my_units")
    assert (tmp_path / "my_units.py").read_text() == source


def test_cli_import_of_a_module_that_exits_is_one_line(tmp_path, capsys, monkeypatch):
    """sys.exit(3) while importing: the command exited 3 and printed nothing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "exits_units.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.delitem(sys.modules, "exits_units", raising=False)
    rc, _, err = run_cli(capsys, "gradcheck", "--import", "exits_units")
    one_line_error(rc, err, "--import exits_units: the module called sys.exit(3)")
    # Ctrl-C while a slow module loads: a traceback before, now the run's one line
    (tmp_path / "slow_units.py").write_text("raise KeyboardInterrupt\n")
    monkeypatch.delitem(sys.modules, "slow_units", raising=False)
    rc, _, err = run_cli(capsys, "train", "--import", "slow_units")
    assert rc == 130 and err == "jbpnn train: interrupted\n", err


def test_cli_trains_with_a_registered_loss(tmp_path, units_module, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    np.savetxt("reg.csv", np.c_[X, X @ [1.0, -2.0, 0.5]], delimiter=",", header="a,b,c,y",
               comments="")  # fmt: skip
    rc, out, err = run_cli(
        capsys, "train", "--import", units_module, "--data", "reg.csv", "--loss", "half_mse",
        "--hidden", "4", "--epochs", "3", "--save", "m.npz",
    )  # fmt: skip
    assert rc == 0, err
    assert "3-4-1, sigmoid, identity, loss half_mse" in out  # regression: an identity output
    assert jbpnn.load(tmp_path / "m.npz").params.loss == "half_mse"
    # registered for regression only: a class target is refused, naming what trains it
    write_flowers(tmp_path)
    rc, _, err = run_cli(capsys, "train", "--data", "flowers.csv", "--target", "colour",
                         "--loss", "half_mse", "--epochs", "1")  # fmt: skip
    one_line_error(rc, err, "--loss half_mse cannot train a classification target",
                   "cross_entropy or binary_cross_entropy or mse", "tasks=")  # fmt: skip
    # a registration without tasks= trains no table; with classification, the output
    # unit is the first it is exact with
    for tasks, output in (((), None), ("classification", "softsign")):
        jbpnn.register_loss(
            "quarter", lambda o, t: 0.125 * jnp.sum((t - o) ** 2),
            lambda o, t, act: act.backprop(o, 0.25 * (t - o)), ("softsign", "identity"),
            tasks=tasks, replace=True,
        )  # fmt: skip
        rc, out, err = run_cli(capsys, "train", "--data", "flowers.csv", "--target", "colour",
                               "--loss", "quarter", "--hidden", "3", "--epochs", "1")  # fmt: skip
        if output is None:
            one_line_error(rc, err, "--loss quarter cannot train a classification", "tasks=")
        else:
            assert rc == 0, err
            assert f"sigmoid, {output}, loss quarter" in out
    assert preprocessing.TASK_LOSSES["regression"] == ("mse", "half_mse")


def test_register_loss_checks_its_tasks():
    args = ("l", lambda o, t: jnp.sum((t - o) ** 2), lambda o, t, act: act.backprop(o, 2 * (t - o)))
    with pytest.raises(ValueError, match=r"tasks must be a sequence of 'classification'"):
        jbpnn.register_loss(*args, "identity", tasks="clustering")
    with pytest.raises(ValueError, match=r"a regression loss trains an 'identity' output unit"):
        jbpnn.register_loss(*args, "sigmoid", tasks=("regression",))
    assert "l" not in jbpnn.LOSSES
    assert "l" not in preprocessing.TASK_LOSSES["classification"]


def test_a_replaced_mse_is_refused_by_the_residual_methods():
    """lm and br (and the residual Jacobian) assume the built-in 1/2 (O - T)^2: with
    'mse' replaced they took their steps from its residuals and accepted them on the new
    loss, stalling far from its minimum as an ordinary mu_max_reached."""
    from jbpnn.optimizers import bayesian_regularization, levenberg_marquardt

    jbpnn.register_loss(
        "mse",
        lambda o, t: jnp.sum((1 + 3 * t**2) * (o - t) ** 2) / 2,  # weighted squared error
        lambda o, t, act: (1 + 3 * t**2) * (t - o),
        ("identity",),
        replace=True,
        tasks="regression",
    )
    p = jbpnn.init_params(jax.random.key(0), [1, 4, 1], ["tanh", "identity"], "mse")
    X = jnp.linspace(-1, 1, 20)[:, None]
    Y = jnp.sin(3 * X)
    for opt in (levenberg_marquardt(), bayesian_regularization()):
        with pytest.raises(ValueError, match="'mse' was replaced by a registration"):
            jbpnn.train(p, X, Y, optimizer=opt, epochs=2)
    with pytest.raises(ValueError, match="'mse' was replaced"):
        jbpnn.normal_equations(p, X, Y)
    jbpnn.train(p, X, Y, optimizer=jbpnn.optimizers.lbfgs(), epochs=2)  # the loss's own gradient


def test_the_activation_check_reaches_the_tails_and_near_zero():
    """The check sampled net ~ N(0, 2^2) only: a derivative cut to 0 past |net| 8, or wrong
    only near 0, and an fn that is NaN past |net| 20 were accepted."""

    def swish(n):
        return n * jax.nn.sigmoid(n)

    def swish_d(n):
        s = jax.nn.sigmoid(n)
        return s * (1 + n * (1 - s))

    cut = lambda n: jnp.where(jnp.abs(n) > 8, 0.0, swish_d(n))  # noqa: E731
    with pytest.raises(
        ValueError, match=r"the derivative in the tails \(rows reaching past \|net\| 8"
    ):
        jbpnn.register_activation("cut_swish", swish, cut, uses="net")
    near0 = lambda n: jnp.where(jnp.abs(n) < 0.05, -1.0, swish_d(n))  # noqa: E731
    with pytest.raises(ValueError, match="the derivative disagrees with autodiff"):
        jbpnn.register_activation("near0_swish", swish, near0, uses="net")
    nan_tail = lambda n: jnp.where(jnp.abs(n) > 20, jnp.nan, swish(n))  # noqa: E731
    with pytest.raises(ValueError, match="fn gives NaN or inf at 56 of 834 net inputs"):
        jbpnn.register_activation("nan_swish", nan_tail, swish_d, uses="net")
    jbpnn.register_activation("good_swish", swish, swish_d, uses="net")


def test_a_regression_loss_is_checked_at_targets_of_either_sign():
    """Targets were drawn in (0, 1) only: a regression loss whose delta is wrong for
    negative targets (half of a standardised column) was accepted."""

    def error(o, t):
        return jnp.sum((t - o) ** 2 / (1 + jnp.abs(t)))

    wrong = lambda o, t, act: 2 * (t - o) / (1 + t)  # noqa: E731  (1 + |t| for t < 0)
    with pytest.raises(ValueError, match="with output 'identity' and targets of any sign"):
        jbpnn.register_loss("scaled_se", error, wrong, ("identity",), tasks="regression")
    right = lambda o, t, act: 2 * (t - o) / (1 + jnp.abs(t))  # noqa: E731
    jbpnn.register_loss("scaled_se", error, right, ("identity",), tasks="regression")


def test_a_loss_with_delta_r_registers_with_an_output_unit_without_second():
    """delta_r was checked through every output unit's second derivative: a unit without
    second= made a valid loss fail to register ("'NoneType' object is not callable")."""

    def s2(n):
        return jax.nn.sigmoid(2 * n)

    jbpnn.register_activation("nos", lambda n: n * s2(n),
                              lambda n: s2(n) * (1 + 2 * n * (1 - s2(n))), uses="net")  # fmt: skip

    def delta(o, t, act):
        return act.backprop(o, jnp.tanh(t - o))

    def delta_gn(o, t, act, r):
        return -act.backprop(o, (1 - jnp.tanh(t - o) ** 2) * act.tangent(o, r))

    def delta_r(o, t, act, r):
        return delta_gn(o, t, act, r) + act.second(o, r, jnp.tanh(t - o))

    jbpnn.register_loss("logcosh", lambda o, t: jnp.sum(jnp.log(jnp.cosh(o - t))), delta,
                        ("identity", "nos"), delta_r=delta_r, delta_gn=delta_gn)  # fmt: skip
    p = jbpnn.init_params(0, (2, 3, 1), ("tanh", "nos"), "logcosh")
    X, Y = jnp.ones((4, 2)), jnp.zeros((4, 1))
    with pytest.raises(ValueError, match="has no second derivative"):
        jbpnn.hvp(p, X, Y, jax.tree.map(jnp.ones_like, p))
    jbpnn.gnvp(p, X, Y, jax.tree.map(jnp.ones_like, p))  # needs f' only


def test_import_takes_a_py_file_by_its_path(tmp_path, capsys, monkeypatch):
    """--import ./my_units.py: "No module named ..." with a hint that failed in turn (a
    path without .py), or a raw relative-import TypeError for ./name.py."""
    folder = tmp_path / "units"
    folder.mkdir()
    (folder / "path_units.py").write_text(UNITS_MODULE)
    monkeypatch.delitem(sys.modules, "path_units", raising=False)
    write_flowers(tmp_path)
    monkeypatch.chdir(tmp_path)
    try:
        for given in (str(folder / "path_units.py"), "./units/path_units.py"):
            rc, _, err = run_cli(capsys, "train", "--import", given, "--data", "flowers.csv",
                                 "--target", "colour", "--activation", "softsign",
                                 "--epochs", 2)  # fmt: skip
            assert rc == 0, err
            assert "softsign" in activations.ACTIVATIONS
    finally:
        sys.modules.pop("path_units", None)


def test_a_fixed_width_loss_is_told_how_to_register():
    """A class-weighted loss for 2 outputs failed the check (run on 6 outputs) with only
    "mul got incompatible shapes"; the message now says why and what to do."""
    cw = jnp.asarray([1.0, 3.0])
    with pytest.raises(ValueError, match="rows of 6 outputs: for a loss written for a fixed"):
        jbpnn.register_loss("l2w", lambda o, t: jnp.sum(cw * (t - o) ** 2) / 2,
                            lambda o, t, act: cw * (t - o), ("identity",))  # fmt: skip
    jbpnn.register_loss("l2w", lambda o, t: jnp.sum(cw * (t - o) ** 2) / 2,
                        lambda o, t, act: cw * (t - o), ("identity",), check=False)  # fmt: skip
    p = jbpnn.init_params(0, (3, 4, 2), ("tanh", "identity"), "l2w")
    X, Y = jnp.ones((5, 3)), jnp.zeros((5, 2))
    assert jbpnn.gradcheck(p, X, Y).passed


def test_a_unit_whose_output_is_not_float_is_refused_saying_so():
    # a step written (net > 0).astype(int) failed with NumPy's "setting an array element
    # with a sequence" from inside the tangent's check
    with pytest.raises(ValueError, match="fn must return floats.*returned int32"):
        jbpnn.register_activation(
            "step", lambda n: (n > 0).astype(jnp.int32), lambda n: jnp.zeros_like(n), uses="net"
        )
    assert "step" not in activations.ACTIVATIONS


def test_a_rule_against_an_everywhere_zero_autodiff_derivative_is_refused_saying_so():
    # the relative error was |hand| / 1e-300: "relative error 3.95e+300"
    def hidden(n):
        return jax.lax.stop_gradient(n) + 0 * n

    with pytest.raises(ValueError, match="autodiff of fn gives 0 at every net input"):
        jbpnn.register_activation("hidden", hidden, lambda n: jnp.ones_like(n), uses="net")


# ---------------------------------------------------------------- replaced built-ins in files
def _sine_tanh():
    jbpnn.register_activation("tanh", jnp.sin, backprop=jnp.cos, uses="net", replace=True)


def test_a_replaced_builtin_unit_is_recorded_and_not_loaded_as_the_builtin(tmp_path):
    """A model saved with a replacement of a built-in name loaded as the built-in (another
    function, silently) in a process without the replacement."""
    _sine_tanh()
    params = jbpnn.init_params(0, (3, 5, 2), ("tanh", "identity"))
    jbpnn.save(tmp_path / "m.npz", params)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert int(z["format_version"]) == 3
        assert json.loads(str(z["replaced"])) == ["activation:tanh"]
    assert jbpnn.load(tmp_path / "m.npz").params.activations == ("tanh", "identity")
    activations.ACTIVATIONS["tanh"] = activations._BUILTIN_ENTRIES["tanh"]  # a fresh process
    assert activations.is_builtin("tanh")
    replaced = r"m\.npz: layer 0 uses the activation 'tanh' as the saving process had replaced"
    with pytest.raises(ValueError, match=replaced + r" it .*register the replacement again"):
        jbpnn.load(tmp_path / "m.npz")


def test_a_builtin_unit_is_not_loaded_where_the_name_was_replaced(tmp_path):
    jbpnn.save(tmp_path / "m.npz", jbpnn.init_params(0, (3, 5, 2), ("tanh", "identity")))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert int(z["format_version"]) == 2 and "replaced" not in z  # older jbpnn reads it
    _sine_tanh()
    builtin = r"layer 0 uses the activation 'tanh' as jbpnn's built-in, but this process"
    with pytest.raises(ValueError, match=builtin + r" has replaced 'tanh'"):
        jbpnn.load(tmp_path / "m.npz")


def test_a_replaced_builtin_loss_is_recorded(tmp_path):
    jbpnn.register_loss("mse", lambda o, t: jnp.sum((t - o) ** 2),  # E = sum (T - O)^2
                        lambda o, t, act: act.backprop(o, 2 * (t - o)), ("identity",),
                        replace=True)  # fmt: skip
    jbpnn.save(tmp_path / "m.npz", jbpnn.init_params(0, (3, 5, 1), ("tanh", "identity")))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert json.loads(str(z["replaced"])) == ["loss:mse"]
    losses.LOSSES["mse"] = losses._BUILTIN_ENTRIES["mse"]
    with pytest.raises(ValueError, match=r"it uses the loss 'mse' as the saving process had "):
        jbpnn.load(tmp_path / "m.npz")


def test_a_pickled_network_records_a_replaced_builtin_and_is_refused_without_it():
    """A pickle (joblib, an estimator's) of a network whose tanh was sin unpickled in a
    process without the replacement as the real tanh, silently; the reverse too."""
    import pickle

    _sine_tanh()
    params = jbpnn.init_params(0, (3, 5, 2), ("tanh", "identity"))
    blob = pickle.dumps(params)
    assert pickle.loads(blob).activations == ("tanh", "identity")  # the same process
    activations.ACTIVATIONS["tanh"] = activations._BUILTIN_ENTRIES["tanh"]  # a fresh process
    plain = pickle.dumps(params)
    assert b"replaced" not in plain  # a plain network pickles as before
    replaced = r"activation 'tanh' as the pickling process had replaced it"
    with pytest.raises(ValueError, match=r"cannot unpickle this network: it uses the " + replaced):
        pickle.loads(blob)
    _sine_tanh()
    builtin = r"activation 'tanh' as jbpnn's built-in, but this process has replaced 'tanh'"
    with pytest.raises(ValueError, match=builtin):
        pickle.loads(plain)


def test_the_estimators_take_jbpnn_and_registered_hidden_units():
    """BPNNClassifier/BPNNRegressor(activation=...) refused every name but scikit-learn's."""
    pytest.importorskip("sklearn")
    from sklearn.base import clone

    from jbpnn.sklearn import BPNNClassifier, BPNNRegressor

    _register_softsign()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = BPNNClassifier(hidden_layer_sizes=(4,), activation="swish", max_iter=3).fit(X, y)
    assert clf.params_.activations == ("swish", "sigmoid")
    reg = BPNNRegressor(hidden_layer_sizes=(4,), activation="softsign", max_iter=3, solver="lm")
    reg.fit(X, X[:, 0])
    assert reg.params_.activations == ("softsign", "identity")
    assert clone(reg).activation == "softsign"
    with pytest.raises(ValueError, match="'softmax' is an output unit only"):
        BPNNClassifier(activation="softmax").fit(X, y)
    with pytest.raises(ValueError, match=r"or a jbpnn hidden unit \[.*'softsign'.*got 'nope'"):
        BPNNClassifier(activation="nope").fit(X, y)


def test_training_refuses_targets_a_registered_loss_was_not_checked_on():
    """A loss checked on targets in (0, 1) trained on others with a delta that was wrong
    there (relative error 6.1), and a softmax loss written for one-hot rows on multi-hot
    ones (1.75), without a word."""
    jbpnn.register_loss("wtd", lambda o, t: 0.5 * jnp.sum((t - o) ** 2 / (1 + jnp.abs(t))),
                        lambda o, t, act: act.backprop(o, (t - o) / (1 + t)),  # 1 + |t| meant
                        "identity")  # fmt: skip
    jbpnn.register_loss("myce", lambda o, t: -jnp.sum(t * jnp.log(o)),
                        lambda o, t, act: t - o, "softmax")  # fmt: skip
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3)).astype(np.float32)
    p = jbpnn.init_params(0, (3, 4, 2), ("tanh", "identity"), "wtd")
    signed = rng.normal(size=(20, 2)) * 2
    assert np.isfinite(jbpnn.loss(p, X, rng.random((20, 2))))  # what it was checked on
    checked = r"Y: the loss 'wtd' was checked \(register_loss\) on targets in \[0, 1\] only"
    for call in (
        lambda: jbpnn.loss(p, X, signed),
        lambda: jbpnn.train(p, X, signed, optimizer=jbpnn.sgd(0.1), epochs=1),
    ):
        with pytest.raises(ValueError, match=checked + r", got values from -.*tasks='regression'"):
            call()
    assert not jbpnn.gradcheck(p, X, signed).passed  # gradcheck takes them: the delta is wrong
    q = jbpnn.init_params(0, (3, 4, 3), ("tanh", "softmax"), "myce")
    multi_hot = (rng.random((20, 3)) > 0.5).astype(np.float32)
    multi_hot[0] = [1, 1, 0]
    assert np.isfinite(jbpnn.loss(q, X, np.eye(3)[rng.integers(0, 3, 20)]))
    rows = r"with softmax outputs was checked \(register_loss\) on target rows that sum to 1"
    with pytest.raises(ValueError, match=rows):
        jbpnn.train(q, X, multi_hot, optimizer=jbpnn.sgd(0.1), epochs=1)
    with pytest.raises(ValueError, match=r"Y_val: the loss 'myce' .* rows that sum to 1"):
        jbpnn.train(q, X, np.eye(3)[rng.integers(0, 3, 20)], optimizer=jbpnn.sgd(0.1), epochs=1,
                    X_val=X, Y_val=multi_hot)  # fmt: skip
    # a regression registration is checked on signed targets, and takes them
    jbpnn.register_loss("wtd2", lambda o, t: 0.5 * jnp.sum((t - o) ** 2),
                        lambda o, t, act: act.backprop(o, t - o), "identity",
                        tasks="regression")  # fmt: skip
    p2 = jbpnn.init_params(0, (3, 4, 2), ("tanh", "identity"), "wtd2")
    assert np.isfinite(jbpnn.loss(p2, X, signed))
    # check=False: the user has checked it; nothing is refused
    jbpnn.register_loss("wtd", lambda o, t: 0.5 * jnp.sum((t - o) ** 2 / (1 + jnp.abs(t))),
                        lambda o, t, act: act.backprop(o, (t - o) / (1 + t)), "identity",
                        replace=True, check=False)  # fmt: skip
    assert np.isfinite(jbpnn.loss(p, X, signed))


@pytest.mark.parametrize(
    "derivative",
    [
        lambda n: jnp.where((n > 5) & (n < 8), 0.5, jax.nn.sigmoid(n)),  # a hole in 5..8
        lambda n: jnp.where((n > 13) & (n < 29), 0.5, jax.nn.sigmoid(n)),  # in 13..29
        lambda n: jnp.where(jnp.abs(n) < 0.004, 0.3, jax.nn.sigmoid(n)),  # near 0 only
    ],
)
def test_a_derivative_wrong_in_a_band_is_refused(derivative):
    """The fixed inputs were +-1000, 100, 30, 12, 0.02, 0.005 in rows mixing them: a
    derivative wrong between 5 and 8, 13 and 29, or within 0.004 of 0 was accepted."""
    with pytest.raises(ValueError, match="disagrees with autodiff of fn"):
        jbpnn.register_activation("holed_softplus", jax.nn.softplus, derivative, uses="net")
    jbpnn.register_activation("softplus2", jax.nn.softplus, jax.nn.sigmoid, uses="net")


def test_a_unit_that_changes_the_dtype_is_refused():
    """np.sqrt(2) in a unit (a float64) made a float32 network's passes float64, and lm
    failed inside its scan; jnp.float32(2) made float16 networks' float32."""
    import math

    from jax.scipy.special import erf

    def gelu(root2):
        return lambda n: 0.5 * n * (1 + erf(n / root2))

    def gelu_d(root2):
        return lambda n: 0.5 * (1 + erf(n / root2)) + n * jnp.exp(-0.5 * n**2) / 2.5066282746

    with pytest.raises(ValueError, match=r"fn returns float64 for float32 inputs.*np\.sqrt\(2\)"):
        jbpnn.register_activation("gelu64", gelu(np.sqrt(2)), gelu_d(math.sqrt(2)), uses="net")
    with pytest.raises(ValueError, match=r"backprop\) returns float32 for float16 inputs"):
        jbpnn.register_activation("gelu32", gelu(math.sqrt(2)), gelu_d(jnp.float32(1.4142135)),
                                  uses="net")  # fmt: skip
    jbpnn.register_activation("gelu_ok", gelu(math.sqrt(2)), gelu_d(math.sqrt(2)), uses="net")
    p = jbpnn.init_params(0, (3, 4, 1), ("gelu_ok", "identity"), dtype="float16")
    assert jbpnn.predict(p, np.ones((2, 3))).dtype == jnp.float16


def test_a_loss_error_that_is_not_one_float_per_example_is_named():
    """A vector or integer error was refused with a hint about fixed output counts."""
    for error, got in (
        (lambda o, t: (t - o) ** 2, r"got shape \(6,\), float"),
        (lambda o, t: jnp.sum(t > o), r"got shape \(\), int"),
    ):
        with pytest.raises(ValueError, match=r"error must return ONE float per example.*" + got):
            jbpnn.register_loss("v", error, lambda o, t, a: a.backprop(o, t - o), "identity")
    with pytest.raises(ValueError, match="output_only must be True or False, got 'no'"):
        jbpnn.register_activation("s2", jnp.sin, jnp.cos, uses="net", output_only="no")


def test_cli_says_an_imported_module_registered_nothing(tmp_path, capsys, monkeypatch):
    """--import of a module that registers nothing, then its unit's name, read only
    argparse's "invalid choice"."""
    (tmp_path / "empty_units.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    rc, _, err = run_cli(capsys, "train", "--import", "empty_units", "--activation", "softsign",
                         "--data", "d.csv")  # fmt: skip
    assert rc == 2 and "invalid choice: 'softsign'" in err
    assert "note: --import empty_units registered no unit or loss" in err


# ---------------------------------------------------------------- red-team regressions
def test_a_relu6_whose_derivative_steps_at_the_wrong_place_is_refused():
    """The check met no input between 6 and 6.5: a ReLU6 derivative stepping at 6.5 was
    accepted. The right one (kinks at 0 and 6, where no input falls) is."""
    fn = lambda n: jnp.clip(n, 0.0, 6.0)  # noqa: E731
    wrong = lambda n: jnp.where((n > 0) & (n < 6.5), 1.0, 0.0)  # noqa: E731
    with pytest.raises(ValueError, match="the derivative disagrees with autodiff"):
        jbpnn.register_activation("relu6_wrong", fn, wrong, uses="net")
    right = lambda n: jnp.where((n > 0) & (n < 6), 1.0, 0.0)  # noqa: E731
    jbpnn.register_activation("relu6_right", fn, right, uses="net")


@pytest.mark.parametrize(
    "band", [(4.0, 4.3), (5.6, 6.9), (7.6, 8.9), (9.5, 10.5), (1000.0, np.inf), (0.0, 2.9e-4)]
)
def test_a_softsign_derivative_wrong_in_a_band_is_refused(band):
    """Bands the random and fixed inputs missed (a derivative 2x too large there was
    accepted): the grid and the log-spaced magnitudes reach them."""
    lo, hi = band

    def wrong(n):
        d = 1 / (1 + jnp.abs(n)) ** 2
        return jnp.where((jnp.abs(n) > lo) & (jnp.abs(n) < hi), 2 * d, d)

    with pytest.raises(ValueError, match="disagrees with autodiff of fn"):
        jbpnn.register_activation(
            "band_softsign", lambda n: n / (1 + jnp.abs(n)), wrong, uses="net"
        )


def _bce_error(o, t):
    o = jnp.clip(o, 1e-300, 1.0)
    return -jnp.sum(jax.scipy.special.xlogy(t, o) + jax.scipy.special.xlogy(1 - t, 1 - o))


def test_a_loss_delta_wrong_at_saturated_outputs_is_refused():
    """The loss check's net inputs reached 7.5: a BCE delta zeroed past an output of
    0.9999 (a confidently wrong example then learns nothing) was accepted."""
    guard = lambda o, t, act: jnp.where((o > 0.9999) | (o < 1e-4), 0.0, t - o)  # noqa: E731
    with pytest.raises(ValueError, match=r"delta with output 'sigmoid' at saturated outputs"):
        jbpnn.register_loss("bce_guard", _bce_error, guard, ("sigmoid",), tasks="classification")
    right = lambda o, t, act: t - o  # noqa: E731
    jbpnn.register_loss("bce_right", _bce_error, right, ("sigmoid",), tasks="classification")


def _huber(threshold, branch):
    def error(o, t):
        a = jnp.abs(t - o)
        return jnp.sum(jnp.where(a <= threshold, 0.5 * a**2, threshold * (a - 0.5 * threshold)))

    def delta(o, t, act):
        r = t - o
        return act.backprop(o, jnp.where(jnp.abs(r) <= threshold, r, branch(r)))

    return error, delta


def test_a_loss_delta_wrong_for_large_residuals_is_refused():
    """Residuals reached 8.5: a Huber loss with threshold 9 whose outlier branch was
    wrong (threshold * r rather than threshold * sign(r)) was accepted."""
    error, wrong = _huber(9.0, lambda r: 9.0 * r)
    with pytest.raises(ValueError, match="disagrees with autodiff"):
        jbpnn.register_loss("huber_wrong", error, wrong, ("identity",), tasks="regression")
    error, right = _huber(9.0, lambda r: 9.0 * jnp.sign(r))
    jbpnn.register_loss("huber_right", error, right, ("identity",), tasks="regression")


def test_a_loss_delta_wrong_at_hard_targets_is_refused():
    """Targets were strictly inside (0, 1): a masked squared error whose delta forgot the
    mask (targets of exactly 0, as one-hot rows have) was accepted."""

    def error(o, t):
        return 0.5 * jnp.sum(jnp.where(t != 0, (t - o) ** 2, 0.0))

    wrong = lambda o, t, act: act.backprop(o, t - o)  # noqa: E731
    with pytest.raises(ValueError, match="disagrees with autodiff"):
        jbpnn.register_loss("masked_wrong", error, wrong, ("sigmoid",), tasks="classification")
    right = lambda o, t, act: act.backprop(o, jnp.where(t != 0, t - o, 0.0))  # noqa: E731
    jbpnn.register_loss("masked_right", error, right, ("sigmoid",), tasks="classification")
