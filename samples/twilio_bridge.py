"""A phone line: speak into a Twilio call through its Media Stream WebSocket.

Twilio connects a call's audio to a WebSocket server when the call's TwiML says

    <Response><Connect><Stream url="wss://your.host/" /></Connect></Response>

This sample is that server. For each call it speaks a greeting, then a reply fed as a
text stream (as an LLM would produce it), into the call: 20 ms frames of 8 kHz mu-law,
one ``media`` message each, in order; a ``mark`` after each sentence, which Twilio
echoes once the caller has heard it (``call.heard``); and on barge-in
(``call.barge_in()``: here when the caller presses a key, in an agent when its speech
recogniser hears the caller talk) the speech is cancelled and a ``clear`` tells Twilio
to drop the audio it has buffered.

Run it:

    python samples/twilio_bridge.py                       # ws://127.0.0.1:8080, the offline voice
    python samples/twilio_bridge.py --port 0              # any free port (it prints which)
    python samples/twilio_bridge.py --provider eigenai    # with EIGENAI_API_KEY set

It prints "listening on ws://HOST:PORT" once ready; Ctrl-C stops it. Twilio needs a
public wss:// address: put a TLS proxy or a tunnel in front of it.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import logging
import threading
import time
from collections import deque
from functools import partial
from typing import Callable, Deque, Dict, Iterable, Iterator, List, Optional, Set, Union

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

import ttsstream

RATE = 8000  # samples a second on a phone line; mu-law has one byte a sample
PHONE = ttsstream.AudioFormat(RATE, "mulaw", frame_ms=20)  # what Twilio plays: 160 bytes a frame
GREETING = "Hello! Thanks for calling. Press any key to interrupt me."
Text = Union[str, Iterable[str]]  # a whole reply, or its fragments as they are produced

log = logging.getLogger("twilio_bridge")


class Reply:
    """One reply on its way into the call, and where each sentence's mark goes.

    A sentence's mark is sent after the media frame that holds its last byte; the
    sentence ends where the next begins (``on_segment``) or where the reply ends.
    """

    def __init__(self, number: int) -> None:
        self.number = number
        self.speech: Optional[ttsstream.Speech] = None
        self.sent = 0  # mu-law bytes sent so far (one byte a sample)
        self.ends: List[int] = []  # byte offsets where the sentences not yet marked end
        self.names: List[str] = []  # their marks' names, in the same order


class Call:
    """One phone call: its replies are spoken into it one after another.

    Thread: ``say()`` and ``barge_in()`` from any thread; the speeches' callbacks run on
    ttsstream's reader threads, and each reply is waited for on this call's speaker thread.
    """

    def __init__(self, websocket: ServerConnection, client: ttsstream.TTSClient, stream_sid: str,
                 call_sid: str) -> None:
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.heard: List[str] = []  # sentences the caller has heard: Twilio echoed their marks
        self.spoken: List[ttsstream.Speech] = []  # every reply started, in order
        self._websocket = websocket
        self._client = client
        # Guarded by the lock, and every send is made under it, so nothing of a cancelled
        # reply can follow its clear. Notified when a reply is queued or the call ends.
        self._lock = threading.Condition()
        self._waiting: Deque[Text] = deque()  # replies not yet begun
        self._ended = False
        self._reply: Optional[Reply] = None  # the reply whose audio may still be sent
        self._marks: Dict[str, str] = {}  # mark name -> its sentence, until Twilio echoes it
        self._speaker = threading.Thread(target=self._speak_replies, name=f"twilio-call-{call_sid}")

    def start(self) -> "Call":
        self._speaker.start()
        return self

    def say(self, text: Text) -> None:
        """Speak ``text`` after whatever is being said; returns at once."""
        with self._lock:
            self._waiting.append(text)
            self._lock.notify()

    def barge_in(self) -> None:
        """The caller spoke: stop talking now and drop the replies still waiting."""
        with self._lock:
            reply, self._reply = self._reply, None
            self._waiting.clear()
            self._marks.clear()  # what Twilio had not yet played is dropped: an echo now proves nothing
            self._send({"event": "clear", "streamSid": self.stream_sid})
        if reply is not None and reply.speech is not None:
            reply.speech.cancel()

    def hear(self, mulaw: bytes) -> None:
        """20 ms of the caller's voice (8 kHz mu-law): hand it to your speech recogniser."""

    def marked(self, name: str) -> None:
        """Twilio echoed a mark: the caller has heard that sentence."""
        with self._lock:
            sentence = self._marks.pop(name, None)
            if sentence is not None:
                self.heard.append(sentence)

    def hang_up(self, timeout: float = 10.0) -> None:
        """The call has ended: stop speaking and end the speaker thread."""
        with self._lock:
            reply, self._reply = self._reply, None
            self._waiting.clear()
            self._ended = True
            self._lock.notify()
        if reply is not None and reply.speech is not None:
            reply.speech.cancel()
        self._speaker.join(timeout)

    # The speaker thread: one reply at a time, so two replies' frames never interleave.

    def _speak_replies(self) -> None:
        for number in itertools.count():
            with self._lock:
                while not (self._waiting or self._ended):
                    self._lock.wait(1.0)
                if self._ended:
                    return
                text = self._waiting.popleft()
                reply = self._reply = Reply(number)  # current from the moment it leaves the queue
            try:
                reply.speech = self._client.speak(
                    text, output=PHONE, block=False, keep_audio=False,
                    on_audio=partial(self._send_audio, reply), on_segment=partial(self._sentence_begins, reply),
                    on_complete=partial(self._reply_ends, reply), on_error=self._reply_failed)
            except ttsstream.TTSError as error:  # refused before any I/O (an empty text, say): skip it
                self._reply_failed(error)
                continue
            self.spoken.append(reply.speech)
            with self._lock:
                barged = self._reply is not reply
            if barged:  # barge_in() came before the speech existed
                reply.speech.cancel()
            while not reply.speech.done:
                with self._lock:
                    if self._ended:  # hung up: its reply is cancelled, and need not be waited for
                        return
                try:
                    reply.speech.wait(0.5)  # in slices: a slow LLM never holds up the call's end
                except ttsstream.TTSError:
                    pass  # a slice ran out, or the reply ended with an error (on_error has it)

    # The speech's callbacks (the reader thread): media, then the marks it has passed.

    def _send_audio(self, reply: Reply, chunk: ttsstream.AudioChunk) -> None:
        with self._lock:
            if self._reply is reply:
                payload = base64.b64encode(chunk.data).decode("ascii")
                self._send({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})
                reply.sent += len(chunk.data)
                self._send_marks(reply)

    def _sentence_begins(self, reply: Reply, segment: ttsstream.Segment) -> None:
        with self._lock:
            if self._reply is reply:
                if segment.index > 0:  # the sentence before ends where this one begins
                    reply.ends.append(int(segment.start * RATE))
                    self._send_marks(reply)
                name = f"reply{reply.number}-sentence{segment.index}"
                reply.names.append(name)
                self._marks[name] = segment.text

    def _reply_ends(self, reply: Reply, speech: ttsstream.Speech) -> None:
        with self._lock:
            if self._reply is reply:
                reply.ends.append(reply.sent)
                self._send_marks(reply)
                self._reply = None

    def _reply_failed(self, error: ttsstream.TTSError) -> None:
        if not isinstance(error, ttsstream.Cancelled):  # a cancel is a barge-in or a hang-up
            log.warning("call %s: a reply failed: %s", self.call_sid, error)

    def _send_marks(self, reply: Reply) -> None:
        """Mark each sentence whose audio has all been sent (holds the lock)."""
        while reply.ends and reply.ends[0] <= reply.sent:
            reply.ends.pop(0)
            name = reply.names.pop(0)
            self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    def _send(self, message: Dict[str, object]) -> None:
        try:
            self._websocket.send(json.dumps(message))
        except ConnectionClosed:
            pass  # Twilio has gone: the connection's handler ends the call


