"""Topic names and topic filters: validation, shared-subscription parsing,
the reference matcher and the subscription trie (MQTT 5.0 section 4.7, 4.8.2).

Pure: no I/O, no clock, no logging. Validation raises only ProtocolError:
0x90 (Topic Name invalid) for names, 0x8F (Topic Filter invalid) for filters.

`matches` is the plain reference matcher; `TopicTrie` is the fast structure the
router asks on every PUBLISH, and the property tests hold it equal to `matches`.
A shared filter `$share/{group}/{filter}` matches like its `{filter}` part; the
trie files it under that part but keeps the full string as its identity, so the
router gets one result per group.
"""

from __future__ import annotations

from collections.abc import Iterator

from actormq.errors import ProtocolError

TOPIC_NAME_INVALID = 0x90
TOPIC_FILTER_INVALID = 0x8F
MAX_TOPIC_BYTES = 65535
SHARE_PREFIX = "$share/"
CACHE_LIMIT = 10_000

_SHORT_ENOUGH = MAX_TOPIC_BYTES // 4  # a str this short cannot exceed the byte limit


def _too_long(text: str) -> bool:
    if len(text) <= _SHORT_ENOUGH:
        return False
    try:
        return len(text.encode("utf-8")) > MAX_TOPIC_BYTES
    except UnicodeEncodeError:
        return True


