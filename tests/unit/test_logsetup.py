"""setup_logging: the one-line format, the level threshold, and no duplicate handlers."""

import logging
import re

import pytest

from actormq.errors import ConfigError
from actormq.logsetup import setup_logging

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} (?P<level>[A-Z]+) +\[(?P<process>[^\]]+)\] "
                  r"(?P<logger>[\w.]+): (?P<message>.*)$")


@pytest.fixture
def root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:], root.level = handlers, level


def test_format_level_and_single_handler(root_logger, capsys):
    setup_logging("info", "worker-0")
    setup_logging("INFO", "worker-0")
    log = logging.getLogger("actormq.connection")
    log.debug("hidden")
    log.info("client %s connected", "c1")
    log.warning("slow")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first = LINE.match(lines[0])
    assert first and first["level"] == "INFO" and first["process"] == "worker-0"
    assert (first["logger"], first["message"]) == ("actormq.connection", "client c1 connected")
    assert lines[0].split("]")[0].split(" ", 1)[1] == "INFO  [worker-0"
    assert LINE.match(lines[1])["level"] == "WARNING"


def test_debug_level_and_percent_in_process_name(root_logger, capsys):
    setup_logging("debug", "node%1")
    logging.getLogger("actormq.node").debug("starting")
    assert "[node%1] actormq.node: starting" in capsys.readouterr().err


def test_unknown_level(root_logger):
    with pytest.raises(ConfigError, match="key 'log.level': expected one of debug, info, warning, error"):
        setup_logging("loud")


def test_line_batch_writes_the_same_format_when_flushed(root_logger, capsys):
    from actormq.logsetup import LineBatch

    setup_logging("info", "worker-3")
    batch = LineBatch("actormq.connection")
    assert batch.add("client c1 connected from 127.0.0.1:5: MQTT v5") is True
    assert batch.add("client c1 (127.0.0.1:5) disconnected: normal disconnect") is False
    assert capsys.readouterr().err == ""
    batch.flush()
    lines = capsys.readouterr().err.splitlines()
    assert [LINE.match(line).group("level", "process", "logger", "message") for line in lines] == [
        ("INFO", "worker-3", "actormq.connection", "client c1 connected from 127.0.0.1:5: MQTT v5"),
        ("INFO", "worker-3", "actormq.connection",
         "client c1 (127.0.0.1:5) disconnected: normal disconnect")]
    assert batch.add("again") is True


def test_line_batch_writes_when_full_so_a_burst_holds_few_lines(root_logger, capsys):
    from actormq.logsetup import LineBatch

    setup_logging("info", "worker-0")
    batch = LineBatch("actormq.connection", max_lines=3)
    assert [batch.add(f"client c{n} left") for n in range(3)] == [True, False, False]
    assert [LINE.match(line).group("message") for line in capsys.readouterr().err.splitlines()] == [
        "client c0 left", "client c1 left", "client c2 left"]
    assert batch.add("client c3 left") is True      # a new batch: its owner flushes it later
    assert capsys.readouterr().err == ""
    batch.flush()
    assert [LINE.match(line).group("message") for line in capsys.readouterr().err.splitlines()] == [
        "client c3 left"]
