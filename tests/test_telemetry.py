"""OpenTelemetry: a ``ttsstream.speech`` span and metrics per speech, over real sockets.

The SDK's tracer and meter providers can be set once per process, so one module-scoped
fixture sets them (an in-memory span exporter and metric reader) and every test reads
what it added. Whether OpenTelemetry is imported at all is checked in child processes.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from ttsstream import ConnectionFailed, Provider, ServerError, TTSClient, telemetry
from ttsstream.errors import Cancelled


class Failing(SpanProcessor):
    """An exporter's processor with a bug, switched on by a test: it raises on every span."""

    def __init__(self) -> None:
        self.on = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            raise RuntimeError("a broken exporter")


class Otel(NamedTuple):
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    failing: Failing


@pytest.fixture(scope="module")
def otel() -> Iterator[Otel]:
    """The process's tracer and meter providers, in memory (set once: the API allows no second)."""
    spans, reader, failing = InMemorySpanExporter(), InMemoryMetricReader(), Failing()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer_provider.add_span_processor(failing)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    assert trace.get_tracer_provider() is tracer_provider, "another test set the tracer provider first"
    yield Otel(spans, reader, failing)
    tracer_provider.shutdown()


@pytest.fixture
def recorded(otel: Otel) -> Otel:
    """The providers, with the spans of earlier tests cleared."""
    otel.spans.clear()
    return otel


