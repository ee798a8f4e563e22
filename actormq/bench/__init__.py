"""`actormq bench`: a load generator and meter for MQTT brokers.

`pub`, `sub` and `conn` (cli.py) run the workloads of runner.py on a lean
asyncio client engine (client.py) that encodes each packet once and patches
it per message; `latency` runs probe.py, a publisher and a subscriber
process on blocking sockets that time send() to recv(); stats.py
owns the payload header, the latency histogram and loss / duplicate detection;
report.py prints the live progress and the summary. `scripts/bench_suite.py`
runs a standard set of scenarios against several brokers.
"""
