"""A Tkinter window that reads text aloud, highlighting the sentence and the word being heard.

Shows: a client made with dispatch="poll" and attached to Tk (client.attach_tk(root)),
so that every callback runs on Tk's own thread and may touch widgets; the text spoken
as a stream (client.open_stream: cut into sentences, each synthesized as soon as it is
cut, so the first one plays while the rest are made); on_segment moving a highlight
through the text sentence by sentence, and on_word moving a stronger one word by word
inside it (word.char_start and word.char_end are offsets into the text spoken); Speak,
Stop and Pause/Resume buttons; a level meter fed from on_audio; the time to first audio.

Run it:

    python samples/tkinter_reader.py

It plays through client.player where there is an output device: with play=True,
on_segment runs when a sentence begins to *play* and on_word when playback reaches a
word's start, so the highlights follow the speakers (and stand still while paused).
Without a device it reads along silently and says "no audio device": on_segment then
runs when a sentence's audio *arrives* and on_word when a word has been timed, both
faster than speech, so the sample holds each highlight back until its segment.start or
word.start on the audio's own timeline (counted from the first chunk, as if played at
once); the meter follows the same timeline. The bundled offline voice is used unless
EIGENAI_API_KEY or SHUNYALABS_API_KEY is set (its words are then aligned on the audio
or estimated rather than exact: see docs/guide/words.md).

--selftest prints JSON lines for tests/test_samples.py: where the buttons are, each
status change, each highlight (sentence and word) as the text widget holds it, and at
exit what the callbacks saw (their threads, chunks, latency).
"""

import argparse
import bisect
import json
import math
import threading
import time
import tkinter as tk
from tkinter import ttk

import numpy as np

import ttsstream
from ttsstream import choose_provider
from ttsstream import Segment  # the items of speech.segments, given to on_segment
from ttsstream import Word  # the items of speech.words, given to on_word

TEXT = ("Streaming speech arrives in small chunks. Each one moves the level meter below, "
        "and the first one tells how long the service took to answer. Press Pause to hold "
        "the playback, Resume to go on, or Stop to end it.")
METER_DB = 60  # the meter spans -60 dBFS (empty) to 0 dBFS (full)
BYTES_PER_SAMPLE = 2  # the audio is 16-bit mono PCM
HEARD = "heard"  # the text tag on the sentence being heard
WORD = "word"    # the text tag on the word being heard, drawn over the sentence's


def level_db(samples: np.ndarray) -> float:
    """The chunk's RMS level above -60 dBFS: 0 (silence) to 60 (full scale)."""
    rms = np.sqrt(np.mean(samples.astype(np.float64) ** 2)) if samples.size else 0.0
    return max(0.0, 20 * math.log10(rms / 32768) + METER_DB) if rms > 0 else 0.0


