"""Actors of a worker: connection, session, queue, router, registry, retained store."""
