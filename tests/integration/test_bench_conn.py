"""`actormq bench conn` over TLS (`--cafile`, as `bench pub` and `bench sub`)
against a broker's TLS listener: every connection does its handshake and gets
its CONNACK; a CA that did not sign the broker's certificate connects nobody."""

from __future__ import annotations

import json

import pytest

from tests.integration.brokers import actormq_only, run_cli
from tests.integration.test_connection_limit import broker_with_listeners
from tests.integration.test_listeners import pki, port_of, tls_settings  # noqa: F401  (pki: a fixture)

pytestmark = pytest.mark.timeout(60)

CLIENTS = 40


@pytest.fixture(scope="module")
def node(tmp_path_factory, pki):
    actormq_only("bench conn over TLS")
    broker = broker_with_listeners(tmp_path_factory.mktemp("bench-tls"), tls_settings("bench", pki), 2)
    yield broker
    broker.stop()


@pytest.mark.parametrize("version", ["3", "5"])
def test_bench_conn_connects_over_tls(node, pki, version):
    done = run_cli("bench", "conn", "-p", str(port_of(node, "listener.ssl.bench")), "-c", str(CLIENTS),
                   "--concurrency", "8", "-V", version, "--cafile", str(pki["ca"].pem), "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["connected"] == CLIENTS and summary["errors"] == [], summary
    assert summary["rate"] > 0


def test_bench_conn_with_a_ca_that_did_not_sign_the_certificate_connects_nobody(node, pki, tmp_path):
    from tests.integration.certs import CertificateAuthority
    rogue = CertificateAuthority(tmp_path, "rogue CA")
    done = run_cli("bench", "conn", "-p", str(port_of(node, "listener.ssl.bench")), "-c", "3",
                   "--cafile", str(rogue.pem), "--json", "--quiet")
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["connected"] == 0 and len(summary["errors"]) == 3, summary
