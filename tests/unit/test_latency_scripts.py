"""The measuring scripts of the latency work: perf's scheduler events read into
runs and wake-up delays, and the stage marks read back as written."""

import array
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
latency_sched = pytest.importorskip("latency_sched")
latency_stages = pytest.importorskip("latency_stages")

PERF_LINES = """\
         swapper     0/0     [000] 100.000100: sched:sched_wakeup: comm=actormq: node pid=42 prio=79 target_cpu=000
         swapper     0/0     [000] 100.000130: sched:sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=actormq: node next_pid=42 next_prio=79
   actormq: node    42/42    [000] 100.000230: sched:sched_switch: prev_comm=actormq: node prev_pid=42 prev_prio=79 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
          python    77/77    [001] 100.001000: sched:sched_wakeup: comm=actormq: node pid=42 prio=79 target_cpu=000
   callgrind-amd    90/90    [000] 100.001500: sched:sched_switch: prev_comm=callgrind-amd prev_pid=90 prev_prio=120 prev_state=R ==> next_comm=actormq: node next_pid=42 next_prio=79
   actormq: node    42/42    [000] 100.003500: sched:sched_switch: prev_comm=actormq: node prev_pid=42 prev_prio=79 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
"""


def test_perf_lines_become_runs_and_wakeup_delays():
    events = list(latency_sched.parse_events(PERF_LINES))
    assert [event.split(":")[1] for _, event, _ in events] == \
        ["sched_wakeup", "sched_switch", "sched_switch"] * 2
    runs, delays = latency_sched.runs_and_wakeups(events, {"42"}, 100.0, 101.0)
    assert [round(length * 1e6) for _, length in runs["42"]] == [100, 2000]
    assert [round(delay * 1e6) for delay in delays["42"]] == [30, 500]
    assert latency_sched.quantiles([length for _, length in runs["42"]]).endswith("max 2000 µs")


def test_runs_outside_the_window_are_left_out():
    runs, delays = latency_sched.runs_and_wakeups(latency_sched.parse_events(PERF_LINES),
                                                  {"42"}, 100.0008, 101.0)
    assert [round(start, 4) for start, _ in runs["42"]] == [100.0015]
    assert len(delays["42"]) == 1


def test_stage_marks_read_back_as_written(tmp_path):
    names = latency_stages.STAGE_NAMES
    marks = array.array("q", [names.index("woke"), 5, 7, names.index("write"), 5, 9])
    (tmp_path / "stages.123").write_bytes(marks.tobytes())
    assert latency_stages.read_rows(tmp_path, "stages") == {123: [("woke", 5, 7), ("write", 5, 9)]}
