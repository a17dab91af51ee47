"""Finding PyAudio and the output devices, and keeping ALSA and JACK quiet.

This module owns the lazy PyAudio import (with the install hint when it is missing),
the routing of ALSA's and JACK's native console messages to our debug log, and the
listing and resolution of output devices (``output_devices``, ``_resolve_device``). It
imports ``ttsstream.errors`` and ``ttsstream.checks`` and nothing else of the package;
PyAudio only inside ``_import_pyaudio``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Any, Dict, List, Union

from ..checks import is_int
from ..errors import PlaybackError

# One logger for the whole package, as before it was split into modules, so that a
# level or filter set on "ttsstream.playback" still covers everything it logs.
logger = logging.getLogger("ttsstream.playback")

INSTALL_HINT = (
    'pip install "ttsstream[playback]" (on Debian/Ubuntu first: apt-get install portaudio19-dev)'
)
NO_DEVICE_HINT = (
    "connect or configure an audio output (ALSA, PulseAudio, CoreAudio, WASAPI), or write "
    'the audio to a WAV file instead: speech.save("out.wav") or ttsstream speak ... --out out.wav --no-play'
)


# ALSA and JACK print dozens of lines to stderr while PortAudio probes for devices
# (more on a machine with no sound card). Their handlers are routed to our debug log
# instead; the ctypes callbacks must live as long as the process.
_ALSA_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                 ctypes.c_char_p)
_JACK_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
_native_handlers: List[Any] = []


def _log_alsa(file: bytes, line: int, function: bytes, err: int, fmt: bytes) -> None:
    logger.debug("ALSA: %s:%d %s (error %d)", (file or b"").decode(errors="replace"), line,
                 (function or b"").decode(errors="replace"), err)


def _log_jack(message: bytes) -> None:
    logger.debug("JACK: %s", (message or b"").decode(errors="replace"))


def _quiet_native_logs() -> None:
    """Send ALSA's and JACK's console messages to the debug log (once per process)."""
    if _native_handlers:
        return
    alsa, jack = _ALSA_HANDLER(_log_alsa), _JACK_HANDLER(_log_jack)
    _native_handlers.extend((alsa, jack))
    for name, setters, handler in (("asound", ("snd_lib_error_set_handler",), alsa),
                                   ("jack", ("jack_set_error_function", "jack_set_info_function"), jack)):
        path = ctypes.util.find_library(name)
        try:
            library = ctypes.CDLL(path) if path else None
        except OSError:
            library = None
        for setter in setters:
            function = getattr(library, setter, None)
            if function is not None:
                function(handler)


def _import_pyaudio() -> Any:
    """Import PyAudio, or raise PlaybackError saying how to install it."""
    try:
        import pyaudio  # noqa: PLC0415 -- imported lazily by design
    except ImportError as exc:
        raise PlaybackError(f"playback needs PyAudio, which is not installed: {INSTALL_HINT}") from exc
    _quiet_native_logs()
    return pyaudio


def _output_device_infos(pa: Any) -> List[Dict[str, Any]]:
    infos = []
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        if int(info.get("maxOutputChannels", 0)) > 0:
            infos.append(info)
    return infos


def _describe(infos: List[Dict[str, Any]]) -> str:
    if not infos:
        return "none"
    return ", ".join(f'{int(info["index"])}: "{info["name"]}"' for info in infos)


def _resolve_device(pa: Any, device: Union[None, int, str]) -> Dict[str, Any]:
    """Return the PortAudio device info for ``device`` (None, an index or a name part).

    Raises:
        PlaybackError: no output device, or none matching ``device``.
    """
    infos = _output_device_infos(pa)
    if not infos:
        raise PlaybackError(f"no audio output device found; {NO_DEVICE_HINT}")
    if device is None:
        try:
            info: Dict[str, Any] = pa.get_default_output_device_info()
        except (IOError, OSError) as exc:
            raise PlaybackError(
                f"no default audio output device; output devices: {_describe(infos)}; {NO_DEVICE_HINT}"
            ) from exc
        return info
    if is_int(device):
        for info in infos:
            if int(info["index"]) == device:
                return info
        raise PlaybackError(f"no output device with index {device}; output devices: {_describe(infos)}")
    wanted = str(device).lower()  # a str: AudioPlayer lets only None, an int or a str through
    exact = [info for info in infos if str(info["name"]).lower() == wanted]
    partial = [info for info in infos if wanted in str(info["name"]).lower()]
    if exact or partial:
        return (exact or partial)[0]
    raise PlaybackError(f'no output device matches "{device}"; output devices: {_describe(infos)}')


def output_devices() -> List[Dict[str, Any]]:
    """List the output devices PortAudio sees.

    Returns:
        One dict per device: ``index`` (int), ``name`` (str), ``channels`` (int, the most
        output channels), ``default_sample_rate`` (float) and ``default`` (bool: the
        device that ``device=None`` plays on).

    Raises:
        PlaybackError: PyAudio is not installed or PortAudio cannot start.
    """
    pyaudio = _import_pyaudio()
    try:
        pa = pyaudio.PyAudio()
    except Exception as exc:
        raise PlaybackError(f"PortAudio could not start: {exc}") from exc
    try:
        try:
            default = int(pa.get_default_output_device_info()["index"])
        except (IOError, OSError):
            default = None
        return [
            {
                "index": int(info["index"]),
                "name": str(info["name"]),
                "channels": int(info["maxOutputChannels"]),
                "default_sample_rate": float(info["defaultSampleRate"]),
                "default": int(info["index"]) == default,
            }
            for info in _output_device_infos(pa)
        ]
    finally:
        pa.terminate()
