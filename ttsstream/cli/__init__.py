"""The ``ttsstream`` command: ``speak``, ``batch``, ``voices``, ``devices`` and ``serve``. The only package that prints.

``main(argv=None)`` returns an exit code (``problems``): 0 done, 1 the work failed, 2 a
bad command line, 130 interrupted (Ctrl-C; ``speak`` also ends cleanly on SIGTERM, 143,
and SIGHUP, 129), 141 standard output's reader went away. Every error is one line on
stderr that names the flag or environment variable to change.

One module per concern: ``args`` (the grammar), ``options`` (flags -> provider, key and
model parameters, checked by the tables), ``text`` (reading and cutting the text),
``speak`` (the command), ``batch`` (many texts to files), ``sink`` (WAV or PCM as it arrives), ``signals`` (SIGTERM and
SIGHUP end ``speak`` as Ctrl-C does), ``status`` (the live line), ``notice`` (said once
per machine), ``voices``, ``serve`` (also ``devices``) and ``problems`` (exit codes,
wording).

Imports: ``ttsstream.errors`` and the modules above; each command imports the client,
playback or the server only when it runs, so that ``ttsstream --help`` starts quickly.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional, TextIO, Union

from ..errors import AuthenticationError, InvalidParameterError, TTSError
from .args import CommandLineError, parser
from .problems import BROKEN_PIPE, FAILED, INTERRUPTED, USAGE, UsageError, one_line, shell_words
from .signals import Interrupted, interrupts

__all__ = ["main"]


def main(argv: Optional[List[str]] = None, *, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """Run the command line; return the exit code.

    With ``--json``, a failure is also one line of JSON, ``{"ok": false, "error": {"type",
    "message"}}``, where the summary would have gone (stdout, or stderr with ``--out -``).

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).
        out, err: where to write (stdout and stderr when None).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    argv = sys.argv[1:] if argv is None else list(argv)
    report = _Report(out, err, argv)
    try:
        args = parser().parse_args(argv)
    except CommandLineError as exc:  # a bad command line, said in one line
        return report.fail(str(exc), USAGE, "UsageError", str(exc.message))
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else USAGE
    prefix = f"ttsstream {args.command}"
    try:
        return _run(args, out, err)
    except UsageError as exc:
        return report.fail(f"{prefix}: {exc}", USAGE, "UsageError", str(exc))
    except InvalidParameterError as exc:  # what the flags did not catch is still the command line's
        return report.fail(f"{prefix}: {shell_words(exc.message)}", USAGE, exc)
    except AuthenticationError as exc:
        return report.fail(f"{prefix}: AuthenticationError: {shell_words(exc.message)}", FAILED, exc)
    except TTSError as exc:
        return report.fail(f"{prefix}: {type(exc).__name__}: {shell_words(exc.message)}", FAILED, exc)
    except ImportError as exc:
        return report.fail(f"{prefix}: the local voice needs {exc.name or 'a missing package'}: "
                           "pip install 'ttsstream[local]'", FAILED, "ImportError")
    except BrokenPipeError:
        return BROKEN_PIPE
    except (OSError, ValueError) as exc:
        return report.fail(f"{prefix}: {exc}", FAILED, exc)
    except Interrupted as exc:
        return report.fail(f"{prefix}: {exc.reason}", exc.exit_code, "Interrupted", exc.reason)
    except KeyboardInterrupt:
        return report.fail(f"{prefix}: interrupted", INTERRUPTED, "KeyboardInterrupt", "interrupted")


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    command = args.command
    if command == "speak":
        from .speak import speak

        with interrupts():  # SIGTERM and SIGHUP clean up as Ctrl-C does: a file keeps its audio
            return speak(args, out, err)
    if command == "batch":
        from .batch import run_batch

        with interrupts():  # a stopped batch leaves temporary files only, removed by the next run
            return run_batch(args, out, err)
    if command == "voices":
        from .voices import voices

        return voices(args, out)
    from .serve import devices, serve

    if command == "devices":
        return devices(out)
    return serve(args, out, err)


class _Report:
    """Says a failure: one line on stderr, and with ``--json`` one line of JSON."""

    def __init__(self, out: TextIO, err: TextIO, argv: List[str]) -> None:
        words = argv[:argv.index("--")] if "--" in argv else argv
        self._json = "--json" in words
        # The summary's place: stdout, unless stdout carries the audio (--out -).
        self._json_to = err if _outs_to_stdout(words) else out
        self._err = err

    def fail(self, line: str, code: int, error: Union[BaseException, str], message: Optional[str] = None) -> int:
        """Say ``line`` (and the JSON); return ``code``."""
        kind = error if isinstance(error, str) else type(error).__name__
        if message is None:
            message = shell_words(getattr(error, "message", None) or str(error))
        try:
            if self._json:
                print(json.dumps({"ok": False, "error": {"type": kind, "message": one_line(message)}}),
                      file=self._json_to, flush=True)
            if not (self._json and self._json_to is self._err):  # said once on stderr, not twice
                print(one_line(line), file=self._err)
        except (BrokenPipeError, ValueError):
            pass
        return code


def _outs_to_stdout(words: List[str]) -> bool:
    """Whether the arguments send the audio to stdout (``--out -``, ``-o -``, ``--out=-``)."""
    for index, word in enumerate(words):
        if word in ("--out=-", "-o-") or (word in ("--out", "-o") and words[index + 1:index + 2] == ["-"]):
            return True
    return False