def converse(call: Call) -> None:
    """The app: what to say when a call starts. Runs on the connection's thread: be quick."""
    call.say(GREETING)
    call.say(llm_reply())


def llm_reply() -> Iterator[str]:
    """Stands in for an LLM's tokens: the reply is spoken while it is being produced."""
    for word in "I can read you the weather, the news, or a short poem. Which would you like?".split(" "):
        yield word + " "


class TwilioBridge:
    """A WebSocket server for Twilio Media Streams: one ``Call`` per connection.

    Args:
        client: speaks the replies (its ``output`` is not used: calls take ``PHONE``).
        on_call: ``on_call(call)`` when a call's stream starts (``converse`` by default).
        host, port: where to listen; port 0 takes any free port (see ``.port``).

    Thread: ``start()`` runs the server on a thread of its own; each connection is
    served on a thread of the websockets package; ``close()`` ends them all.
    """

    def __init__(self, client: ttsstream.TTSClient, on_call: Callable[[Call], None] = converse,
                 host: str = "127.0.0.1", port: int = 8080) -> None:
        self._client = client
        self._on_call = on_call
        self._host = host
        self.port = port  # once started, the port it listens on
        self._server: Optional[Server] = None
        self._thread: Optional[threading.Thread] = None
        # Guarded by the condition: the connections being served.
        self._open = threading.Condition()
        self._connections: Set[ServerConnection] = set()

    def start(self) -> "TwilioBridge":
        """Listen (calls may connect once this returns) and serve on a thread of its own."""
        self._server = serve(self._serve_call, self._host, self.port)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="twilio-bridge")
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop listening, hang up every call, and wait for their threads to end. Safe twice."""
        server, self._server = self._server, None
        if server is None or self._thread is None:
            return
        server.shutdown()
        with self._open:
            connections = list(self._connections)
        for websocket in connections:  # each handler then ends its call
            websocket.close()
        with self._open:
            self._open.wait_for(lambda: not self._connections, timeout)
        self._thread.join(timeout)

    def __enter__(self) -> "TwilioBridge":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve_call(self, websocket: ServerConnection) -> None:
        """Read one connection's messages until Twilio's ``stop`` (a websockets thread)."""
        with self._open:
            self._connections.add(websocket)
        call: Optional[Call] = None
        try:
            for message in websocket:
                event = json.loads(message)
                kind = event.get("event")
                if kind == "start":
                    call = Call(websocket, self._client, event["start"]["streamSid"], event["start"]["callSid"]).start()
                    self._on_call(call)
                elif kind == "media" and call is not None:
                    call.hear(base64.b64decode(event["media"]["payload"]))
                elif kind == "mark" and call is not None:
                    call.marked(event["mark"]["name"])
                elif kind == "dtmf" and call is not None:  # a key pressed: this demo's barge-in
                    call.barge_in()
                elif kind == "stop":
                    break
        except ConnectionClosed:
            pass  # Twilio hung up without a stop
        finally:
            if call is not None:
                call.hang_up()
            with self._open:
                self._connections.discard(websocket)
                self._open.notify_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="where to listen (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="the port (default 8080; 0: any free port)")
    parser.add_argument("--provider", default="local", help="eigenai, shunyalabs or local (default)")
    parser.add_argument("--url", help="the TTS service's WebSocket URL, if not the provider's own")
    args = parser.parse_args()
    with ttsstream.TTSClient(args.provider, url=args.url) as client, \
            TwilioBridge(client, host=args.host, port=args.port) as bridge:
        print(f"listening on ws://{args.host}:{bridge.port}", flush=True)
        try:
            while True:
                time.sleep(1.0)  # the bridge works on its own threads; Ctrl-C ends this
        except KeyboardInterrupt:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
