"""The phrase cache (``ttsstream.PhraseCache``): keys, LRU and bounds, the file format's
defences, failing writes, and processes sharing one directory.

Real files under ``tmp_path`` and real processes (spawn); nothing of the filesystem is
mocked.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import random
import struct
import threading
import unicodedata
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ttsstream
from ttsstream.cache import DEFAULT_DISK_MAX_BYTES, DEFAULT_MAX_BYTES, CachedAudio, PhraseCache
from ttsstream.cache_format import MAGIC, VERSION, decode, encode
from ttsstream.errors import InvalidParameterError
from ttsstream.protocols import WordTime

WORDS = (WordTime("One", 0, 3, 0.0, 0.21), WordTime("moment", 4, 10, 0.21, 0.6),
         WordTime("pleäse", 12, 18, 0.65, 1.125))


def key_of(name: object) -> str:
    return PhraseCache.key({"provider": "local", "text": str(name)})


def audio_of(size: int, seed: int = 0, words: Any = None) -> CachedAudio:
    """``size`` bytes of PCM in uneven chunks, the same for the same seed."""
    rng = random.Random(seed)
    data = rng.randbytes(size)
    cuts = sorted({0, size, *(rng.randrange(size + 1) for _ in range(3))})
    return CachedAudio(24000, tuple(data[a:b] for a, b in zip(cuts, cuts[1:])), words)


def entry_files(path: Path) -> List[str]:
    return sorted(name for name in os.listdir(path) if name.endswith(".phrase"))


def directory_bytes(path: Path) -> int:
    total = 0
    for entry in os.scandir(path):
        try:
            total += entry.stat().st_size if entry.name.endswith(".phrase") else 0
        except FileNotFoundError:  # evicted by another process since the listing
            pass
    return total


# -- the public name and its arguments ----------------------------------------------


def test_phrase_cache_is_exported() -> None:
    assert "PhraseCache" in ttsstream.__all__ and ttsstream.PhraseCache is PhraseCache


@pytest.mark.parametrize("max_bytes", [0, -1, True, 1.5, "64"])
def test_max_bytes_must_be_a_positive_int(max_bytes: Any) -> None:
    with pytest.raises(InvalidParameterError, match="max_bytes must be a positive int") as caught:
        PhraseCache(max_bytes=max_bytes)
    assert caught.value.parameter == "max_bytes"


@pytest.mark.parametrize("path", [123, b"/tmp/bytes", "", ["dir"]])
def test_path_must_be_a_str_or_pathlike(path: Any) -> None:
    with pytest.raises(InvalidParameterError, match="path must be") as caught:
        PhraseCache(path)
    assert caught.value.parameter == "path"


def test_defaults_and_repr(tmp_path: Path) -> None:
    memory, disk = PhraseCache(), PhraseCache(tmp_path / "made" / "here")
    assert (tmp_path / "made" / "here").is_dir()  # created
    assert repr(memory) == f"PhraseCache(path=None, entries=0, bytes=0, max_bytes={DEFAULT_MAX_BYTES})"
    disk.put(key_of("a"), audio_of(1000))
    assert repr(disk).startswith(f"PhraseCache(path={str(tmp_path / 'made' / 'here')!r}, entries=1, bytes=")
    assert f"max_bytes={DEFAULT_DISK_MAX_BYTES})" in repr(disk) and len(disk) == 1
    assert disk.path == str(tmp_path / "made" / "here") and memory.path is None


@pytest.mark.parametrize("key", ["abc", key_of("x").upper(), key_of("x") + "0", "../" + key_of("x")[3:], 7, ["a"]])
def test_a_key_is_what_key_returns(tmp_path: Path, key: Any) -> None:
    cache = PhraseCache(tmp_path)
    with pytest.raises(InvalidParameterError, match=r"PhraseCache.key\(parts\)"):
        cache.get(key)
    with pytest.raises(InvalidParameterError, match=r"PhraseCache.key\(parts\)"):
        cache.put(key, audio_of(10))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("audio", [
    (24000, (b"ab",)), CachedAudio(0, (b"ab",)), CachedAudio(True, (b"ab",)),
    CachedAudio(24000, [b"ab"]), CachedAudio(24000, (bytearray(b"ab"),)),  # type: ignore[arg-type]
    CachedAudio(24000, (b"ab",), ((0, 1, 2, 0.0, 1.0),)),  # type: ignore[arg-type]
])
def test_put_takes_cached_audio_of_bytes(audio: Any) -> None:
    with pytest.raises(InvalidParameterError, match="audio"):
        PhraseCache().put(key_of("x"), audio)


# -- keys ---------------------------------------------------------------------------


def test_key_is_sha256_hex_and_ignores_dict_order() -> None:
    one = PhraseCache.key({"provider": "eigenai", "params": {"speed": 1.0, "voice_settings": {"a": 1, "b": [1, 2]}},
                           "text": "One moment, please."})
    two = PhraseCache.key({"text": "One moment, please.", "params": {"voice_settings": {"b": [1, 2], "a": 1},
                                                                      "speed": 1.0}, "provider": "eigenai"})
    assert one == two and len(one) == 64 and int(one, 16) >= 0
    # stable across runs and machines: a change of the canonical form would orphan every cache on disk
    canonical = '{"n":1,"t":[1.5,null,true],"text":"caf\\u00e9"}'
    assert PhraseCache.key({"text": "café", "t": (1.5, None, True), "n": 1}) == hashlib.sha256(
        canonical.encode()).hexdigest()


@pytest.mark.parametrize("a, b", [
    ({"speed": 1}, {"speed": 1.0}),
    ({"speed": 1}, {"speed": True}),
    ({"speed": 0.0}, {"speed": -0.0}),
    ({"speed": 0.1}, {"speed": 0.1 + 1e-17 * 10}),
    ({"speed": "1"}, {"speed": 1}),
    ({"voice": None}, {}),
    ({"text": unicodedata.normalize("NFC", "café")}, {"text": unicodedata.normalize("NFD", "café")}),
    ({"text": "One moment, please."}, {"text": "One moment, please. "}),
    ({"p": {"a": {"b": 1}}}, {"p": {"a": {"b": 2}}}),
    ({"p": {"a": 1, "b": 2}}, {"p": {"a": 1}, "b": 2}),
    ({"p": ["a", "b"]}, {"p": "a,b"}),
    ({"p": ["a", "b"]}, {"p": ["b", "a"]}),
    ({"text": "\ud800"}, {"text": "\ufffd"}),  # a lone surrogate is kept as it is, not replaced
])
def test_any_difference_changes_the_key(a: Dict[str, Any], b: Dict[str, Any]) -> None:
    assert PhraseCache.key(a) != PhraseCache.key(b)


@pytest.mark.parametrize("parts, what", [
    ({"p": {1, 2}}, "set"), ({"p": b"raw"}, "bytes"), ({"p": object()}, "object"),
    ({"p": float("nan")}, "finite"), ({"p": float("inf")}, "finite"), ({"p": {1: "a"}}, "str keys"),
    (["text", "hi"], "mapping"),
])
def test_parts_without_a_canonical_form_are_refused(parts: Any, what: str) -> None:
    with pytest.raises(InvalidParameterError, match=what) as caught:
        PhraseCache.key(parts)
    assert caught.value.parameter == "parts"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12)


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: _reordered(value[name]) for name in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal, telling 1 from 1.0 from True and 0.0 from -0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[name], b[name]) for name in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return repr(a) == repr(b)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=5), JSON, max_size=5), st.dictionaries(st.text(max_size=5), JSON, max_size=5))
def test_keys_are_equal_exactly_when_the_parts_are(a: Dict[str, Any], b: Dict[str, Any]) -> None:
    assert PhraseCache.key(a) == PhraseCache.key(_reordered(a))
    assert (PhraseCache.key(a) == PhraseCache.key(b)) == _same(a, b)


# -- memory --------------------------------------------------------------------------


def test_memory_keeps_the_most_recently_used_within_the_bound() -> None:
    cache = PhraseCache(max_bytes=1000)
    keys = [key_of(n) for n in range(6)]
    for n in range(5):
        cache.put(keys[n], audio_of(200, n))
    assert len(cache) == 5
    assert cache.get(keys[0]) == audio_of(200, 0)  # used: now the newest
    cache.put(keys[5], audio_of(200, 5))           # over the bound: the least recently used goes
    assert [cache.get(k) is not None for k in keys] == [True, False, True, True, True, True]
    # the gets above used the keys in order: 0 is now the least recent, 2 replaced by a larger
    # entry the most recent (1050 bytes), so 0 goes
    cache.put(keys[2], audio_of(250, 2))
    assert [cache.get(k) is not None for k in keys] == [False, False, True, True, True, True]
    assert "bytes=850" in repr(cache) and len(cache) == 4


def test_an_entry_over_a_quarter_of_the_bound_is_not_kept(tmp_path: Path) -> None:
    memory, disk = PhraseCache(max_bytes=1000), PhraseCache(tmp_path, max_bytes=4000)
    memory.put(key_of("big"), audio_of(251))
    memory.put(key_of("fits"), audio_of(250))
    assert memory.get(key_of("big")) is None and memory.get(key_of("fits")) is not None
    disk.put(key_of("big"), audio_of(1001))
    assert entry_files(tmp_path) == [] and disk.get(key_of("big")) is None


def test_a_memory_hit_reads_no_file(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path)
    cache.put(key_of("a"), audio_of(100))
    os.unlink(tmp_path / f"{key_of('a')}.phrase")
    assert cache.get(key_of("a")) == audio_of(100)  # from memory, without looking at the disk
    assert PhraseCache(tmp_path).get(key_of("a")) is None


def test_hits_and_misses_are_counted(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path)
    assert (cache.hits, cache.misses) == (0, 0)
    assert cache.get(key_of("a")) is None
    cache.put(key_of("a"), audio_of(100))
    assert cache.get(key_of("a")) is not None            # memory
    assert PhraseCache(tmp_path).get(key_of("a")) is not None  # another object: its own counts
    assert cache.get(key_of("b")) is None
    assert (cache.hits, cache.misses) == (1, 2)
    cache.clear()
    assert (cache.hits, cache.misses, len(cache)) == (0, 0, 0) and entry_files(tmp_path) == []
    assert PhraseCache(tmp_path).get(key_of("a")) is None


def test_threads_share_one_cache_within_its_bound() -> None:
    cache = PhraseCache(max_bytes=20_000)
    audios = {n: audio_of(1000 + n * 100, n) for n in range(30)}
    wrong: List[Tuple[int, Any]] = []
    gets: List[int] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            n = rng.randrange(30)
            if rng.random() < 0.5:
                cache.put(key_of(n), audios[n])
            else:
                gets.append(n)
                got = cache.get(key_of(n))
                if got is not None and got != audios[n]:
                    wrong.append((n, got))

    threads = [threading.Thread(target=work, args=(seed,), name=f"cache-test-{seed}") for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert wrong == []
    assert cache.hits + cache.misses == len(gets) and cache.hits > 0 and cache.misses > 0
    size = int(repr(cache).split("bytes=")[1].split(",")[0])
    assert 0 < size <= 20_000


# -- disk: round trip, LRU, bound ---------------------------------------------------


@pytest.mark.parametrize("words", [WORDS, (), None])
def test_disk_round_trip_is_exact(tmp_path: Path, words: Any) -> None:
    audio = CachedAudio(22050, (b"\x01\x02", b"", b"\x03" * 999, b"\xff\xfe"), words)
    PhraseCache(tmp_path).put(key_of("a"), audio)
    got = PhraseCache(tmp_path).get(key_of("a"))  # another object: from the file
    assert got == audio and got is not None
    assert got.chunks == audio.chunks and got.words == words and got.sample_rate == 22050
    assert got.nbytes == 1003 and all(type(chunk) is bytes for chunk in got.chunks)
    assert got.words is None or all(type(word) is WordTime for word in got.words)


def _stamp(path: Path, names: Dict[str, int]) -> None:
    for name, seconds in names.items():
        os.utime(path / f"{key_of(name)}.phrase", (seconds, seconds))


def test_disk_evicts_the_least_recently_used_across_objects(tmp_path: Path) -> None:
    size = len(b"".join(encode(key_of("a"), audio_of(900))))
    writer = PhraseCache(tmp_path, max_bytes=size * 9 // 2)  # room for 4; eviction frees to 4.05
    for name in "abcd":
        writer.put(key_of(name), audio_of(900))
    _stamp(tmp_path, {"a": 1000, "b": 2000, "c": 3000, "d": 4000})  # no clock in the test: the order is set
    assert PhraseCache(tmp_path).get(key_of("a")) is not None  # a disk hit: "a" is now the newest
    writer.put(key_of("e"), audio_of(900))  # five entries: over the bound, down to 90% of it: b goes
    assert entry_files(tmp_path) == sorted(f"{key_of(n)}.phrase" for n in "acde")
    assert directory_bytes(tmp_path) == 4 * size
    assert PhraseCache(tmp_path).get(key_of("b")) is None


def test_disk_stays_within_its_bound(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path, max_bytes=100_000)
    largest = 0
    for n in range(200):
        cache.put(key_of(n), audio_of(1000 + (n * 7919) % 20_000, n))
        largest = max(largest, directory_bytes(tmp_path))
    assert largest <= 100_000  # one process: exact
    assert len(cache) == len(entry_files(tmp_path)) > 3


def test_writers_that_count_apart_stay_within_the_documented_slack(tmp_path: Path) -> None:
    # Two objects count their own writes, as two processes do; taking turns, in one thread,
    # the order is fixed. Each rescans after writing 10% of the bound, so neither lets the
    # other's writes pile up unseen.
    writers = [PhraseCache(tmp_path, max_bytes=100_000) for _ in range(2)]
    largest = 0
    for n in range(300):
        writers[n % 2].put(key_of(n), audio_of(1000 + (n * 7919) % 20_000, n))
        largest = max(largest, directory_bytes(tmp_path))
    assert largest <= 100_000 + 2 * (10_000 + 21_100)
    assert directory_bytes(tmp_path) > 50_000


def test_stale_temporary_files_are_swept_and_fresh_ones_kept(tmp_path: Path) -> None:
    stale, fresh = tmp_path / ".tmp-killed.part", tmp_path / ".tmp-writing.part"
    stale.write_bytes(b"half an entry")
    fresh.write_bytes(b"being written")
    os.utime(stale, (1000, 1000))
    PhraseCache(tmp_path).put(key_of("a"), audio_of(100))  # a first put scans
    assert not stale.exists() and fresh.exists()


# -- disk: what is not a whole entry is a miss --------------------------------------


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1:]


def _broken(good: bytes) -> Dict[str, bytes]:
    header = struct.calcsize("<8sHHIIIQ32s")
    return {
        "empty": b"",
        "magic": b"TTSCACHX" + good[8:],
        "version": good[:8] + struct.pack("<H", VERSION + 1) + good[10:],
        "header byte": _flip(good, 14),          # the sample rate
        "digest byte": _flip(good, header + 3),
        "lengths byte": _flip(good, header + 32),
        "word byte": _flip(good, len(good) - 1001),
        "pcm byte": _flip(good, len(good) - 1),
        "truncated": good[:-1],
        "header only": good[:header],
        "trailing": good + b"\x00",
        "another key": b"".join(encode(key_of("other"), audio_of(1000, words=WORDS))),
    }


@pytest.mark.parametrize("how", sorted(_broken(b"x" * 2000)))
def test_a_broken_file_is_a_miss_and_deleted(tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture) -> None:
    key = key_of("a")
    PhraseCache(tmp_path).put(key, audio_of(1000, words=WORDS))
    entry = tmp_path / f"{key}.phrase"
    good = entry.read_bytes()
    assert good.startswith(MAGIC) and decode(key, good) == audio_of(1000, words=WORDS)
    entry.write_bytes(_broken(good)[how])
    cache = PhraseCache(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="ttsstream.cache"):
        assert cache.get(key) is None
    assert (cache.hits, cache.misses) == (0, 1)
    assert not entry.exists()
    assert all(key not in record.getMessage() for record in caplog.records)  # a prefix at most
    cache.put(key, audio_of(1000))  # and the phrase can be kept again
    assert PhraseCache(tmp_path).get(key) == audio_of(1000)


def test_a_missing_or_unreadable_file_is_a_miss(tmp_path: Path) -> None:
    cache = PhraseCache(tmp_path)
    cache.put(key_of("gone"), audio_of(100))
    os.unlink(tmp_path / f"{key_of('gone')}.phrase")  # evicted by another process
    assert PhraseCache(tmp_path).get(key_of("gone")) is None
    (tmp_path / f"{key_of('dir')}.phrase").mkdir()  # a directory where the file should be
    reader = PhraseCache(tmp_path)
    assert reader.get(key_of("dir")) is None and reader.misses == 1
    assert len(reader) == 0  # a directory is not an entry


# -- disk: failing writes ------------------------------------------------------------


def test_a_path_that_is_a_file_keeps_phrases_in_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"not a directory")
    with caplog.at_level(logging.WARNING, logger="ttsstream.cache"):
        cache = PhraseCache(blocker)
        cache.put(key_of("a"), audio_of(100))
        cache.put(key_of("b"), audio_of(100))
    assert cache.get(key_of("a")) == audio_of(100)  # from memory
    assert blocker.read_bytes() == b"not a directory" and os.listdir(tmp_path) == ["a-file"]
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings  # the directory, and the first write; not every write
    assert all(key_of("a") not in message for message in warnings)
    assert len(cache) == 0 and "entries=0" in repr(cache)


def test_a_write_that_fails_leaves_no_temporary_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / f"{key_of('a')}.phrase").mkdir()  # the rename onto the final name fails
    cache = PhraseCache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ttsstream.cache"):
        cache.put(key_of("a"), audio_of(100_000))
    assert os.listdir(tmp_path) == [f"{key_of('a')}.phrase"]
    assert "cannot write entry" in caplog.text and cache.get(key_of("a")) == audio_of(100_000)


def _write_past_a_file_size_limit(path: str) -> None:
    """In a child: a write that fails half way, as on a full disk (EFBIG past RLIMIT_FSIZE)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))
    cache = PhraseCache(path)
    cache.put(key_of("a"), audio_of(100_000))
    os._exit(0 if cache.get(key_of("a")) == audio_of(100_000) else 3)


