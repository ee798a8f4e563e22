"""Persistence: one store interface, an LMDB backend and the ram / disc / disc_only modes."""
