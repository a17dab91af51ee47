"""Public sentence-boundary test sets (tests/data/segmentation/) and how a cutter is scored
on them; used by tests/test_segmenter.py and benchmarks/bench_segmenter.py ``--sets``.

A case is a text and its gold sentences. Boundaries are compared as *non-space offsets* (the
number of non-whitespace characters before the boundary), so where whitespace goes (before
or after a cut) does not matter, and neither does a cutter that normalizes whitespace.

- gold boundaries: between consecutive gold sentences (whitespace-only gold pieces dropped);
- a *false cut*: a sentence cut at an offset that is no gold boundary;
- a *missed boundary*: a gold boundary at which no sentence cut was made.

The streaming segmenter is scored on its sentence rules alone: ``Segmenter(first_min_chars=1,
min_chars=1, max_chars=10**6)`` told that 3 s of audio are queued (neither hurried nor
relaxed), the whole text pushed at once, then ``finish()``. So no length limit, minimum or
timer cuts; a sentence end is a cut wherever the rules see one. The first unit may also end
at a clause end (its rule for a quick first unit): such a cut (after ``, ; :``, a dash) is a
*clause cut*, counted apart and not as a false cut. A line break is a unit boundary by design
(an LLM's lists and headings): sets whose gold joins lines list those cuts as expected.

Imports: the standard library and ttsstream.segmenter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from ttsstream.segmenter import Segmenter

DATA = Path(__file__).resolve().parent / "data" / "segmentation"
_CLAUSE_MARKS = ",;:，；：、—–-،؛"
_CLOSERS = "\"')]}”’»」』）】〕〉》〗］｝"


def load_sets() -> Dict[str, List[Dict[str, Any]]]:
    """Every set's cases by set name (files other than expected.json), in name order."""
    sets = {}
    for path in sorted(DATA.glob("*.json")):
        if path.name != "expected.json":
            data = json.loads(path.read_text(encoding="utf-8"))
            sets[data["set"]] = data["cases"]
    return sets


def load_expected() -> List[Dict[str, Any]]:
    """The known false cuts and misses, each with its set, case, kind, offset and reason."""
    return list(json.loads((DATA / "expected.json").read_text(encoding="utf-8"))["expected"])


def nonspace(text: str) -> int:
    return sum(1 for char in text if not char.isspace())


def boundaries(pieces: Sequence[str]) -> List[int]:
    """The non-space offsets between consecutive non-blank ``pieces``."""
    found, total = [], 0
    for piece in pieces:
        if piece.strip():
            total += nonspace(piece)
            found.append(total)
    return found[:-1]


def ttsstream_cuts(text: str) -> Tuple[List[str], List[int], List[int]]:
    """The units, sentence cuts and clause cuts of the segmenter's rules on ``text``."""
    segmenter = Segmenter(first_min_chars=1, min_chars=1, max_chars=10 ** 6)
    segmenter.set_ahead(3.0, 0.0)
    units = segmenter.push(text, 0.0) + segmenter.finish()
    cuts, clauses, done = [], [], ""
    for unit in units[:-1]:
        done += unit
        end = unit.rstrip().rstrip(_CLOSERS)[-1:]
        (clauses if end and end in _CLAUSE_MARKS else cuts).append(nonspace(done))
    return units, cuts, clauses


def score(gold: Sequence[int], cuts: Sequence[int]) -> Tuple[List[int], List[int]]:
    """(false cuts, missed boundaries) of ``cuts`` against ``gold``, as offsets."""
    return sorted(set(cuts) - set(gold)), sorted(set(gold) - set(cuts))


def context(text: str, offset: int, width: int = 18) -> str:
    """``text`` around non-space ``offset``, the boundary shown as ``|``."""
    seen = 0
    for pos, char in enumerate(text):
        if seen == offset:
            return text[max(0, pos - width):pos].lstrip() + "|" + text[pos:pos + width].rstrip()
        if not char.isspace():
            seen += 1
    return text[-width:] + "|"