def test_a_write_that_fails_half_way_leaves_no_temporary_file(tmp_path: Path) -> None:
    child = multiprocessing.get_context("spawn").Process(target=_write_past_a_file_size_limit, args=(str(tmp_path),))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert os.listdir(tmp_path) == []


# -- processes sharing one directory ------------------------------------------------

BOUND = 400_000
SIZES = 200  # phrases; each 5 to 60 kB
SLACK = 2 * (BOUND // 10 + 61_000)  # the documented slack of two processes: 10% of the bound and an entry each


def _phrase(n: int) -> CachedAudio:
    return audio_of(5_000 + (n * 7919) % 55_000, n, words=WORDS if n % 2 else None)


def _count_torn() -> List[str]:
    """The corrupt entries this process's cache will meet (each is logged, then a miss)."""
    torn: List[str] = []

    class Torn(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "corrupt" in record.getMessage():
                torn.append(record.getMessage())

    logging.getLogger("ttsstream.cache").addHandler(Torn())
    return torn


def _child(path: str, role: str, rounds: int, go: Any) -> None:
    """In a child: "writer" and "reader" put and get the same four phrases, as fast as they
    can (the reader through a fresh object each time, so from disk); "writer-N" puts and
    gets its own phrases from N * SIZES on. Exit 0 if all was well (see the test)."""
    torn = _count_torn()
    cache = PhraseCache(path, max_bytes=BOUND)
    first = int(role.split("-")[1]) * SIZES if "-" in role else 0
    wrong = largest = found = 0
    try:
        go.wait(60)
    except threading.BrokenBarrierError:
        os._exit(4)
    for step in range(rounds):
        n = first + (step % 4 if first == 0 else (step * 7) % SIZES)
        if role != "reader" and (role == "writer" or step % 2 == 0):
            cache.put(key_of(n), _phrase(n))
            largest = max(largest, directory_bytes(Path(path)))
        if role != "writer":
            got = PhraseCache(path, max_bytes=BOUND).get(key_of(n))
            found += got is not None
            wrong += got is not None and got != _phrase(n)
    if wrong:
        os._exit(10 + min(wrong, 50))
    os._exit(5 if torn else 6 if largest > BOUND + SLACK else 7 if role != "writer" and not found else 0)


@pytest.mark.parametrize("roles", [("writer", "reader"), ("writer-1", "writer-2")])
def test_two_processes_share_a_directory(tmp_path: Path, roles: Tuple[str, str]) -> None:
    # A writer and a reader of the same phrases: the reader meets many writes in progress.
    # Two writers of their own phrases: twice the bytes, into a directory both scanned empty.
    spawn = multiprocessing.get_context("spawn")
    go = spawn.Barrier(2)  # both start together, once both have started up
    children = [spawn.Process(target=_child, args=(str(tmp_path), role, 3000, go)) for role in roles]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    # 0: all well; 4: never started; 5: a reader met a torn file; 6: the directory passed
    # its bound and documented slack; 7: a reader found nothing; 10+: a get returned audio
    # that was not the phrase's
    assert [child.exitcode for child in children] == [0, 0]
    assert directory_bytes(tmp_path) <= BOUND + SLACK
    assert [name for name in os.listdir(tmp_path) if not name.endswith(".phrase")] == []
    reader = PhraseCache(tmp_path)
    for name in entry_files(tmp_path):
        n = next(n for n in range(3 * SIZES) if key_of(n) == name[:-len(".phrase")])
        assert reader.get(key_of(n)) == _phrase(n)
