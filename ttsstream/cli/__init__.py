"""The ``ttsstream`` command: ``speak``, ``voices``, ``devices`` and ``serve``. The only package that prints.

``main(argv=None)`` returns an exit code (``problems``): 0 done, 1 the work failed, 2 a
bad command line, 130 interrupted (Ctrl-C; ``speak`` also ends cleanly on SIGTERM, 143,
and SIGHUP, 129), 141 standard output's reader went away. Every error is one line on
stderr that names the flag or environment variable to change.

One module per concern: ``args`` (the grammar), ``options`` (flags -> provider, key and
model parameters, checked by the tables), ``text`` (reading and cutting the text),
``speak`` (the command), ``sink`` (WAV or PCM as it arrives), ``signals`` (SIGTERM and
SIGHUP end ``speak`` as Ctrl-C does), ``status`` (the live line), ``voices``, ``serve``
(also ``devices``) and ``problems`` (exit codes, wording).

Imports: ``ttsstream.errors`` and the modules above; each command imports the client,
playback or the server only when it runs, so that ``ttsstream --help`` starts quickly.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, TextIO

from ..errors import AuthenticationError, InvalidParameterError, TTSError
from .args import parser
from .problems import BROKEN_PIPE, FAILED, INTERRUPTED, USAGE, UsageError, one_line, shell_words
from .signals import Interrupted, interrupts

__all__ = ["main"]


def main(argv: Optional[List[str]] = None, *, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """Run the command line; return the exit code.

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).
        out, err: where to write (stdout and stderr when None).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad command line (said in one line)
        return exc.code if isinstance(exc.code, int) else USAGE
    prefix = f"ttsstream {args.command}"
    try:
        return _run(args, out, err)
    except UsageError as exc:
        return _fail(err, f"{prefix}: {exc}", USAGE)
    except InvalidParameterError as exc:  # what the flags did not catch is still the command line's
        return _fail(err, f"{prefix}: {shell_words(exc.message)}", USAGE)
    except AuthenticationError as exc:
        return _fail(err, f"{prefix}: AuthenticationError: {shell_words(exc.message)}", FAILED)
    except TTSError as exc:
        return _fail(err, f"{prefix}: {type(exc).__name__}: {shell_words(exc.message)}", FAILED)
    except ImportError as exc:
        return _fail(err, f"{prefix}: the local voice needs {exc.name or 'a missing package'}: "
                          "pip install 'ttsstream[local]'", FAILED)
    except BrokenPipeError:
        return BROKEN_PIPE
    except (OSError, ValueError) as exc:
        return _fail(err, f"{prefix}: {exc}", FAILED)
    except Interrupted as exc:
        return _fail(err, f"{prefix}: {exc.reason}", exc.exit_code)
    except KeyboardInterrupt:
        return _fail(err, f"{prefix}: interrupted", INTERRUPTED)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    command = args.command
    if command == "speak":
        from .speak import speak

        with interrupts():  # SIGTERM and SIGHUP clean up as Ctrl-C does: a file keeps its audio
            return speak(args, out, err)
    if command == "voices":
        from .voices import voices

        return voices(args, out)
    from .serve import devices, serve

    if command == "devices":
        return devices(out)
    return serve(args, out)


def _fail(err: TextIO, message: str, code: int) -> int:
    try:
        print(one_line(message), file=err)
    except (BrokenPipeError, ValueError):
        pass
    return code
