"""A pipe that a signal's arrival writes to (`signal.set_wakeup_fd`), so that a
process blocked in `multiprocessing.connection.wait` wakes for its signal
handlers at once instead of looking at their flags on a timer.

The node's supervision waits on its workers' sentinels and control pipes;
with the pipe among them it needs no timeout while nothing is due, and sleeps
through the traffic instead of waking five times a second (each wake-up took
a core for 100-200 µs beside the workers on a 2-core machine)."""

from __future__ import annotations

import os
import signal


class SignalWakeup:
    """The read end of the wake-up pipe, for `wait()`; `drain()` after it was
    ready. Only the main thread may set the wake-up fd: elsewhere `fd` is None
    and the caller keeps polling."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self._write_fd: int | None = None
        self._previous = -1

    def __enter__(self) -> SignalWakeup:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        try:
            self._previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        except ValueError:          # not the main thread
            os.close(read_fd)
            os.close(write_fd)
            return self
        self.fd, self._write_fd = read_fd, write_fd
        return self

    def drain(self) -> None:
        try:
            while os.read(self.fd, 512):
                pass
        except BlockingIOError:
            pass

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        signal.set_wakeup_fd(self._previous)
        os.close(self.fd)
        os.close(self._write_fd)
        self.fd = self._write_fd = None
