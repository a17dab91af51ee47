"""The bundled server is safe to expose: keys, interfaces, limits and TLS, seen by real clients.

Raw websocket-client sockets over loopback (``wss://`` with a CA made for the test run)
record what a client observes; everything is asserted on the test's own thread.
"""

from __future__ import annotations

import hmac
import json
import queue
import ssl
import threading
from typing import Any, List

import pytest
import websocket

from test_server import KEY, close_quietly, connect, eigenai_session, read, read_utterance
from ttsstream.protocols import MAX_TEXT_CHARS
from ttsstream.server import LocalServer, serve_forever, tone_pcm
from ttsstream.server.security import MAX_MESSAGE_BYTES, KeyCheck, is_loopback

WAIT = 10.0


# -- who may connect --------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.0.2.7", "example.com", "::ffff:127.0.0.1"])
def test_a_server_beyond_loopback_needs_a_key_or_allow_open(host) -> None:
    with pytest.raises(ValueError) as caught:
        LocalServer(host, engine="tone")
    message = str(caught.value)
    assert "without an API key" in message and "allow_open=True" in message and "--allow-open" in message
    assert LocalServer(host, engine="tone", api_key=KEY).host == host            # made, never started
    assert LocalServer(host, engine="tone", allow_open=True).host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_needs_no_key(host) -> None:
    assert is_loopback(host)
    LocalServer(host, engine="tone")


def test_serve_forever_refuses_an_open_interface_before_binding_anything() -> None:
    ready: List[str] = []
    with pytest.raises(ValueError, match="allow_open"):
        serve_forever("0.0.0.0", 0, None, "tone", on_ready=ready.append, stop_event=threading.Event())
    assert ready == []


def test_keys_are_compared_in_constant_time_on_every_path(make_server, monkeypatch) -> None:
    compared: List[int] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        if threading.current_thread().name.startswith("ttsstream-server"):  # not websocket-client's own
            compared.append(len(a))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    server = make_server(api_key=KEY)
    wrong = [KEY + "x", KEY[:-1], "", "\u00e9" + KEY[1:], "\ud800"]  # a lone surrogate: refused, no crash
    seen = []
    for token in wrong:
        ws = eigenai_session(server.eigenai_url, token=token)
        seen.append(("eigenai", read(ws), read(ws)))
        close_quietly(ws)
    for token in wrong[:3]:  # what fits in a URL and a header
        ws = connect(f"{server.shunyalabs_url}?api_key={token}")
        seen.append(("query", read(ws)))
        close_quietly(ws)
        ws = connect(server.shunyalabs_url, header=[f"Authorization: Bearer {token}"])
        seen.append(("bearer", read(ws)))
        close_quietly(ws)
        with pytest.raises(websocket.WebSocketBadStatusException) as caught:
            connect(server.gateway_url, header=[f"Authorization: Bearer {token}"])
        seen.append(("gateway", caught.value.status_code))
    checks = len(compared)
    ws = eigenai_session(server.eigenai_url)
    ws.send(json.dumps({"text": "ok"}))
    frames, _ = read_utterance(ws)
    close_quietly(ws)

    refusal = ("text", '{"type":"error","message":"invalid API key","code":401}')
    assert seen[:5] == [("eigenai", refusal, ("close", (1008, "invalid API key")))] * 5
    assert seen[5:] == [("query", ("close", (4001, "invalid API key"))),
                        ("bearer", ("close", (4001, "invalid API key"))), ("gateway", 401)] * 3
    # Every refusal went through compare_digest, on digests of one length whatever the key's.
    assert checks >= len(seen) and set(compared) == {32}
    assert b"".join(frames) == tone_pcm("ok")


def test_a_key_check_never_shows_the_key() -> None:
    check = KeyCheck(KEY)
    assert check.ok(KEY) and not check.ok(None) and not check.ok(KEY.upper())
    assert KEY not in repr(check) and KEY not in repr(LocalServer(engine="tone", api_key=KEY))
    assert KeyCheck(None).ok(None) and KeyCheck("").ok("anything")


# -- how much they may send ------------------------------------------------------------------


def test_a_text_over_the_limit_gets_413_in_each_dialect_and_the_connection_serves_on(make_server) -> None:
    server = make_server(max_text_chars=10)
    eigenai = eigenai_session(server.eigenai_url)
    eigenai.send(json.dumps({"text": "x" * 11}))
    _, too_long = read_utterance(eigenai)
    eigenai.send(json.dumps({"text": "y" * 10}))
    frames, done = read_utterance(eigenai)
    close_quietly(eigenai)
    shunyalabs = connect(server.shunyalabs_url)
    shunyalabs.send(json.dumps({"voice": "Nisha"}))
    shunyalabs.send(json.dumps({"input": "z" * 11}))
    _, shunya_too_long = read_utterance(shunyalabs)
    close_quietly(shunyalabs)
    gateway = connect(server.gateway_url)
    gateway.send(json.dumps({"input": "w" * 11, "request_type": "streaming"}))
    _, gateway_too_long = read_utterance(gateway)
    close_quietly(gateway)

    message = "text is 11 characters; this server takes at most 10 per request: split it"
    assert too_long == [("text", json.dumps({"type": "error", "message": message, "code": 413},
                                            separators=(",", ":")))]
    assert json.loads(shunya_too_long[-1][1]) == {"type": "error", "error": message, "code": 413}
    assert json.loads(gateway_too_long[-1][1]) == {"type": "error", "error": message, "code": 413}
    assert b"".join(frames) == tone_pcm("y" * 10) and done[-1] == ("text", '{"type":"complete"}')
    assert [u.text for u in server.transcript] == ["y" * 10]


