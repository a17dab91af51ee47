"""Benchmark: where the segmenter cuts an LLM's streamed answer, against its peers' rules.

    python benchmarks/bench_segmenter.py [--tokens-per-second 30] [--ttfb 0.25] [--detail]
    python benchmarks/bench_segmenter.py --sets    # needs: pip install pysbd blingfire

``--sets``: per public sentence-boundary test set (tests/data/segmentation: pySBD's golden
rules and languages, sentencex's cases, issue 17's), its cases and gold boundaries, then
false cuts / missed boundaries of ttsstream's sentence rules (and, apart, its first-unit
clause cuts), of pySBD (each case in its language where pySBD has it, else English, no
cleaning) and of blingfire; how they are counted: tests/segmentation_sets.py. To measure
another checkout's ttsstream (an older commit) on the same sets, point
``BENCH_TTSSTREAM_DIR`` at it. Figures (issue 17, before: 4906165):

    set                cases  gold  before     after   clause   pySBD  blingfire
    pysbd-golden-en       48    32   31 / 11   1 / 11      10   1 /  0  18 / 10
    pysbd-languages       18    15    1 /  2   0 /  0       5   0 /  0   1 /  1
    sentencex-en          56    31   27 /  7   6 /  4      12   8 /  0   4 /  5
    sentencex-ja           6    15    4 /  0   4 /  0       3   4 /  0   4 /  0
    sentencex-ml           4     1    6 /  0   0 /  0       0   7 /  0   1 /  0
    sentencex-ur, -zh      3     4    1 /  2   0 /  0       1   0 /  0   1 /  0
    sentencex-gu,hi,mr,pa  8     7    0 /  0   0 /  0       2   0 /  1   0 /  2
    ttsstream-issue17     16    16   19 /  3   0 /  1       1  11 /  1   7 /  3
    total                       121   89 / 25  11 / 16     34  31 /  2  36 / 21

The remaining false cuts are deliberate (a line break is a unit; 。 always ends a
sentence; "item 2. The" reads as an end); most misses are initials before a capital
(``the U.S. How``), kept together because a unit must never cut a name: the list with
reasons is tests/data/segmentation/expected.json.

Six LLM-style answers of about 600 characters (prose with prices and numbers, a Markdown
list, one dense with abbreviations, one with no punctuation, Chinese, Hindi) arrive as
4-character tokens (LLM tokenizers average about 4 characters a token), at 30 tokens a
second and, to show gaps, at 5 (a slow local model: text barely faster than speech);
poll() runs every 10 ms. Each released unit is "synthesized": its audio starts 0.25 s after
release (``--ttfb``, a streaming TTS's time to first audio) or when the previous unit's
audio ends, and lasts its spoken length at 14 characters a second.

Per rule, medians over the answers of: the time from the first token to the first unit
(and the worst answer's); the number of units; the shortest, median and longest unit
(spoken characters); the seconds of silence between units once audio began ("gaps", what
users hear as stutter); totals of "forced" (cuts not at punctuation) and "bad" (cuts inside
a number or word, or after an abbreviation the issue names: ``Dr. Mr. Mrs. Ms. St. e.g.
i.e. U.S. vs.``, an initial). "set_ahead fed" tells the segmenter the simulated queue;
the other rows let it estimate the queue from the text it released.

Peers, each its rule as documented, in a few lines:
- RealtimeTTS-like: the first fragment as soon as one of ``.?!;:,`` or a dash arrives after
  >= 10 characters (it reads character by character: no look-ahead), or after 30 words;
  then sentences >= 10 characters once 10 characters of the next have arrived (its context);
- LiveKit-like: sentences (``.!?`` + space, decimals kept) merged to >= 20 characters,
  released only when the next sentence has begun (its tokenizer returns two);
- Pipecat-like: a sentence ends at ``.!?;…`` (and CJK/Devanagari ends) once the next
  non-space character arrives, unless a digit follows a ``.`` after a digit (``$29.99``).

All times are simulated (the times handed to push/poll), so the figures are the same on a
loaded machine; the wall clock only shows how long the script takes.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
# BENCH_TTSSTREAM_DIR: a checkout whose ttsstream to measure (say, an older commit's, for a
# before/after comparison); the test sets always come from this one.
sys.path.insert(0, os.environ.get("BENCH_TTSSTREAM_DIR") or str(HERE.parent))
sys.path.insert(1, str(HERE.parent / "tests"))

from ttsstream.segmenter import Segmenter, spoken_len  # noqa: E402

ANSWERS: Dict[str, str] = {
    "numbers": (
        "The short answer is yes, but the numbers matter. In 2023, the average household "
        "spent $29.99 a month on streaming, up from $19.50 in 2019, which is a 53.8% increase. "
        "If you have 3 services, that's roughly $1,080 a year. Over 10 years, at an inflation "
        "rate of 3.2%, you'd pay about $12,400 in total. Compare that with a one-time purchase: "
        "a 1.5x more expensive plan still breaks even after 18 months. Your advisor can see you "
        "at 10:30 tomorrow, so bring last year's statements. Sales rose by 112,000 units... "
        "sorry, by 4.7 percent. In short, cancel the services you use less than twice a month, "
        "and keep the one you watch daily."),
    "list": (
        "Here's a simple plan to get started with running:\n\n"
        "1. Start slow. Run for 1 minute, then walk for 2 minutes, and repeat this 8 times.\n"
        "2. Increase gradually. Each week, add about 10% to your total distance, never more.\n"
        "3. Get proper shoes. A good pair costs $80 to $150, and it's worth it.\n"
        "4. Rest. Take at least 2 days off each week so your muscles can recover.\n"
        "5. Track your progress with an app, e.g. Strava or Nike Run Club.\n\n"
        "Most beginners can run 5 km without stopping after 8 to 10 weeks. If you feel a "
        "sharp pain, stop and see a doctor. Good luck, and enjoy it!"),
    "abbreviations": (
        "Dr. Jane Smith, a researcher at St. Mary's Hospital in the U.S., published the study "
        "in Jan. 2021 with Prof. R. K. Patel. They compared two groups, i.e. patients who slept "
        "7 hours vs. those who slept 5. Mr. Lee and Ms. Gomez, the lead nurses, recorded heart "
        "rate, blood pressure, weight, etc. The results were clear: the well-rested group had "
        "23% fewer infections. J. R. R. Tolkien once wrote that not all those who wander are "
        "lost; Dr. Smith jokes that the same is not true of sleep. The team's next paper, due "
        "in the U.K. next spring, will look at naps, caffeine, and shift work."),
    "unpunctuated": (
        "so basically what you want to do is open the settings page and then look for the "
        "section that says privacy and security and in there you will find a toggle for location "
        "services which you can turn off if you do not want apps to know where you are but keep "
        "in mind that some apps like maps and weather will not work properly without it so you "
        "might want to allow it only while using the app which is a good middle ground that a lot "
        "of people choose and if you are worried about battery life turning off background app "
        "refresh also helps quite a bit especially on older phones where the battery has already "
        "lost some of its capacity over the years"),
    "chinese": (
        "当然可以。北京是中国的首都，有三千多年的历史。如果你第一次去北京，我建议你先去故宫，"
        "那里有很多古老的建筑和珍贵的文物。门票大约六十元，最好提前在网上预约。然后，你可以去"
        "天安门广场，看看升旗仪式。第二天，你可以去长城，八达岭是最有名的一段，但人也最多；如果"
        "你想安静一点，可以去慕田峪。晚上，别忘了尝尝北京烤鸭！全聚德和大董都很有名，一个人大概"
        "需要两百元。另外，北京的地铁很方便，票价三到十元，用手机就可以付款。春天和秋天是最好的"
        "季节，夏天很热，冬天很冷。祝你旅途愉快！"),
    "hindi": (
        "ज़रूर, मैं आपकी मदद कर सकता हूँ। दिल्ली भारत की राजधानी है और यहाँ घूमने के लिए बहुत "
        "सी जगहें हैं। सबसे पहले आप लाल किला देखिए, जो सत्रहवीं सदी में बना था। उसके बाद आप "
        "चाँदनी चौक जा सकते हैं, जहाँ आपको स्वादिष्ट खाना मिलेगा, जैसे पराठे, जलेबी और चाट। दूसरे "
        "दिन कुतुब मीनार और हुमायूँ का मकबरा देखिए। मेट्रो से यात्रा करना सस्ता और आसान है, टिकट "
        "लगभग 30 से 60 रुपये का होता है। अक्टूबर से मार्च तक का मौसम सबसे अच्छा है, क्योंकि "
        "गर्मियों में तापमान 45 डिग्री तक पहुँच जाता है। आपकी यात्रा शुभ हो!"),
}

SPEECH_CPS = 14.0
TOKEN_CHARS = 4


# -- the peers' rules, as baselines ----------------------------------------------------


class _Baseline:
    """A peer's rule over a growing buffer: ``cut(buf)`` -> length to release now, or 0."""

    def __init__(self) -> None:
        self.buf, self.units = "", 0

    def push(self, text: str, now: float) -> List[str]:
        self.buf += text
        out = []
        while True:
            n = self.cut(self.buf)
            if not n:
                return out
            out.append(self.buf[:n])
            self.buf = self.buf[n:]
            self.units += 1

    def poll(self, now: float) -> List[str]:
        return []

    def finish(self) -> List[str]:
        rest, self.buf = self.buf, ""
        return [rest] if rest.strip() else []

    def set_ahead(self, seconds: float, now: float) -> None:
        pass

    def cut(self, buf: str) -> int:
        raise NotImplementedError  # abstract: each peer's rule below overrides it


