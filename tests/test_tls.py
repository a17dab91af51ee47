"""Real TLS end to end: the bundled server on wss:// with a certificate from a CA made
for this test run, and the client verifying it (a private CA through ca_bundle=)."""

from __future__ import annotations

import logging

import pytest

from ttsstream import ConnectionFailed, InvalidParameterError, TTSClient
from ttsstream.server import tone_pcm

KEY = "sk-tls-5f2e8a"


@pytest.fixture
def tls_server(make_server, tls_files):
    return make_server(certfile=str(tls_files.certfile), keyfile=str(tls_files.keyfile), api_key=KEY)


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_a_private_ca_given_as_ca_bundle_is_trusted(tls_server, tls_files, provider):
    assert tls_server.url.startswith("wss://")
    with TTSClient(provider=provider, url=tls_server.url, api_key=KEY, ca_bundle=tls_files.ca_file) as client:
        client.prewarm(1, wait=True)
        speech = client.speak("Over TLS.")
    assert speech.pcm == tone_pcm("Over TLS.")


def test_an_unknown_certificate_authority_is_refused_and_never_retried(tls_server, caplog):
    caplog.set_level(logging.INFO, logger="ttsstream")
    with TTSClient(provider="eigenai", url=tls_server.url, api_key=KEY) as client:  # the system's CAs only
        with pytest.raises(ConnectionFailed, match="certificate") as caught:
            client.speak("Refused.")
    assert "ca_bundle" in str(caught.value)
    assert tls_server.connections == 0
    assert not [r for r in caplog.records if "attempt" in r.getMessage()]  # not worth trying again
    assert KEY not in caplog.text


def test_a_certificate_for_another_host_is_refused(make_server, tls_files):
    # The certificate names 127.0.0.1, ::1 and localhost; a server at 127.0.0.2 (still
    # this machine) showing it is refused.
    server = make_server(host="127.0.0.2", certfile=str(tls_files.certfile), keyfile=str(tls_files.keyfile))
    with TTSClient(provider="eigenai", url=server.url, ca_bundle=tls_files.ca_file) as client:
        with pytest.raises(ConnectionFailed, match="certificate"):
            client.speak("Wrong host.")
    assert server.connections == 0


def test_ca_bundle_must_be_a_file(tmp_path):
    with pytest.raises(InvalidParameterError, match="ca_bundle"):
        TTSClient(provider="eigenai", url="wss://127.0.0.1:1/api/v1/generate/ws", api_key=KEY,
                  ca_bundle=tmp_path / "missing.pem")
