"""The ACL provider (plugin `acl`): publish and subscribe authorization from
a chain of sources, with EMQX 4's per-connection ACL cache.

Order, as EMQX's ACL chain: any user plugin named earlier in `plugins.order`
runs before this one on the hook chain; then HTTP (`auth.http.acl_req`),
Redis (`auth.redis.server`), the file (`acl.file`). Each says allow, deny
or ignore; ignore asks the next; when all ignore, `acl.nomatch` decides.
A superuser (decided at connect) skips all of it. The final verdict is
cached per client (`acl.cache.*`); `reload()` (SIGHUP, `actormq acl
reload`) re-reads the file and empties every cache; `cache_of(client_id)`
/ `clear_cache(client_id)` serve the management API. The topics a client's
cache holds a plain allow for are handed to the core (`allowed_publish`),
which then lets a PUBLISH to them through without running the chain, until
the cache entry expires or is purged (see `actormq.auth.acl_cache`).

Rules are written in the client's own namespace: the core hands over topics
inside the client's mountpoint, so the mountpoint is taken off before any
source sees a topic (and put back on a topic a publish modifier rewrites).
"""

from __future__ import annotations

import inspect
import logging

from actormq.auth import configured
from actormq.auth.acl_cache import AclCache, AclGeneration
from actormq.auth.acl_file import AclFile, AclFileError
from actormq.auth.acl_rules import Action, ClientInfo
from actormq.auth.acl_sources import FileAclSource, HttpAclSource, RedisAclSource
from actormq.auth.provider_http import http_client, listener_ports, request_spec
from actormq.auth.provider_redis import redis_records
from actormq.auth.verdicts import Verdict, publish_answer, subscribe_answer
from actormq.errors import ConfigError
from actormq.hooks import OK, Ok, Plugin
from actormq.transport.mountpoint import mount, unmount
from actormq.transport.topics import parse_shared

log = logging.getLogger("actormq.auth")
_PUBLISH = Action.PUBLISH