def _after_space(buf: str, i: int) -> int:
    """``i`` moved past the whitespace at ``buf[i:]``; 0 when no non-space follows yet."""
    j = len(buf) - len(buf[i:].lstrip())
    return j if j < len(buf) else 0


class RealtimeTTSLike(_Baseline):
    def cut(self, buf: str) -> int:
        if self.units == 0:
            for i in range(9, len(buf)):  # it reads character by character: no look-ahead
                if buf[i] in ".?!;:,—-。！？，；：、।":
                    return i + 1
            words = buf.split()
            if len(words) > 30:
                return buf.rindex(words[-1])
            return 0
        for m in re.finditer(r"[.!?。！？।]+[\"')]*\s*", buf):
            if m.end() >= 10 and len(buf) - m.end() >= 10 and (m.group().strip() != m.group()
                                                                 or m.group()[0] not in ".!?"):
                return m.end()
        return 0


class LiveKitLike(_Baseline):
    def cut(self, buf: str) -> int:
        ends = [m.end() for m in re.finditer(r"(?<!\b[MDS]r)(?<!\bMrs)(?<!\bSt)[.!?]+\s+", buf)]
        start = 0
        for end in ends:
            if end < len(buf) and len(buf[start:end].strip()) >= 20:
                return end  # a next sentence has begun after it
        return 0


