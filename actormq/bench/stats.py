"""What the benchmark counts: the payload header, the latency histogram and the
per-publisher sequence tracking that finds lost and duplicated messages.

Every benchmark payload starts with a 16-byte header, big-endian:

    offset 0   u32  publisher index (the publishing client's `%i`)
    offset 4   u32  sequence number of that publisher, from 0
    offset 8   u64  send time, time.monotonic_ns() (system-wide on Linux, so
                    publisher and subscriber may be different processes)

and is padded with zero bytes to the requested size. A subscriber connection
owns one `SequenceTracker`; all trackers of a process share one
`LatencyHistogram`.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

HEADER = struct.Struct(">IIQ")
HEADER_SIZE = HEADER.size

# Log-linear buckets: values below 2**(SUB_BITS + 1) get their own bucket; above,
# each power of two is split into 2**SUB_BITS buckets (relative error < 1/128).
SUB_BITS = 7
_SUB = 1 << SUB_BITS
_LINEAR = 2 * _SUB
BUCKETS = (64 - SUB_BITS) * _SUB + _LINEAR


def bucket_index(value: int) -> int:
    """The histogram bucket of a non-negative integer value."""
    if value < _LINEAR:
        return value if value > 0 else 0
    shift = value.bit_length() - SUB_BITS - 1
    return (shift << SUB_BITS) + (value >> shift)


def bucket_low(index: int) -> int:
    """The smallest value that falls into bucket `index`."""
    if index < _LINEAR:
        return index
    shift = (index >> SUB_BITS) - 1
    return (index - (shift << SUB_BITS)) << shift


def bucket_high(index: int) -> int:
    """The largest value that falls into bucket `index`."""
    return bucket_low(index + 1) - 1


class LatencyHistogram:
    """Counts of integer values (nanoseconds) in log-linear buckets."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = [0] * BUCKETS

    def record(self, value: int) -> None:
        self.counts[bucket_index(value)] += 1

    def merge(self, other: LatencyHistogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def percentile(self, q: float) -> int | None:
        """The value at percentile `q` (0..100), as its bucket's upper bound."""
        total = self.total
        if not total:
            return None
        rank = max(1, -(-total * q // 100))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return bucket_high(index)
        raise AssertionError("unreachable: rank <= total")

    def mean(self) -> float | None:
        total = self.total
        if not total:
            return None
        weighted = sum((bucket_low(i) + bucket_high(i)) / 2 * c
                       for i, c in enumerate(self.counts) if c)
        return weighted / total

    def max(self) -> int | None:
        for index in range(BUCKETS - 1, -1, -1):
            if self.counts[index]:
                return bucket_high(index)
        return None


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    """What one or more subscriber connections received."""

    received: int = 0
    duplicates: int = 0
    missing: int = 0

    @property
    def unique(self) -> int:
        return self.received - self.duplicates

    def __add__(self, other: DeliveryCounts) -> DeliveryCounts:
        return DeliveryCounts(self.received + other.received,
                              self.duplicates + other.duplicates,
                              self.missing + other.missing)


class SequenceTracker:
    """Per publisher: the next expected sequence and the gaps not yet filled.

    A sequence equal to the expected one is the fast path. A jump ahead opens
    a gap (counted missing until it arrives); a sequence behind the expected
    one either fills a gap (late, not lost) or is a duplicate.
    """

    __slots__ = ("histogram", "received", "duplicates", "first_ns", "last_ns", "_next", "_gaps")

    def __init__(self, histogram: LatencyHistogram) -> None:
        self.histogram = histogram
        self.received = 0
        self.duplicates = 0
        self.first_ns = 0
        self.last_ns = 0
        self._next: dict[int, int] = {}
        self._gaps: dict[int, list[list[int]]] = {}

    def observe(self, buf, offsets: list[int], now_ns: int) -> None:
        """Account the payload headers found at `offsets` in `buf`, all received
        at `now_ns` (the hot path)."""
        if not self.first_ns:
            self.first_ns = now_ns
        self.last_ns = now_ns
        unpack = HEADER.unpack_from
        expected = self._next
        counts = self.histogram.counts
        for offset in offsets:
            publisher, seq, sent_ns = unpack(buf, offset)
            if expected.get(publisher, 0) == seq:
                expected[publisher] = seq + 1
            else:
                self._out_of_order(publisher, seq)
            latency = now_ns - sent_ns
            if latency >= _LINEAR:
                shift = latency.bit_length() - SUB_BITS - 1
                counts[(shift << SUB_BITS) + (latency >> shift)] += 1
            else:
                counts[latency if latency > 0 else 0] += 1
        self.received += len(offsets)

    def _out_of_order(self, publisher: int, seq: int) -> None:
        expected = self._next.get(publisher, 0)
        gaps = self._gaps.setdefault(publisher, [])
        if seq > expected:
            gaps.append([expected, seq])
            self._next[publisher] = seq + 1
            return
        at = bisect.bisect_right(gaps, [seq, 1 << 62]) - 1
        if at < 0 or not gaps[at][0] <= seq < gaps[at][1]:
            self.duplicates += 1
            return
        start, end = gaps.pop(at)
        gaps[at:at] = [g for g in ([start, seq], [seq + 1, end]) if g[0] < g[1]]

    def missing(self, sent: dict[int, int] | None = None) -> int:
        """Sequences not received: open gaps, plus the tail after the last one
        received when `sent` (publisher -> messages it sent) is known."""
        lost = sum(end - start for gaps in self._gaps.values() for start, end in gaps)
        for publisher, count in (sent or {}).items():
            lost += max(0, count - self._next.get(publisher, 0))
        return lost

    def counts(self, sent: dict[int, int] | None = None) -> DeliveryCounts:
        return DeliveryCounts(self.received, self.duplicates, self.missing(sent))
