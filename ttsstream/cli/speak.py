"""``ttsstream speak``: speak a text, play it, stream it to a file or a pipe, show progress.

A short text is one request. A longer one, and standard input (read as it arrives), is
one speech of many units (the library's text stream: first audio after the first
sentence, the units' audio in order), whose segments move the progress on the status
line. The main thread waits in slices of ``status.INTERVAL``, redrawing the status line
between them, so Ctrl-C (and SIGTERM or SIGHUP, see ``signals``) gets through at once.

The output: ``--out FILE`` is checked (its extension against ``--format``, the format
against ``--rate``) before anything is sent; interrupted or failed, a file keeps the
audio received so far; with nothing to play on and no ``--out``, the audio goes to
``speech.wav`` (``speech.mp3``, ... by ``--format``), or the first ``speech-N.wav``
that does not exist, never over a file.

Imports: ``ttsstream.audio``, ``ttsstream.errors``, ``ttsstream.urls``,
``ttsstream.formats`` (the resampler, to check for soxr); the client,
``ttsstream.api`` (``choose_provider``), ``ttsstream.local`` and playback only when it
runs; and the CLI's ``options``, ``text``, ``sink``, ``signals``, ``status``, ``notice``
and ``problems``.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, TextIO, Tuple, Union

from ..audio import SAMPLE_WIDTH
from ..errors import InvalidParameterError, PlaybackError
from ..urls import display_url
from .notice import LOCAL_NOTICE, first_time
from .options import Choice, choose
from .problems import BROKEN_PIPE, OK, UsageError, shell_words
from .signals import held
from .sink import LABELS, AudioSink, default_name, free_name, output_format
from .status import INTERVAL, Progress, StatusLine
from .text import PIECE_CHARS, read_text

if TYPE_CHECKING:
    from ..client import Speech, TTSClient
    from ..playback import AudioPlayer

__all__ = ["speak", "DEFAULT_OUT"]

# Where the audio goes when nothing plays and --out is not given (speech.mp3, ... with
# --format); never over a file (speech-1.wav, speech-2.wav, ... when it exists).
DEFAULT_OUT = default_name("wav")


def speak(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``ttsstream speak``; return the exit code. Raises UsageError, TTSError, OSError."""
    from ..api import choose_provider

    try:
        provider = choose_provider(args.provider, args.url)
    except InvalidParameterError as exc:
        raise UsageError(f"--url: {shell_words(exc.message)}") from None
    choice = choose(args, provider)
    to_stdout = args.out == "-"
    if to_stdout:
        _refuse_terminal(out)
    if args.subtitles:
        _check_subtitles(args.subtitles)
    fmt, rate = output_format(args.out, args.format, args.rate)
    if rate is not None and rate != choice.dialect.sample_rate:
        _check_resampler(choice.dialect.sample_rate, rate)
    note: Callable[[str], None] = ((lambda message: None) if args.quiet
                                   else (lambda message: print(f"ttsstream: {message}", file=err)))
    sink: Optional[AudioSink] = None
    player = None
    run: Optional[_Run] = None
    try:
        with held():  # a part file is made and known here, or not at all
            # --out is opened before the text is read, so that a bad one is said at once.
            sink = _sink(out, args.out, fmt, rate) if args.out else None
        text = read_text(args.text, args.file)
        if provider == "local" and not args.provider and (args.verbose or first_time(LOCAL_NOTICE)):
            note("no provider, url or API key given: speaking with the local offline voice "
                 "(--provider or an API key chooses a service; said once, or with --verbose)")
        if provider == "local" and choice.url is None:
            _start_local(choice)  # a missing dependency is said first, before any talk of files
        player, why = (None, None) if args.no_play or to_stdout else _open_player(args.device)
        if sink is None and player is None:
            with held():
                sink = _default_sink(fmt, rate)  # never replaces a file: speech.wav, speech-1.wav, ...
            if why is not None:
                note(f"cannot play here ({why}); writing {sink.path} instead")
        elif player is None and why is not None:
            note(f"cannot play here ({why}); writing {args.out} only")
        run = _Run(choice, player, StatusLine.for_stream(err, args.quiet), args.timeout, sink, args.fallback)
        try:
            run.speak(text)
        finally:
            run.status.clear()
        if sink is not None:
            with held():  # a finished file gets its name whole, even if a signal comes now
                sink.close(complete=not sink.broken, sample_rate=run.sample_rate)
            if sink.broken:
                return BROKEN_PIPE
        if args.subtitles:
            run.save_subtitles(args.subtitles)
    except BaseException:
        if sink is not None and sink.close(complete=False) and sink.path is not None:
            note(f"kept the {sink.duration:.2f} s of audio received so far in {Path(sink.path).resolve()}")
        if args.subtitles and run is not None:
            try:
                if run.save_subtitles(args.subtitles):
                    note(f"kept the subtitles of the words received so far in {Path(args.subtitles).resolve()}")
            except (OSError, ValueError) as exc:  # the first failure is the one to report
                note(f"could not keep the subtitles: {exc}")
        raise
    finally:
        if player is not None:
            player.close()
    assert run is not None
    _report(run.summary(sink), out if not to_stdout else err, args)
    return OK


