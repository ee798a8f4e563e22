"""ExHook over TLS against a real grpc.aio HookProvider on TLS (certificates made here, client
certificate required), a server the CA does not vouch for, and `message_publish = notify`: the
message goes on at once, unchanged, and the server still hears of it (through the sender process)."""

import asyncio

import pytest

from actormq.actors.messages import Message
from actormq.exhook.sender import ExhookSender
from tests.exhook_provider import ProviderServer
from tests.hookchains import decided
from tests.integration.certs import CertificateAuthority
from tests.unit.test_exhook_plugin import BAD, GOOD, config, run

HOOKS = {"client.authenticate": [], "client.connected": [], "message.publish": ["t/#"]}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(directory)
    return {"ca": ca, "server": ca.issue("server", "127.0.0.1", server=True),
            "client": ca.issue("client", "actormq-node"),
            "stranger": CertificateAuthority(directory / "other", "some other CA")}


def tls_lines(pki, ca) -> str:
    return (f"exhook.server.default.ssl.cacertfile = {ca}\n"
            f"exhook.server.default.ssl.certfile = {pki['client'].cert}\n"
            f"exhook.server.default.ssl.keyfile = {pki['client'].key}\n")


@pytest.fixture
def tls_server(tmp_path, pki):
    provider = ProviderServer(HOOKS, tmp_path / "provider.log",
                              tls=(pki["server"].cert, pki["server"].key, pki["ca"].pem)).start()
    yield provider
    provider.kill()


def test_decisions_and_notifications_over_mutual_tls(tmp_path, pki, tls_server):
    assert tls_server.url.startswith("https://")

    async def scenario(hooks, plugin):
        good = await decided(hooks.client_authenticate, GOOD)
        bad = await decided(hooks.client_authenticate, BAD)
        for _ in range(200):            # the sender process starts in the background
            if isinstance(plugin.notifier, ExhookSender):
                break
            await asyncio.sleep(0.05)
        hooks.client_connected.notify(GOOD)
        return good, bad, type(plugin.notifier)

    good, bad, notifier = run(config(tmp_path, tls_server.url, tls_lines(pki, pki["ca"].pem)), scenario)
    assert good.allowed and (bad.allowed, bad.reason_code) == (False, 0x87)
    assert notifier is ExhookSender                     # the notification went through the sender process
    [connected] = tls_server.wait_for("OnClientConnected")
    assert connected["clientinfo"]["clientid"] == "c1"


def test_a_server_the_ca_does_not_vouch_for_is_not_used(tmp_path, pki, tls_server):
    async def scenario(hooks, plugin):
        return await decided(hooks.client_authenticate, GOOD), plugin.servers[0].up

    decision, up = run(config(tmp_path, tls_server.url, tls_lines(pki, pki["stranger"].pem)), scenario)
    assert not up               # never loaded: its decisions follow request_failed_action (deny)
    assert (decision.allowed, decision.reason_code, decision.decided_by) == (False, 0x88, "exhook")
    assert tls_server.requests("OnClientAuthenticate") == []


def test_message_publish_as_notification_goes_on_unchanged(tmp_path):
    server = ProviderServer(HOOKS, tmp_path / "provider.log").start()
    try:
        async def scenario(hooks, plugin):
            rewrite = Message("t/rewrite", b"p", 1, origin="c1")
            drop = Message("t/drop", b"p", 1, origin="c1")
            # answered at once (no awaitable), unchanged although the server rewrites and drops
            return hooks.message_publish.fold(GOOD, rewrite) is rewrite, \
                hooks.message_publish.fold(GOOD, drop) is drop

        kept = run(config(tmp_path, server.url, "exhook.server.default.message_publish = notify\n"), scenario)
        assert kept == (True, True)
        published = server.wait_for("OnMessagePublish", 2)
        assert sorted(r["message"]["topic"] for r in published) == ["t/drop", "t/rewrite"]
        assert all(r["message"]["payload"] == "cA==" and r["meta"]["sysdescr"] == "actormq" for r in published)
    finally:
        server.kill()
