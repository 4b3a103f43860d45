"""Files and the command line: permissions, staged output sets, signals, guarded archives, messages.

Each test pins a defect an outside audit found in 0.1.0 (issue 10, "Files and reproductions" and the
CLI items): it fails on 0.1.0 and passes now.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from qtheory import _io

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "qtheory.cli", *args], capture_output=True, text=True, **kw)


# --------------------------------------------------------------------------- permissions
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_get_the_umask_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        p = _io.write_text(tmp_path / "a.txt", "x")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")  # what any other writer gives
    finally:
        os.umask(old)
    mode = stat.S_IMODE(p.stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE(plain.stat().st_mode)


# --------------------------------------------------------------------------- staged output sets
def _toy_root(tmp_path, body):
    (tmp_path / "paper_repro" / "toy").mkdir(parents=True)
    (tmp_path / "paper_repro" / "toy" / "repro.py").write_text(
        "import time\nfrom qtheory._io import write_text\n" + body
    )
    return tmp_path


def test_failing_repro_leaves_previous_outputs_intact(tmp_path):
    root = _toy_root(tmp_path, (
        "def main(root):\n"
        "    a = write_text(root / 'figures' / 'toy' / 'a.txt', 'new')\n"
        "    raise RuntimeError('second output failed')\n"
    ))
    _io.write_text(root / "figures" / "toy" / "a.txt", "old")
    from qtheory import repro

    with pytest.raises(RuntimeError, match="second output failed"):
        repro.run(["toy"], root, verbose=False)
    assert (root / "figures" / "toy" / "a.txt").read_text() == "old"
    assert sorted(p.name for p in root.iterdir()) == ["figures", "paper_repro"]  # no staging left


def test_repro_moves_a_complete_set_into_place(tmp_path):
    root = _toy_root(tmp_path, (
        "def main(root):\n"
        "    return [write_text(root / 'figures' / 'toy' / 'a.txt', 'A'),\n"
        "            write_text(root / 'paper_repro' / 'toy' / 'b.md', 'B')]\n"
    ))
    from qtheory import repro

    out = repro.run(["toy"], root, verbose=False)
    assert out["toy"] == [root.resolve() / "figures/toy/a.txt", root.resolve() / "paper_repro/toy/b.md"]
    assert [p.read_text() for p in out["toy"]] == ["A", "B"]


def test_sigterm_leaves_no_temp_files_and_old_outputs(tmp_path):
    root = _toy_root(tmp_path, (
        "def main(root):\n"
        "    write_text(root / 'figures' / 'toy' / 'a.txt', 'new')\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    ))
    _io.write_text(root / "figures" / "toy" / "a.txt", "old")
    with subprocess.Popen([sys.executable, "-m", "qtheory.cli", "repro", "toy", "--root", str(root)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as p:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    assert p.returncode == 128 + signal.SIGTERM
    assert (root / "figures" / "toy" / "a.txt").read_text() == "old"
    leftovers = [q for q in root.rglob("*") if q.name.startswith(".")]
    assert leftovers == []


def test_sigterm_during_atomic_write_removes_the_temp_file(tmp_path):
    code = (
        "import sys, time\nfrom qtheory import _io\n"
        "with _io.terminate_as_exit(), _io.atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('half')\n    print('ready', flush=True)\n    time.sleep(60)\n"
    )
    target = tmp_path / "f.png"
    with subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True) as p:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    assert list(tmp_path.iterdir()) == []


def test_repro_root_without_paper_repro_is_refused(tmp_path):
    r = cli("repro", "aciq", "--root", str(tmp_path))
    assert r.returncode == 2
    assert "'root'" in r.stderr and "paper_repro" in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_repro_into_read_only_tree_exits_2(tmp_path):  # pragma: no cover - CI runs as root
    root = _toy_root(tmp_path, "def main(root):\n    return [write_text(root / 'figures' / 'x', 'x')]\n")
    root.chmod(0o555)
    try:
        r = cli("repro", "toy", "--root", str(root))
    finally:
        root.chmod(0o755)
    assert r.returncode == 2 and "permission denied" in r.stderr and "Traceback" not in r.stderr


def test_repro_permission_error_is_one_line(tmp_path, monkeypatch, capsys):
    """Root ignores permissions, so the read-only case is simulated where the OS reports it."""
    from qtheory import _io as io_mod
    from qtheory import cli as cli_mod

    root = _toy_root(tmp_path, "def main(root):\n    return []\n")

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(root / ".qtheory-staging"))

    monkeypatch.setattr(io_mod.Path, "mkdir", denied)
    assert cli_mod.main(["repro", "toy", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "permission denied" in err


# --------------------------------------------------------------------------- guarded archives
def _bomb(path, n_bytes):
    from numpy.lib import format as npformat

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z, \
            z.open("x.npy", "w", force_zip64=True) as fh:
        npformat.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (n_bytes // 8,)})
        chunk = bytes(2**22)
        for _ in range(n_bytes // len(chunk)):
            fh.write(chunk)


def test_zip_bomb_is_refused_before_decompression(tmp_path):
    f = tmp_path / "bomb.npz"
    _bomb(f, 2**28)  # 256 MiB of zeros in ~250 kB
    assert f.stat().st_size < 2**20
    r = cli("clip", "--samples", str(f), "--bits", "4")
    assert r.returncode == 2 and "'--samples'" in r.stderr and "compressed" in r.stderr


def test_npz_with_lying_header_is_refused(tmp_path):
    from numpy.lib import format as npformat

    f = tmp_path / "lie.npz"
    with zipfile.ZipFile(f, "w") as z, z.open("x.npy", "w") as fh:
        npformat.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
        fh.write(bytes(80))
    with pytest.raises(ValueError, match="declares shape"):
        _io.load_npz(f)


def test_npz_round_trip_equals_numpy(tmp_path, rng):
    arrays = {"w": rng.normal(size=(3, 4)).astype(np.float32), "b": rng.integers(-5, 5, size=7)}
    np.savez_compressed(tmp_path / "m.npz", **arrays)
    got = _io.load_npz(tmp_path / "m.npz")
    assert got.keys() == arrays.keys()
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
        assert got[k].dtype == arrays[k].dtype


# --------------------------------------------------------------------------- CLI messages
@pytest.mark.parametrize("args, needle", [
    (("table", "--bits", "1-1000000000"), "'--bits'"),
    (("table", "--bits", "-3"), "'--bits'"),
    (("table", "--bits", "2,x"), "'--bits'"),
    (("clip", "--prior", "laplace", "--bits", "-3"), "'bits'"),
    (("clip", "--prior", "t:abc", "--bits", "4"), "'--prior'"),
    (("clip", "--prior", "laplace", "--axis", "0", "--bits", "4"), "'--axis'"),
])
def test_cli_bad_options_are_one_clear_line(args, needle):
    r = cli(*args)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr and "invalid literal" not in r.stderr


def test_cli_samples_directory_and_fifo(tmp_path):
    r = cli("clip", "--samples", str(tmp_path), "--bits", "4")
    assert r.returncode == 2 and "directory" in r.stderr and "does not exist" not in r.stderr
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    r = cli("clip", "--samples", str(fifo), "--bits", "4", timeout=60)
    assert r.returncode == 2 and "regular file" in r.stderr


def test_cli_method_aciq_with_samples_is_refused(tmp_path, rng):
    np.save(tmp_path / "w.npy", rng.normal(size=(4, 50)))
    for extra in ((), ("--axis", "0")):
        r = cli("clip", "--samples", str(tmp_path / "w.npy"), "--bits", "4", "--method", "aciq", *extra)
        assert r.returncode == 2 and "'--method'" in r.stderr


def test_cli_json_is_valid_for_a_zero_channel(tmp_path, rng):
    w = rng.normal(size=(3, 40))
    w[1] = 0.0
    np.save(tmp_path / "w.npy", w)
    r = cli("clip", "--samples", str(tmp_path / "w.npy"), "--axis", "0", "--bits", "4", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    assert len(out["alpha"]) == 3 and out["mse"][1] == 0.0


def test_cli_float32_samples_stay_float32(tmp_path, rng):
    from qtheory.cli import load_samples

    np.save(tmp_path / "w.npy", rng.normal(size=100).astype(np.float32))
    assert load_samples(tmp_path / "w.npy").dtype == np.float32
    np.save(tmp_path / "h.npy", rng.normal(size=100).astype(np.float16))
    assert load_samples(tmp_path / "h.npy").dtype == np.float64


def _two_toys(tmp_path, fail=False):
    for name, body in (("toy", "def main(root):\n    return [write_text(root / 'figures' / 'toy' / 'a.txt', 'A')]\n"),
                       ("toy2", "def main(root):\n    p = write_text(root / 'paper_repro' / 'toy2' / 'b.md', 'B')\n"
                        + ("    raise RuntimeError('toy2 broke')\n" if fail else "    return [p]\n"))):
        (tmp_path / "paper_repro" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "paper_repro" / name / "repro.py").write_text("from qtheory._io import write_text\n" + body)
    return tmp_path


@pytest.mark.parametrize("jobs", [1, 2])
def test_repro_in_parallel_processes_writes_the_same_set(tmp_path, jobs):
    from qtheory import repro

    root = _two_toys(tmp_path)
    out = repro.run(None, root, jobs=jobs, verbose=False)
    assert list(out) == ["toy", "toy2"]
    assert out["toy"] == [root.resolve() / "figures/toy/a.txt"]
    assert out["toy2"] == [root.resolve() / "paper_repro/toy2/b.md"]
    assert [p.read_text() for p in out["toy"] + out["toy2"]] == ["A", "B"]
    assert not [q for q in root.rglob("*") if q.name.startswith(".")]


def test_a_failing_parallel_reproduction_leaves_previous_outputs(tmp_path):
    from qtheory import repro

    root = _two_toys(tmp_path, fail=True)
    _io.write_text(root / "figures" / "toy" / "a.txt", "old")
    with pytest.raises(RuntimeError, match="'toy2' failed"):
        repro.run(None, root, jobs=2, verbose=False)
    assert (root / "figures" / "toy" / "a.txt").read_text() == "old"
    assert not (root / "paper_repro" / "toy2" / "b.md").exists()
    assert not [q for q in root.rglob("*") if q.name.startswith(".")]


def test_repro_jobs_must_be_positive(tmp_path):
    from qtheory import repro

    with pytest.raises(ValueError, match="jobs"):
        repro.run(None, _two_toys(tmp_path), jobs=0, verbose=False)
    r = subprocess.run([sys.executable, "-m", "qtheory.cli", "repro", "--jobs", "0", "--root", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--jobs" in r.stderr and "positive integer" in r.stderr


def test_sigterm_stops_parallel_reproductions_and_keeps_old_outputs(tmp_path):
    root = _two_toys(tmp_path)
    (root / "paper_repro" / "toy" / "repro.py").write_text(
        "import time\nfrom qtheory._io import write_text\n"
        "def main(root):\n    write_text(root / 'figures' / 'toy' / 'a.txt', 'new')\n"
        "    print('ready', flush=True)\n    time.sleep(120)\n")
    _io.write_text(root / "figures" / "toy" / "a.txt", "old")
    with subprocess.Popen([sys.executable, "-m", "qtheory.cli", "repro", "--jobs", "2", "--root", str(root)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as p:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)  # the sleeping child is terminated, not waited for
    assert p.returncode == 128 + signal.SIGTERM
    assert (root / "figures" / "toy" / "a.txt").read_text() == "old"
    assert not (root / "paper_repro" / "toy2" / "b.md").exists()
    assert not [q for q in root.rglob("*") if q.name.startswith(".")]
