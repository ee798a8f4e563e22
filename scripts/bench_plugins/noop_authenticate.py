"""Benchmark plugin: hooks client.authenticate and says ok at once (what the hook path of a
CONNECT costs before any authentication work)."""

from actormq.hooks import OK, Plugin


class NoOpAuthenticate(Plugin):
    name = "noop_authenticate"

    def on_client_authenticate(self, client):
        return OK