def test_a_message_over_the_size_limit_closes_with_1009(make_server) -> None:
    server = make_server(max_message_bytes=2048)
    ws = eigenai_session(server.eigenai_url)
    ws.send(json.dumps({"text": "x" * 3000}))
    message = read(ws)
    close_quietly(ws)
    other = eigenai_session(server.eigenai_url)  # the server itself serves on
    other.send(json.dumps({"text": "fine"}))
    frames, _ = read_utterance(other)
    close_quietly(other)
    assert message[0] == "close" and message[1][0] == 1009
    assert b"".join(frames) == tone_pcm("fine")


def test_by_default_the_longest_text_fits_in_a_message_and_a_longer_one_gets_413(make_server) -> None:
    server = make_server()
    text = "\U0001F600" * (MAX_TEXT_CHARS + 1)  # each one 12 bytes of JSON escapes
    request = json.dumps({"text": text})
    assert 12 * MAX_TEXT_CHARS < len(request) < MAX_MESSAGE_BYTES
    ws = eigenai_session(server.eigenai_url)
    ws.send(request)
    _, messages = read_utterance(ws)
    close_quietly(ws)
    assert json.loads(messages[-1][1])["code"] == 413


@pytest.mark.parametrize("option, value", [("max_text_chars", 0), ("max_text_chars", 1.5),
                                           ("max_message_bytes", 100), ("max_message_bytes", True)])
def test_limits_are_checked(option, value) -> None:
    with pytest.raises(ValueError, match=option):
        LocalServer(engine="tone", **{option: value})


# -- wss:// --------------------------------------------------------------------------------------


def test_wss_end_to_end_with_a_throwaway_ca(make_server, tls_files) -> None:
    server = make_server(api_key=KEY, certfile=tls_files.certfile, keyfile=tls_files.keyfile, frame_bytes=1000)
    assert server.url == f"wss://127.0.0.1:{server.port}" and server.eigenai_url.startswith("wss://")
    trusted = {"ca_certs": str(tls_files.ca_file)}
    ws = websocket.create_connection(server.eigenai_url, timeout=WAIT, sslopt=trusted)
    ws.send(json.dumps({"token": KEY, "model": "higgs2p5"}))
    ws.send(json.dumps({"text": "over TLS"}))
    frames, messages = read_utterance(ws)
    cipher = ws.sock.cipher()
    close_quietly(ws)
    gateway = websocket.create_connection(server.gateway_url, timeout=WAIT, sslopt=trusted,
                                          header=[f"Authorization: Bearer {KEY}"])
    gateway.send(json.dumps({"input": "and the gateway", "request_type": "streaming", "response_format": "pcm"}))
    gateway_frames, _ = read_utterance(gateway)
    close_quietly(gateway)
    assert b"".join(frames) == tone_pcm("over TLS") and messages[-1] == ("text", '{"type":"complete"}')
    assert b"".join(gateway_frames) == tone_pcm("and the gateway")
    assert cipher is not None and cipher[1] in ("TLSv1.2", "TLSv1.3")


def test_wss_refuses_what_a_client_must_not_accept(make_server, tls_files) -> None:
    server = make_server(certfile=tls_files.combined)  # certificate and key in one file
    with pytest.raises(ssl.SSLCertVerificationError):
        websocket.create_connection(server.eigenai_url, timeout=WAIT)  # the system CAs do not know ours
    with pytest.raises((websocket.WebSocketException, OSError)):
        websocket.create_connection(server.eigenai_url.replace("wss://", "ws://"), timeout=WAIT)
    ws = websocket.create_connection(server.eigenai_url, timeout=WAIT, sslopt={"ca_certs": str(tls_files.ca_file)})
    close_quietly(ws)


def test_bad_tls_files_raise_in_the_caller(tls_files, tmp_path) -> None:
    with pytest.raises(ValueError, match="certfile"):
        LocalServer(engine="tone", keyfile=tls_files.keyfile)
    with pytest.raises(FileNotFoundError):
        LocalServer(engine="tone", certfile=tmp_path / "missing.pem")
    with pytest.raises(ssl.SSLError):
        LocalServer(engine="tone", certfile=tls_files.ca_file)  # a certificate without its key


def test_serve_forever_passes_tls_and_a_fault_to_the_server(tls_files) -> None:
    ready: "queue.Queue[str]" = queue.Queue()
    stop = threading.Event()
    runner = threading.Thread(target=serve_forever, name="test-serve-forever-tls",
                              kwargs=dict(host="127.0.0.1", port=0, api_key=KEY, engine="tone", on_ready=ready.put,
                                          stop_event=stop, certfile=tls_files.certfile, keyfile=tls_files.keyfile,
                                          fault="error:after=0"))
    runner.start()
    try:
        url = ready.get(timeout=WAIT)
        ws = websocket.create_connection(url + "/api/v1/generate/ws", timeout=WAIT,
                                         sslopt={"ca_certs": str(tls_files.ca_file)})
        ws.send(json.dumps({"token": KEY, "model": "higgs2p5"}))
        ws.send(json.dumps({"text": "faulted"}))
        _, messages = read_utterance(ws)
        close_quietly(ws)
    finally:
        stop.set()
        runner.join(WAIT)
    assert url.startswith("wss://127.0.0.1:") and not runner.is_alive()
    assert json.loads(messages[-1][1]) == {"type": "error", "message": "engine failed", "code": 500}