class Reader:
    """The window. Every method runs on Tk's thread, the callbacks included."""

    def __init__(self, root: tk.Tk, client: ttsstream.TTSClient, selftest: bool = False) -> None:
        self.root = root
        self.client = client
        self.selftest = selftest
        self.can_play = True   # until a PlaybackError says there is no device
        self.speech = None     # the current speech
        self.turn = 0          # counts speeches, so that a stopped one's late callbacks are ignored
        self.playing = False   # its stream has ended and the player is still playing it
        self.levels = []       # the current speech's chunk levels, in order ...
        self.ends = []         # ... and the byte offset where each chunk ends
        self.played_from = 0   # client.player.played_bytes when the current speech started
        self.text_from = 0     # where the spoken text begins in the text box (after leading blanks)
        self.timeline = None   # without a device: time.monotonic() of the first chunk (its second 0)
        self.sentence = -1     # the index of the sentence highlighted, -1 before the first
        self.seen = {"threads": set(), "chunks": 0, "first_audio_ms": None, "meter_max": 0.0,
                     "meter_updates": 0, "statuses": [], "highlights": 0, "words": 0}

        root.title("ttsstream reader")
        self.text = tk.Text(root, name="text", width=60, height=6, wrap="word")
        self.text.insert("1.0", TEXT)
        self.text.tag_configure(HEARD, background="#ffe07a")
        self.text.tag_configure(WORD, background="#f59e0b", underline=True)  # made later: drawn on top
        buttons = ttk.Frame(root, name="buttons")
        self.speak_button = ttk.Button(buttons, name="speak", text="Speak", command=self.speak)
        self.pause_button = ttk.Button(buttons, name="pause", text="Pause", command=self.toggle_pause)
        self.stop_button = ttk.Button(buttons, name="stop", text="Stop", command=self.stop)
        self.meter = ttk.Progressbar(root, name="meter", maximum=METER_DB, length=420)
        self.latency = ttk.Label(root, name="latency", text="first audio: -")
        self.status = ttk.Label(root, name="status", text="ready")

        self.text.pack(padx=10, pady=(10, 6), fill="both", expand=True)
        buttons.pack(padx=10, fill="x")
        for button in (self.speak_button, self.pause_button, self.stop_button):
            button.pack(side="left", padx=(0, 6))
        self.meter.pack(padx=10, pady=6, fill="x")
        self.latency.pack(padx=10, anchor="w")
        self.status.pack(padx=10, pady=(0, 10), anchor="w")

        root.protocol("WM_DELETE_WINDOW", self.close)
        client.attach_tk(root)  # client.poll() from Tk's loop: the callbacks run on this thread
        self.follow_playback()

    # -- buttons -----------------------------------------------------------------

    def speak(self) -> None:
        whole = self.text.get("1.0", "end-1c")
        text = whole.strip()
        if not text:
            return
        self.halt()  # one speech at a time
        self.turn += 1
        self.text_from = len(whole) - len(whole.lstrip())
        self.latency["text"] = "first audio: waiting..."
        callbacks = {"on_audio": self.current(self.on_audio), "on_complete": self.current(self.on_complete),
                     "on_error": self.current(self.on_error), "on_segment": self.current(self.on_segment),
                     "on_word": self.current(self.on_word)}
        try:
            if self.can_play:
                try:
                    self.played_from = self.client.player.played_bytes
                    self.speech = self.start_stream(text, play=True, **callbacks)
                    self.set_status("speaking")
                    return
                except ttsstream.PlaybackError:
                    self.can_play = False
                    self.pause_button.state(["disabled"])  # nothing to pause
            self.speech = self.start_stream(text, play=False, **callbacks)
            self.set_status("no audio device: reading along without playing")
        except ttsstream.TTSError as error:
            self.set_status(f"error: {error}")

    def start_stream(self, text: str, play: bool, **callbacks) -> ttsstream.Speech:
        """Speak ``text`` as a stream: its sentences are cut and synthesized one by one.

        An app reading an LLM's answer would feed() each token as it comes; here the
        text is all there, so one feed() and finish() do. The text box is read-only
        while it is spoken, so that the highlight's ranges stay true.
        """
        speech = self.client.open_stream(play=play, **callbacks)
        speech.feed(text)
        speech.finish()
        self.text.configure(state="disabled")
        return speech

    def toggle_pause(self) -> None:
        player = self.client.player
        if player.paused:
            player.resume()
            self.pause_button["text"] = "Pause"
            self.set_status("resumed")
        else:
            player.pause()
            self.pause_button["text"] = "Resume"
            self.set_status("paused")

    def stop(self) -> None:
        self.halt()
        self.set_status("stopped")

    def halt(self) -> None:
        """Cancel the speech and silence playback; leave the player ready for the next one."""
        self.client.stop()  # the speech ends with Cancelled; the player is silenced and unpaused
        self.playing = False
        self.levels, self.ends = [], []
        self.timeline = None
        self.meter["value"] = 0
        self.pause_button["text"] = "Pause"
        self.end_reading("stopped")

    def close(self) -> None:
        self.client.close()
        self.root.destroy()

    # -- callbacks: run by client.poll(), on Tk's thread -----------------------------

    def current(self, callback):
        """Wrap a callback of this turn's speech: a stopped speech's late calls are dropped."""
        turn = self.turn

        def call(argument):
            self.seen["threads"].add(threading.current_thread().name)
            if turn == self.turn:
                callback(argument)
        return call

    def on_audio(self, chunk: ttsstream.AudioChunk) -> None:
        self.seen["chunks"] += 1
        if chunk.index == 0:
            latency_ms = self.speech.first_audio_latency * 1000
            self.latency["text"] = f"first audio: {latency_ms:.0f} ms"
            self.seen["first_audio_ms"] = latency_ms
            self.report("first_audio", ms=latency_ms)
        self.start_timeline()
        self.levels.append(level_db(chunk.samples))
        self.ends.append((self.ends[-1] if self.ends else 0) + len(chunk.pcm))

    def on_segment(self, segment: Segment) -> None:
        """A sentence's audio begins: playing now (with a device), or arriving now (without)."""
        if self.can_play:
            self.highlight(segment)
            return
        # Nothing plays: arrival runs ahead of speech, so wait for the sentence's start
        # on the audio's own timeline, as a listener would hear it.
        self.start_timeline()
        self.highlight_when_heard(segment)

    def highlight_when_heard(self, segment: Segment) -> None:
        """Without a device: highlight ``segment`` once the timeline reaches its start."""
        wait_ms = math.ceil((segment.start - self.heard_seconds()) * 1000)
        if wait_ms > 0:  # Tk's timers may fire a little early: check again then
            self.root.after(wait_ms, self.current(self.highlight_when_heard), segment)
        else:
            self.highlight(segment)

    def on_word(self, word: Word) -> None:
        """A word is heard (with a device), or has been timed (without one: hold it back)."""
        if self.can_play:
            self.highlight_word(word)
            return
        self.start_timeline()
        self.highlight_word_when_heard(word)

    def highlight_word_when_heard(self, word: Word) -> None:
        """Without a device: highlight ``word`` once the timeline reaches its start."""
        wait_ms = math.ceil((word.start - self.heard_seconds()) * 1000)
        if wait_ms > 0:
            self.root.after(wait_ms, self.current(self.highlight_word_when_heard), word)
        else:
            self.highlight_word(word)

    def on_complete(self, speech: ttsstream.Speech) -> None:
        self.playing = True  # follow_playback says "done" once the last sentence is heard
        if self.can_play:
            self.set_status(f"received {speech.duration:.1f} s of audio; playing")
        else:
            self.set_status(f"received {speech.duration:.1f} s of audio (no audio device); reading along")

    def on_error(self, error: ttsstream.TTSError) -> None:
        self.end_reading("error")
        if not isinstance(error, ttsstream.Cancelled):  # Stop has said "stopped" already
            self.set_status(f"error: {error}")

    # -- the highlight -----------------------------------------------------------------

    def highlight(self, segment: Segment) -> None:
        """Mark ``segment``'s characters in the text box, and keep them in view.

        The segments concatenate to the text spoken, so a segment begins where the
        ones before it end. A sentence already highlighted (by its first word, see
        highlight_word) is left as it is.
        """
        if segment.index <= self.sentence:
            return
        self.sentence = segment.index
        start = self.text_from + sum(len(earlier.text) for earlier in self.speech.segments[:segment.index])
        end = start + len(segment.text.rstrip())  # its trailing space: not part of the sentence
        self.text.tag_remove(WORD, "1.0", "end")  # the last word heard was the sentence before's
        self.text.tag_remove(HEARD, "1.0", "end")
        self.text.tag_add(HEARD, f"1.0 + {start} chars", f"1.0 + {end} chars")
        self.text.see(f"1.0 + {start} chars")
        self.seen["highlights"] += 1
        if self.selftest:  # what the widget holds now, read back from it
            first, last = self.text.tag_ranges(HEARD)
            self.report("highlight", index=segment.index, start=segment.start, heard=self.heard_seconds(),
                        chars=[self.offset(first), self.offset(last)], text=self.text.get(first, last),
                        segment_text=segment.text)

    def highlight_word(self, word: Word) -> None:
        """Mark ``word``'s characters over its sentence's highlight.

        ``word.char_start`` and ``word.char_end`` are offsets into the text spoken, which
        begins at ``self.text_from`` in the text box. With a device the library tells a
        sentence's on_segment before its words; without one, both wait on this sample's
        own timers, and a word at its sentence's very start may come first: its sentence
        is highlighted first.
        """
        segments, begins = self.speech.segments, 0
        for segment in segments:
            if word.char_start < begins + len(segment.text) or segment is segments[-1]:
                self.highlight(segment)  # nothing if it is highlighted already
                break
            begins += len(segment.text)
        start, end = self.text_from + word.char_start, self.text_from + word.char_end
        self.text.tag_remove(WORD, "1.0", "end")
        self.text.tag_add(WORD, f"1.0 + {start} chars", f"1.0 + {end} chars")
        self.seen["words"] += 1
        if self.selftest:  # what the widget holds now, read back from it
            first, last = self.text.tag_ranges(WORD)
            self.report("word", index=word.index, start=word.start, heard=self.heard_seconds(),
                        chars=[self.offset(first), self.offset(last)], text=self.text.get(first, last),
                        word_text=word.text, source=word.source)

    def end_reading(self, why: str) -> None:
        """The speech is over (heard to the end, stopped, failed): no highlight, text editable."""
        self.turn += 1  # its callbacks still queued or held back (a cue, a word, a chunk) are dropped
        self.text.configure(state="normal")
        self.sentence = -1
        cleared = [tag for tag in (HEARD, WORD) if self.text.tag_ranges(tag)]
        if cleared:
            for tag in cleared:
                self.text.tag_remove(tag, "1.0", "end")
            self.report("highlight_cleared", why=why, tags=cleared)

    def offset(self, index) -> int:
        """Characters from the text box's start to a Tk index."""
        return len(self.text.get("1.0", index))

    # -- where the listener is -----------------------------------------------------------

    def start_timeline(self) -> None:
        if not self.can_play and self.timeline is None:
            self.timeline = time.monotonic()

    def heard_seconds(self) -> float:
        """Seconds of the current speech heard so far: played by the device, or, without
        one, passed since its first chunk (as if it played at once, without a gap)."""
        if self.can_play:
            rate = self.speech.sample_rate if self.speech is not None else 1
            return (self.client.player.played_bytes - self.played_from) / (BYTES_PER_SAMPLE * rate)
        return 0.0 if self.timeline is None else time.monotonic() - self.timeline

    # -- the meter ---------------------------------------------------------------------

    def follow_playback(self) -> None:
        """Every 30 ms while playing: show the level of the chunk being heard now.

        A service may send audio faster than it plays; the player's count of played
        bytes says which chunk is in the speakers (and stands still while paused).
        Without a device the timeline from the first chunk stands in for it.
        """
        if self.ends:
            heard = round(self.heard_seconds() * self.speech.sample_rate) * BYTES_PER_SAMPLE
            index = bisect.bisect_right(self.ends, heard)
            self.show_level(self.levels[index] if index < len(self.levels) else 0.0)
            heard_all = index >= len(self.levels)
        else:
            heard_all = True
        if self.playing and self.speech.done and (self.can_play or heard_all):
            self.playing = False
            self.end_reading("done" if self.speech.error is None else "error")
            if self.speech.error is not None:
                self.set_status(f"error: {self.speech.error}")
            else:
                self.set_status("done" if self.can_play else "done (no audio device)")
        self.root.after(30, self.follow_playback)

    def show_level(self, value: float) -> None:
        self.meter["value"] = value
        self.seen["meter_updates"] += 1
        self.seen["meter_max"] = max(self.seen["meter_max"], value)

    # -- the status line, and facts for --selftest -----------------------------------------

    def set_status(self, text: str) -> None:
        self.status["text"] = text
        self.seen["statuses"].append(text)
        self.report("status", text=text, pause_button=self.pause_button["text"])

    def report(self, event: str, **facts: object) -> None:
        if self.selftest:
            print(json.dumps({"event": event, **facts}), flush=True)

    def report_layout(self) -> None:
        """--selftest: the window's X id and where each button is on the screen, once shown."""
        if not self.stop_button.winfo_viewable():
            self.root.after(50, self.report_layout)
            return
        buttons = {button.winfo_name(): [button.winfo_rootx(), button.winfo_rooty(),
                                         button.winfo_width(), button.winfo_height()]
                   for button in (self.speak_button, self.pause_button, self.stop_button)}
        self.report("ready", window=int(self.root.wm_frame(), 16), buttons=buttons)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--selftest", action="store_true", help="print JSON facts for tests")
    args = parser.parse_args()

    root = tk.Tk()
    style = ttk.Style(root)
    style.theme_use("clam")
    style.configure("Horizontal.TProgressbar", background="#3a9d5d")  # a green meter
    client = ttsstream.TTSClient(choose_provider(), dispatch="poll")
    reader = Reader(root, client, selftest=args.selftest)
    if args.selftest:
        root.after_idle(reader.report_layout)
    root.mainloop()
    client.close()  # already closed by the window's close button; safe twice

    if args.selftest:
        seen = reader.seen
        reader.report("exit", callback_threads=sorted(seen["threads"]), chunks=seen["chunks"],
                      first_audio_ms=seen["first_audio_ms"], meter_max=seen["meter_max"],
                      meter_updates=seen["meter_updates"], statuses=seen["statuses"], played=reader.can_play,
                      highlights=seen["highlights"], words=seen["words"],
                      threads_left=sorted(t.name for t in threading.enumerate() if t is not threading.main_thread()))


if __name__ == "__main__":
    main()