class PipecatLike(_Baseline):
    def cut(self, buf: str) -> int:
        for i, ch in enumerate(buf):
            if ch in ".!?;…。！？；।" and i + 1 < len(buf):
                if ch == "." and (buf[i + 1] in ".!?" or (i and buf[i - 1].isdigit() and buf[i + 1].isdigit())):
                    continue
                if buf[i + 1] in "\"')”":
                    continue
                j = _after_space(buf, i + 1)
                if j:
                    return j
        return 0


# -- the simulation ----------------------------------------------------------------------


def simulate(make: Callable[[], object], text: str, tps: float, ttfb: float,
             feed_ahead: bool) -> Tuple[Dict[str, float], List[str]]:
    """Stream ``text`` through a fresh rule; returns its figures and its units."""
    seg = make()
    released: List[Tuple[float, str]] = []
    end_of_audio = 0.0
    gaps = 0.0

    def take(units: List[str], now: float) -> None:
        nonlocal end_of_audio, gaps
        for unit in units:
            start = max(now + ttfb, end_of_audio)
            if released:
                gaps += start - end_of_audio
            end_of_audio = start + spoken_len(unit.strip()) / SPEECH_CPS
            released.append((now, unit))

    tokens = [text[i:i + TOKEN_CHARS] for i in range(0, len(text), TOKEN_CHARS)]
    step, tick = 1.0 / tps, 0.01
    now = 0.0
    for i, token in enumerate(tokens):
        t_token = i * step
        while now + tick < t_token:
            now += tick
            if feed_ahead:
                seg.set_ahead(max(0.0, end_of_audio - now), now)  # type: ignore[attr-defined]
            take(seg.poll(now), now)  # type: ignore[attr-defined]
        now = t_token
        if feed_ahead:
            seg.set_ahead(max(0.0, end_of_audio - now), now)  # type: ignore[attr-defined]
        take(seg.push(token, now), now)  # type: ignore[attr-defined]
    take(seg.finish(), now)  # type: ignore[attr-defined]
    units = [u for _, u in released]
    assert "".join(units).strip() == text.strip()
    lengths = [spoken_len(u.strip()) for u in units]
    figures = {
        "first": released[0][0],
        "units": len(units),
        "shortest": min(lengths),
        "median": statistics.median(lengths),
        "longest": max(lengths),
        "gaps": gaps,
        "forced": sum(1 for a in units[:-1] if a.rstrip().rstrip(CLOSERS)[-1:] not in PUNCT),
        "bad": sum(1 for a, b in zip(units, units[1:]) if bad_cut(a, b)),
    }
    return figures, units


