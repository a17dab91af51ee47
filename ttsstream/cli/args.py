"""The command line's grammar: ``speak``, ``batch``, ``voices``, ``devices`` and ``serve``, their flags and help.

The common model settings (``--speed``, ``--language``, ...) are made from the parameter
tables (``options.SETTINGS``), so a parameter added to a table gets its flag and its
help here. A bad command line is a ``CommandLineError``, which ``main`` says in one line
on stderr with exit code 2: never usage text and a traceback.

Imports: the package's version, ``ttsstream.protocols`` (provider names), and the CLI's
``options`` and ``sink``.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from .. import __version__
from ..protocols import DIALECTS, PROVIDERS
from .options import SETTINGS, flag_of
from .sink import FORMATS

__all__ = ["parser", "port", "CommandLineError"]

# The short flags of the common settings users reach for first.
_SHORT = {"language": "-l", "speed": "-s"}

# What a batch writes: formats.files.FILE_FORMATS (not imported here, so --help stays quick).
BATCH_FORMATS = ("wav", "flac", "ogg", "opus", "mp3", "raw")

_KEYS = " / ".join(dialect.env_key for dialect in DIALECTS.values())

EPILOG = (f"API keys: set {_KEYS} (recommended: the key then stays out of your shell history and the process "
          "list), or pass --api-key. Exit codes: 0 done; 1 the work failed (connecting, the server, a refused "
          "key, playback); 2 a bad command line (a flag, a value, a file, a missing key; nothing was sent); "
          "130 interrupted (143 SIGTERM, 129 SIGHUP; a file being written keeps what was received); 141 standard "
          "output's reader went away.")


class CommandLineError(Exception):
    """A mistake on the command line, as one line: ``ttsstream speak: error: ... (see --help)``.

    Attributes:
        message: what argparse said, without the program's name.
    """

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: error: {message} (see {prog} --help)")
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake raises ``CommandLineError`` (said in one line) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(self.prog, message)


def port(text: str) -> int:
    """A TCP port from 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is out of range: a port is 0 (any free one) to 65535")
    return value


def _seconds(text: str) -> float:
    """Seconds to wait: more than 0, at most an hour."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} is out of range: more than 0 seconds, at most 3600")
    return value


def _rate(text: str) -> int:
    """A sample rate to write: 8000 to 192000 Hz."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a sample rate in Hz (e.g. 8000, 16000, 48000)") from None
    if not 8000 <= value <= 192000:
        raise argparse.ArgumentTypeError(f"{value} is out of range: a rate from 8000 to 192000 Hz")
    return value


def parser() -> argparse.ArgumentParser:
    """The ``ttsstream`` parser."""
    top = _Parser(prog="ttsstream", description="Stream text-to-speech from EigenAI, Shunyalabs or the bundled "
                  "local voice.", epilog=EPILOG)
    top.add_argument("--version", action="version", version=f"ttsstream {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    _speak(commands)
    _batch(commands)

    voices = commands.add_parser(
        "voices", help="list the voices: each model's names, languages and genders (--params: its parameters)",
        description="List each model's voices: the name to pass as --voice, its language and gender where known, "
                    "the model's default marked *. The local voice answers to the same names. --params lists "
                    "each model's parameters instead, with their types, ranges and flags.")
    voices.add_argument("--provider", choices=PROVIDERS, help="only this provider's voices")
    voices.add_argument("--model", help="only this model's voices")
    voices.add_argument("--language", metavar="L",
                        help="only voices that speak this language: a code or a name (hi, Hindi)")
    voices.add_argument("--params", action="store_true",
                        help="list the models' parameters (types, ranges, flags) instead of their voices")
    voices.add_argument("--json", action="store_true", help="print it as JSON")

    commands.add_parser("devices", help="list the audio output devices",
                        description="List the audio output devices PortAudio sees: the index or a part of the "
                                    "name is what ttsstream speak --device takes; the default is marked.")

    serve = commands.add_parser(
        "serve", help="run the bundled offline TTS server (both dialects)", epilog=EPILOG,
        description="Run the bundled offline TTS server in the foreground until Ctrl-C: EigenAI's dialect at "
                    "/api/v1/generate/ws, Shunyalabs' at /ws (and their SDK's gateway at /ws/tts), with the "
                    "local voice. Each request is logged on stderr (--quiet: none).")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; another needs --api-key or --allow-open)")
    serve.add_argument("--port", type=port, default=8765, help="port (default 8765; 0 picks a free one)")
    serve.add_argument("--api-key", metavar="KEY", help="require this API key from clients")
    serve.add_argument("--engine", default="espeak",
                       help="speech engine: espeak (real speech) or tone (one beep per character, for tests); "
                            "default: espeak")
    serve.add_argument("--fault", metavar="NAME[:after=N]",
                       help="misbehave on purpose, e.g. drop:after=2 (see the docs' table of faults)")
    serve.add_argument("--certfile", metavar="PEM", help="serve wss:// with this certificate (and chain)")
    serve.add_argument("--keyfile", metavar="PEM", help="the certificate's key, when not in --certfile")
    serve.add_argument("--allow-open", action="store_true",
                       help="listen beyond this machine without an API key")
    serve.add_argument("-q", "--quiet", action="store_true", help="log no requests on stderr")
    return top


