"""What an EMQX 4 `emqx_auth_http` request looks like, and what its answer means.

A `RequestSpec` is one of `auth_req`, `super_req`, `acl_req`: URL, method,
headers and `params` (`clientid=%c,username=%u,password=%P`). GET puts the
parameters in the query string; POST and PUT send them as a form, or as a
JSON object when the content-type header says application/json.

Answers: auth 200 allows (a body `ignore` passes on to the next source);
401 / 400 are a bad username or password, 403 not authorized, 429 a quota
exceeded, 503 and other 5xx the server unavailable, other 4xx not authorized.
ACL: 200 allows, 200 `ignore` passes on, anything else denies. Superuser:
200 is a superuser, anything else is not.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote_plus, urlsplit

from actormq.auth.placeholders import compile_template
from actormq.transport.codec.reason_codes import ReasonCode

METHODS = ("get", "post", "put")
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
_FORM_SAFE = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch   # what urlencode leaves as it is


class RequestSpecError(ValueError):
    """A request setting that cannot be used (bad URL, bad params)."""


@dataclass(frozen=True, slots=True)
class BuiltRequest:
    method: str
    url: str
    headers: dict[str, str]
    query: dict[str, str] | None
    body: bytes | None


@dataclass(frozen=True, slots=True)
class RequestSpec:
    url: str
    method: str = "post"
    headers: tuple[tuple[str, str], ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    # decided once, not per request: how each parameter is filled in, the headers sent
    _fill: tuple = field(init=False, repr=False, compare=False)
    _sent_headers: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fill", tuple((name, quote_plus(name), compile_template(template))
                                                for name, template in self.params))
        headers = dict(self.headers)
        if self.method != "get" and self.content_type != JSON:
            headers["content-type"] = FORM
        object.__setattr__(self, "_sent_headers", headers)

    @classmethod
    def from_settings(cls, what: str, url: str, method: str, headers: dict[str, str], params: str) -> "RequestSpec":
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RequestSpecError(f"auth.http.{what}.url must be an http:// or https:// URL, got {url!r}")
        if method.lower() not in METHODS:
            raise RequestSpecError(f"auth.http.{what}.method must be one of {', '.join(METHODS)}, got {method!r}")
        named = tuple((name.replace("_", "-").lower(), value) for name, value in headers.items())
        return cls(url, method.lower(), named, parse_params(params, what))

    @property
    def content_type(self) -> str:
        for name, value in self.headers:
            if name == "content-type":
                return value.split(";")[0].strip().lower()
        return FORM

    def build(self, values: dict[str, str]) -> BuiltRequest:
        """The request for one client: placeholders filled in, parameters where the method
        puts them. (Its headers are the spec's own dict: read, never change them.)"""
        if self.method == "get":
            return BuiltRequest("GET", self.url, self._sent_headers,
                                {name: fill(values) for name, _quoted, fill in self._fill}, None)
        if self._sent_headers.get("content-type") == FORM:
            body = "&".join([f"{quoted}={_form_value(fill(values))}" for _name, quoted, fill in self._fill])
        else:
            body = json.dumps({name: fill(values) for name, _quoted, fill in self._fill}, separators=(",", ":"))
        return BuiltRequest(self.method.upper(), self.url, self._sent_headers, None, body.encode())


def _form_value(value: str) -> str:
    """A value as `urlencode` writes it in a form."""
    return value if _FORM_SAFE(value) else quote_plus(value)


def parse_params(text: str, what: str = "auth_req") -> tuple[tuple[str, str], ...]:
    """`clientid=%c,username=%u` as (name, template) pairs."""
    pairs = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, equals, template = item.partition("=")
        if not equals or not name.strip():
            raise RequestSpecError(f"auth.http.{what}.params: expected name=value, got {item!r}")
        pairs.append((name.strip(), template.strip()))
    return tuple(pairs)


@dataclass(frozen=True, slots=True)
class AuthAnswer:
    """What an auth source said: allow, ignore (pass on) or refuse with a CONNACK reason code."""

    outcome: str  # "allow", "ignore" or "refuse"
    reason_code: ReasonCode = ReasonCode.SUCCESS


_AUTH_REFUSALS = {
    400: ReasonCode.BAD_USER_NAME_OR_PASSWORD,
    401: ReasonCode.BAD_USER_NAME_OR_PASSWORD,
    403: ReasonCode.NOT_AUTHORIZED,
    429: ReasonCode.QUOTA_EXCEEDED,
    503: ReasonCode.SERVER_UNAVAILABLE,
}


def _says_ignore(body: bytes) -> bool:
    return body.strip().lower() in (b"ignore", b'"ignore"')


def auth_answer(status: int, body: bytes) -> AuthAnswer:
    if status == 200:
        return AuthAnswer("ignore") if _says_ignore(body) else AuthAnswer("allow")
    if status in _AUTH_REFUSALS:
        return AuthAnswer("refuse", _AUTH_REFUSALS[status])
    if 500 <= status:
        return AuthAnswer("refuse", ReasonCode.SERVER_UNAVAILABLE)
    return AuthAnswer("refuse", ReasonCode.NOT_AUTHORIZED)


def acl_answer(status: int, body: bytes) -> str:
    """"allow", "ignore" or "deny"."""
    if status == 200:
        return "ignore" if _says_ignore(body) else "allow"
    return "deny"


def superuser_answer(status: int) -> bool:
    return status == 200