CLOSERS = "\"')]”’」』）"
PUNCT = ".!?…,;:—。！？，；：、।"
_NAMED = {"dr.", "mr.", "mrs.", "ms.", "st.", "e.g.", "i.e.", "u.s.", "vs.", "prof.", "jan."}


def bad_cut(left: str, right: str) -> bool:
    """A cut inside a number or a word, or after an abbreviation the issue names."""
    a, b = left.rstrip(), right.lstrip()
    if not a or not b:
        return False
    if a == left and a[-1].isalnum() and b[0].isalnum() and not (a[-1] > "\u2e80" or b[0] > "\u2e80"):
        return True
    if re.search(r"\d[.,:]$", a) and b[0].isdigit():
        return True
    last = a.split()[-1].lower().lstrip("(\"'")
    return last in _NAMED or bool(re.fullmatch(r"[a-z]\.", last))


RULES: List[Tuple[str, Callable[[], object], bool]] = [
    ("this: first_min 10", lambda: Segmenter(first_min_chars=10), False),
    ("this: first_min 20 (default)", lambda: Segmenter(), False),
    ("this: first_min 20, set_ahead fed", lambda: Segmenter(), True),
    ("this: first_min 30", lambda: Segmenter(first_min_chars=30), False),
    ("this: first_min 40", lambda: Segmenter(first_min_chars=40), False),
    ("this: flush 0.3", lambda: Segmenter(flush_after=0.3), False),
    ("this: flush 1.0", lambda: Segmenter(flush_after=1.0), False),
    ("this: min_chars 20", lambda: Segmenter(min_chars=20), False),
    ("this: min_chars 80", lambda: Segmenter(min_chars=80), False),
    ("RealtimeTTS-like", RealtimeTTSLike, False),
    ("LiveKit-like", LiveKitLike, False),
    ("Pipecat-like", PipecatLike, False),
]


def table(tps: float, ttfb: float, detail: bool) -> None:
    print(f"{tps:g} tokens/s of {TOKEN_CHARS} characters, time to first audio {ttfb:g} s, speech "
          f"{SPEECH_CPS:g} characters/s. Medians over {len(ANSWERS)} answers; first unit: "
          f"median (worst); forced, bad: totals\n")
    head = (f"{'rule':36} {'first unit':>14} {'units':>5} {'shortest':>8} {'median':>6} "
            f"{'longest':>7} {'gaps s':>6} {'forced':>6} {'bad':>4}")
    print(head)
    print("-" * len(head))
    details = []
    for name, make, fed in RULES:
        runs = [simulate(make, text, tps, ttfb, fed) for text in ANSWERS.values()]
        rows = [figures for figures, _ in runs]
        details.append((name, [units for _, units in runs]))

        def med(key: str) -> float:
            return statistics.median(r[key] for r in rows)  # noqa: B023 -- called within this iteration
        worst = max(r["first"] for r in rows)
        print(f"{name:36} {med('first'):5.2f} ({worst:4.2f}) s {med('units'):5.0f} "
              f"{med('shortest'):8.0f} {med('median'):6.0f} {med('longest'):7.0f} "
              f"{med('gaps'):6.2f} {sum(r['forced'] for r in rows):6.0f} {sum(r['bad'] for r in rows):4.0f}")
    if detail:
        for i, label in enumerate(ANSWERS):
            for name, all_units in details:
                print(f"\n[{label}] {name}")
                for unit in all_units[i]:
                    print(f"   {unit.strip()!r}")
    print()


