"""Operating a running broker: the control channel between the node and its
workers, the management HTTP API (EMQX 4 `/api/v4` shape), Prometheus
metrics, health, and the admin CLI that is a client of that API.

Extension points (each explained in its module's docstring):

1. A worker-side admin command: `actormq.mgmt.commands.admin_command(name)`
   registers `handler(broker, args) -> JSON-able` (may be async); streams
   with `admin_stream`.
2. Asking every worker from the node: `ControlPlane.ask_all(name, args)`
   returns a `Gathered` (`rows()` with node and worker in each row, `failed`
   naming the workers that did not answer in time); `actormq.mgmt.channel`.
3. An HTTP route: a module with an aiohttp `RouteTableDef` named `routes`,
   listed in `actormq.mgmt.app.ROUTE_MODULES`; handlers reach the plane with
   `plane_of(request)`. Any registered command is also reachable without a
   route of its own: `POST /api/v4/admin/{name}`.
4. A CLI command: `actormq.mgmt.cli_support.api_command` hands the command a
   connected `actormq.mgmt.client.ApiClient` (found from the data dir's state
   file, or `--api/--user/--secret`), with exit 0/1/2 and table/JSON output.

Processes: the node runs `actormq.mgmt.plane.ControlPlane` (a thread with its
own asyncio loop: a ZeroMQ ROUTER and the aiohttp app); each worker runs
`actormq.mgmt.worker_link.WorkerLink` (a DEALER on the worker's loop).
"""
