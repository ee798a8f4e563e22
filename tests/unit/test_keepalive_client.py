"""The notification sender's HTTP/1.1 client (`actormq.webhooks.keepalive`) against real
loopback servers that answer with scripted bytes: the request it writes, keep-alive reuse,
answers with a length, chunked or ended by the connection, `Connection: close`, timeouts,
refused and malformed answers, its connection limit and the idle connections it closes."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actormq.webhooks.failure import HttpFailure
from actormq.webhooks.keepalive import KeepAlivePool, origin_of, request_head

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Server:
    """A loopback server that answers each complete request with `answer(request)` (bytes;
    None: no answer), and records requests and connections."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.close_after_answer = False

    async def start(self) -> "Server":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = self.answer(request)
                if asyncio.iscoroutine(answer):
                    answer = await answer
                if answer is None:
                    continue
                writer.write(answer)
                await writer.drain()
                if (self.close_after_answer or b"Connection: close" in answer
                        or not answer.startswith(b"HTTP/1.1")):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def stop(self) -> None:
        self._server.close()


def run(scenario):
    return asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_post_is_one_request_with_its_head_and_body_and_connections_are_kept():
    async def scenario():
        server = await Server(lambda request: OK).start()
        pool = KeepAlivePool(4, 60.0)
        headers = {"Content-Type": "application/json", "vernemq-hook": "on_publish"}
        replies = [await pool.post(server.url + "?a=1", headers, b'{"n":%d}' % n, 5.0) for n in range(5)]
        await pool.close()
        await server.stop()
        return server, replies
    server, replies = run(scenario)
    assert [(reply.status, reply.body) for reply in replies] == [(200, b"{}")] * 5
    assert server.requests[0] == (b"POST /hook?a=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json"
                                  b"\r\nvernemq-hook: on_publish\r\nContent-Length: 7\r\n\r\n{\"n\":0}" % server.port)
    assert server.connections == 1


def test_chunked_and_connection_ended_answers_are_read_and_close_is_obeyed():
    answers = iter([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n",
                    b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    b"HTTP/1.0 200 OK\r\n\r\n{\"result\": \"ok\"}",
                    OK])

    async def scenario():
        server = await Server(lambda request: next(answers)).start()
        pool = KeepAlivePool(4, 60.0)
        replies = [await pool.post(server.url, {}, b"{}", 5.0) for _ in range(4)]
        await pool.close()
        await server.stop()
        return server, replies
    server, replies = run(scenario)
    assert [(reply.status, reply.body) for reply in replies] == [
        (200, b"{}"), (202, b""), (200, b'{"result": "ok"}'), (200, b"{}")]
    assert server.connections == 3         # after the close and after the answer its connection ended


def test_no_answer_in_time_fails_and_that_connection_is_not_used_again():
    async def scenario():
        async def slow(request):
            if b"slow" in request:
                await asyncio.sleep(1.0)
            return OK
        server = await Server(slow).start()
        pool = KeepAlivePool(4, 60.0)
        with pytest.raises(HttpFailure, match="no answer within 0.2 s"):
            await pool.post(server.url, {}, b'"slow"', 0.2)
        reply = await pool.post(server.url, {}, b'"fast"', 5.0)
        await pool.close()
        await server.stop()
        return server, reply
    server, reply = run(scenario)
    assert reply.status == 200 and reply.body == b"{}"
    assert server.connections == 2


