"""The client end to end, over real loopback sockets, against the bundled server."""

from __future__ import annotations

import logging
import queue
import socket
import subprocess
import sys
import threading
import time
import traceback
import wave

import numpy as np
import pytest
import websocket

from ttsstream import (
    AuthenticationError,
    Cancelled,
    ConnectionFailed,
    InvalidParameterError,
    ProtocolError,
    ServerError,
    SynthesisTimeout,
    TTSClient,
    TTSError,
)
from ttsstream.server import tone_pcm

from conftest import Recorder

EIGENAI_CASES = [
    ("higgs2p5", {"voice_settings": {"speed": 1.0}, "sampling": {"temperature": 0.7}}, {"voice": "Linda"}),
    ("chatterbox", {"language_id": "en", "exaggeration": 0.5, "temperature": 0.8}, {"exaggeration": 0.5}),
    ("qwen3-tts", {"language": "English", "instructions": "calm"}, {"voice": "Vivian", "language": "English"}),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- both dialects, every model ------------------------------------------------------


@pytest.mark.parametrize("model,params,expected_fields", EIGENAI_CASES)
def test_eigenai_models_end_to_end(server, recorder, model, params, expected_fields):
    with TTSClient(provider="eigenai", url=server.url, model=model) as client:
        speech = client.speak("Hello, streaming audio world!", **recorder.callbacks(), **params)
    served = server.transcript[-1]
    assert speech.done and speech.error is None
    assert speech.pcm == served.pcm == tone_pcm("Hello, streaming audio world!")
    assert speech.sample_rate == 24000
    assert served.dialect == "eigenai" and served.model == model
    for name, value in expected_fields.items():
        assert served.request[name] == value
    assert b"".join(c.pcm for c in recorder.chunks) == speech.pcm
    recorder.check_shape()
    assert recorder.kinds[-1] == "complete"
    assert speech.duration == pytest.approx(len(speech.pcm) / 2 / 24000)
    assert speech.first_audio_latency is not None and speech.first_audio_latency > 0


def test_shunyalabs_several_speeches_share_one_connection(server):
    texts = ["First sentence.", "Second one, a little longer.", "Third."]
    with TTSClient(provider="shunyalabs", url=server.url) as client:
        speeches = [client.speak(text, speed=1.25, language="en") for text in texts]
    assert server.connections == 1
    served = server.transcript[-3:]
    assert [s.text for s in served] == texts
    for speech, record, text in zip(speeches, served, texts):
        assert speech.pcm == record.pcm == tone_pcm(text, speed=1.25)
        assert record.voice == "Nisha"


def test_shunyalabs_new_config_opens_a_new_connection(server):
    with TTSClient(provider="shunyalabs", url=server.url) as client:
        client.speak("Same config.")
        client.speak("Same config again.")
        client.speak("Another voice.", voice="Varun")
    assert server.connections == 2
    assert server.transcript[-1].voice == "Varun"


def test_shunyalabs_metadata_sets_the_sample_rate(make_server, recorder):
    srv = make_server(shunyalabs_metadata=True, shunyalabs_sample_rate=16000)
    with TTSClient(provider="shunyalabs", url=srv.url) as client:
        speech = client.speak("Sixteen kilohertz.", **recorder.callbacks())
    assert speech.sample_rate == 16000
    assert all(chunk.sample_rate == 16000 for chunk in recorder.chunks)
    assert speech.pcm == srv.transcript[-1].pcm
    assert srv.transcript[-1].sample_rate == 16000


def test_per_call_voice_applies_to_that_speech_only(server):
    with TTSClient(provider="eigenai", url=server.url, voice="Jack") as client:
        client.speak("One.", voice="Linda")
        client.speak("Two.")
    assert [r.request.get("voice") for r in server.transcript[-2:]] == ["Linda", "Jack"]


# -- validation before any I/O ---------------------------------------------------------


@pytest.mark.parametrize("provider,text,kwargs,needle", [
    ("eigenai", "Hi", {"exaggeration": 0.5}, "chatterbox"),
    ("eigenai", "Hi", {"speed": 1.2}, "zero-indic"),
    ("eigenai", "", {}, "empty"),
    ("eigenai", "   ", {}, "empty"),
    ("eigenai", 42, {}, "str"),
    ("eigenai", "Hi", {"voice_settings": {"speed": -1}}, "speed"),
    ("shunyalabs", "Hi", {"speed": 9}, "speed"),
    ("shunyalabs", "Hi", {"response_format": "mp3"}, "pcm"),
    ("shunyalabs", "Hi", {"sampling": {}}, "higgs2p5"),
    ("shunyalabs", "Hi", {"extra": {"x": float("nan")}}, "JSON"),
    # A lone surrogate (what surrogateescape stdin makes of bytes under a C locale)
    # cannot be sent as UTF-8: refused here, not by the socket after connecting.
    ("eigenai", "half a pair \ud83d", {}, "UTF-8"),
    ("shunyalabs", "half a pair \ud83d", {}, "UTF-8"),
    ("eigenai", "Hi", {"voice": "Li\udc80nda"}, "UTF-8"),
    ("shunyalabs", "Hi", {"extra": {"note": "\ud800"}}, "UTF-8"),
])
def test_bad_parameters_fail_before_any_connection(server, provider, text, kwargs, needle):
    with TTSClient(provider=provider, url=server.url) as client:
        with pytest.raises(InvalidParameterError) as caught:
            client.speak(text, **kwargs)
    assert needle in str(caught.value)
    assert server.connections == 0


def test_unencodable_text_on_a_reused_connection_leaves_it_usable(server):
    with TTSClient(provider="shunyalabs", url=server.url) as client:
        client.speak("First.")
        with pytest.raises(InvalidParameterError, match="UTF-8"):
            client.speak("half a pair \ud83d", block=False)
        second = client.speak("Second.")
    assert second.pcm == tone_pcm("Second.")
    assert server.connections == 1
    assert [u.text for u in server.transcript[-2:]] == ["First.", "Second."]


def test_bad_client_arguments():
    with pytest.raises(InvalidParameterError):
        TTSClient(provider="nope")
    with pytest.raises(InvalidParameterError):
        TTSClient(provider="eigenai", model="nope", api_key="k")
    with pytest.raises(InvalidParameterError):
        TTSClient(provider="eigenai", api_key="k", dispatch="later")
    with pytest.raises(InvalidParameterError):
        TTSClient(provider="eigenai", api_key="k", timeout=0)
    with pytest.raises(InvalidParameterError, match="wss://"):
        TTSClient(provider="eigenai", api_key="k", url="ws://example.com/api/v1/generate/ws")
    with pytest.raises(InvalidParameterError):
        TTSClient(provider="eigenai", api_key="k", url="http://127.0.0.1/x")
    TTSClient(provider="eigenai", api_key="k", url="ws://example.com/x", allow_insecure=True).close()
    TTSClient(provider="eigenai", api_key="k", url="wss://example.com/x").close()


def test_missing_key_for_a_remote_service(monkeypatch):
    monkeypatch.delenv("EIGENAI_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="EIGENAI_API_KEY"):
        TTSClient(provider="eigenai")
    monkeypatch.setenv("EIGENAI_API_KEY", "from-env")
    TTSClient(provider="eigenai").close()


# -- byte integrity ---------------------------------------------------------------------


@pytest.mark.parametrize("frame_bytes", [1, 3, 1001, 4801])
@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_odd_frames_arrive_as_whole_samples_in_order(make_server, recorder, frame_bytes, provider):
    srv = make_server(frame_bytes=frame_bytes)
    text = "Odd frames split samples."
    with TTSClient(provider=provider, url=srv.url) as client:
        speech = client.speak(text, **recorder.callbacks())
    record = srv.transcript[-1]
    assert set(record.frame_sizes[:-1]) == {frame_bytes}
    assert speech.pcm == record.pcm == tone_pcm(text)
    recorder.check_shape()
    assert b"".join(c.pcm for c in recorder.chunks) == record.pcm
    assert all(np.array_equal(c.samples, np.frombuffer(c.pcm, "<i2")) for c in recorder.chunks)


def test_audio_array_and_save(server, tmp_path):
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.speak("Save me.")
    audio = speech.audio
    assert audio.dtype == np.int16 and audio.tobytes() == speech.pcm
    path = tmp_path / "out.wav"
    speech.save(path)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        assert wav.readframes(wav.getnframes()) == speech.pcm


def test_keep_audio_false_keeps_nothing_but_delivers_everything(server, recorder):
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.speak("Constant memory.", keep_audio=False, **recorder.callbacks())
    with pytest.raises(RuntimeError, match="keep_audio"):
        speech.pcm
    assert b"".join(c.pcm for c in recorder.chunks) == server.transcript[-1].pcm
    assert speech.duration == pytest.approx(len(server.transcript[-1].pcm) / 48000)


# -- failures -------------------------------------------------------------------------------


def test_eigenai_wrong_key_is_an_authentication_error(make_server, recorder):
    srv = make_server(api_key="right-key")
    with TTSClient(provider="eigenai", url=srv.url, api_key="wrong-key-123") as client:
        with pytest.raises(AuthenticationError) as caught:
            client.speak("Hi", **recorder.callbacks())
    assert "EIGENAI_API_KEY" in str(caught.value)
    assert recorder.kinds == ["error"] and recorder.events[0][1] is caught.value
    assert "wrong-key-123" not in _everything_about(caught.value)


def test_shunyalabs_close_4001_is_an_authentication_error(make_server):
    srv = make_server(api_key="right-key")
    with TTSClient(provider="shunyalabs", url=srv.url, api_key="wrong-key-456") as client:
        with pytest.raises(AuthenticationError) as caught:
            client.speak("Hi")
    assert caught.value.code == 4001
    assert "wrong-key-456" not in _everything_about(caught.value)


def test_right_key_is_accepted_by_both_dialects(make_server):
    srv = make_server(api_key="right-key")
    for provider in ("eigenai", "shunyalabs"):
        with TTSClient(provider=provider, url=srv.url, api_key="right-key") as client:
            assert client.speak("Welcome.").pcm == tone_pcm("Welcome.")


def test_server_error_json(make_server, recorder):
    srv = make_server(fault="error", fault_after=1)
    with TTSClient(provider="eigenai", url=srv.url) as client:
        with pytest.raises(ServerError) as caught:
            client.speak("This fails after a frame.", **recorder.callbacks())
    assert caught.value.code == 500 and "engine failed" in str(caught.value)
    recorder.check_shape()
    assert len(recorder.chunks) == 1


def test_shunyalabs_error_json_then_the_client_carries_on(make_server):
    srv = make_server(fault="error", fault_after=0)
    with TTSClient(provider="shunyalabs", url=srv.url) as client:
        for _ in range(2):
            with pytest.raises(ServerError, match="engine failed"):
                client.speak("Fails.")


def test_garbage_text_frame_is_a_protocol_error(make_server):
    srv = make_server(fault="garbage", fault_after=1)
    with TTSClient(provider="eigenai", url=srv.url) as client:
        with pytest.raises(ProtocolError, match="not JSON"):
            client.speak("Garbage follows.")


def test_connection_refused():
    with TTSClient(provider="eigenai", url=f"ws://127.0.0.1:{free_port()}") as client:
        with pytest.raises(ConnectionFailed, match="refused"):
            client.speak("Anyone there?")


def test_handshake_that_never_answers_times_out():
    with socket.socket() as listener:  # accepts TCP, never speaks HTTP
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}"
        with TTSClient(provider="eigenai", url=url, timeout=0.3) as client:
            with pytest.raises(SynthesisTimeout, match="connect timeout") as caught:
                client.speak("Hello?")
    assert caught.value.limit == "connect"


def test_unknown_path_is_a_connection_failure_with_status(server):
    with TTSClient(provider="eigenai", url=server.url + "/nowhere") as client:
        with pytest.raises(ConnectionFailed) as caught:
            client.speak("Hi")
    assert caught.value.status == 404


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_drop_mid_stream_keeps_what_arrived(make_server, recorder, provider):
    srv = make_server(fault="drop", fault_after=2)
    with TTSClient(provider=provider, url=srv.url) as client:
        speech = client.speak("Dropped in the middle of it all.", block=False, **recorder.callbacks())
        with pytest.raises(ConnectionFailed):
            speech.wait(10)
    assert speech.pcm == srv.transcript[-1].pcm and len(srv.transcript[-1].frame_sizes) == 2
    recorder.check_shape()


def test_close_code_mid_stream_is_a_connection_failure(make_server):
    srv = make_server(fault="close", fault_after=1)
    with TTSClient(provider="eigenai", url=srv.url) as client:
        with pytest.raises(ConnectionFailed) as caught:
            client.speak("Closed with 1011.")
    assert caught.value.code == 1011


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_stall_past_the_timeout(make_server, recorder, provider):
    srv = make_server(fault="stall", fault_after=1)
    with TTSClient(provider=provider, url=srv.url, timeout=0.5) as client:
        with pytest.raises(SynthesisTimeout) as caught:
            client.speak("Stalls after one frame.", **recorder.callbacks())
    assert isinstance(caught.value, TimeoutError)
    recorder.check_shape()
    assert len(recorder.chunks) == 1


def test_wait_timeout_leaves_the_speech_running(make_server):
    srv = make_server(fault="stall", fault_after=1)
    with TTSClient(provider="eigenai", url=srv.url, timeout=30) as client:
        speech = client.speak("Still going.", block=False)
        with pytest.raises(SynthesisTimeout):
            speech.wait(0.2)
        assert not speech.done
        speech.cancel()
        with pytest.raises(Cancelled):
            speech.wait(5)


@pytest.mark.parametrize("provider", ["eigenai", "shunyalabs"])
def test_cancel_mid_stream(make_server, provider):
    srv = make_server(fault="stall", fault_after=1)
    first = threading.Event()
    recorder = Recorder(on_audio_extra=lambda chunk: first.set())
    with TTSClient(provider=provider, url=srv.url) as client:
        speech = client.speak("Cancel me.", block=False, **recorder.callbacks())
        assert first.wait(10)
        speech.cancel()
        speech.cancel()  # idempotent
        with pytest.raises(Cancelled):
            speech.wait(5)
        assert isinstance(speech.error, Cancelled)
        recorder.check_shape()
        assert isinstance(recorder.events[-1][1], Cancelled)
        # The client is still good for the next speech, on a fresh connection.
        again = threading.Event()
        following = client.speak("Next.", block=False, on_audio=lambda chunk: again.set())
        assert again.wait(10)
        following.cancel()
    assert srv.connections == 2


def test_stop_cancels_every_running_speech(make_server):
    srv = make_server(fault="stall", fault_after=0)
    with TTSClient(provider="eigenai", url=srv.url) as client:
        speeches = [client.speak(f"Speech {i}.", block=False) for i in range(3)]
        client.stop()
        for speech in speeches:
            with pytest.raises(Cancelled):
                speech.wait(5)


# -- callbacks ------------------------------------------------------------------------------


def test_a_callback_that_raises_does_not_stop_the_stream(server, caplog):
    calls = []

    def bad(chunk):
        calls.append(chunk.index)
        raise ValueError("user bug")

    def bad_complete(speech):
        raise RuntimeError("also bad")

    with TTSClient(provider="shunyalabs", url=server.url) as client:
        with caplog.at_level(logging.ERROR, logger="ttsstream"):
            speech = client.speak("The stream goes on regardless.", on_audio=bad, on_complete=bad_complete)
        assert speech.pcm == server.transcript[-1].pcm
        assert calls == list(range(len(calls))) and len(calls) == len(speech.callback_errors) - 1
        assert isinstance(speech.callback_errors[-1], RuntimeError)
        assert "user bug" in caplog.text and "Traceback" in caplog.text
        assert client.speak("Still working.").pcm == tone_pcm("Still working.")


def test_wait_inside_own_callback_raises_instead_of_deadlocking(make_server):
    # Paced at real time, so that the speech is still streaming when its first chunk's
    # callback is polled (a finished speech's wait() inside its callback returns).
    server = make_server(engine="tone", realtime=1.0)
    seen = []

    def on_audio(chunk):
        if chunk.index == 0:
            try:
                speech_box[0].wait()
            except RuntimeError as exc:
                seen.append(exc)

    speech_box = []
    ready = threading.Event()
    with TTSClient(provider="eigenai", url=server.url, dispatch="poll") as client:
        speech_box.append(client.speak("Wait inside, while the rest is still streaming.", on_audio=on_audio,
                                       block=False,
                                       on_complete=lambda s: ready.set()))
        while not ready.is_set():
            client.poll(timeout=0.1)
    assert len(seen) == 1 and "deadlock" in str(seen[0])


def test_poll_dispatch_runs_callbacks_on_the_polling_thread(server, recorder):
    with TTSClient(provider="eigenai", url=server.url, dispatch="poll") as client:
        speech = client.speak("Polled.", **recorder.callbacks())
        assert speech.done and recorder.events == []  # nothing ran without poll()
        ran = 0
        while not recorder.wait_end(0):
            ran += client.poll(timeout=1.0)
        assert client.poll() == 0
    assert ran == len(recorder.events)
    assert recorder.threads == {threading.get_ident()}
    recorder.check_shape()
    assert b"".join(c.pcm for c in recorder.chunks) == speech.pcm


def test_thread_dispatch_runs_callbacks_on_a_reader_thread(server, recorder):
    with TTSClient(provider="eigenai", url=server.url) as client:
        client.speak("Threaded.", **recorder.callbacks())
    assert threading.get_ident() not in recorder.threads and len(recorder.threads) == 1


# -- many threads, one client ---------------------------------------------------------------


@pytest.mark.parametrize("provider,count", [("eigenai", 50), ("shunyalabs", 50)])
def test_many_threads_speak_at_once(server, provider, count):
    results = {}
    errors = []
    barrier = threading.Barrier(count)

    def worker(i):
        text = f"Speaker number {i} says hello."
        try:
            barrier.wait(10)
            rec = Recorder()
            speech = client.speak(text, **rec.callbacks())
            results[i] = (text, speech, rec)
        except Exception as exc:  # recorded and asserted on the test thread
            errors.append(exc)

    with TTSClient(provider=provider, url=server.url) as client:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []
    assert len(results) == count
    for text, speech, rec in results.values():
        assert speech.pcm == tone_pcm(text)
        rec.check_shape()
        assert b"".join(c.pcm for c in rec.chunks) == speech.pcm


# -- closing ----------------------------------------------------------------------------------


def test_close_twice_and_use_after_close(server):
    client = TTSClient(provider="shunyalabs", url=server.url)
    client.speak("Before close.")
    client.close()
    client.close()
    with pytest.raises(TTSError, match="closed"):
        client.speak("After close.")


def test_close_from_inside_a_callback(make_server, recorder):
    srv = make_server(fault="stall", fault_after=2)
    client = TTSClient(provider="shunyalabs", url=srv.url)
    closed = threading.Event()

    def on_audio(chunk):
        client.close()
        closed.set()

    speech = client.speak("Close from inside.", on_audio=on_audio, block=False,
                          on_error=recorder.on_error)
    assert closed.wait(10)
    with pytest.raises(Cancelled):
        speech.wait(10)
    client.close()  # and once more from the test thread: joins the reader


def test_close_with_running_speeches_cancels_them(make_server):
    srv = make_server(fault="stall", fault_after=0)
    client = TTSClient(provider="eigenai", url=srv.url)
    speech = client.speak("Running.", block=False)
    client.close()
    with pytest.raises(Cancelled):
        speech.wait(5)


# -- keys never leak --------------------------------------------------------------------------


def _everything_about(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) + repr(exc)


def test_api_key_absent_from_debug_logs_and_reprs(make_server, caplog, capsys):
    key = "sk-very-secret-7731"
    srv = make_server(api_key=key)
    websocket.enableTrace(True)
    try:
        with caplog.at_level(logging.DEBUG):
            for provider in ("eigenai", "shunyalabs"):
                with TTSClient(provider=provider, url=srv.url, api_key=key) as client:
                    speech = client.speak("Secret keeper.")
                    text = repr(client) + repr(speech) + str(vars(client).get("_url"))
                    assert key not in text
    finally:
        websocket.enableTrace(False)
        logging.getLogger("websocket").handlers.clear()
    out = capsys.readouterr()
    assert "api_key=" in caplog.text or "token" in caplog.text  # the trace did log the handshake
    assert key not in caplog.text and key not in out.out and key not in out.err


# -- the package's front door --------------------------------------------------------------


def test_import_starts_no_thread_and_loads_no_optional_dependency():
    code = (
        "import sys, threading, ttsstream\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "bad = [m for m in ('pyaudio', 'websockets', 'ttsstream.server') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print(len(ttsstream.__all__))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 12


def test_local_provider_starts_the_shared_server_once():
    with TTSClient(provider="local") as one, TTSClient(provider="local") as two:
        a = one.speak("Local one.")
        b = two.speak("Local two.")
        assert one._routes[0].endpoint().rsplit("/api", 1)[0] == two._routes[0].endpoint().rsplit("/api", 1)[0]
    assert a.pcm and b.pcm and a.sample_rate == 24000
    names = [t.name for t in threading.enumerate()]
    assert names.count("ttsstream-local-server") == 1


def test_a_cancel_while_a_reader_holds_the_speech_is_carried_out_when_it_lets_go(make_server):
    # Reading segments or pcm holds the speech's delivery lock for a moment; an end asked
    # for in that moment is left to the holder, which must carry it out as it lets go.
    server = make_server(realtime=1.0)
    errors: "queue.SimpleQueue[object]" = queue.SimpleQueue()
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.speak("A speech that is cancelled while it is read.", block=False, on_error=errors.put)
        with speech._delivering():  # what reading speech.segments or speech.pcm does
            canceller = threading.Thread(target=speech.cancel)
            canceller.start()
            canceller.join(5)
            assert not speech.done  # the end waits for this holder
        assert speech.done and isinstance(errors.get(timeout=5), Cancelled)


def test_a_speech_ends_even_while_another_thread_reads_it(server):
    # The same race as it happens: a thread reads the speech while it ends. Before every
    # holder of the lock carried out an end asked for meanwhile, one speech in a few dozen
    # never ended (on_complete never came, done stayed False).
    with TTSClient(provider="eigenai", url=server.url) as client:
        for n in range(30):
            ended = threading.Event()
            speech = client.speak("I can read you the weather.", block=False,
                                  on_complete=lambda s, ended=ended: ended.set(),
                                  on_error=lambda e, ended=ended: ended.set())
            deadline = time.monotonic() + 5
            while not ended.is_set() and not speech.done and time.monotonic() < deadline:
                speech.segments
                speech.pcm
            assert ended.wait(5), f"speech {n} never ended: {speech!r}"
            assert speech.pcm == tone_pcm("I can read you the weather.")
