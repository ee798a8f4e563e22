"""Benchmark plugin: the no-op plugin under the name noop_d (see noop.py)."""

from noop import NoOp


class NoOpD(NoOp):
    name = "noop_d"
