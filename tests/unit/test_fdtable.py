"""actormq.fdtable: the descriptor limit is raised and the kernel's table sized once."""

import resource
import subprocess
import sys

import pytest

from actormq import fdtable

PROBE = """
import resource
from actormq import fdtable
limit = fdtable.reserve({wanted})
size = next(int(line.split()[1]) for line in open("/proc/self/status")
            if line.startswith("FDSize:"))
print(limit, size, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def _probe(wanted: int) -> tuple[int, int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(wanted=wanted)], check=True,
                         capture_output=True, text=True).stdout
    limit, size, soft = map(int, out.split())
    return limit, size, soft


def test_reserve_grows_the_table_to_the_wanted_size_at_once():
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    limit, size, soft = _probe(wanted)
    assert limit == soft >= wanted
    assert size >= wanted


def test_reserve_never_lowers_the_limit():
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit, _size, now = _probe(16)
    assert limit == now == soft


def test_raise_limit_stops_at_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit on this machine")
    try:
        assert fdtable.raise_limit(hard + 1000) == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
