"""actormq.sigwake: a signal's arrival makes the pipe readable, drain empties
it, and leaving restores the wake-up fd that was there; off the main thread
there is no pipe and the caller polls."""

from __future__ import annotations

import os
import signal
import threading
from multiprocessing.connection import wait

from actormq.sigwake import SignalWakeup


def test_a_signal_wakes_a_wait_on_the_pipe_and_drain_empties_it():
    caught = []
    previous_handler = signal.signal(signal.SIGUSR1, lambda signum, frame: caught.append(signum))
    previous_fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(previous_fd)
    try:
        with SignalWakeup() as wakeup:
            assert wakeup.fd is not None and wait([wakeup.fd], timeout=0) == []
            os.kill(os.getpid(), signal.SIGUSR1)
            assert wait([wakeup.fd], timeout=10) == [wakeup.fd]
            assert caught == [signal.SIGUSR1]
            wakeup.drain()
            assert wait([wakeup.fd], timeout=0) == []
        assert signal.set_wakeup_fd(previous_fd) == previous_fd
    finally:
        signal.signal(signal.SIGUSR1, previous_handler)


def test_off_the_main_thread_there_is_no_pipe():
    seen = []

    def enter() -> None:
        with SignalWakeup() as wakeup:
            seen.append(wakeup.fd)

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    assert seen == [None]
