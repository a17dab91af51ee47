"""Speaking one utterance on a connection, whatever the dialect: the bundled server's inner loop.

``Speaker.speak`` pulls PCM from the engine (on the utterance's own thread), cuts it
into binary frames of ``frame_bytes``, sends each (after its ``chunk`` message when the
dialect has one), paces them, gives the fault injector its points, records the
utterance, and ends with the dialect's end message or error message. A dialect says
how its messages look with a ``Framing``; everything else is the same for all.

A client that asked for the ``words`` extension in its handshake (``X-TTSStream-Extensions:
words``, see ``protocols.extensions``) gets one ``ttsstream.words`` message per utterance,
after its audio and just before its end message, when the engine reports words (the
``tone`` and ``espeak`` engines do): every word of the request's text, by its offsets
in that text, with its start and end in seconds from the utterance's first sample as
sent (the engine's own samples: the server neither trims nor resamples them; pacing
only delays them, and a WAV header is not audio). Every other client's traffic is
exactly what it was.

This module owns the framing of audio, the limit on a request's text, the rules for
when an utterance is recorded, the words message's place, and the one INFO line
logged per request (``request_line``: never a key, and of the text only a short
preview). It imports ``engine``, ``synthesis``, ``faults`` and ``transcript`` from the
package, and ``protocols.extensions``; it knows no dialect's field names.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, List, NamedTuple, Optional

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ..protocols.base import WordTime
from ..protocols.extensions import HEADER, WORDS, requested, words_frame
from .engine import Engine, SpokenWord, UnknownLanguage, UnknownVoice
from .faults import FaultInjector, Scene, Stop
from .synthesis import Pacer, Synthesis, Workers
from .transcript import Take, Transcript

__all__ = ["Framing", "Speaker", "request_line"]

log = logging.getLogger("ttsstream.server")

PREVIEW_CHARS = 24  # of a request's text, in its log line: enough to tell requests apart


def request_line(take: Take, outcome: str) -> str:
    """One request in a line: ``eigenai higgs2p5 voice=Linda 12 chars "Hello there" -> completed, 0.55 s of audio``."""
    text = " ".join(take.text.split())
    preview = text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "\u2026"
    return (f"{take.dialect} {take.model or '-'} voice={take.voice or '-'} {len(take.text)} chars "
            f"\"{preview}\" -> {outcome}, {take.audio_seconds:.2f} s of audio")


class Framing(NamedTuple):
    """How a dialect frames the messages around an utterance's audio.

    Attributes:
        end: the message that ends an utterance.
        error: an error message, from its text and code.
        chunk: the metadata message sent before each binary frame (its second argument
            says whether the frame is the last), or None for none.
    """

    end: Callable[[Take], str]
    error: Callable[[str, int], str]
    chunk: Optional[Callable[[Take, bool], str]] = None


class Speaker:
    """Streams utterances from one engine to any connection of one server.

    Args:
        engine: the speech engine.
        workers: where each utterance's engine thread is registered.
        transcript: where each utterance is recorded.
        faults: the fault to inject, if any.
        frame_bytes: the size of every binary frame but the last (may be odd).
        realtime: pace audio at this multiple of real time; 0 sends as fast as possible.
        max_text_chars: the longest text one request may ask for; a longer one gets the
            dialect's error message, code 413.

    Thread: speak() runs on the event loop; nothing here changes after construction.
    """

    def __init__(self, engine: Engine, workers: Workers, transcript: Transcript, faults: FaultInjector,
                 frame_bytes: int, realtime: float, max_text_chars: int) -> None:
        self._engine = engine
        self._workers = workers
        self._transcript = transcript
        self._faults = faults
        self._frame_bytes = frame_bytes
        self._realtime = realtime
        self._max_text = max_text_chars

    async def speak(self, ws: ServerConnection, take: Take, framing: Framing) -> bool:
        """Stream one utterance: frames, faults, end message. Returns whether to keep serving.

        Thread: the event loop; the engine runs on the utterance's own thread.

        Raises:
            ConnectionClosed: the client went away (the utterance is recorded first).
        """
        if len(take.text) > self._max_text:
            # Refused before anything is spoken, so not recorded; the connection serves on.
            log.info("%s", request_line(take, f"refused: longer than the limit of {self._max_text} characters"))
            await ws.send(framing.error(f"text is {len(take.text)} characters; this server takes at most "
                                        f"{self._max_text} per request: split it", 413))
            return True
        try:
            with self._faults.speaking(ws):
                return await self._speak(ws, take, framing)
        finally:
            log.info("%s", request_line(take, take.outcome))

    async def _speak(self, ws: ServerConnection, take: Take, framing: Framing) -> bool:
        synthesis = Synthesis(
            self._engine, take.text,
            dict(voice=take.voice, language=take.language, speed=take.speed, sample_rate=take.sample_rate),
            self._workers.name(threading.current_thread().name), self._workers,
        )
        take.connection = self._transcript.serial(ws.id)
        pacer = Pacer(self._realtime, take.sample_rate, len(take.header))
        assert ws.request is not None  # websockets sets it in the handshake, before any handler runs
        wants_words = WORDS in requested(ws.request.headers.get_all(HEADER))

        async def send_audio(frame: bytes, is_final: bool = False) -> None:
            if framing.chunk is not None:
                await ws.send(framing.chunk(take, is_final))
            await ws.send(frame)
            take.sent += frame
            take.frame_sizes.append(len(frame))

        scene = Scene(ws, take, framing.error, self._transcript, pacer, send_audio)
        buffer = bytearray(take.header)
        log.debug("speaking %d characters (%s)", len(take.text), take.dialect)
        try:
            try:
                while True:
                    try:
                        piece = await synthesis.next()
                    except (UnknownVoice, UnknownLanguage) as exc:
                        # The client's mistake, not the engine's: say what to choose instead.
                        take.outcome = f"refused: {exc}"
                        self._transcript.record(take, completed=False)
                        await ws.send(framing.error(str(exc), 400))
                        return True
                    except Exception:  # noqa: BLE001  (an engine bug must not kill the connection)
                        log.exception("the %s engine failed", self._engine.name)
                        take.outcome = "the engine failed"
                        self._transcript.record(take, completed=False)
                        await ws.send(framing.error("engine failed", 500))
                        return True
                    if piece is None:
                        break
                    buffer += piece
                    await self._send_frames(scene, buffer, framing.chunk is not None, final=False)
                await self._send_frames(scene, buffer, framing.chunk is not None, final=True)
                await self._faults.at_frame(scene)
                await self._faults.at_end(scene)
            except Stop as stop:
                take.outcome = f"fault {take.fault or 'injected'}"
                return stop.keep_serving
            self._transcript.record(take, completed=True)
            take.outcome = "completed"
            words = synthesis.words if wants_words else None
            if words is not None:
                await ws.send(words_frame(_word_times(take, words)))
            await ws.send(framing.end(take))
            return True
        except ConnectionClosed:
            take.outcome = "the client went away"
            self._transcript.record(take, completed=False)
            raise
        finally:
            await synthesis.close()

    async def _send_frames(self, scene: Scene, buffer: bytearray, chunked: bool, final: bool) -> None:
        """Send the whole frames in ``buffer``; with ``final``, everything in it."""
        size = self._frame_bytes
        # With per-frame metadata a frame waits until we know whether another follows
        # (its chunk message says is_final); without it, frames go as soon as they fill.
        threshold = size + 1 if chunked else size
        while buffer and (final or len(buffer) >= threshold):
            await self._faults.at_frame(scene)
            cut = max(1, size - scene.take.short_by)
            scene.take.short_by = 0
            frame = bytes(buffer[:cut])
            del buffer[:cut]
            await scene.send_audio(frame, final and not buffer)
            await scene.pacer.sent(len(frame))


def _word_times(take: Take, words: List[SpokenWord]) -> List[WordTime]:
    """The engine's words as the client is told them: seconds, never past the audio sent."""
    rate, seconds = take.sample_rate, take.audio_seconds
    return [WordTime(take.text[word.char_start:word.char_end], word.char_start, word.char_end,
                     min(word.start / rate, seconds), min(word.end / rate, seconds)) for word in words]
