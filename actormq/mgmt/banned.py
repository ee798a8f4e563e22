"""Bans by client id, username or peer host, with an expiry (EMQX 4's banned table).

The node owns the table (`BanTable`): `GET|POST /api/v4/banned`,
`DELETE /api/v4/banned/{as}/{who}` change it, it is kept in the data dir
(`banned.json`, mode 0600) so bans survive a restart, and every change is
pushed to every worker as the whole list (`banned.set`; a worker that
(re)connects to the control channel gets it too). A worker keeps a `BanList`
in `broker.banned` (None while nothing is banned, so a CONNECT pays nothing)
and refuses a banned CONNECT with reason 0x8A (3.1.1: return code 5).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from actormq.mgmt.commands import CommandError, admin_command

KINDS = ("clientid", "username", "peerhost")
DEFAULT_SECONDS = 300       # EMQX 4: a ban without `until` lasts five minutes
BANNED_FILE = "banned.json"


@dataclass(frozen=True, slots=True)
class Ban:
    """One row of the banned table, in EMQX 4's fields."""

    who: str
    kind: str           # "as" in the API: clientid | username | peerhost
    by: str
    reason: str
    desc: str
    at: int
    until: int

    def as_api(self) -> dict:
        row = asdict(self)
        row["as"] = row.pop("kind")
        return row

    @classmethod
    def from_api(cls, body: dict, now: float | None = None) -> "Ban":
        """A ban from a POST body; ValueError says what is wrong."""
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        who, kind = body.get("who"), body.get("as")
        if not isinstance(who, str) or not who:
            raise ValueError("who is required (a non-empty string)")
        if kind not in KINDS:
            raise ValueError(f"as must be one of {', '.join(KINDS)}, got {kind!r}")
        at = _integer(body, "at", int(now if now is not None else time.time()))
        until = _integer(body, "until", at + DEFAULT_SECONDS)
        if until <= at:
            raise ValueError("until must be later than at")
        return cls(who, kind, str(body.get("by") or "user"), str(body.get("reason") or ""),
                   str(body.get("desc") or ""), at, until)


def _integer(body: dict, name: str, default: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a UNIX time in seconds, got {value!r}")
    return int(value)


class BanList:
    """What a worker checks at CONNECT: who is banned until when."""

    def __init__(self, bans: list[Ban]) -> None:
        self._until = {(b.kind, b.who): b.until for b in bans}

    def refuses(self, client_id: str, username: str | None, peer: str) -> bool:
        now = time.time()
        host = peer.rpartition(":")[0].strip("[]") if ":" in peer else peer
        for key in (("clientid", client_id), ("username", username), ("peerhost", host)):
            until = self._until.get(key)
            if until is not None and until > now:
                return True
        return False


class BanTable:
    """The node's banned table, kept in the data dir."""

    def __init__(self, data_dir: str) -> None:
        self.path = Path(data_dir) / BANNED_FILE
        self._bans: dict[tuple[str, str], Ban] = {}
        self._load()

    def _load(self) -> None:
        try:
            rows = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        for row in rows if isinstance(rows, list) else []:
            try:
                ban = Ban.from_api(row)
            except ValueError:
                continue
            self._bans[(ban.kind, ban.who)] = ban

    def _save(self) -> None:
        from actormq.mgmt.credentials import write_private
        write_private(self.path, json.dumps([b.as_api() for b in self._bans.values()]) + "\n")

    def live(self) -> list[Ban]:
        """The bans in force (expired ones are forgotten here)."""
        now = time.time()
        expired = [key for key, ban in self._bans.items() if ban.until <= now]
        for key in expired:
            del self._bans[key]
        if expired:
            self._save()
        return sorted(self._bans.values(), key=lambda b: (b.at, b.kind, b.who))

    def add(self, ban: Ban) -> None:
        self._bans[(ban.kind, ban.who)] = ban
        self._save()

    def remove(self, kind: str, who: str) -> bool:
        if self._bans.pop((kind, who), None) is None:
            return False
        self._save()
        return True

    def command_args(self) -> dict:
        return {"bans": [ban.as_api() for ban in self.live()]}


@admin_command("banned.set")
def set_banned(broker, args: dict) -> int:
    """Replace this worker's ban list (the node sends the whole table)."""
    try:
        bans = [Ban.from_api(row) for row in args.get("bans", [])]
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    broker.set_banned(BanList(bans) if bans else None)
    return len(bans)


__all__ = ["Ban", "BanList", "BanTable", "KINDS"]
