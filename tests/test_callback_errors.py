"""A callback that raises is never silent: until the application configures logging, the
first error of each speech reaches standard error with its traceback, the way
``threading.excepthook`` reports a thread's exception; once logging is configured, the
``ttsstream`` logger carries every one. Each run is a fresh interpreter, so that what
pytest does to logging plays no part.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import logging, sys
    import ttsstream
    from ttsstream.server import LocalServer

    if sys.argv[1] == "configured":
        logging.basicConfig(level=logging.WARNING, format="LOGGED %(name)s %(message)s")

    def on_audio(chunk):
        raise ZeroDivisionError(f"user bug in chunk {chunk.index}")

    server = LocalServer(engine="tone", frame_bytes=480).start()
    try:
        with ttsstream.TTSClient(provider="eigenai", url=server.url) as client:
            for _ in range(2):
                speech = client.speak("Two speeches, each of many chunks.", on_audio=on_audio)
                print(len(speech.callback_errors), flush=True)
    finally:
        server.stop()
""")


def _run(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60)


def test_an_error_in_a_callback_reaches_stderr_once_per_speech_until_logging_is_configured():
    result = _run("plain")
    assert result.returncode == 0, result.stderr
    counts = [int(line) for line in result.stdout.split()]
    assert len(counts) == 2 and all(count > 3 for count in counts)  # it raised on every chunk
    err = result.stderr
    assert err.count("Traceback (most recent call last)") == 2  # once per speech, not once per chunk
    assert err.count("ZeroDivisionError: user bug in chunk 0") == 2
    assert "callback_errors" in err and "configure logging" in err


def test_once_logging_is_configured_every_error_goes_to_the_logger_alone():
    result = _run("configured")
    assert result.returncode == 0, result.stderr
    total = sum(int(line) for line in result.stdout.split())
    err = result.stderr
    assert err.count("LOGGED ttsstream") == total  # every error, through the application's handler
    assert err.count("Traceback (most recent call last)") == total
    assert "configure logging" not in err  # not the unconfigured notice
