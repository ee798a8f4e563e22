#!/usr/bin/env python3
"""What plugins cost on a worker's whole read path, in process: a Broker with one
subscriber and one publisher on in-memory transports (tests/unit/core_harness),
fan-in PUBLISHes fed to the publisher's data_received 25 at a time (decode,
hook chains, routing, encode-once delivery, the batched flush; at QoS 1 also
the subscriber's PUBACKs of the previous read), for each variant of
bench_hooks.py. Two measures per message: the best time over
`--repeat` batches, and the Python bytecodes executed (counted with
sys.settrace opcode events: the same on a busy machine as on a quiet one;
what the broker adds in C — uvloop, the kernel's socket writes — is not in
them, so a variant's share of the broker's CPU is below its share here).
With `--auth`, the variants of bench_auth.py that run in process instead:
the authorization hook path alone and the password file with the 1,000-rule
acl.conf (ACL cache on), both clients logged in as bench_auth's user.

    python scripts/bench_hook_path.py --repeat 2000 [--auth]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS.parent))
sys.path.insert(0, str(SCRIPTS / "bench_plugins"))
sys.path.insert(0, str(SCRIPTS))

from actormq.auth.hashes import make_pbkdf2_hash  # noqa: E402
from actormq.conf import load_config  # noqa: E402
from actormq.hooks.loader import build_hooks, check_plugins  # noqa: E402
from actormq.transport.codec import Puback, Publish, Subscribe, Subscription, encode  # noqa: E402
from bench_auth import PASSWORD, USER, acl_rules  # noqa: E402
from bench_hook_chains import plugin_of  # noqa: E402
from bench_hooks import NONE, PLUGIN_DIR, VARIANTS  # noqa: E402
from tests.unit.core_harness import Core  # noqa: E402

PER_READ = 25
AUTH_VARIANTS = {NONE: "", "hook path only": "hook_only", "password file + 1,000-rule acl.conf": "file_acl"}


def auth_settings(name: str, workdir: Path) -> dict:
    """The settings of a bench_auth configuration that runs in process."""
    if name == "hook_only":
        return {"plugins.paths": str(PLUGIN_DIR), "plugins.order": "noop_authorize"}
    (workdir / "passwd").write_text(f"{USER}:{make_pbkdf2_hash(PASSWORD)}\n")
    acl_rules(workdir / "acl.conf")
    return {"auth.password_file": str(workdir / "passwd"), "acl.file": str(workdir / "acl.conf"),
            "mqtt.allow_anonymous": "false"}


class ReadPath:
    """One variant's broker, its two clients and the bytes of one read of PUBLISHes; at
    QoS 1 the subscriber acknowledges what it got after each read, as a client does."""

    def __init__(self, order: str, qos: int, auth: str = "") -> None:
        self.core = Core()
        login = {}
        if auth:
            settings = auth_settings(auth, Path(tempfile.mkdtemp(prefix="bench-hook-path-")))
            config = load_config(env={}, overrides={"sys_interval": "0", **settings})
            self.core.broker.hooks = build_hooks(config, check_plugins(config))
            self.core.loop.run_until_complete(self.core.broker.hooks.start())
            login = {"username": USER, "password": PASSWORD.encode()}
        for name in filter(None, (name.strip() for name in order.split(","))):
            self.core.broker.hooks.add(plugin_of(name))
        self.subscriber = self.core.client(4)
        self.subscriber.connect("subscriber", **login)
        self.subscriber.send(Subscribe(1, [Subscription("fanin/#", qos)]))
        self.subscriber.raw()
        publisher = self.core.client(4)
        publisher.connect("publisher", **login)
        publisher.wire.write = lambda data: None        # its PUBACKs are not kept
        self.conn = publisher.conn
        self.qos = qos
        self.data = b"".join(encode(Publish("fanin/1", bytes(64), qos, False, False,
                                            index + 1 if qos else None), 4)
                             for index in range(PER_READ))
        self.flush = self.core.broker._flush_dirty
        for _ in range(8):
            self.read()

    def acks(self) -> bytes:
        """The subscriber's PUBACKs for what it got since the last call (client work: not
        measured)."""
        received = self.subscriber.received()
        return b"".join(encode(Puback(packet.packet_id), 4) for packet in received) if self.qos else b""

    def broker_work(self, acks: bytes) -> None:
        """What the broker does for one read of PUBLISHes (and the PUBACKs of the last one)."""
        if acks:
            self.subscriber.conn.data_received(acks)
        self.conn.data_received(self.data)
        self.flush()

    def read(self) -> None:
        self.broker_work(self.acks())

    def micros(self) -> float:
        acks = self.acks()
        started = time.perf_counter()
        self.broker_work(acks)
        return (time.perf_counter() - started) / PER_READ * 1e6

    def bytecodes(self, reads: int = 8) -> float:
        executed = 0

        def trace(frame, event, _arg):
            nonlocal executed
            if event == "call":
                frame.f_trace_opcodes = True
            elif event == "opcode":
                executed += 1
            return trace
        for _ in range(reads):
            acks = self.acks()
            sys.settrace(trace)
            try:
                self.broker_work(acks)
            finally:
                sys.settrace(None)
        return executed / (reads * PER_READ)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2000, help="timed reads per variant")
    parser.add_argument("--auth", action="store_true", help="bench_auth's in-process variants")
    args = parser.parse_args(argv)
    print("| plugins | QoS | µs per message (best) | bytecodes per message | vs none |\n"
          "|---|---|---|---|---|")
    for qos in (0, 1):
        paths = {name: ReadPath("", qos, auth) for name, auth in AUTH_VARIANTS.items()} if args.auth \
            else {name: ReadPath(order, qos) for name, order in VARIANTS.items()}
        best = dict.fromkeys(paths, float("inf"))
        for _ in range(args.repeat):
            for name, path in paths.items():       # interleaved: the same load for all
                best[name] = min(best[name], path.micros())
        counts = {name: path.bytecodes() for name, path in paths.items()}
        for name in paths:
            change = "" if name == NONE else f"{counts[name] / counts[NONE] - 1:+.0%}"
            print(f"| {name} | {qos} | {best[name]:.2f} | {counts[name]:.0f} | {change} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