class AclPlugin(Plugin):
    name = "acl"
    timeout = 3600.0  # each source bounds its own wait (auth.http.timeout, auth.redis.timeout)

    @classmethod
    def wanted(cls, config) -> bool:
        return configured.acl(config)

    def start(self) -> None:
        config = self.context.config
        self.sources = self._sources(config)
        self.nomatch = Verdict(config["acl.nomatch"] == "allow", source="acl.nomatch")
        self.disconnect = config["acl.deny_action"] == "disconnect"
        self.cache_enabled = bool(config["acl.cache.enable"]) and config["acl.cache.max_size"] > 0
        self.cache_size, self.cache_ttl = config["acl.cache.max_size"], float(config["acl.cache.ttl"])
        self.generation = AclGeneration()
        self._caches: dict[str, AclCache] = {}

    def _sources(self, config) -> list:
        sources: list = []
        spec = request_spec(config, "acl_req")
        if spec is not None:
            deny = config["auth.http.acl_req.failure_policy"] == "deny"
            sources.append(HttpAclSource(spec, http_client(config), deny, listener_ports(config)))
        if config.get("auth.redis.server"):
            sources.append(RedisAclSource(redis_records(config)))
        if config.get("acl.file"):
            try:
                sources.append(FileAclSource(AclFile(config["acl.file"], config["acl.format"])))
            except AclFileError as problem:
                raise ConfigError(str(problem), key="acl.file") from None
        return sources

    async def stop(self) -> None:
        for source in self.sources:
            closer = getattr(getattr(source, "http", None) or getattr(source, "records", None), "close", None)
            if closer is not None:
                await closer()

    # -- reload and the management API ------------------------------------------------

    def reload(self, config=None) -> None:
        """Re-read the ACL file and empty every client's cache (at once: the core reads
        their allowed topics without asking the cache)."""
        for source in self.sources:
            if isinstance(source, FileAclSource):
                source.reload()
        self.generation.bump()
        for cache in self._caches.values():
            cache.clear()

    def cache_of(self, client_id: str) -> list[dict] | None:
        cache = self._caches.get(client_id)
        return None if cache is None else cache.dump()

    def clear_cache(self, client_id: str) -> bool:
        cache = self._caches.get(client_id)
        if cache is not None:
            cache.clear()
        return cache is not None

    def allowed_publish(self, client):
        """The topics the client may publish to without asking (see `Plugin.allowed_publish`):
        its cache's plain allows. None for a superuser (answered at once anyway), a client
        in a mountpoint (the cache holds its topics unmounted) or with the cache off."""
        if client.superuser or client.mountpoint or not self.cache_enabled:
            return None
        return self._cache_of(client).allowed_until

    # -- hooks -------------------------------------------------------------------------

    def on_client_authorize_publish(self, client, message):
        if client.superuser:
            return OK
        if self.cache_enabled and not client.mountpoint:     # the per-message path: a cache hit
            cache = self._caches.get(client.client_id)
            if cache is not None and cache.owner is client:
                cached = cache.get(_PUBLISH, message.topic_name)
                if cached is not None and cached.plain:
                    return OK
        verdict = self._verdict(client, Action.PUBLISH, unmounted(message.topic_name, client.mountpoint))
        if verdict.__class__ is not Verdict:
            return self._publish_later(verdict, client, message)
        return mounted_answer(publish_answer(verdict, message, self.disconnect), client.mountpoint)

    async def _publish_later(self, pending, client, message):
        return mounted_answer(publish_answer(await pending, message, self.disconnect), client.mountpoint)

    def on_client_authorize_subscribe(self, client, topic_filter, options):
        if client.superuser:
            return OK
        verdict = self._verdict(client, Action.SUBSCRIBE, unmounted(topic_filter, client.mountpoint))
        if verdict.__class__ is not Verdict:
            return self._subscribe_later(verdict, topic_filter, options)
        return subscribe_answer(verdict, topic_filter, options)

    async def _subscribe_later(self, pending, topic_filter, options):
        return subscribe_answer(await pending, topic_filter, options)

    def on_client_disconnected(self, client, reason) -> None:
        cache = self._caches.get(client.client_id)
        if cache is not None and _owns(client, cache):     # not a later connection's cache
            del self._caches[client.client_id]
            cache.retire()
        for source in self.sources:
            forget = getattr(source, "forget", None)
            if forget is not None:
                forget(client.client_id)

    # -- the chain of sources ----------------------------------------------------------

    def _verdict(self, client: ClientInfo, action: Action, topic: str):
        cache = None
        if self.cache_enabled:
            cache = self._cache_of(client)
            cached = cache.get(action, topic)
            if cached is not None:
                return cached
        verdict = self._ask(client, action, topic, 0)
        if verdict.__class__ is not Verdict:
            return self._remember_later(verdict, cache, action, topic)
        if cache is not None:
            cache.put(action, topic, verdict)
        return verdict

    def _cache_of(self, client: ClientInfo) -> AclCache:
        """The client's cache; a connection that took over a client id starts a new one."""
        cache = self._caches.get(client.client_id)
        if cache is None or not _owns(client, cache):
            if cache is not None:
                cache.retire()
            cache = self._caches[client.client_id] = AclCache(
                self.cache_size, self.cache_ttl, self.generation, owner=client)
        return cache

    async def _remember_later(self, pending, cache: AclCache | None, action: Action, topic: str) -> Verdict:
        verdict = await pending
        if cache is not None:
            cache.put(action, topic, verdict)
        return verdict

    def _ask(self, client: ClientInfo, action: Action, topic: str, start: int):
        for index in range(start, len(self.sources)):
            answer = self.sources[index].check(client, action, topic)
            if inspect.isawaitable(answer):
                return self._ask_later(answer, client, action, topic, index + 1)
            if answer is not None:
                return answer
        return self.nomatch

    async def _ask_later(self, pending, client: ClientInfo, action: Action, topic: str, rest: int) -> Verdict:
        answer = await pending
        if answer is not None:
            return answer
        verdict = self._ask(client, action, topic, rest)
        return await verdict if inspect.isawaitable(verdict) else verdict


def _owns(client: ClientInfo, cache: AclCache) -> bool:
    """Whether the cache was made for this connection (a client id taken over by another
    connection, perhaps of another user, starts anew)."""
    return cache.owner is client or cache.owner == client


def unmounted(topic: str, mountpoint: str) -> str:
    """A topic (or `$share/g/` filter) as the client wrote it, without its mountpoint."""
    if not mountpoint:
        return topic
    group, real = parse_shared(topic)
    real = unmount(mountpoint, real)
    return real if group is None else f"$share/{group}/{real}"


def mounted_answer(answer, mountpoint: str):
    """A publish answer whose rewritten topic is put inside the client's mountpoint."""
    if mountpoint and isinstance(answer, Ok) and "topic_name" in answer.modifiers:
        modifiers = dict(answer.modifiers)
        modifiers["topic_name"] = mount(mountpoint, modifiers["topic_name"])
        return Ok(**modifiers)
    return answer
