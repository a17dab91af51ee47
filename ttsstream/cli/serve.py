"""``ttsstream serve`` and ``ttsstream devices``: the bundled server in the foreground, and the outputs.

``serve`` logs one line per request on stderr (the server's ``ttsstream.server``
logger at INFO: dialect, model, voice, characters, a short preview, the outcome and the
seconds of audio; never a key), unless ``--quiet``.

Imports: ``ttsstream.server`` and ``ttsstream.playback``, each only inside its command,
and the CLI's ``problems``.
"""

from __future__ import annotations

import argparse
import logging
from contextlib import contextmanager
from typing import Iterator, TextIO

from .problems import OK, UsageError, shell_words

__all__ = ["serve", "devices"]


def serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``ttsstream serve`` until Ctrl-C or SIGTERM; return the exit code.

    ``out`` gets the line that says where it listens; ``err`` the requests, one a line.

    Raises:
        UsageError: an unknown engine or fault, an open host without a key, or an
            unreadable certificate or key file.
        OSError: the address cannot be listened on, or the certificate cannot be used.
        ImportError: the server's dependencies are missing.
    """
    from ..server import ENGINES, serve_forever
    from ..server.security import check_exposure

    if args.engine not in ENGINES:
        raise UsageError(f"--engine {args.engine}: unknown engine; choose one of {', '.join(ENGINES)}")
    try:
        check_exposure(args.host, args.api_key, args.allow_open, tls=True)  # TLS is warned about later
    except ValueError:
        raise UsageError(f"--host {args.host}: anyone who can reach this machine could use the server: pass "
                         "--api-key KEY (clients then need it), or --allow-open if an open server is meant") from None

    def ready(url: str) -> None:
        print(f"ttsstream serve: listening on {url} (EigenAI at /api/v1/generate/ws, Shunyalabs at /ws, "
              "Shunyalabs gateway at /ws/tts); Ctrl-C stops", file=out, flush=True)

    options = {name: getattr(args, name) for name in ("fault", "certfile", "keyfile") if getattr(args, name)}
    for name in ("certfile", "keyfile"):  # ssl says "No such file" without saying which: say it here
        if name in options:
            try:
                open(options[name], "rb").close()
            except OSError as exc:
                raise UsageError(f"--{name} {options[name]}: cannot read it: {exc.strerror or exc}") from None
    try:
        with _requests_logged(err, not args.quiet):
            serve_forever(args.host, args.port, api_key=args.api_key, engine=args.engine, on_ready=ready,
                          allow_open=args.allow_open, **options)
    except ValueError as exc:  # a bad fault spec, or an open host without a key: said before binding
        raise UsageError(shell_words(str(exc))) from None
    except OSError as exc:
        raise OSError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    print("ttsstream serve: stopped", file=out)
    return OK


@contextmanager
def _requests_logged(err: TextIO, enabled: bool) -> Iterator[None]:
    """While inside: the server's INFO lines (one per request) go to ``err``."""
    logger = logging.getLogger("ttsstream.server")
    if not enabled:
        yield
        return
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("ttsstream serve: %(message)s"))
    # websockets' own lines (connection open, closed) say nothing a request line does not.
    handler.addFilter(lambda record: not record.name.startswith("ttsstream.server.wire"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def devices(out: TextIO) -> int:
    """Run ``ttsstream devices``: list the audio outputs; return the exit code."""
    from ..playback import output_devices

    found = output_devices()
    if not found:
        print("no audio output devices (ttsstream speak writes a WAV file instead)", file=out)
        return OK
    for device in found:
        mark = "  (default)" if device["default"] else ""
        print(f'{device["index"]:3d}  {device["name"]}  ({device["channels"]} ch, '
              f'{device["default_sample_rate"]:.0f} Hz){mark}', file=out)
    return OK
