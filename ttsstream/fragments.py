"""Text fragments in: what ``speak()`` accepts as a stream of text, as a plain iterator.

A language model's stream comes in several shapes: a generator of str, OpenAI's deltas
(whose last ``content`` is ``None``), an empty string between tokens, or an async
iterable (an ``AsyncOpenAI`` stream, an ``async def`` generator). ``as_fragments(text)``
turns each into a plain iterator, checked before any I/O, so that the text stream's
feeder thread consumes them all the same way (``TextStream.feed`` skips the empty ones).

An async iterable is driven on a private event loop that the feeder thread runs, item
by item: the caller needs no event loop, and a blocked caller can never starve it. An
async iterable bound to another loop (one created on a running loop, as in Jupyter or an
async application) cannot be read there; it fails with a message that says to feed the
stream from that loop instead (``open_stream()`` and ``feed()``).

Imports: errors only (and asyncio, from the standard library).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterable, AsyncIterator, Awaitable, Iterable, Iterator, Optional, TypeVar, Union

from .errors import InvalidParameterError, TTSError

__all__ = ["Fragments", "as_fragments"]

T = TypeVar("T")

#: What ``speak()`` takes as a text stream.
Fragments = Union[Iterable[Optional[str]], AsyncIterable[Optional[str]]]


def as_fragments(text: object) -> Iterator[Any]:
    """``text`` as an iterator of its fragments (``TextStream.feed`` skips ``None`` and ``""``).

    Raises:
        InvalidParameterError: ``text`` is neither an iterable nor an async iterable
            (before any I/O); the text stream refuses a fragment that is not a str.
    """
    if isinstance(text, (str, bytes, bytearray, memoryview)):
        raise InvalidParameterError(
            f"text must be a str or an iterable of str (an LLM's tokens), got {type(text).__name__}",
            parameter="text")
    if hasattr(text, "__aiter__"):
        return _AsyncFragments(text)
    if hasattr(text, "__iter__"):
        return iter(text)
    raise InvalidParameterError(
        f"text must be a str, an iterable or an async iterable of str (an LLM's tokens), got {type(text).__name__}",
        parameter="text")


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


class _AsyncFragments(Iterator[Any]):
    """An async iterable read as a plain iterator, on a private event loop.

    Thread: the one thread that iterates (the text stream's feeder); the loop is made
    by the first ``next()`` and closed by ``close()`` or the end of the iteration.
    """

    def __init__(self, source: AsyncIterable[Any]) -> None:
        self._iterator: AsyncIterator[Any] = source.__aiter__()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._closed = False

    def __next__(self) -> Any:
        if self._closed:
            raise StopIteration
        try:
            return self._run(self._iterator.__anext__())
        except StopAsyncIteration:
            self.close()
            raise StopIteration from None
        except RuntimeError as exc:
            if "loop" not in str(exc):
                raise
            self.close()
            raise TTSError(
                f"the async text iterable cannot be read here ({exc}): it belongs to a running event loop "
                "(Jupyter, an async app). Feed the stream from that loop instead: "
                "speech = client.open_stream(); async for token in stream: speech.feed(token); "
                "then speech.finish()") from exc

    def close(self) -> None:
        """Close the async iterator (an async generator's cleanup runs) and the loop."""
        if self._closed:
            return
        self._closed = True
        loop = self._loop
        if loop is None:
            return
        try:
            aclose = getattr(self._iterator, "aclose", None)
            if callable(aclose):
                loop.run_until_complete(_awaited(aclose()))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def _run(self, awaitable: Awaitable[T]) -> T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(_awaited(awaitable))
