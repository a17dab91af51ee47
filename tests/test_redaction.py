"""API keys that a server echoes back never reach the user's errors, reprs, logs or terminal.

Real services echo what they refused: the token, or the request line with
``?api_key=``. These tests run a small WebSocket server over loopback that does exactly
that, and look for the key everywhere the error can show.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from contextlib import contextmanager
from typing import Iterator

import pytest
from websockets.sync.server import ServerConnection, serve

from ttsstream import AuthenticationError, ServerError, TTSClient, TTSError
from ttsstream.cli import main
from ttsstream.redaction import redact_keys

KEY = "sk-live-7f3a9c2e41d8b6a5"


def _eigenai(ws: ServerConnection) -> None:
    token = json.loads(ws.recv())["token"]
    ws.recv()  # the request
    ws.send(json.dumps({"type": "error", "message": f"synthesis failed for account {token}",
                        "code": f"quota:{token}"}))


def _shunyalabs(ws: ServerConnection) -> None:
    ws.recv()  # the config
    ws.recv()  # the input
    ws.send(json.dumps({"type": "error", "error": {"message": f"bad request GET {ws.request.path}"}}))


def _shunyalabs_close(ws: ServerConnection) -> None:
    ws.close(4001, f"invalid api key {KEY}")


@contextmanager
def echoing_server() -> Iterator[str]:
    """A server whose errors quote the key; yields its base URL."""
    def handler(ws: ServerConnection) -> None:
        path = ws.request.path
        if path.startswith("/api/v1/generate/ws"):
            _eigenai(ws)
        elif path.startswith("/close/ws"):
            _shunyalabs_close(ws)
        else:
            _shunyalabs(ws)
        try:
            ws.recv(timeout=5)  # until the client closes
        except Exception:
            pass

    server = serve(handler, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="echoing-server")
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
    finally:
        server.shutdown()
        thread.join(10)


def _everything_about(error: BaseException) -> str:
    """Every way a user can see an error: str, repr, args and each attribute."""
    return " ".join([str(error), repr(error), repr(error.args), repr(vars(error))])


@pytest.mark.parametrize("path, provider, expected", [
    ("/api/v1/generate/ws", "eigenai", ServerError),
    ("/ws", "shunyalabs", ServerError),
    ("/close/ws", "shunyalabs", AuthenticationError),
])
def test_a_key_the_server_echoes_is_blanked_everywhere(path, provider, expected, caplog):
    caplog.set_level(logging.DEBUG)
    with echoing_server() as base, TTSClient(provider=provider, url=base + path, api_key=KEY) as client:
        speech = client.speak("Hello.", block=False)
        with pytest.raises(TTSError) as caught:
            speech.wait(10)
    error = caught.value
    assert isinstance(error, expected)
    # The client's logs (ttsstream's and websocket-client's), not the test server's.
    logged = [record.getMessage() for record in caplog.records if record.name.split(".")[0] in ("ttsstream", "websocket")]
    assert any("connected" in line for line in logged)  # the debug log was captured
    shown = _everything_about(error) + repr(speech) + speech._repr_html_() + " ".join(logged)
    assert "***" in str(error)  # the echo was there, and was blanked
    assert KEY not in shown


@pytest.mark.parametrize("path, provider, variable", [
    ("/api/v1/generate/ws", "eigenai", "EIGENAI_API_KEY"),
    ("/ws", "shunyalabs", "SHUNYALABS_API_KEY"),
])
def test_the_cli_never_prints_an_echoed_key(path, provider, variable, monkeypatch, tmp_path):
    monkeypatch.setenv(variable, KEY)
    out, err = io.StringIO(), io.StringIO()
    with echoing_server() as base:
        code = main(["speak", "Hello.", "--provider", provider, "--url", base + path, "--no-play",
                     "--out", str(tmp_path / "x.wav")], out=out, err=err)
    assert code == 1
    assert "***" in err.getvalue()
    assert KEY not in out.getvalue() + err.getvalue()


# The library's own words around a refused key: the hint that names the variable and the
# argument must reach the user whole, whatever the key is (issue 17: "KEY" matched inside
# "EIGENAI_API_KEY", and "pass api_key=." looked like a query parameter).
@pytest.mark.parametrize("wrong", ["KEY", "WRONG", "api", "sk-live-0123456789abcdef"])
@pytest.mark.parametrize("provider, variable", [("eigenai", "EIGENAI_API_KEY"), ("shunyalabs", "SHUNYALABS_API_KEY")])
def test_a_refused_key_leaves_the_hint_whole(make_server, provider, variable, wrong, tmp_path):
    srv = make_server(engine="tone", api_key="the-right-key-1234")
    url = getattr(srv, f"{provider}_url")
    with TTSClient(provider=provider, url=url, api_key=wrong) as client:
        with pytest.raises(AuthenticationError) as caught:
            client.speak("Hello.")
    message = str(caught.value)
    assert variable in message and "api_key=" in message and "***" not in message
    out, err = io.StringIO(), io.StringIO()
    code = main(["speak", "Hello.", "--provider", provider, "--url", url, "--api-key", wrong, "--no-play",
                 "--out", str(tmp_path / "x.wav")], out=out, err=err)
    assert code == 1
    assert variable in err.getvalue() and "--api-key" in err.getvalue() and "***" not in err.getvalue()
    assert f" {wrong}" not in err.getvalue() and f"={wrong}" not in err.getvalue()


@pytest.mark.parametrize("text, key, expected", [
    ("Check EIGENAI_API_KEY or pass api_key=.", "KEY", "Check EIGENAI_API_KEY or pass api_key=."),
    ("or pass --api-key KEY", "KEY", "or pass --api-key ***"),
    ("the key KEY was refused", "KEY", "the key *** was refused"),
    ("GET /ws?api_key=abc&x=1", "", "GET /ws?api_key=***&x=1"),
    ("wss://h/ws?x=1&api_key=abc", "", "wss://h/ws?x=1&api_key=***"),
    ("account sk-live-0123456789abcdef.", "sk-live-0123456789abcdef", "account ***."),
    ("glued:sk-live-0123456789abcdefXYZ", "sk-live-0123456789abcdef", "glued:***XYZ"),
    ("WRONGFUL use of WRONG", "WRONG", "WRONGFUL use of ***"),
])
def test_redact_keys_blanks_the_key_and_only_the_key(text, key, expected):
    assert redact_keys(text, [key]) == expected
