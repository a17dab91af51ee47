"""A pygame game loop that speaks on events and never waits for the network.

Shows: a client made with dispatch="poll" and client.poll() called once per frame, so
every callback runs between frames on the game's own thread; speak(block=False) from
the loop; a level bar fed from on_audio; how long each frame took.

Run it:

    python samples/pygame_loop.py                    # press a key to speak; Esc or close to quit
    SDL_VIDEODRIVER=dummy python samples/pygame_loop.py --frames 300

With --frames N it runs N frames, speaks on a scripted event every --speak-every
frames (60 by default), and prints a JSON summary: frame times, speeches completed,
chunks received. It plays through ttsstream's AudioPlayer (PortAudio, not pygame's
mixer) where there is an output device; without one the speech still streams and the
bar still moves, and it says that nothing is played. The bundled offline voice is
used unless EIGENAI_API_KEY or SHUNYALABS_API_KEY is set.
"""

import argparse
import itertools
import json
import math
import threading
import time

import numpy as np
import pygame

import ttsstream
from ttsstream import choose_provider

FPS = 60
LINES = ["Ready when you are.", "Jump!", "Nice move.", "Watch out, an obstacle ahead.", "Level complete."]


class Voice:
    """Speaks lines without blocking the loop, and keeps what the callbacks report.

    The client uses dispatch="poll": the callbacks run inside client.poll(), on the
    game's thread, so they may change game state without locks.
    """

    def __init__(self, client: ttsstream.TTSClient) -> None:
        self.client = client
        self.play = True         # until the first PlaybackError says there is no device
        self.level = 0.0         # 0..1, the latest chunk's loudness
        self.started = 0
        self.completed = 0
        self.chunks = 0
        self.callback_threads = set()

    def say(self, text: str) -> None:
        callbacks = {"on_audio": self.on_audio, "on_complete": self.on_complete, "on_error": self.on_error}
        self.started += 1
        if self.play:
            try:
                self.client.speak(text, play=True, block=False, **callbacks)
                return
            except ttsstream.PlaybackError as error:
                print(f"no audio device, so nothing is played: {error}")
                self.play = False
        self.client.speak(text, block=False, **callbacks)

    def on_audio(self, chunk: ttsstream.AudioChunk) -> None:
        self.callback_threads.add(threading.current_thread().name)
        self.chunks += 1
        rms = np.sqrt(np.mean(chunk.samples.astype(np.float64) ** 2)) if len(chunk.samples) else 0.0
        dbfs = 20 * math.log10(rms / 32768) if rms > 0 else -60.0
        self.level = max(self.level, min(1.0, max(0.0, (dbfs + 60) / 60)))  # -60..0 dBFS -> 0..1

    def on_complete(self, speech: ttsstream.Speech) -> None:
        self.callback_threads.add(threading.current_thread().name)
        self.completed += 1

    def on_error(self, error: ttsstream.TTSError) -> None:
        self.callback_threads.add(threading.current_thread().name)
        print(f"speech failed: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=0, help="run this many frames, then print a summary")
    parser.add_argument("--speak-every", type=int, default=60, help="with --frames: speak every N frames")
    args = parser.parse_args()

    # Only the display and fonts: ttsstream plays through PortAudio, and pygame's
    # mixer (which pygame.init() would start) could hold the same audio device.
    pygame.display.init()
    pygame.font.init()
    screen = pygame.display.set_mode((480, 160))
    pygame.display.set_caption("ttsstream pygame loop")
    font = pygame.font.Font(None, 26)
    clock = pygame.time.Clock()
    speak_event = pygame.event.custom_type()  # the scripted event of --frames mode
    lines = itertools.cycle(LINES)

    client = ttsstream.TTSClient(choose_provider(), dispatch="poll")
    voice = Voice(client)
    # One-time costs belong before the first frame, not inside one: open the audio device
    # now (PortAudio probes every backend), or learn now that there is none.
    try:
        client.player.start()
    except ttsstream.PlaybackError as error:
        print(f"no audio device, so nothing is played: {error}")
        voice.play = False
    frame_ms = []
    frame = 0
    last = time.perf_counter()
    running = True
    while running:
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                running = False
            elif event.type in (pygame.KEYDOWN, speak_event):
                voice.say(next(lines))  # returns at once; the audio arrives in later frames

        client.poll()  # run the callbacks that are waiting, here, between two frames

        screen.fill((20, 24, 32))
        pygame.draw.rect(screen, (60, 200, 120), (20, 100, int(440 * voice.level), 30))
        pygame.draw.rect(screen, (200, 200, 200), (20, 100, 440, 30), 1)
        status = f"spoken {voice.completed}/{voice.started}   chunks {voice.chunks}   frame {frame}"
        screen.blit(font.render("Press a key to speak, Esc to quit", True, (230, 230, 230)), (20, 20))
        screen.blit(font.render(status, True, (160, 170, 190)), (20, 60))
        pygame.display.flip()
        voice.level *= 0.9  # let the bar fall between chunks

        clock.tick(FPS)
        now = time.perf_counter()
        frame_ms.append((now - last) * 1000)
        last = now
        frame += 1
        if args.frames:
            if frame % args.speak_every == 1:
                pygame.event.post(pygame.event.Event(speak_event))
            if frame >= args.frames:
                running = False

    client.close()  # cancels what is still speaking and joins the client's threads
    pygame.quit()

    if args.frames:
        times = np.array(frame_ms)
        print(json.dumps({
            "frames": frame,
            "frame_ms": {"median": round(float(np.median(times)), 2),
                         "p99": round(float(np.percentile(times, 99)), 2),
                         "max": round(float(times.max()), 2)},
            "frames_over_33ms": int((times > 1000 / 30).sum()),
            "speeches_started": voice.started,
            "speeches_completed": voice.completed,
            "chunks": voice.chunks,
            "played": voice.play,
            "callback_threads": sorted(voice.callback_threads),
        }))


if __name__ == "__main__":
    main()