def _language(set_name: str, case: Dict[str, object]) -> str:
    """The case's language code: its own, else its set's (``sentencex-hi``), else English."""
    code = case.get("lang") or set_name.rpartition("-")[2]
    return str(code) if len(str(code)) == 2 else "en"


def sets_table() -> None:
    """Per public test set: false cuts and missed boundaries of ttsstream, pySBD, blingfire."""
    import segmentation_sets as sets  # tests/segmentation_sets.py: the sets and the measure

    peers: Dict[str, Callable[[str, str], List[str]]] = {}
    try:
        import pysbd
        from pysbd.languages import LANGUAGE_CODES
        segmenters: Dict[str, object] = {}

        def pysbd_cut(text: str, lang: str) -> List[str]:
            lang = lang if lang in LANGUAGE_CODES else "en"
            seg = segmenters.setdefault(lang, pysbd.Segmenter(language=lang, clean=False))
            return list(seg.segment(text))  # type: ignore[attr-defined]
        peers["pySBD"] = pysbd_cut
    except ImportError:
        print("pySBD not installed (pip install pysbd): its columns are left out")
    try:
        import blingfire
        peers["blingfire"] = lambda text, lang: str(blingfire.text_to_sentences(text)).split("\n")
    except ImportError:
        print("blingfire not installed (pip install blingfire): its columns are left out")
    print("False cuts / missed boundaries per set (tests/segmentation_sets.py says how they are "
          "counted); ttsstream: its sentence rules, no length limit, clause cuts apart.\n")
    head = f"{'set':18} {'cases':>5} {'gold':>5} {'ttsstream':>10} {'clause':>6}" + "".join(
        f" {name:>10}" for name in peers)
    print(head)
    print("-" * len(head))
    totals = [0] * (4 + 2 * len(peers))
    for name, cases in sets.load_sets().items():
        row = [len(cases), 0, 0, 0, 0] + [0] * (2 * len(peers))
        for case in cases:
            text, gold = str(case["text"]), sets.boundaries(case["sentences"])
            row[1] += len(gold)
            _, cuts, clauses = sets.ttsstream_cuts(text)
            false, missed = sets.score(gold, cuts)
            row[2] += len(false)
            row[3] += len(missed)
            row[4] += len(clauses)
            for i, cut in enumerate(peers.values()):
                false, missed = sets.score(gold, sets.boundaries(cut(text, _language(name, case))))
                row[5 + 2 * i] += len(false)
                row[6 + 2 * i] += len(missed)
        totals = [t + r for t, r in zip(totals, row[1:])]
        print(f"{name:18} {row[0]:5} {row[1]:5} {row[2]:4} / {row[3]:3} {row[4]:6}" + "".join(
            f" {row[5 + 2 * i]:4} / {row[6 + 2 * i]:3}" for i in range(len(peers))))
    print("-" * len(head))
    print(f"{'total':18} {'':5} {totals[0]:5} {totals[1]:4} / {totals[2]:3} {totals[3]:6}" + "".join(
        f" {totals[4 + 2 * i]:4} / {totals[5 + 2 * i]:3}" for i in range(len(peers))))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens-per-second", type=float, nargs="*", default=[30.0, 5.0])
    parser.add_argument("--ttfb", type=float, default=0.25)
    parser.add_argument("--detail", action="store_true", help="print each answer's units")
    parser.add_argument("--sets", action="store_true",
                        help="instead: false cuts and missed boundaries on the public test sets, "
                             "beside pySBD and blingfire")
    args = parser.parse_args(argv)
    if args.sets:
        sets_table()
        return 0
    for tps in args.tokens_per_second:
        table(tps, args.ttfb, args.detail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
