"""TLS for the ssl and wss listeners: the server context built from a
listener's options (a certificate or key that cannot be loaded is a
ConfigError naming the file), its reload on SIGHUP, and the client
certificate's CN and DN. The handshake itself runs in the loop's TLS
(`transport.acceptor` hands it each accepted socket).
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from actormq.errors import ConfigError

log = logging.getLogger("actormq.tls")

HANDSHAKE_TIMEOUT = 10.0
_VERSIONS = {"tlsv1": ssl.TLSVersion.TLSv1, "tlsv1.1": ssl.TLSVersion.TLSv1_1,
             "tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3}


def server_context(options, key: str) -> ssl.SSLContext:
    """The SSLContext of one listener; ConfigError names the file that failed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = [_tls_version(v, key) for v in options.tls_versions]
    context.minimum_version, context.maximum_version = min(versions), max(versions)
    _read_pem(options.certfile, "CERTIFICATE", key + ".certfile")
    _read_pem(options.keyfile, "PRIVATE KEY", key + ".keyfile")
    try:
        context.load_cert_chain(options.certfile, options.keyfile, options.keyfile_password or None)
    except ssl.SSLError as exc:
        raise ConfigError(f"cannot load {options.certfile} with {options.keyfile}: {describe_error(exc)}",
                          key=key + ".keyfile") from None
    if options.cafile:
        _read_pem(options.cafile, "CERTIFICATE", key + ".cafile")
        try:
            context.load_verify_locations(cafile=options.cafile)
        except ssl.SSLError as exc:
            raise ConfigError(f"cannot load {options.cafile}: {describe_error(exc)}", key=key + ".cafile") from None
        context.verify_mode = ssl.CERT_REQUIRED if options.require_certificate else ssl.CERT_OPTIONAL
    elif options.require_certificate:
        raise ConfigError("require_certificate needs a cafile", key=key + ".require_certificate")
    if options.ciphers:
        try:
            context.set_ciphers(options.ciphers)
        except ssl.SSLError:
            raise ConfigError(f"no cipher matches {options.ciphers!r}", key=key + ".ciphers") from None
    return context


def _tls_version(name: str, key: str) -> ssl.TLSVersion:
    try:
        return _VERSIONS[name]
    except KeyError:
        raise ConfigError(f"unknown TLS version {name!r} (known: {', '.join(_VERSIONS)})",
                          key=key + ".tls_version") from None


def _read_pem(path: str, label: str, key: str) -> None:
    try:
        with open(path, encoding="ascii", errors="replace") as pem:
            text = pem.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", key=key) from None
    if f"-----BEGIN {label}" not in text and not (label == "PRIVATE KEY" and "PRIVATE KEY-----" in text):
        raise ConfigError(f"{path} holds no PEM {label.lower()}", key=key)


def describe_error(exc: BaseException) -> str:
    """An ssl or socket error in a few words, for a log line."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timed out"
    return str(exc) or type(exc).__name__


class TlsContext:
    """A listener's current SSLContext; `reload` swaps in a new one built from
    the same files (new connections use it, established ones keep theirs)."""

    def __init__(self, listener) -> None:
        self.listener = listener
        self.context = server_context(listener.tls, listener.key)

    def reload(self) -> None:
        try:
            self.context = server_context(self.listener.tls, self.listener.key)
        except ConfigError as exc:
            log.error("certificates not reloaded, the old ones stay: %s", exc)
            return
        log.info("%s: certificates reloaded", self.listener.key)


def certificate_identity(peercert) -> tuple[str | None, str | None]:
    """(CN, DN) of a peer certificate as `ssl` decodes it; DN in RFC 4514 order
    (`CN=client,O=Example,C=DE`). (None, None) without a certificate."""
    if not peercert:
        return None, None
    attributes = [pair for rdn in peercert.get("subject", ()) for pair in rdn]
    common_name = next((value for name, value in attributes if name == "commonName"), None)
    parts = [f"{_RDN_NAMES.get(name, name)}={_escape_dn(value)}" for name, value in reversed(attributes)]
    return common_name, ",".join(parts)


_RDN_NAMES = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
              "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
              "emailAddress": "emailAddress", "domainComponent": "DC", "userId": "UID"}


def _escape_dn(value: str) -> str:
    for char in "\\,+\"<>;=":
        value = value.replace(char, "\\" + char)
    return value
