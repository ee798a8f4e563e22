"""The sweep of temporary directories whose broker process died."""

from __future__ import annotations

import os
import subprocess
import sys

from actormq import tempdirs


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_directories_of_dead_processes_go_and_the_rest_stay(tmp_path):
    gone = dead_pid()
    dead_run = tmp_path / f"actormq-run-{gone}-abc"
    dead_notify = tmp_path / f"actormq-notify-{gone}-def"
    live = tmp_path / f"actormq-run-{os.getpid()}-ghi"
    unnamed = tmp_path / "actormq-run-xyz"        # no pid in the name: not ours to judge
    other = tmp_path / f"other-{gone}-jkl"
    for path in (dead_run, dead_notify, live, unnamed, other):
        path.mkdir()
        (path / "worker-0").write_bytes(b"")
    removed = tempdirs.sweep(str(tmp_path))
    assert sorted(removed) == sorted([str(dead_run), str(dead_notify)])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, unnamed, other))


def test_make_names_the_directory_after_this_process(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    path = tempdirs.make("run")
    assert os.path.basename(path).startswith(f"actormq-run-{os.getpid()}-")
    assert tempdirs.sweep(str(tmp_path)) == [] and os.path.isdir(path)


def test_a_missing_parent_sweeps_nothing(tmp_path):
    assert tempdirs.sweep(str(tmp_path / "absent")) == []