def _metrics(reader: InMemoryMetricReader) -> Dict[str, List[Any]]:
    """Every data point of the ttsstream meter, by instrument name (cumulative)."""
    found: Dict[str, List[Any]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            if scope.scope.name == telemetry.METER_NAME:
                for metric in scope.metrics:
                    found[metric.name] = list(metric.data.data_points)
    return found


def _point(points: Dict[str, List[Any]], name: str, **attributes: Any) -> Optional[Any]:
    """The data point of ``name`` whose attributes include ``attributes``, or None."""
    for point in points.get(name, ()):
        if all(point.attributes.get(key) == value for key, value in attributes.items()):
            return point
    return None


def _sum(points: Dict[str, List[Any]], name: str, **attributes: Any) -> float:
    point = _point(points, name, **attributes)
    return 0.0 if point is None else float(point.value)


def _count(points: Dict[str, List[Any]], name: str, **attributes: Any) -> int:
    point = _point(points, name, **attributes)
    return 0 if point is None else int(point.count)


def _speech_spans(otel: Otel) -> List[ReadableSpan]:
    return [span for span in otel.spans.get_finished_spans() if span.name == telemetry.SPAN_NAME]


# -- spans ------------------------------------------------------------------------------------


def test_a_speech_is_one_span_with_its_facts(recorded: Otel, server: Any) -> None:
    text = "Telemetry counts these characters."
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.speak(text)
    spans = _speech_spans(recorded)
    assert len(spans) == 1
    span = spans[0]
    assert span.kind == trace.SpanKind.CLIENT
    assert span.status.status_code == StatusCode.UNSET
    attributes = dict(span.attributes or {})
    assert attributes["ttsstream.provider"] == "eigenai"
    assert attributes["ttsstream.model"] == client.model
    assert attributes["ttsstream.chars"] == len(text)
    assert attributes["ttsstream.audio_seconds"] == pytest.approx(speech.duration) and speech.duration > 0
    assert speech.first_audio_latency is not None
    assert attributes["ttsstream.first_audio_ms"] == pytest.approx(speech.first_audio_latency * 1000)
    assert attributes["ttsstream.first_audio_ms"] > 0
    assert attributes["ttsstream.cached"] is False
    assert attributes["ttsstream.attempts"] == 1
    assert "error.type" not in attributes
    assert span.start_time is not None and span.end_time is not None and span.start_time < span.end_time


def test_a_text_stream_is_one_span_for_all_its_units(recorded: Otel, server: Any) -> None:
    with TTSClient(provider="eigenai", url=server.url) as client:
        stream = client.open_stream()
        stream.feed("One sentence here. ")
        stream.feed("And another one after it.")
        stream.finish()
        stream.wait(timeout=30)
    spans = _speech_spans(recorded)
    assert len(spans) == 1
    assert dict(spans[0].attributes or {})["ttsstream.chars"] == len(stream.text) > 0
    assert dict(spans[0].attributes or {})["ttsstream.audio_seconds"] == pytest.approx(stream.duration)


def test_a_failed_speech_has_an_error_status_and_type_but_not_its_text(
        recorded: Otel, make_server: Any) -> None:
    server = make_server(fault="http_500")
    text = "A secret sentence that must stay out of the span."
    with TTSClient(provider="eigenai", url=server.url, api_key="sk-never-in-a-span", retries=0) as client:
        with pytest.raises(ConnectionFailed):
            client.speak(text)
    spans = _speech_spans(recorded)
    assert len(spans) == 1
    span = spans[0]
    assert span.status.status_code == StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "ConnectionFailed"
    assert "ttsstream.first_audio_ms" not in attributes
    assert attributes["ttsstream.audio_seconds"] == 0
    recorded_text = repr(span.to_json())
    assert "secret sentence" not in recorded_text and "sk-never-in-a-span" not in recorded_text
    assert not span.events  # no exception event: its message could carry what the server echoed


def test_a_cancelled_speech_is_not_a_failure(recorded: Otel, make_server: Any) -> None:
    server = make_server(realtime=1.0)  # audio at the pace it plays: still streaming when cancelled
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.speak("This sentence is cancelled before it is over.", block=False)
        speech.cancel()
        with pytest.raises(Cancelled):
            speech.wait(timeout=30)
    spans = _speech_spans(recorded)
    assert len(spans) == 1
    assert spans[0].status.status_code == StatusCode.UNSET
    attributes = dict(spans[0].attributes or {})
    assert attributes["ttsstream.cancelled"] is True and "error.type" not in attributes


def test_a_speech_inside_a_users_span_is_its_child(recorded: Otel, server: Any) -> None:
    tracer = trace.get_tracer("an-application")
    with TTSClient(provider="eigenai", url=server.url) as client:
        with tracer.start_as_current_span("answer the caller") as parent:
            client.speak("Spoken inside the application's span.")
        client.speak("Spoken outside it.")
    inside, outside = _speech_spans(recorded)
    assert inside.parent is not None
    assert inside.parent.span_id == parent.get_span_context().span_id
    assert inside.context is not None and inside.context.trace_id == parent.get_span_context().trace_id
    assert outside.parent is None


def test_a_failing_exporter_never_fails_a_speech_and_is_logged_once(
        recorded: Otel, server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ttsstream")
    completed: List[Any] = []
    recorded.failing.on = True
    try:
        with TTSClient(provider="eigenai", url=server.url) as client:
            first = client.speak("The exporter breaks.", on_complete=completed.append)
            second = client.speak("It breaks again.", on_complete=completed.append)
    finally:
        recorded.failing.on = False
    assert first.error is None and second.error is None and completed == [first, second]
    complaints = [record for record in caplog.records if "OpenTelemetry hook failed" in record.getMessage()]
    assert len(complaints) == 1  # two speeches, two faults: logged once (no other test breaks it)
    assert complaints[0].exc_info is not None


# -- metrics ----------------------------------------------------------------------------------


def test_metrics_count_speeches_characters_audio_and_errors(
        recorded: Otel, server: Any, make_server: Any) -> None:
    before = _metrics(recorded.reader)
    texts = ("The first one.", "And the second, a little longer.")
    with TTSClient(provider="eigenai", url=server.url) as client:
        model = client.model
        speeches = [client.speak(text) for text in texts]
    failing = make_server(fault="http_500")
    with TTSClient(provider="eigenai", url=failing.url, retries=0) as client:
        with pytest.raises(ConnectionFailed):
            client.speak("This one fails.")
    after = _metrics(recorded.reader)
    labels = {"ttsstream.provider": "eigenai", "ttsstream.model": model}

    def added(name: str, **extra: Any) -> float:
        return _sum(after, name, **labels, **extra) - _sum(before, name, **labels, **extra)

    assert (_count(after, telemetry.FIRST_AUDIO, **labels, **{"ttsstream.cached": False})
            - _count(before, telemetry.FIRST_AUDIO, **labels, **{"ttsstream.cached": False})) == 2
    assert added(telemetry.CHARACTERS) == sum(len(text) for text in texts) + len("This one fails.")
    assert added(telemetry.AUDIO) == pytest.approx(sum(speech.duration for speech in speeches))
    assert added(telemetry.ERRORS, **{"error.type": "ConnectionFailed"}) == 1


def test_fallbacks_and_cache_lookups_are_counted(recorded: Otel) -> None:
    before = _metrics(recorded.reader)
    telemetry.fallback("eigenai", "local", ServerError("the service is overloaded", code=503))
    telemetry.cache_lookup(hit=True)
    telemetry.cache_lookup(hit=False)
    telemetry.cache_lookup(hit=False)
    after = _metrics(recorded.reader)
    route = {"ttsstream.fallback.from": "eigenai", "ttsstream.fallback.to": "local", "error.type": "ServerError"}
    assert _sum(after, telemetry.FALLBACKS, **route) - _sum(before, telemetry.FALLBACKS, **route) == 1
    hits = {"ttsstream.cache.hit": True}
    misses = {"ttsstream.cache.hit": False}
    assert _sum(after, telemetry.CACHE_LOOKUPS, **hits) - _sum(before, telemetry.CACHE_LOOKUPS, **hits) == 1
    assert _sum(after, telemetry.CACHE_LOOKUPS, **misses) - _sum(before, telemetry.CACHE_LOOKUPS, **misses) == 2


def test_a_fallen_back_and_a_cached_speech_say_so_in_their_spans_and_metrics(
        recorded: Otel, server: Any, make_server: Any) -> None:
    down = make_server(fault="http_500")
    before = _metrics(recorded.reader)
    with TTSClient(provider="eigenai", url=down.url, retries=0, cache=True,
                   fallback=[Provider("local", model="qwen3-tts", url=server.url)]) as client:
        first = client.speak("Said twice.")
        again = client.speak("Said twice.")
    after = _metrics(recorded.reader)
    spoken, cached = [dict(span.attributes or {}) for span in _speech_spans(recorded)]
    assert first.provider is not None and first.provider.name == "local" and again.cached
    assert (spoken["ttsstream.provider"], spoken["ttsstream.model"]) == ("local", "qwen3-tts")
    assert spoken["ttsstream.attempts"] == 2 and spoken["ttsstream.cached"] is False
    assert cached["ttsstream.cached"] is True and cached["ttsstream.attempts"] == 2  # the first tried again
    route = {"ttsstream.fallback.from": "eigenai", "ttsstream.fallback.to": "local", "error.type": "ConnectionFailed"}
    assert _sum(after, telemetry.FALLBACKS, **route) - _sum(before, telemetry.FALLBACKS, **route) == 2
    hits = {"ttsstream.cache.hit": True}
    assert _sum(after, telemetry.CACHE_LOOKUPS, **hits) - _sum(before, telemetry.CACHE_LOOKUPS, **hits) == 1


def test_the_instruments_follow_the_conventions_for_units(recorded: Otel, server: Any) -> None:
    with TTSClient(provider="eigenai", url=server.url) as client:
        client.speak("Units.")
    data = recorded.reader.get_metrics_data()
    assert data is not None
    units = {metric.name: metric.unit for resource in data.resource_metrics for scope in resource.scope_metrics
             if scope.scope.name == telemetry.METER_NAME for metric in scope.metrics}
    assert {name: units.get(name) for name in (telemetry.FIRST_AUDIO, telemetry.CHARACTERS, telemetry.AUDIO)} == {
        telemetry.FIRST_AUDIO: "ms", telemetry.CHARACTERS: "{character}", telemetry.AUDIO: "s"}


# -- without OpenTelemetry, and before the first client ------------------------------------------------

HIDE_OPENTELEMETRY = """
import importlib.abc, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)
        return None

sys.meta_path.insert(0, Refuse())
"""

SPEAK = """
from ttsstream import TTSClient, telemetry
from ttsstream.server import LocalServer

server = LocalServer(engine="tone").start()
try:
    with TTSClient(provider="eigenai", url=server.url) as client:
        speech = client.speak("Spoken without OpenTelemetry.")
finally:
    server.stop()
assert speech.error is None and speech.duration > 0, speech
assert speech._telemetry is None and telemetry._otel is None
"""


def _run(code: str) -> Tuple[int, str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


def test_without_opentelemetry_a_speech_works_and_imports_nothing_of_it() -> None:
    code = HIDE_OPENTELEMETRY + SPEAK + textwrap.dedent("""
        loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry"))
        assert not loaded, loaded
        print("spoke")
    """)
    status, output = _run(code)
    assert status == 0, output
    assert output.strip() == "spoke"


def test_with_opentelemetry_importing_ttsstream_does_not_import_it_and_a_client_does() -> None:
    # A client loads it when it is made, not its first speech: under a burst, the first
    # speeches each waited for the imports one of them ran (first audio p99 +120 ms).
    code = textwrap.dedent("""
        import sys
        import ttsstream, ttsstream.telemetry
        assert ttsstream.telemetry._enabled  # installed here
        loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry"))
        assert not loaded, loaded
        print("not imported")
        ttsstream.TTSClient(provider="eigenai", url="ws://127.0.0.1:9/api/v1/generate/ws").close()
        assert ttsstream.telemetry._otel is not None and "opentelemetry.metrics" in sys.modules
        print("loaded by the client")
    """)
    status, output = _run(code)
    assert status == 0, output
    assert output.split() == ["not", "imported", "loaded", "by", "the", "client"]
