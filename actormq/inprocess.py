"""The one-process layout of `actormq run -w 1`, its default: the worker's event
loop runs on the node's main thread, beside the control plane's thread, so the
broker is one process (as Mosquitto is) and maps the interpreter and its
libraries once instead of twice (the README's Footprint section has the
figures).

Everything else the node does stays: the claims on the listeners' ports, the
data dir lock, the management API and its control channel (an `inproc`
ZeroMQ endpoint: no run dir), SIGHUP reloads the config, SIGTERM/SIGINT stop
cleanly. What goes is the restart of a dead worker: a crash or a kill -9 ends
the broker and the service manager starts it again (`Restart=always` in a
systemd unit), with its persisted sessions and retained messages.
`node.supervised = on` (`actormq run --supervised`) keeps the worker in a
process of its own that the node restarts; `-w 2` and more always do.

The node's worker table keeps its shape: the worker's handle holds a
`CurrentProcess` (this process's pid, alive while the worker runs) and a
`WorkerEnd` as its control pipe; the worker reports through a `NodeEnd`. What
one end sends, the other handles at once, on the main thread.
"""

from __future__ import annotations

import os
import signal


class CurrentProcess:
    """Stands in for the worker's `multiprocessing.Process` in the node's table."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.exitcode = None
        self.running = True

    def is_alive(self) -> bool:
        return self.running


class WorkerEnd:
    """The node's end: `send` hands a control message to the worker."""

    def __init__(self, worker) -> None:
        self.worker = worker

    def send(self, message: tuple) -> None:
        self.worker.handle_control(message)


class NodeEnd:
    """The worker's end: its reports go to the node; SIGHUP asks the node to reload."""

    def __init__(self, node, handle) -> None:
        self.node = node
        self.handle = handle

    def send(self, message: tuple) -> None:
        if message[0] == "reloaded":
            self.node._reloaded(*message[1:])
            return
        self.node._take_report(self.handle, message)
        self.node._print_banner()

    def reload(self) -> None:
        self.node._reload()


def run_in_process(node) -> None:
    """Run the node's one worker on this thread until SIGTERM/SIGINT; ActormqError
    when it cannot start."""
    from actormq.worker import Worker

    handle = node.workers[0]
    worker = Worker(node.config, node.worker_plan(handle), NodeEnd(node, handle))
    node.in_process_worker = worker
    handle.process = CurrentProcess()
    handle.control = WorkerEnd(worker)
    if node.stopping:
        return
    try:
        worker.run()
    finally:
        handle.process.running = False
        node.in_process_worker = None
        # the loop's signal handlers went with it: a second signal must not kill the clean-up
        signal.signal(signal.SIGTERM, node._on_signal)
        signal.signal(signal.SIGINT, node._on_signal)
