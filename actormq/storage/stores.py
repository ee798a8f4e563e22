"""open_stores: the stores a worker uses (retained, queue, session), built from
the configured modes by composition: ram = RamStore, disc = CachedStore(LmdbStore)
(retained messages cached, queue rows read from LMDB: the Queue holds them),
disc_only = LmdbStore. The disc modes share one LmdbStore (one LMDB environment,
one writer actor); a ram-only configuration never touches the data dir.
`commit_on` lets the worker's loop commit (storage.sync = off); `writer_backlogs`
are the writers' backlogs for the broker's backpressure.
"""

from __future__ import annotations

from dataclasses import dataclass

from actormq.storage.backlog import WriterBacklog
from actormq.storage.base import DISC, DISC_ONLY, META, MODES, QUEUE, RAM, SESSION, Store
from actormq.storage.cached import CachedStore
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.ram import RamStore


@dataclass(frozen=True, slots=True)
class Stores:
    """The stores of one process; the session table lives in the queue's store."""

    retained: Store
    queue: Store
    session: Store
    owned: tuple[Store, ...]

    def commit_on(self, loop) -> None:
        """With storage.sync = off, `loop` commits the writes it issues (see
        LmdbStore.commit_on); call from the loop's thread."""
        for store in self.owned:
            if isinstance(store, LmdbStore):
                store.commit_on(loop)

    def writer_backlogs(self, loop) -> tuple[WriterBacklog, ...]:
        """One WriterBacklog per LMDB writer: while it is behind, a publish that
        writes holds its publisher back."""
        return tuple(WriterBacklog(store, loop) for store in self.owned
                     if isinstance(store, LmdbStore))

    def recover_logs(self) -> None:
        """Replay the write-ahead logs of dead processes into LMDB (see log.py)."""
        for store in self.owned:
            if isinstance(store, LmdbStore):
                store.recover_logs()

    def flush(self) -> None:
        """Block until every pending write of every store is committed."""
        for store in self.owned:
            store.flush()

    def close(self) -> None:
        """Flush and close every store (the shared LmdbStore last)."""
        for store in self.owned:
            store.close()


def open_stores(data_dir: str, retained_mode: str, queue_mode: str, map_size: int = 64 << 20,
                max_map_size: int = 16 << 30, commit_batch: int = 1000,
                commit_interval_ms: int = 0, sync: bool = True, log: bool = False) -> Stores:
    for mode in (retained_mode, queue_mode):
        if mode not in MODES:
            raise ValueError(f"unknown storage mode {mode!r}; modes are {', '.join(MODES)}")
    built: dict[str, Store] = {}
    lmdb: list[LmdbStore] = []

    def durable() -> LmdbStore:
        if not lmdb:
            lmdb.append(LmdbStore(data_dir, map_size, max_map_size, commit_batch, commit_interval_ms, sync,
                                          log))
        return lmdb[0]
    # the queue's rows are read back only when a session's queue is loaded (restart,
    # takeover): its Queue holds the deliveries, a cached copy would cost a second
    # put per message and the memory twice over
    builders = {RAM: RamStore, DISC_ONLY: durable,
                DISC: lambda: CachedStore(durable(), grouped_tables=(), uncached_tables=(SESSION, META, QUEUE))}

    def store_for(mode: str) -> Store:
        if mode not in built:
            built[mode] = builders[mode]()
        return built[mode]
    retained, queue = store_for(retained_mode), store_for(queue_mode)
    owned = tuple(store for store in built.values() if store not in lmdb) + tuple(lmdb)
    return Stores(retained=retained, queue=queue, session=queue, owned=owned)