def _ill_formed(text: str) -> bool:
    """Lone surrogates cannot be UTF-8 encoded [MQTT-1.5.4-1]."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def validate_topic_name(name: str) -> None:
    """Raise ProtocolError(0x90) unless `name` may be published to."""
    if not name:
        raise ProtocolError(TOPIC_NAME_INVALID, "empty topic name")
    if "+" in name or "#" in name:
        raise ProtocolError(TOPIC_NAME_INVALID, f"wildcard in topic name {name[:64]!r}")
    if "\x00" in name:
        raise ProtocolError(TOPIC_NAME_INVALID, "U+0000 in topic name")
    if _too_long(name) or _ill_formed(name):
        raise ProtocolError(TOPIC_NAME_INVALID, "topic name is not a UTF-8 string of at most 65535 bytes")


def _validate_plain_filter(topic_filter: str) -> None:
    if not topic_filter:
        raise ProtocolError(TOPIC_FILTER_INVALID, "empty topic filter")
    if "\x00" in topic_filter:
        raise ProtocolError(TOPIC_FILTER_INVALID, "U+0000 in topic filter")
    if "+" in topic_filter or "#" in topic_filter:
        levels = topic_filter.split("/")
        last = len(levels) - 1
        for index, level in enumerate(levels):
            if "#" in level and (level != "#" or index != last):
                raise ProtocolError(TOPIC_FILTER_INVALID, "'#' must be the whole last level")
            if "+" in level and level != "+":
                raise ProtocolError(TOPIC_FILTER_INVALID, "'+' must be a whole level")


def validate_topic_filter(topic_filter: str) -> None:
    """Raise ProtocolError(0x8F) unless `topic_filter` may be subscribed to."""
    if _too_long(topic_filter) or _ill_formed(topic_filter):
        raise ProtocolError(TOPIC_FILTER_INVALID, "topic filter is not a UTF-8 string of at most 65535 bytes")
    group, real_filter = _split_shared(topic_filter)
    if group is not None and (not group or "+" in group or "#" in group):
        raise ProtocolError(TOPIC_FILTER_INVALID, "shared subscription group name is empty or has a wildcard")
    _validate_plain_filter(real_filter)


def _split_shared(topic_filter: str) -> tuple[str | None, str]:
    if not topic_filter.startswith(SHARE_PREFIX):
        return None, topic_filter
    group, slash, real_filter = topic_filter[len(SHARE_PREFIX):].partition("/")
    if not slash:
        raise ProtocolError(TOPIC_FILTER_INVALID, "shared subscription without a topic filter")
    return group, real_filter


def parse_shared(topic_filter: str) -> tuple[str | None, str]:
    """(group, filter) of `$share/{group}/{filter}`; (None, topic_filter) if not shared."""
    return _split_shared(topic_filter)


def has_wildcard(topic_filter: str) -> bool:
    return "+" in topic_filter or "#" in topic_filter


def matches(topic_filter: str, topic_name: str) -> bool:
    """Whether a valid filter matches a valid topic name (the reference matcher)."""
    _, real_filter = _split_shared(topic_filter)
    filter_levels = real_filter.split("/")
    name_levels = topic_name.split("/")
    if topic_name.startswith("$") and filter_levels[0] in ("+", "#"):
        return False  # [MQTT-4.7.2-1]
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(name_levels):
            return False
        if level != "+" and level != name_levels[index]:
            return False
    return len(filter_levels) == len(name_levels)


class _Node:
    __slots__ = ("children", "filters")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.filters: dict[str, dict] = {}  # full filter string -> {key: value}


class TopicTrie:
    """Subscription filters keyed by level, each holding a {key: value} dict.

    `match(topic_name)` returns (filter, entries) pairs where `entries` is the
    trie's own live dict for that filter, not a copy: callers read it and must
    not mutate it. Because those dicts are shared, adding or removing a key
    under a filter that stays in the trie (or changing a value) is seen by every
    cached match result at once, so only a change of the filter *set* clears the
    match cache. The cache is cleared too when it holds more than CACHE_LIMIT
    topic names.
    """

    __slots__ = ("_root", "_filters", "_cache")

    def __init__(self) -> None:
        self._root = _Node()
        self._filters: dict[str, dict] = {}
        self._cache: dict[str, list[tuple[str, dict]]] = {}

    def __len__(self) -> int:
        return len(self._filters)

    def filters(self) -> Iterator[str]:
        return iter(list(self._filters))

    def get(self, topic_filter: str) -> dict:
        return self._filters.get(topic_filter) or {}

    def add(self, topic_filter: str, key, value) -> bool:
        """Set `key` under `topic_filter`; True when the filter is new in the trie."""
        entries = self._filters.get(topic_filter)
        if entries is not None:
            entries[key] = value
            return False
        node = self._root
        for level in _levels(topic_filter):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Node()
            node = child
        entries = {key: value}
        node.filters[topic_filter] = entries
        self._filters[topic_filter] = entries
        self._cache.clear()
        return True

    def remove(self, topic_filter: str, key) -> bool:
        """Drop `key` under `topic_filter`; True when that was the filter's last key."""
        entries = self._filters.get(topic_filter)
        if entries is None or key not in entries:
            return False
        del entries[key]
        if entries:
            return False
        del self._filters[topic_filter]
        self._unlink(topic_filter)
        self._cache.clear()
        return True

    def _unlink(self, topic_filter: str) -> None:
        path = [self._root]
        levels = _levels(topic_filter)
        for level in levels:
            path.append(path[-1].children[level])
        del path[-1].filters[topic_filter]
        for depth in range(len(levels), 0, -1):
            node = path[depth]
            if node.filters or node.children:
                break
            del path[depth - 1].children[levels[depth - 1]]

    def match(self, topic_name: str) -> list[tuple[str, dict]]:
        """Every (filter, {key: value}) whose filter matches `topic_name`."""
        cached = self._cache.get(topic_name)
        if cached is None:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            cached = self._cache[topic_name] = self._walk(topic_name.split("/"))
        return list(cached)

    def _walk(self, levels: list[str]) -> list[tuple[str, dict]]:
        found: list[tuple[str, dict]] = []
        depth = len(levels)
        system = levels[0].startswith("$")
        stack = [(self._root, 0)]
        while stack:
            node, index = stack.pop()
            children = node.children
            wildcards_allowed = index or not system  # [MQTT-4.7.2-1]
            if wildcards_allowed:
                multi = children.get("#")
                if multi is not None:
                    found.extend(multi.filters.items())
            if index == depth:
                found.extend(node.filters.items())
                continue
            exact = children.get(levels[index])
            if exact is not None:
                stack.append((exact, index + 1))
            if wildcards_allowed:
                single = children.get("+")
                if single is not None:
                    stack.append((single, index + 1))
        return found


def _levels(topic_filter: str) -> list[str]:
    return _split_shared(topic_filter)[1].split("/")
