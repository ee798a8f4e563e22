"""``actormq plugin new``: write an installable plugin package to start from.

`write_plugin(name, hooks, with_config, directory)` writes ``directory/name/``:

- ``pyproject.toml``: the package, with the entry point
  ``[project.entry-points."actormq.plugins"]`` so an installed plugin is
  found by name (``plugins.order = name``);
- ``<name>.py``: the `Plugin` class with one documented stub per chosen hook
  (names of any vocabulary: ``on_publish``, ``message.publish``,
  ``OnMsgArrived`` ...), and a `config_schema` when asked;
- ``README.md``: how to install, load and configure it;
- ``test_<name>.py``: a pytest test that starts a real broker with the plugin
  (found through ``plugins.paths``, no install needed), connects a client,
  subscribes, publishes and receives, and passes as generated.
"""

from __future__ import annotations

import keyword
import re
import textwrap
from pathlib import Path

from actormq.hooks.points import HookPoint, Mode

_ANSWERS = {
    Mode.DECIDE: ("Return Ok(**modifiers) to allow, Error(reason_code, reason) to refuse,\n"
                  "        or NEXT to let the next plugin decide."),
    Mode.FOLD: ("Return a changed copy (modified(message, ...)), DROP to drop it,\n"
                "        or None to leave it as it is."),
    Mode.NOTIFY: "An observer: the return value is ignored and the client never waits for it.",
}
_RETURNS = {Mode.DECIDE: "NEXT", Mode.FOLD: "None", Mode.NOTIFY: "None"}


def hook_points(names: list[str]) -> list[HookPoint]:
    """The points of hook names of any vocabulary (KeyError names an unknown one)."""
    points = []
    for name in names:
        point = HookPoint.from_name(name)
        if point not in points:
            points.append(point)
    return points


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_")) + "Plugin"


