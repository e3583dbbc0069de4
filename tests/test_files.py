"""The one atomic write: targets refused, temporary files, all-or-none, a kill mid-write.

Driven through :func:`jbpnn.io.save` (its main user, whose files :func:`jbpnn.io.load`
checks) and through :func:`jbpnn.files.write_files` / :func:`jbpnn.files.atomic_write`.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import stat
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jbpnn.files as jfiles
from jbpnn.io import load, save
from jbpnn.params import MLP, init_params


def _params(dtype=jnp.float32, **kw) -> MLP:
    key = jax.random.key(3)
    return init_params(key, (4, 5, 3), "tanh", "mse", init="glorot", dtype=dtype, **kw)


# ---------------------------------------------------------------- targets and temp files
@pytest.fixture(params=["o_tmpfile", "named_temp"])
def temp_kind(request, monkeypatch):
    """Both ways of writing the temporary file: Linux's O_TMPFILE and the named fallback."""
    if request.param == "o_tmpfile" and not jfiles._USE_O_TMPFILE:
        pytest.skip("no O_TMPFILE on this platform")
    monkeypatch.setattr(jfiles, "_USE_O_TMPFILE", request.param == "o_tmpfile")
    return request.param


def _enospc_mid_write(file, **arrays):
    file.write(b"PK\x03\x04 half an archive")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_leaves_old_file_and_no_temp(tmp_path, monkeypatch, temp_kind):
    path = tmp_path / "model.npz"
    save(path, _params(), version="old")
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", _enospc_mid_write)
    with pytest.raises(OSError) as info:
        save(path, init_params(jax.random.key(9), (2, 2)))
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_replaced_file_keeps_its_permissions(tmp_path, temp_kind):
    path = tmp_path / "m.npz"
    save(path, _params())
    path.chmod(0o640)
    save(path, _params(), v=2)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and load(path).metadata == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_symlink_to_a_regular_file_is_followed(tmp_path, temp_kind):
    real = tmp_path / "real.npz"
    save(real, _params(), v=1)
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    written = save(link, _params(), v=2)
    assert written == real  # says which file it replaced
    assert link.is_symlink() and load(real).metadata == {"v": 2}


def test_dangling_symlink_is_refused(tmp_path):
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "nowhere.npz")
    with pytest.raises(ValueError, match="symlink to .*nowhere.npz, which does not exist"):
        save(link, _params())
    assert not (tmp_path / "nowhere.npz").exists()


def test_read_only_target_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    save(path, _params(), v=1)
    path.chmod(0o444)
    with pytest.raises(PermissionError, match="read-only .mode 0444.; it is not replaced"):
        save(path, _params(), v=2)
    assert load(path).metadata == {"v": 1}


def test_special_files_are_never_replaced(tmp_path):
    if os.path.exists("/dev/null"):  # checked only: a test must never risk writing it
        with pytest.raises(ValueError, match="a character device, not a regular file"):
            jfiles.check_target("/dev/null")
    path = tmp_path / "pipe"
    os.mkfifo(path)
    with pytest.raises(ValueError, match="a FIFO"):
        save(path, _params())
    assert stat.S_ISFIFO(os.stat(path).st_mode)


def test_directory_and_under_a_file_are_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        save(tmp_path, _params())
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="file is not a folder"):
        save(tmp_path / "file" / "m.npz", _params())
    with pytest.raises(ValueError, match="empty path"):
        save("", _params())


def test_write_files_is_all_or_none(tmp_path, temp_kind):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"old a")

    def fails(f):
        f.write(b"half of b")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        jfiles.write_files([(a, b"new a"), (b, fails)])
    assert a.read_bytes() == b"old a" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    assert jfiles.write_files([(a, b"new a"), (b, b"new b")]) == [a, b]
    assert a.read_bytes() == b"new a" and b.read_bytes() == b"new b"
    with pytest.raises(ValueError, match="the same file"):
        jfiles.write_files([(a, b"1"), (tmp_path / "." / "a.bin", b"2")])


_KILLED_MID_WRITE = """
import sys, time
import jbpnn.files as jfiles
jfiles._USE_O_TMPFILE = sys.argv[2] == "1"
def slow(f):
    f.write(b"PK half an archive"); f.flush()
    print("writing", flush=True)
    time.sleep(120)
jfiles.atomic_write(sys.argv[1], slow)
"""


def _kill_mid_write(path, o_tmpfile: bool) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_MID_WRITE, str(path), "1" if o_tmpfile else "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


