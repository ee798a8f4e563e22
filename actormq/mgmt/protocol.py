"""The frames of the control channel between the node and its workers.

The node binds a ZeroMQ ROUTER at `ipc://{dir}/control` (a directory of the
control plane's own, handed to each worker as `WorkerPlan.control`); each worker
connects a DEALER whose identity is `worker_identity(worker_id)`. Every
ZeroMQ message is one bus frame (`actormq.transport.bus.encode_frame`):

| kind       | direction      | header                                   |
|------------|----------------|------------------------------------------|
| `hello`    | worker → node  | {"worker", "pid"} once connected          |
| `ask`      | node → worker  | {"id", "command", "args"}                 |
| `answer`   | worker → node  | {"id", "ok", "data"} or {"id", "ok": false, "error", "bad_request"} |
| `open`     | node → worker  | {"id", "stream", "args"}: start a stream  |
| `event`    | worker → node  | {"id", "event"} (any number, for a stream)|
| `close`    | node → worker  | {"id"}: stop that stream                  |

Request ids are chosen by the node and unique per node run; an answer whose
id is no longer awaited (it came after the timeout) is dropped.
"""

from __future__ import annotations

import os

HELLO, ASK, ANSWER, OPEN, EVENT, CLOSE = b"hello", b"ask", b"answer", b"open", b"event", b"close"


def control_endpoint(run_dir: str | None) -> str:
    """In the run dir; without one (the worker in the node's process) an inproc endpoint."""
    if run_dir is None:
        return "inproc://actormq-control"
    return f"ipc://{os.path.join(run_dir, 'control')}"


def worker_identity(worker_id: int) -> bytes:
    return f"worker-{worker_id}".encode()


def worker_of(identity: bytes) -> int | None:
    prefix = b"worker-"
    if identity.startswith(prefix) and identity[len(prefix):].isdigit():
        return int(identity[len(prefix):])
    return None