def test_refused_malformed_and_cut_answers_fail_with_a_reason():
    answers = iter([b"HTTX/1.1 200 OK\r\n\r\n", b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n{}"])

    async def scenario():
        server = await Server(lambda request: next(answers)).start()
        pool = KeepAlivePool(4, 60.0)
        failures = []
        for url in (server.url, server.url, "http://127.0.0.1:1/hook", "ftp://127.0.0.1/hook"):
            with pytest.raises(HttpFailure) as failure:
                await pool.post(url, {}, b"{}", 5.0)
            failures.append(str(failure.value))
        await pool.close()
        await server.stop()
        return failures
    malformed, cut, refused, not_http = run(scenario)
    assert malformed.startswith("malformed answer")
    assert cut == "connection closed"
    assert refused and not_http.startswith("not an http(s) URL")


def test_at_most_max_connections_are_open_and_idle_ones_are_closed_after_keepalive():
    async def scenario():
        async def answer(request):
            await asyncio.sleep(0.05)
            return OK
        server = await Server(answer).start()
        pool = KeepAlivePool(3, 0.3)
        replies = await asyncio.gather(*(pool.post(server.url, {}, b"{}", 5.0) for _ in range(12)))
        most, connections = server.most_open, server.connections
        await asyncio.sleep(0.8)
        idle_after = server.open
        await pool.post(server.url, {}, b"{}", 5.0)
        await pool.close()
        await server.stop()
        return replies, most, connections, idle_after, server.connections
    replies, most, connections, idle_after, connections_at_end = run(scenario)
    assert [reply.status for reply in replies] == [200] * 12
    assert most == 3 and connections == 3
    assert idle_after == 0
    assert connections_at_end == 4


def test_a_connection_the_server_closed_while_idle_is_not_used_again():
    async def scenario():
        server = await Server(lambda request: OK).start()
        server.close_after_answer = True       # a keep-alive answer, then the server ends it
        pool = KeepAlivePool(2, 60.0)
        await pool.post(server.url, {}, b"{}", 5.0)
        await asyncio.sleep(0.1)
        reply = await pool.post(server.url, {}, b"{}", 5.0)
        await pool.close()
        await server.stop()
        return server, reply
    server, reply = run(scenario)
    assert reply.status == 200 and server.connections == 2


@given(st.sampled_from(["http://h/", "http://h:8080/a/b?x=1&y=2", "https://user:p%40ss@h.example/hook",
                        "http://[::1]:9000/"]),
       st.dictionaries(st.text("abcdefgh-", min_size=1, max_size=8), st.text("xyz /;=", max_size=8), max_size=3))
def test_the_request_head_names_path_host_and_headers_and_ends_before_the_length(url, headers):
    head = request_head(url, headers).decode("latin-1")
    scheme, host, port = origin_of(url)
    line, *lines = head.split("\r\n")
    assert line.startswith("POST /") and line.endswith(" HTTP/1.1")
    assert lines[0].startswith("Host: ") and host.strip("[]") in lines[0]
    assert lines[-1] == "Content-Length: "
    for name, value in headers.items():
        assert f"{name}: {value}" in lines
    assert ("Authorization: Basic dXNlcjpwQHNz" in lines) == ("user:" in url)
    assert port == {"http://h/": 80, "https://user:p%40ss@h.example/hook": 443}.get(url, port)


def test_a_header_that_would_split_the_request_is_refused():
    with pytest.raises(ValueError):
        request_head("http://h/", {"x": "a\r\nInjected: 1"})


def test_https_verifies_the_server_against_the_configured_ca(tmp_path):
    import ssl

    from actormq.webhooks.http import client_ssl_context
    from tests.integration.certs import CertificateAuthority
    ca = CertificateAuthority(tmp_path)
    issued = ca.issue("server", "127.0.0.1", server=True)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(issued.cert, issued.key)

    async def scenario():
        server = Server(lambda request: OK)
        server._server = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=served)
        port = server._server.sockets[0].getsockname()[1]
        trusting = KeepAlivePool(2, 60.0, client_ssl_context(ca.pem))
        reply = await trusting.post(f"https://127.0.0.1:{port}/hook", {}, b"{}", 5.0)
        await trusting.close()
        doubting = KeepAlivePool(2, 60.0, client_ssl_context(CertificateAuthority(tmp_path / "other").pem))
        with pytest.raises(HttpFailure, match="CERTIFICATE_VERIFY_FAILED"):
            await doubting.post(f"https://127.0.0.1:{port}/hook", {}, b"{}", 5.0)
        await doubting.close()
        await server.stop()
        return reply, server.requests
    reply, requests = run(scenario)
    assert reply.status == 200 and requests[0].startswith(b"POST /hook HTTP/1.1\r\nHost: 127.0.0.1:")
