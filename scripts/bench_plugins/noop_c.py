"""Benchmark plugin: the no-op plugin under the name noop_c (see noop.py)."""

from noop import NoOp


class NoOpC(NoOp):
    name = "noop_c"
