"""The ``ttsstream`` command: ``speak``, ``devices`` and ``serve``. The only module that prints.

``main(argv=None)`` returns an exit code: 0 on success, 1 when the work failed (one
clear line on stderr says why), 2 for a bad command line.

Imports: the package's version, errors and protocols (the provider names) at once; the
client, playback and the server only inside the command that needs them, so that
``ttsstream --help`` starts quickly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, TextIO, Union

from . import __version__
from .errors import PlaybackError, TTSError
from .protocols import PROVIDERS

if TYPE_CHECKING:
    from .playback import AudioPlayer

__all__ = ["main"]

DEFAULT_OUT = "speech.wav"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ttsstream", description="Stream text-to-speech from EigenAI, Shunyalabs or the bundled local voice."
    )
    parser.add_argument("--version", action="version", version=f"ttsstream {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    speak = commands.add_parser(
        "speak", help="speak a text: play it, and write a WAV file with --out (or where nothing can play)")
    speak.add_argument("text", metavar="TEXT", help="what to say; '-' reads standard input")
    speak.add_argument("--provider", choices=PROVIDERS,
                       help="the service (default: from --url, else the one whose API key is set, else local)")
    speak.add_argument("--model", help="the model, e.g. higgs2p5, chatterbox, qwen3-tts, zero-indic")
    speak.add_argument("--voice", help="the voice, e.g. Linda or Nisha")
    speak.add_argument("--url", help="the endpoint, e.g. ws://127.0.0.1:8765/api/v1/generate/ws")
    speak.add_argument("--out", metavar="FILE.wav",
                       help=f"also write the audio here (without a device or with --no-play: {DEFAULT_OUT})")
    speak.add_argument("--no-play", action="store_true", help="do not play the audio, only write it")
    speak.add_argument("--device", help="output device: an index or part of a name (see: ttsstream devices)")
    speak.add_argument("--timeout", type=float, default=30.0, help="seconds to connect and between frames")

    commands.add_parser("devices", help="list the audio output devices")

    serve = commands.add_parser("serve", help="run the bundled offline TTS server (both dialects)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    serve.add_argument("--api-key", help="require this API key from clients")
    serve.add_argument("--engine", default="espeak",
                       help="speech engine: espeak (real speech) or tone (one beep per character, for tests); "
                            "default: espeak")
    return parser


def _choose_provider(args: argparse.Namespace, err: TextIO) -> str:
    from .api import choose_provider

    provider = choose_provider(args.provider, args.url)
    if provider == "local" and not args.provider:
        print("ttsstream: no provider, url or API key given: speaking with the local offline voice", file=err)
    return provider


def _open_player(device: Optional[str], err: TextIO) -> Optional["AudioPlayer"]:
    """An open player for ``device``, or None (saying why) where nothing can play."""
    from .playback import AudioPlayer

    chosen: Union[None, int, str] = int(device) if device is not None and device.isdigit() else device
    player = AudioPlayer(device=chosen)
    try:
        player.start()
    except PlaybackError as exc:
        player.close()
        if device is not None:
            raise  # the user asked for this device: failing is the answer
        reason = str(exc).split(";")[0]
        print(f"ttsstream: cannot play here ({reason}); writing a WAV file instead", file=err)
        return None
    return player


def _speak(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .client import TTSClient

    text = sys.stdin.read() if args.text == "-" else args.text
    provider = _choose_provider(args, err)
    player = None if args.no_play else _open_player(args.device, err)
    try:
        with TTSClient(provider=provider, model=args.model, voice=args.voice, url=args.url,
                       timeout=args.timeout, player=player) as client:
            speech = client.speak(text, play=player is not None)
    finally:
        if player is not None:
            player.close()
    latency = speech.first_audio_latency
    first = f", first audio after {latency * 1000:.0f} ms" if latency is not None else ""
    summary = f"{speech.duration:.2f} s of audio at {speech.sample_rate} Hz{first}"
    if player is not None:
        print(f"played {summary}", file=out)
    path = args.out or (None if player is not None else DEFAULT_OUT)
    if path is not None:
        speech.save(path)
        print(f"wrote {Path(path).resolve()}" + ("" if player is not None else f": {summary}"), file=out)
    return 0


def _devices(out: TextIO) -> int:
    from .playback import output_devices

    devices = output_devices()
    if not devices:
        print("no audio output devices (ttsstream speak writes a WAV file instead)", file=out)
        return 0
    for device in devices:
        mark = "  (default)" if device["default"] else ""
        print(f'{device["index"]:3d}  {device["name"]}  ({device["channels"]} ch, '
              f'{device["default_sample_rate"]:.0f} Hz){mark}', file=out)
    return 0


def _serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .server import serve_forever

    def ready(url: str) -> None:
        print(f"ttsstream serve: listening on {url} (EigenAI at /api/v1/generate/ws, Shunyalabs at /ws, "
              "Shunyalabs gateway at /ws/tts); Ctrl-C stops", file=out, flush=True)

    serve_forever(args.host, args.port, api_key=args.api_key, engine=args.engine, on_ready=ready)
    print("ttsstream serve: stopped", file=out)
    return 0


def main(argv: Optional[List[str]] = None, *, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """Run the command line; return the exit code.

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).
        out, err: where to write (stdout and stderr when None).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    try:
        if args.command == "speak":
            return _speak(args, out, err)
        if args.command == "devices":
            return _devices(out)
        return _serve(args, out, err)
    except TTSError as exc:
        print(f"ttsstream: {type(exc).__name__}: {exc}", file=err)
        return 1
    except ImportError as exc:
        print(f"ttsstream: the local voice needs {exc.name or 'a missing package'}: "
              "pip install 'ttsstream[local]'", file=err)
        return 1
    except (OSError, ValueError) as exc:
        print(f"ttsstream: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print("ttsstream: interrupted", file=err)
        return 130
