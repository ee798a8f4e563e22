"""Benchmark plugin: hooks publish and subscribe authorization and always says next
(what the hook path of an authorization costs before any ACL work)."""

from actormq.hooks import NEXT, Plugin


class NoOpAuthorize(Plugin):
    name = "noop_authorize"

    def on_client_authorize_publish(self, client, message):
        return NEXT

    def on_client_authorize_subscribe(self, client, topic_filter, options):
        return NEXT
