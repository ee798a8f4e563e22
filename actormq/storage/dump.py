"""Read-only inspection of a data dir, for `actormq queues dump` and
`actormq retained dump`, whether the broker runs or not.

The environment is opened read-only as an LMDB reader: it never blocks the
running writer, and it reads in short transactions (chunks) so that it does not
pin old pages while a long dump runs. Do not call these in a process that has
the same data dir open as an LmdbStore (LMDB forbids opening an environment
twice in one process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone

from actormq.storage.base import QUEUE, RETAINED, SESSION, group_of
from actormq.storage.lmdb_env import LmdbEnv
from actormq.storage.records import (
    SessionRecord,
    decode_message_header,
    decode_session,
    payload_size,
    queue_prefix,
    session_key,
    split_queue_key,
)

PREVIEW_BYTES = 32
Progress = Callable[[int, int], None] | None


def iso_utc(timestamp: float | None) -> str | None:
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def preview(payload: bytes) -> str:
    """The first PREVIEW_BYTES bytes: printable ASCII kept, the rest escaped."""
    return "".join(chr(b) if 32 <= b < 127 and b != 92 else "\\\\" if b == 92 else f"\\x{b:02x}"
                   for b in payload[:PREVIEW_BYTES])


def describe_message(data: bytes) -> dict:
    header, offset = decode_message_header(data)
    size = payload_size(header, offset, data)
    payload = data[len(data) - size:]
    return {"topic": header["t"], "qos": header["q"], "size": size,
            "payload_preview": preview(payload), "timestamp": iso_utc(header["ts"])}


class _Counter:
    """Rows read so far, reported to `progress` now and then."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def step(self, rows: int = 1) -> None:
        self.done += rows
        if self.progress is not None and self.done % 1000 == 0:
            self.progress(self.done, max(self.total, self.done))

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))


class _QueueSummary:
    """What a dump says of one client's queue, built row by row in key order."""

    def __init__(self, first_key: bytes, messages: bool) -> None:
        self.group = group_of(first_key)
        self.first = self.last = first_key
        self.length = 0
        self.messages: list[dict] | None = [] if messages else None

    def add(self, key: bytes, value: bytes | None) -> None:
        self.last = key
        self.length += 1
        if self.messages is not None:
            self.messages.append(describe_message(value))

    def result(self, env: LmdbEnv) -> dict:
        if self.messages is not None:
            ends = [self.messages[0], self.messages[-1]]
        else:  # rows deleted since they were listed have no timestamp any more
            ends = [describe_message(data) if data else {"timestamp": None}
                    for data in (env.get(QUEUE, self.first), env.get(QUEUE, self.last))]
        return {"client_id": split_queue_key(self.first)[0], "length": self.length,
                "oldest": ends[0]["timestamp"], "newest": ends[1]["timestamp"], "messages": self.messages}


def _queue_groups(env: LmdbEnv, prefix: bytes, messages: bool, counter: _Counter) -> Iterator[tuple[bytes, dict]]:
    """(client part of the key, summary) per client queue, in key order."""
    current: _QueueSummary | None = None
    for row in env.iter_range(QUEUE, prefix, values=messages):
        key, value = row if messages else (row, None)
        if current is None or not key.startswith(current.group):
            if current is not None:
                yield current.group[:-1], current.result(env)
            current = _QueueSummary(key, messages)
        current.add(key, value)
        counter.step()
    if current is not None:
        yield current.group[:-1], current.result(env)


def _sessions(env: LmdbEnv, client_id: str | None, counter: _Counter) -> Iterator[tuple[bytes, SessionRecord]]:
    if client_id is not None:
        data = env.get(SESSION, session_key(client_id))
        rows = [] if data is None else [(session_key(client_id), data)]
    else:
        rows = env.iter_range(SESSION)
    for key, data in rows:
        counter.step()
        yield key, decode_session(data)


def _queue_entry(session: SessionRecord | None, queue: dict | None, messages: bool) -> dict:
    entry = {
        "client_id": session.client_id if session else queue["client_id"],
        "state": "online" if session and session.connected else "offline",
        "length": queue["length"] if queue else 0,
        "oldest": queue["oldest"] if queue else None,
        "newest": queue["newest"] if queue else None,
    }
    if messages:
        entry["messages"] = queue["messages"] if queue else []
    return entry


def _merged(queues: Iterator, sessions: Iterator) -> Iterator[tuple]:
    """Join two key-sorted streams on the client part: (session or None, queue or None)."""
    queue, session = next(queues, None), next(sessions, None)
    while queue is not None or session is not None:
        if session is None or (queue is not None and queue[0] < session[0]):
            yield None, queue[1]
            queue = next(queues, None)
        elif queue is None or session[0] < queue[0]:
            yield session[1], None
            session = next(sessions, None)
        else:
            yield session[1], queue[1]
            queue, session = next(queues, None), next(sessions, None)


def iter_queues(data_dir: str, client_id: str | None = None, messages: bool = False,
                progress: Progress = None) -> Iterator[dict]:
    """One dict per client queue or session: client_id, state, length, oldest, newest
    (and `messages` when asked). Raises StorageError at once for a dir without data."""
    env = LmdbEnv(data_dir, readonly=True)
    prefix = b"" if client_id is None else queue_prefix(client_id)
    try:
        total = env.count(QUEUE, prefix)[0] + (env.entries(SESSION) if client_id is None else 1)
    except BaseException:
        env.close()
        raise
    return _dump(env, _queue_rows(env, prefix, client_id, messages), total, progress)


def _queue_rows(env: LmdbEnv, prefix: bytes, client_id: str | None, messages: bool):
    def rows(counter: _Counter) -> Iterator[dict]:
        merged = _merged(_queue_groups(env, prefix, messages, counter), _sessions(env, client_id, counter))
        for session, queue in merged:
            yield _queue_entry(session, queue, messages)
    return rows


def iter_retained(data_dir: str, progress: Progress = None) -> Iterator[dict]:
    """One dict per retained message: topic, qos, size, payload_preview, timestamp."""
    env = LmdbEnv(data_dir, readonly=True)
    try:
        total = env.entries(RETAINED)
    except BaseException:
        env.close()
        raise

    def rows(counter: _Counter) -> Iterator[dict]:
        for _, data in env.iter_range(RETAINED):
            counter.step()
            yield describe_message(data)
    return _dump(env, rows, total, progress)


def _dump(env: LmdbEnv, rows, total: int, progress: Progress) -> Iterator[dict]:
    counter = _Counter(progress, total)
    try:
        yield from rows(counter)
        counter.finish()
    finally:
        env.close()
