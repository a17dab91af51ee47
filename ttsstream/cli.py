"""The ``ttsstream`` command: ``speak`` and ``serve``. The only module that prints.

``main(argv=None)`` returns an exit code: 0 on success, 1 when the work failed (one
clear line on stderr says why), 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, TextIO

from . import __version__
from .errors import TTSError

__all__ = ["main"]

DEFAULT_OUT = "speech.wav"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ttsstream", description="Stream text-to-speech from EigenAI, Shunyalabs or the bundled local voice."
    )
    parser.add_argument("--version", action="version", version=f"ttsstream {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    speak = commands.add_parser("speak", help="speak a text and save the audio as a WAV file")
    speak.add_argument("text", metavar="TEXT", help="what to say; '-' reads standard input")
    speak.add_argument("--provider", choices=("eigenai", "shunyalabs", "local"),
                       help="the service (default: from --url, else the one whose API key is set, else local)")
    speak.add_argument("--model", help="the model, e.g. higgs2p5, chatterbox, qwen3-tts, zero-indic")
    speak.add_argument("--voice", help="the voice, e.g. Linda or Nisha")
    speak.add_argument("--url", help="the endpoint, e.g. ws://127.0.0.1:8765/api/v1/generate/ws")
    speak.add_argument("--out", metavar="FILE.wav", help=f"write the audio here (default: {DEFAULT_OUT})")
    speak.add_argument("--no-play", action="store_true", help="do not play the audio, only write it")
    speak.add_argument("--timeout", type=float, default=30.0, help="seconds to connect and between frames")

    serve = commands.add_parser("serve", help="run the bundled offline TTS server (both dialects)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    serve.add_argument("--api-key", help="require this API key from clients")
    serve.add_argument("--engine", default="tone", help="speech engine (default: tone)")
    return parser


def _choose_provider(args: argparse.Namespace, err: TextIO) -> str:
    if args.provider:
        return args.provider
    if args.url:
        from .protocols import dialect_for_url

        return dialect_for_url(args.url) or "eigenai"
    for provider, variable in (("eigenai", "EIGENAI_API_KEY"), ("shunyalabs", "SHUNYALABS_API_KEY")):
        if os.environ.get(variable):
            return provider
    print("ttsstream: no provider, url or API key given: speaking with the local offline voice", file=err)
    return "local"


def _speak(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .client import TTSClient

    text = sys.stdin.read() if args.text == "-" else args.text
    provider = _choose_provider(args, err)
    path = args.out or DEFAULT_OUT
    with TTSClient(provider=provider, model=args.model, voice=args.voice, url=args.url,
                   timeout=args.timeout) as client:
        speech = client.speak(text)
    speech.save(path)
    latency = speech.first_audio_latency
    first = f", first audio after {latency * 1000:.0f} ms" if latency is not None else ""
    print(f"wrote {path}: {speech.duration:.2f} s of audio at {speech.sample_rate} Hz{first}", file=out)
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
        return _serve(args, out, err)
    except TTSError as exc:
        print(f"ttsstream: {type(exc).__name__}: {exc}", file=err)
        return 1
    except (OSError, ValueError) as exc:
        print(f"ttsstream: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print("ttsstream: interrupted", file=err)
        return 130