def _sink(out: TextIO, path: str, fmt: str, rate: Optional[int]) -> AudioSink:
    """The sink for ``--out PATH`` (``-``: ``out``'s bytes), ``fmt`` and ``rate`` as
    ``output_format`` chose them. Raises UsageError."""
    if path == "-":
        return AudioSink(out.buffer, None, fmt, rate=rate)
    if os.path.isdir(path):
        raise UsageError(f"--out {path}: is a folder; name a file")
    try:
        return AudioSink(None, path, fmt, rate=rate)
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot write there: {exc.strerror or exc}") from None


def _check_resampler(rate_in: int, rate_out: int) -> None:
    """Make sure the speech can be resampled, before anything is sent: soxr is there.
    Raises TTSError (with the pip command)."""
    from ..formats.resample import StreamResampler

    StreamResampler(rate_in, rate_out)


def _default_sink(fmt: str, rate: Optional[int]) -> AudioSink:
    """The sink for output the user did not name: ``speech.wav`` (``speech.raw`` with
    ``--format raw``, ...), or the first numbered name no file has. Raises UsageError."""
    name = default_name(fmt)
    try:
        path = free_name(name)
    except OSError as exc:
        raise UsageError(f"cannot write {name} here ({exc.strerror or exc}): name a file with --out") from None
    try:
        return AudioSink(None, path, fmt, rate=rate, reserved=True)
    except OSError as exc:
        os.unlink(path)
        raise UsageError(f"cannot write {path} here ({exc.strerror or exc}): name a file with --out") from None


def _start_local(choice: Choice) -> None:
    """Start the local voice's server now. Raises ConnectionFailed (naming what is missing)."""
    from ..local import local_url

    local_url(choice.dialect)


