"""Config keys of the auth area: the password file, the ACL file and its
cache, HTTP auth / ACL (EMQX 4 `emqx_auth_http` names), Redis auth / ACL
(VerneMQ `vmq_diversity`) and SCRAM."""

from __future__ import annotations

from actormq.conf.keytypes import Key, Kind

_ALLOW_DENY = ("allow", "deny")
_METHODS = ("get", "post", "put")
_REQUESTS = {
    "auth_req": ("Authentication request", "clientid=%c,username=%u,password=%P"),
    "super_req": ("Superuser request (200 = superuser), asked after auth_req allowed",
                  "clientid=%c,username=%u"),
    "acl_req": ("ACL request", "access=%A,username=%u,clientid=%c,ipaddr=%a,topic=%t,mountpoint=%m"),
}


def _request_keys(name: str, what: str, params: str) -> tuple[Key, ...]:
    return (
        Key(f"auth.http.{name}.url", Kind.STR, "", f"{what}: URL (empty = off)."),
        Key(f"auth.http.{name}.method", Kind.ENUM, "post",
            f"{what}: HTTP method (get: params in the query; post/put: form or JSON body).",
            choices=_METHODS),
        Key(f"auth.http.{name}.params", Kind.STR, params,
            f"{what}: name=placeholder pairs, comma-separated (%u %c %a %r %P %p %C %d %m %A %t)."),
    )


KEYS: tuple[Key, ...] = (
    Key("auth.password_file", Kind.STR, "",
        "Password file (user:hash lines: mosquitto_passwd $6$/$7$, vmq-passwd, bcrypt); empty = off."),
    Key("auth.scram", Kind.BOOL, "true",
        "MQTT 5 enhanced authentication SCRAM-SHA-256 against the password file's users."),
    Key("acl.file", Kind.STR, "", "ACL file (EMQX acl.conf or Mosquitto / vmq_acl lines); empty = off."),
    Key("acl.format", Kind.ENUM, "auto", "Grammar of acl.file (auto: detected).",
        choices=("auto", "emqx", "mosquitto")),
    Key("acl.nomatch", Kind.ENUM, "allow", "Decision when no ACL source decides (EMQX 4: allow).",
        choices=_ALLOW_DENY),
    Key("acl.deny_action", Kind.ENUM, "ignore",
        "A denied publish: ignore (3.1.1 dropped, 5.0 PUBACK/PUBREC 0x87) or disconnect (5.0 DISCONNECT 0x87).",
        choices=("ignore", "disconnect")),
    Key("acl.cache.enable", Kind.BOOL, "true", "Cache ACL results per connection."),
    Key("acl.cache.max_size", Kind.INT, "32", "Most ACL results cached per connection.", minimum=0),
    Key("acl.cache.ttl", Kind.DURATION, "1m", "An ACL result is cached at most this long.", minimum=1),
    *(key for name, (what, params) in _REQUESTS.items() for key in _request_keys(name, what, params)),
    Key("auth.http.acl_req.failure_policy", Kind.ENUM, "deny",
        "ACL when the HTTP endpoint is down or slow: deny, or ignore (ask the next source).",
        choices=("deny", "ignore")),
    Key("auth.http.timeout", Kind.DURATION, "5s",
        "Longest an HTTP auth / ACL decision may take, retries included (then it fails closed).", minimum=1),
    Key("auth.http.retry.times", Kind.INT, "3", "Retries of an HTTP request after a connection error.",
        minimum=0),
    Key("auth.http.retry.interval", Kind.DURATION, "1s", "Wait before the first retry.", minimum=0),
    Key("auth.http.retry.backoff", Kind.FLOAT, "2.0", "Each retry waits this many times longer.",
        minimum=1.0),
    Key("auth.http.pool_size", Kind.INT, "32", "Connections kept open to the HTTP endpoint, per worker.",
        minimum=1),
    Key("auth.redis.server", Kind.STR, "", "Redis host:port of VerneMQ-format auth / ACL records; empty = off."),
    Key("auth.redis.password", Kind.STR, "", "Redis password (empty = none)."),
    Key("auth.redis.database", Kind.INT, "0", "Redis database number.", minimum=0),
    Key("auth.redis.pool_size", Kind.INT, "8", "Redis connections per worker.", minimum=1),
    Key("auth.redis.timeout", Kind.DURATION, "5s",
        "Longest a Redis lookup may take (then auth fails closed).", minimum=1),
)
PATTERNS: tuple[Key, ...] = tuple(
    Key(f"auth.http.{name}.headers.<name>", Kind.STR, "",
        f"{what}: an HTTP header (content_type = application/json sends JSON).")
    for name, (what, _params) in _REQUESTS.items())
