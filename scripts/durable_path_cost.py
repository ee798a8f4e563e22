"""The broker's publish path in-process, for counting instructions per message.

One Broker with its stores (a temp dir), a persistent subscriber gone offline,
and PUBS publishers whose reads of PER_READ QoS 1 publishes are fed to their
Connection, each round of reads followed by two of the loop's turns. The
checkpoint is held off so that the measured part is the publishing alone; with
CG_SPLIT set, callgrind is told to dump its counts before the final flush.

usage: durable_path_cost.py MODE READS   (MODE: ram | nosync | sync | disconly)
Instructions per message: run it under `valgrind --tool=callgrind` with two
READS and take the slope (scripts/durable_path_cost.sh).
"""
import asyncio
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, ".")
sys.path.insert(0, "tests/unit")
import actormq.storage.checkpoint as checkpoint  # noqa: E402
from actormq.actors.broker import Broker  # noqa: E402
from actormq.actors.connection import Connection  # noqa: E402
from actormq.conf.load import load_config  # noqa: E402
from actormq.gctune import tune_gc  # noqa: E402
from actormq.transport.codec import Connect, Publish, Subscribe, encode  # noqa: E402
from actormq.transport.codec.packets import Subscription  # noqa: E402
from actormq.worker import open_worker_stores  # noqa: E402
from core_harness import Wire  # noqa: E402

MODES = {"ram": {"queue.storage": "ram"},
         "nosync": {"queue.storage": "disc", "storage.sync": "off"},
         "sync": {"queue.storage": "disc", "storage.sync": "on"},
         "disconly": {"queue.storage": "disc_only", "storage.sync": "off"}}


def main() -> None:
    mode, reads = sys.argv[1], int(sys.argv[2])
    publishers = int(os.environ.get("PUBS", "1"))
    per_read = int(os.environ.get("PER_READ", "100"))
    checkpoint.CHECKPOINT_SECONDS = 1e9
    config = load_config(env={}, overrides={
        "sys_interval": "0", "storage.dir": tempfile.mkdtemp(prefix="durable-path-"), **MODES[mode],
        "queue.max_offline_messages": "10000000"})
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stores = open_worker_stores(config)
    broker = Broker(config, loop, stores)
    if stores is not None:
        stores.commit_on(loop)
        broker.hold_back_for(stores.writer_backlogs(loop))

    def settle() -> None:
        loop.run_until_complete(asyncio.sleep(0))
        loop.run_until_complete(asyncio.sleep(0))

    def client(client_id: str, port: int, clean: bool):
        wire = Wire(("127.0.0.1", port))
        connection = Connection(broker)
        connection.connection_made(wire)
        connection.data_received(encode(Connect(client_id, protocol_level=4, clean_start=clean), 4))
        settle()
        return wire, connection

    wire, subscriber = client("offline-1", 50001, False)
    subscriber.data_received(encode(Subscribe(1, (Subscription("offline/#", 1),)), 4))
    settle()
    wire.closed = True
    subscriber.connection_lost(None)
    settle()
    clients = [client(f"pub-{n}", 50001 + n, True) for n in range(1, publishers + 1)]
    payload = bytes(64)
    packet_id = 0
    reads_data = []
    for _ in range(reads):
        packets = []
        for _ in range(per_read):
            packet_id = packet_id % 65535 + 1
            packets.append(encode(Publish("offline/1", payload, 1, packet_id=packet_id), 4))
        reads_data.append(b"".join(packets))

    async def drive() -> None:
        for number, data in enumerate(reads_data):
            clients[number % publishers][1].data_received(data)
            if number % publishers == publishers - 1:
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                for pub_wire, _ in clients:
                    del pub_wire.written[:]

    tune_gc()       # as a worker does
    started = time.process_time()
    loop.run_until_complete(drive())
    spent = time.process_time() - started
    if os.environ.get("CG_SPLIT"):
        subprocess.run(["callgrind_control", "-d", str(os.getpid())], capture_output=True)
    if stores is not None:
        stores.flush()
    queued = len(broker.sessions["offline-1"].queue)
    print(f"{mode}: {reads * per_read} msgs, {spent / reads / per_read * 1e6:.2f} us/msg, {queued} queued",
          file=sys.stderr)


main()