def _check_subtitles(path: str) -> None:
    """Refuse a subtitle file of a kind not written, or in a folder that is not there."""
    if os.path.splitext(path)[1].lower() not in (".srt", ".vtt"):
        raise UsageError(f"--subtitles {path}: name a .srt (SubRip) or .vtt (WebVTT) file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"--subtitles {path}: the folder {folder} does not exist")


def _refuse_terminal(out: TextIO) -> None:
    """``--out -`` onto a terminal would print binary noise there. Raises UsageError."""
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        raise UsageError("--out -: standard output is a terminal, and audio is not text: pipe it "
                         "(--out - | aplay) or redirect it (--out - > speech.wav)")


def _open_player(device: Optional[str]) -> Tuple[Optional["AudioPlayer"], Optional[str]]:
    """An open player for ``device``; or None and why, where nothing can play.

    Raises:
        UsageError: ``device`` names no output device (while there are some).
        PlaybackError: PyAudio is missing, or the device failed.
    """
    from ..playback import AudioPlayer, output_devices

    chosen: Union[None, int, str] = int(device) if device is not None and device.isdigit() else device
    if chosen is not None:
        found = output_devices()
        if not any(_matches(chosen, each) for each in found):
            listed = ", ".join(f"{each['index']}: {each['name']}" for each in found) or "none here"
            raise UsageError(f"--device {device}: no such output device (there are {listed}); "
                             "list them with: ttsstream devices")
    player = AudioPlayer(device=chosen)
    try:
        player.start()
    except PlaybackError as exc:
        player.close()
        if device is not None:
            raise  # the user asked for this device: failing is the answer
        return None, str(exc).split(";")[0]
    return player, None


def _matches(device: Union[int, str], found: Dict[str, Any]) -> bool:
    """Whether ``device`` (an index, or a part of a name) names the output device ``found``."""
    if isinstance(device, int):
        return bool(found["index"] == device)
    return device.lower() in str(found["name"]).lower()


class _Run:
    """One command's speech. Thread: the main thread, but for ``broken`` and the
    callbacks, which run on reader threads (or the cue thread, with a player)."""

    def __init__(self, choice: Choice, player: Optional["AudioPlayer"], status: StatusLine, timeout: float,
                 sink: Optional[AudioSink], fallback: Optional[List[str]] = None) -> None:
        self.choice = choice
        self.fallback = fallback
        self.player = player
        self.status = status
        self.timeout = timeout
        self.sink = sink
        if sink is not None:
            sink.on_broken = self.broken
        self.speeches: List["Speech"] = []
        self.progress = Progress()
        self._chars_before = 0  # characters of the segments begun so far
        self._client: Optional["TTSClient"] = None
        self._played_base = player.played_bytes if player is not None else 0

    @property
    def sample_rate(self) -> int:
        return self.speeches[-1].sample_rate if self.speeches else self.choice.dialect.sample_rate

    def broken(self) -> None:
        """The sink's reader went away: stop speaking. Thread: a reader thread."""
        client = self._client
        if client is not None:
            client.stop()

    def speak(self, text: Union[str, Iterator[str]]) -> None:
        """Speak it; return once all has been received (and played). Raises TTSError."""
        from ..client import TTSClient

        choice = self.choice
        if isinstance(text, str):
            self.progress.chars = len(text)
            source: Union[str, Iterator[str]] = text if len(text) <= PIECE_CHARS else iter([text])
        else:
            source = text
        with TTSClient(choice.provider, api_key=choice.api_key, model=choice.model, voice=choice.voice,
                       url=choice.url, timeout=self.timeout, allow_insecure=choice.allow_insecure,
                       player=self.player, fallback=self.fallback) as client:
            self._client = client
            speech = client.speak(source, on_audio=self.sink.write if self.sink else None,
                                  on_segment=self._segment, play=self.player is not None, block=False,
                                  keep_audio=False, extra=choice.extra or None, **choice.params)
            self.speeches.append(speech)
            self._wait(lambda: speech.done)
            if self.sink is not None and self.sink.broken:
                return
            speech.wait()
            self.progress.done_chars = len(speech.text)
            self._draw(force=True)

    def save_subtitles(self, path: str) -> bool:
        """Write the words of what was spoken (or received so far) to ``path``; return
        whether there was a speech to write. Raises OSError."""
        if not self.speeches:
            return False
        self.speeches[-1].save_subtitles(path)
        return True

    def _segment(self, segment: Any) -> None:
        """A unit begins (to play): the progress moves. Thread: a reader (or the cue) thread."""
        progress = self.progress
        progress.piece = progress.pieces = segment.index + 1
        progress.done_chars = self._chars_before
        self._chars_before += len(segment.text)

    def _wait(self, finished: Any) -> None:
        event = threading.Event()
        while not finished():
            event.wait(INTERVAL)  # a slice: Ctrl-C gets through, and the line stays live
            self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.status.enabled:
            return
        progress = self.progress
        first = self.speeches[0].first_audio_latency if self.speeches else None
        progress.first_audio = first
        progress.received = sum(s.duration for s in self.speeches)
        if self.player is not None:
            rate = self.sample_rate
            progress.played = (self.player.played_bytes - self._played_base) / (SAMPLE_WIDTH * rate)
            progress.underruns = sum(s.underruns for s in self.speeches)
        self.status.draw(progress, force)

    def summary(self, sink: Optional[AudioSink]) -> Dict[str, Any]:
        """What was done, for the last line (or ``--json``)."""
        first = self.speeches[0].first_audio_latency if self.speeches else None
        choice = self.choice
        return {
            "ok": True, "provider": choice.provider, "model": choice.model,
            "voice": choice.voice or choice.dialect.default_voice(choice.model),
            "url": display_url(choice.url) if choice.url else None,
            "characters": sum(len(s.text) for s in self.speeches),
            "pieces": sum(len(s.segments) for s in self.speeches), "sample_rate": self.sample_rate,
            "duration_s": round(sum(s.duration for s in self.speeches), 3),
            "first_audio_ms": None if first is None else round(first * 1000, 1),
            "played": self.player is not None,
            "underruns": sum(s.underruns for s in self.speeches),
            "underrun_ms": round(sum(s.underrun_ms for s in self.speeches), 1),
            "out": None if sink is None else "-" if sink.path is None else str(Path(sink.path).resolve()),
            "format": None if sink is None else sink.format,
            "out_rate": None if sink is None else sink.out_rate or self.sample_rate,
            "spoken_by": next((s.provider.name for s in self.speeches if s.provider is not None), None),
            "failed_first": [{"provider": provider.name, "error": type(error).__name__, "message": str(error)}
                             for s in self.speeches for provider, error in s.attempts],
        }


def _report(summary: Dict[str, Any], out: TextIO, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(summary), file=out)
        return
    if args.quiet:
        return
    first = summary["first_audio_ms"]
    after = f", first audio after {first:.0f} ms" if first is not None else ""
    for failed in summary["failed_first"]:
        print(f"{failed['provider']} failed before any audio ({failed['message']}); "
              f"spoken by {summary['spoken_by']} instead", file=out)
    if summary["played"]:
        print(f"played {summary['duration_s']:.2f} s of audio at {summary['sample_rate']} Hz{after}", file=out)
    if not summary["out"]:
        return
    written = f"{LABELS[summary['format']]} at {summary['out_rate']} Hz"
    if summary["out"] == "-":
        print(f"streamed {summary['duration_s']:.2f} s of {written} to standard output{after}", file=out)
    elif summary["played"]:
        print(f"wrote {summary['out']}: {written}", file=out)
    else:
        print(f"wrote {summary['out']}: {summary['duration_s']:.2f} s of {written}{after}", file=out)
