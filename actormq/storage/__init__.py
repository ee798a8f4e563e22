"""Persistence: one store interface, an LMDB backend and the ram / disc / disc_only modes."""

from actormq.storage.base import DISC, DISC_ONLY, MODES, QUEUE, RAM, RETAINED, SESSION, TABLES, Store
from actormq.storage.stores import Stores, open_stores

__all__ = ["DISC", "DISC_ONLY", "MODES", "QUEUE", "RAM", "RETAINED", "SESSION", "TABLES", "Store", "Stores",
           "open_stores"]