def _jobs(text: str) -> int:
    """Speeches at once: 1 to 256."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of jobs (1-256)") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{value} is out of range: 1 to 256 jobs")
    return value


def _batch(commands: "argparse._SubParsersAction[_Parser]") -> None:
    batch = commands.add_parser(
        "batch", epilog=EPILOG,
        help="speak many texts to files (a .txt, .jsonl or .csv of them), resumably",
        description="Speak every text of INPUT into its own file in --out-dir, named by its id (a .txt: its line "
                    "number). A rerun skips what is finished and unchanged, redoes what changed and retries what "
                    "failed; a stopped run never leaves a partial file under a final name. Exit code 1 if any "
                    "item failed (each is listed on stderr).")
    batch.add_argument("input", metavar="INPUT",
                       help="a .txt (one text per line), .jsonl ({\"id\", \"text\", \"voice\", ...parameters} per "
                            "line) or .csv (a header row with text and optional id, voice and parameter columns)")
    batch.add_argument("--out-dir", required=True, metavar="DIR", help="where the files go (made if missing)")
    batch.add_argument("--jobs", type=_jobs, default=4, metavar="N",
                       help="speeches at once, sharing one client's connections (default 4)")
    batch.add_argument("--format", choices=BATCH_FORMATS, default="wav",
                       metavar="EXT", help="the files' format and extension: wav (default), flac, ogg, opus, mp3, raw")
    batch.add_argument("--executor", metavar="dask://HOST:PORT",
                       help="run on a Dask cluster whose scheduler is at HOST:PORT (workers must see --out-dir); "
                            "needs pip install 'dask[distributed]'")
    batch.add_argument("--provider", choices=PROVIDERS,
                       help="the service (default: from --url, else the one whose API key is set, else local)")
    batch.add_argument("--model", help="the model (see: ttsstream voices)")
    batch.add_argument("-v", "--voice", help="the voice of the items that name none")
    batch.add_argument("--url", help="the endpoint, e.g. ws://127.0.0.1:8765/api/v1/generate/ws")
    batch.add_argument("--api-key", metavar="KEY",
                       help=f"the API key (never printed); setting {_KEYS} instead is recommended")
    batch.add_argument("--json", action="store_true", help="print one JSON object at the end instead of the summary")


def _speak(commands: "argparse._SubParsersAction[_Parser]") -> None:
    speak = commands.add_parser(
        "speak", epilog=EPILOG,
        help="speak a text: play it, write it (--out FILE.wav, .mp3, ...) or stream it to a pipe (--out -)",
        description="Speak a text: play it as it streams, write an audio file (WAV, FLAC, OGG, Opus, MP3, raw "
                    "PCM, mu-law or A-law), or stream one to standard output (--out -). On a terminal a status line shows the time to first audio, "
                    "the seconds received and played, and the progress through a long text.")
    speak.add_argument("text", metavar="TEXT", nargs="?",
                       help="what to say; '-' reads standard input, as does no TEXT when standard input is a pipe")
    speak.add_argument("-f", "--file", metavar="FILE", help="read the text from FILE (UTF-8; '-': standard input)")

    where = speak.add_argument_group("service")
    where.add_argument("--provider", choices=PROVIDERS,
                       help="the service (default: from --url, else the one whose API key is set, else local)")
    where.add_argument("--model", help="the model: higgs2p5, chatterbox, qwen3-tts (EigenAI), zero-indic "
                                       "(Shunyalabs); see: ttsstream voices")
    where.add_argument("--url", help="the endpoint, e.g. ws://127.0.0.1:8765/api/v1/generate/ws")
    where.add_argument("--api-key", metavar="KEY",
                       help=f"the API key (never printed); setting {_KEYS} instead is recommended")
    where.add_argument("--allow-insecure", action="store_true",
                       help="allow ws:// (unencrypted) to a host that is not this machine")
    where.add_argument("--timeout", type=_seconds, default=30.0, metavar="SECONDS",
                       help="seconds to connect, and the longest wait between two frames (default 30)")
    where.add_argument("--fallback", nargs="+", choices=PROVIDERS, metavar="P",
                       help="providers to speak with, in order, when the first fails before any audio "
                            "(e.g. --fallback local); each with its default model and voice")

    model = speak.add_argument_group("model parameters", "Checked against the model's table before anything is "
                                                         "sent; see: ttsstream voices --params --model MODEL.")
    model.add_argument("-v", "--voice", help="the voice, e.g. Linda, Vivian or Nisha (see: ttsstream voices)")
    for setting, (help_text, places) in SETTINGS.items():
        flags = [_SHORT[setting], flag_of(setting)] if setting in _SHORT else [flag_of(setting)]
        model.add_argument(*flags, dest="setting_" + setting, metavar=setting.upper(), help=f"{help_text} ({places})")
    model.add_argument("--param", action="append", metavar="NAME=VALUE",
                       help="any parameter of the model (repeatable); VALUE is JSON where it parses "
                            "(1.2, true, {\"speed\": 1.2}), else text; a text parameter takes it as written")
    model.add_argument("--extra", action="append", metavar="NAME=VALUE",
                       help="a field the tables do not know, sent unchecked (repeatable)")

    output = speak.add_argument_group("output")
    output.add_argument("-o", "--out", metavar="FILE|-",
                        help="also write the audio to FILE as it arrives, in the format its extension names "
                             "(.wav, .flac, .ogg, .opus, .mp3, .raw/.pcm; .ul/.al: raw mu-law/A-law), or to "
                             "standard output with '-' (then nothing else goes there, and nothing plays here: "
                             "pipe it to aplay or ffplay -); without a device or with --no-play: speech.wav")
    output.add_argument("--subtitles", metavar="FILE.srt|FILE.vtt",
                        help="also write when each word is spoken, as SRT or WebVTT subtitles (by the extension)")
    output.add_argument("--format", choices=FORMATS, metavar="FORMAT",
                        help=f"what --out writes: {', '.join(FORMATS)} (default: the file's extension, else "
                             "wav); raw is 16-bit little-endian mono PCM, mulaw and alaw raw G.711 bytes "
                             "(8000 Hz unless --rate), as telephone lines take them")
    output.add_argument("--rate", type=_rate, metavar="HZ",
                        help="the sample rate to write, resampled as it streams (default: the speech's own; "
                             "8000 for mulaw and alaw); Opus and MP3 take only some rates")
    output.add_argument("--no-play", action="store_true", help="do not play the audio, only write it")
    output.add_argument("--device", help="output device: an index or part of a name (see: ttsstream devices)")
    output.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors (no status line)")
    output.add_argument("--verbose", action="store_true",
                        help="also say what was chosen for you (the local voice when no provider is given; "
                             "said once per machine without it)")
    output.add_argument("--json", action="store_true",
                        help="print a JSON summary at the end (on stderr with --out -)")
