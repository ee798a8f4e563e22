"""Benchmark plugin: the no-op plugin under the name noop_b (see noop.py)."""

from noop import NoOp


class NoOpB(NoOp):
    name = "noop_b"
