"""Mountpoints: a topic prefix that gives the clients of a listener (or of an
auth decision) a tree of their own, as VerneMQ and EMQX do.

`mount` puts the prefix on a topic name or filter as it comes in (PUBLISH,
will, SUBSCRIBE, UNSUBSCRIBE), `unmount` takes it off a topic going out;
`$`-topics such as `$SYS` are never mounted, and a shared subscription keeps
its `$share/<group>/` in front. `expand` fills in `%c` (client id) and `%u`
(username) as EMQX does. Pure functions; the Connection, the Session and the
hook modifiers (`actors.hooked`) apply them.
"""

from __future__ import annotations

from dataclasses import replace

SHARE_PREFIX = "$share/"


def expand(template: str, client_id: str, username: str | None) -> str:
    """The mountpoint of one client: `%c` and `%u` replaced."""
    if "%" not in template:
        return template
    return template.replace("%c", client_id).replace("%u", username or "")


def mount(mountpoint: str, topic: str) -> str:
    """The topic name or filter under the mountpoint."""
    if not mountpoint or not topic.startswith("$"):
        return mountpoint + topic
    if topic.startswith(SHARE_PREFIX):
        group_end = topic.find("/", len(SHARE_PREFIX))
        if group_end != -1:
            return topic[:group_end + 1] + mount(mountpoint, topic[group_end + 1:])
    return topic


def unmount(mountpoint: str, topic: str) -> str:
    """The topic as the client knows it (a topic outside the mountpoint stays as it is)."""
    return topic[len(mountpoint):] if topic.startswith(mountpoint) else topic


def mount_publish(packet, mountpoint: str):
    return replace(packet, topic_name=mount(mountpoint, packet.topic_name))


def mount_subscribe(packet, mountpoint: str):
    subscriptions = tuple(replace(sub, topic_filter=mount(mountpoint, sub.topic_filter))
                          for sub in packet.subscriptions)
    return replace(packet, subscriptions=subscriptions)


def mount_unsubscribe(packet, mountpoint: str):
    return replace(packet, topic_filters=tuple(mount(mountpoint, f) for f in packet.topic_filters))


def mount_will(connect, mountpoint: str):
    if connect.will is None:
        return connect
    return replace(connect, will=replace(connect.will, topic_name=mount(mountpoint, connect.will.topic_name)))
