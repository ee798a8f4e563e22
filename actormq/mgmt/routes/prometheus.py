"""Prometheus `GET /metrics` (text exposition by prometheus_client, no
credentials unless `management.metrics.auth = on`) and the health routes
`GET /health` (200 when every worker answers and every MQTT listener accepts,
503 with the reasons otherwise) and `GET /health/listeners`.

Every scrape asks the workers (`metrics.get`) and builds the families from
the node-wide sums; per-worker CPU, RSS and liveness carry a `worker` label.
Packets and their bytes carry a `type` label (`actormq_packets_received`
...), and each packet type a side may send is also counted under VerneMQ's
name (`mqtt_publish_received`, `mqtt_connack_sent` ...); drops carry a
`reason`, hook statistics a `hook` (point) and a `plugin` label.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from actormq.mgmt.app import plane_of
from actormq.mgmt.node_metrics import FROM_CLIENTS, TO_CLIENTS, NodeMetrics, node_metrics
from actormq.mgmt.node_listeners import listener_health

routes = web.RouteTableDef()

COUNTERS = (
    # (our counter, metric name, help)
    ("clients_total_connects", "actormq_connections", "Connections accepted (CONNACK 0) since start."),
    ("bytes_received", "actormq_bytes_received", "Bytes read from MQTT clients."),
    ("bytes_sent", "actormq_bytes_sent", "Bytes written to MQTT clients."),
    ("messages_received", "actormq_messages_received", "PUBLISH messages received from clients."),
    ("messages_sent", "actormq_messages_sent", "PUBLISH messages sent to clients."),
    ("bus_publish_frames", "actormq_bus_publish_frames", "PUBLISH batches sent to other workers."),
    ("bus_durable_asks", "actormq_bus_publish_durable",
     "QoS 1/2 messages sent to other workers whose acknowledgement waited for their commit."),
)
GAUGES = (
    ("clients_connected", "actormq_connections_current", "Connected clients."),
    ("clients_disconnected", "actormq_sessions_offline", "Persistent sessions without a connection."),
    ("sessions", "actormq_sessions", "Sessions (online and offline)."),
    ("subscriptions", "actormq_subscriptions", "Subscriptions."),
    ("routes", "actormq_routes", "Topic filters with subscribers, summed over workers."),
    ("retained", "actormq_messages_retained", "Retained messages."),
    ("messages_queued", "actormq_messages_queued", "Messages waiting in session queues."),
    ("queue_size_max", "actormq_queue_size_max", "Messages waiting in the longest session queue."),
    ("messages_inflight", "actormq_messages_inflight", "QoS 1/2 messages sent and not yet acknowledged."),
)


class _Snapshot:
    """A prometheus_client collector over one NodeMetrics."""

    def __init__(self, metrics: NodeMetrics, workers: list[dict]) -> None:
        self.metrics = metrics
        self.workers = workers

    def collect(self):
        m = self.metrics
        for name, metric, doc in COUNTERS:
            yield CounterMetricFamily(metric, doc, value=m.counters.get(name, 0))
        dropped = CounterMetricFamily("actormq_messages_dropped", "Messages dropped, by reason.",
                                      labels=["reason"])
        for reason, count in m.dropped().items():
            dropped.add_metric([reason], count)
        yield dropped
        yield from self._packets()
        for name, metric, doc in GAUGES:
            yield GaugeMetricFamily(metric, doc, value=m.gauges.get(name, 0))
        by_protocol = GaugeMetricFamily("actormq_connections_by_protocol", "Connected clients, by protocol.",
                                        labels=["protocol"])
        for protocol, count in sorted(m.protocols.items()):
            by_protocol.add_metric([protocol], count)
        yield by_protocol
        by_listener = GaugeMetricFamily("actormq_connections_by_listener", "Connected clients, by listener.",
                                        labels=["listener"])
        for key, count in sorted(m.listeners.items()):
            by_listener.add_metric([key], count)
        yield by_listener
        yield from self._storage()
        yield CounterMetricFamily("actormq_bus_frames_sent", "Bus frames sent between workers.",
                                  value=m.bus.get("frames_sent", 0))
        yield CounterMetricFamily("actormq_bus_frames_dropped", "Bus frames dropped (peer queue full).",
                                  value=m.bus.get("frames_dropped", 0))
        yield from self._workers()
        yield from self._hooks()

    def _packets(self):
        m = self.metrics
        for direction, kinds in (("received", FROM_CLIENTS), ("sent", TO_CLIENTS)):
            packets, sizes = m.packets(direction), m.packets(direction, "bytes")
            by_type = CounterMetricFamily(f"actormq_packets_{direction}", f"MQTT packets {direction}, "
                                          "by type.", labels=["type"])
            bytes_by_type = CounterMetricFamily(f"actormq_packet_bytes_{direction}", f"Bytes of the MQTT "
                                                f"packets {direction}, by type.", labels=["type"])
            for kind in kinds:
                by_type.add_metric([kind], packets[kind])
                bytes_by_type.add_metric([kind], sizes[kind])
                yield CounterMetricFamily(f"mqtt_{kind}_{direction}", f"{kind.upper()} packets "
                                          f"{direction} (VerneMQ's name).", value=packets[kind])
            yield from (by_type, bytes_by_type)

    def _hooks(self):
        labels = ["hook", "plugin"]
        calls = CounterMetricFamily("actormq_hook_calls", "Hook calls made, per hook point and plugin.",
                                    labels=labels)
        errors = CounterMetricFamily("actormq_hook_errors", "Hook calls that failed (raised, bad answer "
                                     "or timed out), per hook point and plugin.", labels=labels)
        timeouts = CounterMetricFamily("actormq_hook_timeouts", "Hook calls that timed out, per hook "
                                       "point and plugin.", labels=labels)
        dropped = CounterMetricFamily("actormq_hook_notify_dropped", "Notifications dropped on a full "
                                      "plugin queue.", labels=labels)
        skipped = CounterMetricFamily("actormq_hook_skipped", "Hook calls not made while the plugin's "
                                      "breaker was open.", labels=labels)
        mean = GaugeMetricFamily("actormq_hook_latency_mean_seconds", "Mean latency of the sampled "
                                 "hook calls (last 1,024 per worker), per hook point and plugin.", labels=labels)
        p99 = GaugeMetricFamily("actormq_hook_latency_p99_seconds", "99th percentile latency of the "
                                "sampled hook calls (highest worker), per hook point and plugin.", labels=labels)
        for (point, plugin), total in sorted(self.metrics.hooks.items()):
            values = [point, plugin]
            skipped.add_metric(values, total["skipped"])
            calls.add_metric(values, total["calls"])
            errors.add_metric(values, total["failures"])
            timeouts.add_metric(values, total["timeouts"])
            dropped.add_metric(values, total["dropped"])
            mean.add_metric(values, total["latency_sum"] / total["calls"] if total["calls"] else 0.0)
            p99.add_metric(values, total["p99_ms"] / 1000)
        yield from (calls, errors, timeouts, dropped, skipped, mean, p99)

    def _storage(self):
        s = self.metrics.storage
        yield CounterMetricFamily("actormq_storage_commits", "LMDB write transactions committed.",
                                  value=s.get("commits", 0))
        yield CounterMetricFamily("actormq_storage_writes", "Puts and deletes committed to LMDB.",
                                  value=s.get("writes", 0))
        yield CounterMetricFamily("actormq_storage_commit_seconds", "Time spent committing to LMDB.",
                                  value=s.get("commit_seconds", 0.0))
        yield GaugeMetricFamily("actormq_storage_map_size_bytes", "LMDB map size.",
                                value=s.get("map_size", 0))
        yield GaugeMetricFamily("actormq_storage_live_bytes", "LMDB pages in use.", value=s.get("live_bytes", 0))

    def _workers(self):
        cpu = CounterMetricFamily("actormq_worker_cpu_seconds", "CPU time of each worker.", labels=["worker"])
        rss = GaugeMetricFamily("actormq_worker_resident_memory_bytes", "RSS of each worker.",
                                labels=["worker"])
        connections = GaugeMetricFamily("actormq_worker_connections", "Connected clients of each worker.",
                                        labels=["worker"])
        for row in self.metrics.workers:
            worker = str(row["worker"])
            cpu.add_metric([worker], row["cpu_seconds"])
            rss.add_metric([worker], row["rss_bytes"])
            connections.add_metric([worker], row["connections"])
        up = GaugeMetricFamily("actormq_worker_up", "1 when the worker answered this scrape.", labels=["worker"])
        answered = {row["worker"] for row in self.metrics.workers}
        for row in self.workers:
            up.add_metric([str(row["worker"])], 1 if row["worker"] in answered else 0)
        yield from (cpu, rss, connections, up)


@routes.get("/metrics")
async def prometheus(request: web.Request) -> web.Response:
    plane = plane_of(request)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(await node_metrics(plane), plane.workers()))
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    plane = plane_of(request)
    reasons = []
    gathered = await plane.channel.ask_all("worker.ping", {})
    reasons += [f"worker {worker}: {reason}" for worker, reason in sorted(gathered.failed.items())]
    reasons += [f"listener {row['identifier']} ({row['listen_on']}) does not accept connections"
                for row in await listener_health(plane) if row["status"] != "up"]
    body = {"status": "ok" if not reasons else "unavailable", "node": plane.node_name,
            "workers": len(gathered.answers), "reasons": reasons}
    return web.json_response(body, status=200 if not reasons else 503)


@routes.get("/health/listeners")
async def health_listeners(request: web.Request) -> web.Response:
    rows = await listener_health(plane_of(request))
    healthy = all(row["status"] == "up" for row in rows)
    return web.json_response({"status": "ok" if healthy else "unavailable", "listeners": rows},
                             status=200 if healthy else 503)
