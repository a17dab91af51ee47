"""Running a PortAudio call that may never return, without waiting for ever.

Some PortAudio calls block for good on a device that went away: on a JACK server that
stopped, ``Pa_CloseStream`` and ``Pa_Terminate`` never return (PyAudio releases the GIL
while they wait, so the rest of the process runs on). ``bounded()`` runs such a call on
a helper thread (``ttsstream-portaudio``) and waits for it up to a timeout; past that it
raises, and the helper is abandoned: it is a daemon thread, it holds no lock of ours,
and the PyAudio objects it was working on are never touched again (the player starts a
fresh PortAudio instance for its next segment). A stuck helper lives until its call
returns, or until the process exits.

This module imports ``ttsstream.errors`` and nothing else of the package.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, List

from ..errors import PlaybackError

__all__ = ["bounded", "HELPER_NAME"]

logger = logging.getLogger("ttsstream.playback")

HELPER_NAME = "ttsstream-portaudio"


def bounded(call: Callable[[], Any], timeout: float, what: str) -> Any:
    """Run ``call()`` on a helper thread and return its result within ``timeout`` seconds.

    Raises:
        PlaybackError: the call did not return in time (the helper is abandoned), or
            raised (chained from what it raised).

    Thread: any; the helper never runs user code.
    """
    outcome: List[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # handed to the waiting thread
            outcome.append((False, exc))
        finally:
            done.set()

    helper = threading.Thread(target=run, name=HELPER_NAME, daemon=True)
    helper.start()
    if not done.wait(timeout):
        logger.warning("PortAudio did not return from %s within %g s; the call is abandoned", what, timeout)
        raise PlaybackError(f"the audio output stopped answering ({what} did not return within {timeout:g} s)")
    helper.join(timeout)
    ok, value = outcome[0]
    if ok:
        return value
    if isinstance(value, PlaybackError):
        raise value
    raise PlaybackError(f"the audio output failed ({what}): {value}") from value