@pytest.mark.skipif(not jfiles._USE_O_TMPFILE, reason="no O_TMPFILE on this platform")
def test_sigkill_mid_save_leaves_nothing_with_o_tmpfile(tmp_path):
    path = tmp_path / "m.npz"
    save(path, _params(), v=1)
    _kill_mid_write(path, o_tmpfile=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
    assert load(path).metadata == {"v": 1}


def test_sigkill_leftover_is_removed_by_the_next_save(tmp_path, temp_kind):
    path = tmp_path / "m.npz"
    save(path, _params(), v=1)
    _kill_mid_write(path, o_tmpfile=False)  # the named fallback leaves its temp file
    (left,) = [p.name for p in tmp_path.iterdir() if p.name != "m.npz"]
    assert left.startswith(".m.npz.") and left.endswith(".tmp")
    legacy = tmp_path / ".m.npz.0123456789ab.tmp"  # what earlier versions left behind
    legacy.write_bytes(b"PK")
    os.utime(legacy, (time.time() - 7200,) * 2)
    other = tmp_path / ".other.npz.1-0123456789ab.tmp"  # another target's: not ours to touch
    other.write_bytes(b"PK")
    save(path, _params(), v=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "m.npz"]
    assert load(path).metadata == {"v": 2}


def test_a_live_writers_temp_file_is_kept(tmp_path):
    path = tmp_path / "m.npz"
    live = tmp_path / f".m.npz.{os.getpid()}-0123456789ab.tmp"  # this process: alive
    live.write_bytes(b"PK")
    save(path, _params())
    assert live.exists()


def test_a_long_legal_name_can_be_replaced(tmp_path):
    """A 240-byte name saved once, then not again: the temporary name beside it was 26
    bytes longer than a file name may be (OSError naming /proc/self/fd/3)."""
    from jbpnn.io import load, save
    from jbpnn.params import init_params

    path = tmp_path / ("m" * 236 + ".npz")
    save(path, init_params(0, (2, 1)), run=1)
    save(path, init_params(0, (2, 1)), run=2)
    assert load(path).metadata == {"run": 2} and os.listdir(tmp_path) == [path.name]


def test_temporary_files_of_long_and_non_utf8_names_are_cleaned_up(tmp_path, monkeypatch):
    """The stale-temp sweep matched the whole target name, but a long name (over about
    226 bytes) or one with bytes that are not UTF-8 is shortened in its temporary file's
    name: a write killed before its rename left a file that no later write removed."""
    import os

    from jbpnn import files

    for name in ("a" * 250 + ".npz", os.fsdecode(b"x\xff.npz"), "m.npz"):
        target = tmp_path / name
        target.write_bytes(b"old")
        stale = tmp_path / f".{files._temp_stem(target)}.{2**22 + 7}-{'ab' * 6}.tmp"
        stale.write_bytes(b"half")  # a process that is gone (no such PID)
        monkeypatch.setattr(files, "_process_alive", lambda pid: False)
        files.atomic_write(target, b"new")
        assert target.read_bytes() == b"new" and not stale.exists(), name


def test_a_replaced_file_keeps_its_owner_when_root_writes_it(tmp_path):
    """Root replacing a user's model made it root's (mode 0600: the user could no longer
    read it); the owner is kept where the writer may set it."""
    import os

    from jbpnn import files

    if os.geteuid() != 0:
        pytest.skip("only root can give a file another owner")
    target = tmp_path / "u.npz"
    target.write_bytes(b"old")
    os.chown(target, 65534, 65534)
    target.chmod(0o600)
    files.atomic_write(target, b"new")
    st = target.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o600)


def test_a_failed_rename_names_the_target_and_leaves_nothing(tmp_path, monkeypatch):
    """A rename refused at the end (a bind-mounted target: EBUSY) said "Device or resource
    busy: .m.npz.PID-XXXX.tmp", the temporary file's name; it names the target now."""
    from jbpnn import files

    target = tmp_path / "m.npz"
    target.write_bytes(b"old")

    def busy(src, dst):
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(src), str(dst))

    monkeypatch.setattr(files.os, "replace", busy)
    with pytest.raises(OSError, match=rf"cannot write {re.escape(str(target))}: Device"):
        files.atomic_write(target, b"new")
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_cli_error_lines_are_cut(tmp_path, capsys):
    """A 2 MB format_version in a model file was echoed whole on one stderr line."""
    from conftest import run_cli

    import jbpnn

    model = tmp_path / "m.npz"
    jbpnn.save(model, jbpnn.init_params(0, (2, 3, 1)))
    held = dict(np.load(model))
    held["format_version"] = np.array("x" * 2_000_000)
    np.savez(tmp_path / "fv.npz", **held)
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    rc, _, err = run_cli(capsys, "predict", tmp_path / "fv.npz", tmp_path / "d.csv")
    assert rc == 2 and len(err) < 5000 and "characters cut" in err, err[:300]


def test_a_file_name_too_long_is_said_as_other_write_errors(tmp_path, capsys):
    """save("a" * 252 + ".npz") raised a bare OSError [Errno 36] from a probe of the path;
    the other write errors read "cannot save to PATH: ...". The CLI says it in one line."""
    path = tmp_path / ("a" * 252 + ".npz")
    with pytest.raises(OSError, match=r"cannot save to .*aaaa\.npz: File name too long") as e:
        save(path, _params())
    assert e.value.errno == errno.ENAMETOOLONG
    assert os.listdir(tmp_path) == []
    from jbpnn.cli import main

    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "".join(f"{i % 3},{i % 5},{i % 2}\n" for i in range(12)))
    rc = main(["train", "--data", str(data), "--target", "y", "--epochs", "1", "--save", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith("jbpnn train: error: cannot write --save ") and "Errno" not in err
    assert err.rstrip().endswith("File name too long")
    assert os.listdir(tmp_path) == ["d.csv"]
