"""Benchmark plugin: the no-op plugin under the name noop_e (see noop.py)."""

from noop import NoOp


class NoOpE(NoOp):
    name = "noop_e"
