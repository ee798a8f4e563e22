"""`actormq plugin new`: the package it writes is complete and its own test,
which starts a real broker with the plugin, passes as generated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from actormq.cli import main
from tests.integration.brokers import actormq_only

REPO = Path(__file__).resolve().parents[2]


def test_plugin_new_writes_a_package_whose_own_test_passes(tmp_path):
    actormq_only("actormq plugins")
    result = CliRunner().invoke(main, ["plugin", "new", "myplug", "--hooks",
                                       "on_publish,auth_on_register,OnSubscribe,on_client_gone",
                                       "--config", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "myplug"
    assert sorted(p.name for p in root.iterdir()) == ["README.md", "myplug.py", "pyproject.toml",
                                                      "test_myplug.py"]
    source = (root / "myplug.py").read_text()
    for method in ("on_message_publish", "on_client_authenticate", "on_client_authorize_subscribe",
                   "on_client_gone", "config_schema"):
        assert method in source
    assert 'myplug = "myplug:MyplugPlugin"' in (root / "pyproject.toml").read_text()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "test_myplug.py"], cwd=root, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