def check_name(name: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise ValueError(f"{name!r}: a plugin name is a Python module name "
                         "(lower case letters, digits and _, starting with a letter)")


def write_plugin(name: str, points: list[HookPoint], with_config: bool, directory: Path) -> Path:
    """Write the package; returns its directory. FileExistsError when it exists."""
    check_name(name)
    root = Path(directory) / name
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    root.mkdir(parents=True)
    files = {
        "pyproject.toml": _PYPROJECT.format(name=name, cls=class_name(name)),
        f"{name}.py": _module(name, points, with_config),
        "README.md": _README.format(name=name, hooks=", ".join(p.method for p in points),
                                    config=_README_CONFIG.format(name=name) if with_config else ""),
        f"test_{name}.py": _TEST.format(name=name, cls=class_name(name),
                                        methods=", ".join(repr(p.method) for p in points)),
    }
    for filename, text in files.items():
        (root / filename).write_text(text, encoding="utf-8")
    return root


def _module(name: str, points: list[HookPoint], with_config: bool) -> str:
    imports = ["Plugin"]
    if any(p.mode is Mode.DECIDE for p in points):
        imports += ["NEXT", "Error", "Ok"]
    if any(p.mode is Mode.FOLD for p in points):
        imports += ["DROP", "modified"]
    lines = [f'"""The {name} plugin for actormq."""', "", "from __future__ import annotations", ""]
    if with_config:
        lines += ["from actormq.conf.keytypes import Key, Kind"]
    lines += [f"from actormq.hooks import {', '.join(sorted(set(imports)))}  # noqa: F401", "", "",
              f"class {class_name(name)}(Plugin):",
              f'    """TODO: say what {name} does (the first line shows in `actormq plugin show`)."""',
              "", f'    name = "{name}"']
    if with_config:
        lines += ["    config_schema = (",
                  f'        Key("example", Kind.STR, "hello", "An example setting: plugin.{name}.example."),',
                  "    )"]
    lines += ["", "    def start(self) -> None:",
              '        """Set up here (may be async def): connect to services, read files."""',
              "", "    def stop(self) -> None:", '        """Release what start took (may be async def)."""']
    for point in points:
        lines += ["", _stub(point)]
    return "\n".join(lines) + "\n"


def _stub(point: HookPoint) -> str:
    names = [f"{label}: {text}" for label, text in
             (("VerneMQ", point.vernemq), ("EMQX", point.emqx), ("Gmqtt", point.gmqtt)) if text]
    also = ("\n\n" + textwrap.fill("Known elsewhere as " + "; ".join(names) + ".", 88,
                                  initial_indent=" " * 8, subsequent_indent=" " * 8)) if names else ""
    modifiers = ("\n" + textwrap.fill(f"Modifiers allowed in Ok(...): {', '.join(sorted(point.modifiers))}.",
                                      88, initial_indent=" " * 8, subsequent_indent=" " * 8)
                 if point.modifiers else "")
    return (f"    def {point.method}(self, {point.args}):\n"
            f'        """{point.dotted} ({point.mode.value}).\n\n'
            f"        {_ANSWERS[point.mode]}{modifiers}{also}\n"
            f'        """\n'
            f"        return {_RETURNS[point.mode]}")


_PYPROJECT = '''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "actormq-{name}"
version = "0.1.0"
description = "The {name} plugin for the actormq MQTT broker"
requires-python = ">=3.11"
dependencies = ["actormq"]

[project.optional-dependencies]
test = ["pytest"]

[project.entry-points."actormq.plugins"]
{name} = "{name}:{cls}"

[tool.setuptools]
py-modules = ["{name}"]
'''

_README_CONFIG = '''
Settings (checked against the plugin's `config_schema` when the broker
starts; a bad value stops it with the file, line and key):

```
plugin.{name}.example = hello
```
'''

_README = '''# {name}

A plugin for the actormq MQTT broker. Hooks: {hooks}.

## Use it

Installed (`pip install .`), the broker finds it by its entry point:

```
plugins.order = {name}
```

Or without installing, from this directory:

```
plugins.paths = /path/to/this/directory
plugins.order = {name}
```
{config}
`actormq plugin show` lists it with its calls, failures and latency;
`actormq plugin reload {name}` loads a changed version without dropping
clients.

## Test it

```
pip install pytest
python -m pytest test_{name}.py
```

The test starts a real broker with the plugin loaded and talks MQTT to it.
'''

_TEST = '''"""Starts a real actormq broker with the {name} plugin and talks MQTT 3.1.1 to it."""

import re
import textwrap
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from {name} import {cls}

HERE = Path(__file__).resolve().parent


@pytest.fixture
def broker(tmp_path):
    command = [sys.executable, "-m", "actormq", "run", "-w", "1", "--host", "127.0.0.1",
               "--port", "0", "--data-dir", str(tmp_path / "data"),
               "--set", f"plugins.paths={{HERE}}", "--set", "plugins.order={name}",
               "--set", "plugins.default.authenticate=allow", "--set", "management.listener.http=0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = None
    deadline = time.monotonic() + 20
    while port is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        found = re.search(r"listening on \\S+:(\\d+)", line)
        if found:
            port = int(found.group(1))
        elif not line and proc.poll() is not None:
            break
    if port is None:
        proc.kill()
        pytest.fail("the broker did not start: " + proc.stderr.read())
    yield port
    proc.send_signal(signal.SIGTERM)
    _, errors = proc.communicate(timeout=10)
    assert proc.returncode == 0, errors
    assert "plugin {name} failed" not in errors, errors


def _packet(kind: int, body: bytes) -> bytes:
    return bytes([kind, len(body)]) + body


def _string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _read_packet(sock) -> tuple[int, bytes]:
    header = sock.recv(2)
    assert len(header) == 2, "the broker closed the connection"
    body = b""
    while len(body) < header[1]:
        body += sock.recv(header[1] - len(body))
    return header[0], body


def test_the_plugin_hooks_what_it_says():
    assert set({cls}.hooks().values()) == {{{methods}}}


def test_a_client_connects_subscribes_publishes_and_receives(broker):
    with socket.create_connection(("127.0.0.1", broker), timeout=5) as sock:
        connect = _string("MQTT") + bytes([4, 2, 0, 60]) + _string("{name}-test")
        sock.sendall(_packet(0x10, connect))
        assert _read_packet(sock) == (0x20, bytes([0, 0])), "CONNACK: accepted"
        sock.sendall(_packet(0x82, (1).to_bytes(2, "big") + _string("test/#") + bytes([0])))
        assert _read_packet(sock) == (0x90, bytes([0, 1, 0])), "SUBACK: QoS 0 granted"
        sock.sendall(_packet(0x30, _string("test/x") + b"hello"))
        kind, body = _read_packet(sock)
        assert kind & 0xF0 == 0x30 and body == _string("test/x") + b"hello"
'''
