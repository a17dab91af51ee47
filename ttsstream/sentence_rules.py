"""Where sentences and clauses end in text: ``breaks`` finds every break a unit may end at
and its kind; the tables behind it (punctuation, abbreviations per script, initials, list
markers, units, abbreviations that a number follows).

Owns the judgment of one break at a time, from the text up to the first character after
it (more only for a spaced ellipsis, whose end it waits for); when a unit goes is the
segmenter's. The rules themselves are listed in the segmenter's module docstring. Imports:
the standard library only (re, unicodedata).

Where a case is a genuine ambiguity the rules take the side that never cuts a name or a
number: ``I.`` and ``U.S.`` before a capital stay initials, not a sentence end. Measured on
public test sets: benchmarks/bench_segmenter.py ``--sets``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import List, Optional, Tuple

__all__ = ["breaks", "NONE", "WORD", "CLAUSE", "SENTENCE", "PARAGRAPH", "CLOSERS", "OPENERS", "SPACED_ENDS",
           "NOSPACE_ENDS", "CLAUSE_ENDS", "ALL_PUNCT"]

# The kinds of break, weakest first (NONE: not even a word end, "Dr. | Smith").
NONE, WORD, CLAUSE, SENTENCE, PARAGRAPH = 0, 1, 2, 3, 4

CLOSERS = "\"')]}”’»」』）】〕〉》〗］｝"
OPENERS = "\"'([{“‘«「『（【〔〈《〖［｛"
BULLETS = "•⁃‣◦▪*"
# Sentence ends that whitespace follows: Latin, and Urdu's full stop and question mark.
SPACED_ENDS = ".!?…۔؟"
NOSPACE_ENDS = "。！？｡।॥"
CLAUSE_ENDS = ",;:，；：、،؛"
ALL_PUNCT = SPACED_ENDS + NOSPACE_ENDS + CLAUSE_ENDS + "—"
# A CJK end mark inside a title (《摔跤吧！爸爸》) ends no sentence.
TITLE_OPEN, TITLE_CLOSE = "《〈", "》〉"

# Titles and abbreviations that a name or more of the sentence always follows (lowercase,
# without the final dot). Indian scripts: Dr, Mr, Mrs, Prof, Shri, Kumari, late, Pandit...
ABBREVIATIONS = frozenset("""
    mr mrs ms mx dr prof st mt rev fr sr gen col capt cpt lt sgt cmdr adm gov sen rep hon
    pres messrs mme mlle vs v cf viz approx ca al e.g i.e jan feb mar apr jun jul aug sep
    sept oct nov dec dept univ assn bros est
    डॉ डा प्रो प्रा श्री श्रीमती सुश्री सौ कु मि स्व पं सं क्र
    ডা ডাঃ শ্রী শ্রীমতী প্রফ
    ડૉ ડો શ્રી પ્રો ਡਾ ਸ੍ਰੀ ਪ੍ਰੋ
    ഡോ മി പ്രൊ ശ്രീ ശ്രീമതി திரு திருமதி டாக் డా శ్రీ ప్రొ ಡಾ ಶ್ರೀ ಪ್ರೊ
""".split())
# Abbreviations that end sentences too, but not before a number: "No. 5", "Rs. 500".
BEFORE_NUMBERS = frozenset("""
    no nos nr n° nº vol vols p pp pg page fig figs eq eqs sec ch art op ed rs
    नं पृ रु क्रमांक
""".split())
# Units, not a sentence end between two numbers: "5 ft. 3 in. tall".
UNITS = frozenset("ft in lb lbs oz yd yds mi pt qt gal sq hr hrs min mins sec secs".split())
# They end a sentence before a capital ("pears, etc. Then"), not before "(" or a lowercase word.
JUDGMENT = frozenset("etc inc jr co ltd corp llc plc".split())
# "[...]" marks words left out of a quotation: never a sentence end.
OMISSION_RE = re.compile(r"\[(?:\.\.\.|…)\][%s]*$" % re.escape(CLOSERS))

_LATIN_INITIALS_RE = re.compile(r"[A-Z]|(?:[A-Za-z]{1,2}\.)+[A-Za-z]{1,2}")  # J, U.S, e.g, Ph.D
# The English letters' names, as Hindi, Marathi and Bengali write initials (ए. पी. जे.).
_LETTER_NAMES = frozenset("""
    ए बी सी डी ई एफ जी एच आई जे के एल एम एन ओ पी क्यू आर एस टी यू वी डब्ल्यू एक्स वाई ज़ेड जेड
    এ বি সি ডি ই এফ জি এইচ আই জে কে এল এম এন ও পি কিউ আর এস টি ইউ ভি ডব্লিউ এক্স ওয়াই জেড
""".split())
# Scripts whose one-syllable word before a dot is an initial (കെ. പി.): there, unlike in
# Hindi (है.) or Gujarati (છે.), a sentence rarely ends in a word of one syllable.
_SYLLABLE_INITIAL_SCRIPTS = ((0x0B80, 0x0BFF), (0x0C00, 0x0C7F), (0x0C80, 0x0CFF), (0x0D00, 0x0D7F))
_LIST_MARKER_RE = re.compile(r"\d{1,3}|[A-Za-z]|[ivxIVX]{1,4}")
_NUMBER_RE = re.compile(r"[$€£₹]?\d[\d.,]*%?")


def _syllable(part: str) -> bool:
    """One letter and its vowel signs, in a script where that makes an initial."""
    if not part or not any(lo <= ord(part[0]) <= hi for lo, hi in _SYLLABLE_INITIAL_SCRIPTS):
        return False
    return unicodedata.category(part[0]).startswith("L") and all(
        unicodedata.category(c).startswith("M") for c in part[1:])


def is_initials(stem: str) -> bool:
    """Whether ``stem`` (a token without its final dot) is an initial or dotted initials:
    ``J``, ``U.S``, ``e.g``, an English letter's Hindi or Bengali name (``ए``, ``पी``), a
    syllable in a Dravidian script (``കെ.പി``)."""
    if _LATIN_INITIALS_RE.fullmatch(stem):
        return True
    parts = stem.split(".")
    return all(part in _LETTER_NAMES or _syllable(part) for part in parts)


def is_list_marker(stem: str) -> bool:
    """``1`` ``12`` ``b`` ``iv``: a list item's number, without its dot."""
    return _LIST_MARKER_RE.fullmatch(stem) is not None


def is_number(token: str) -> bool:
    """``5`` ``1,000`` ``$3.50`` ``12%``."""
    return _NUMBER_RE.fullmatch(token) is not None


_SPACE_RE = re.compile(r"\s+")
_NOSPACE_RE = re.compile(
    "([。！？｡।॥]+|[，；：、]+|—+)[%s]*(?=[^\\s%s%s])"
    % (re.escape(CLOSERS), re.escape(ALL_PUNCT), re.escape(CLOSERS)))
# A run of spaced dots (". . ."), then what follows it: a closer, space, the next character.
_DOT_RUN_RE = re.compile(r"\.(?:[ \t]+\.)*(?![ \t]+\.)[%s]*\s+(\S)" % re.escape(CLOSERS))
_DOT_TOKEN_RE = re.compile(r"\.[%s]*(?:\s|$)" % re.escape(CLOSERS))
_CITATIONS_RE = re.compile(r"(?<=[.!?])(?:\[\d{1,3}\])+$")  # "martyr.[1]", "large.[7][8]"


def _classify(token: str, nxt: str, line_start: bool, prev: str, after_end: bool) -> int:
    """The kind of break after ``token`` (whitespace follows it, then ``nxt``; "": not yet
    known), which follows ``prev`` (after a break that ended a sentence if ``after_end``)."""
    core = _CITATIONS_RE.sub("", token).rstrip(CLOSERS)
    if not core:
        return WORD
    last = core[-1]
    if last in NOSPACE_ENDS:
        return SENTENCE
    if last in CLAUSE_ENDS:
        return CLAUSE
    if last in "—–-":  # "well— so", " - ", " -- "; not "pre- and" nor a "- " bullet
        return CLAUSE if (last == "—" or not core.strip("-–")) and not line_start else WORD
    if last not in SPACED_ENDS or OMISSION_RE.search(token):
        return WORD
    stem = core.rstrip(SPACED_ENDS)
    if core[len(stem):] == ".":
        kind = _after_dot(stem.lstrip(OPENERS + BULLETS), nxt, prev, token[len(core):],
                          line_start or after_end or (prev != "" and prev in BULLETS) or stem[:1] in BULLETS)
        if kind is not None:
            return kind
    if not nxt:  # the next word has not come: an ellipsis may go on ("Wait... what")
        return WORD if core.endswith(("..", "…")) else SENTENCE
    return WORD if nxt.islower() else SENTENCE  # "... and" / "etc. and" go on


def _after_dot(stem: str, nxt: str, prev: str, closers: str, item_start: bool) -> Optional[int]:
    """The break after ``stem.`` if a table decides it (None: the general rule does)."""
    low = stem.lower()
    if (low in ABBREVIATIONS or ("." in low and low.rsplit(".", 1)[1] in ABBREVIATIONS)
            or is_initials(stem) or (is_list_marker(stem) and (item_start or closers.startswith(")")))
            or (len(stem) == 1 and stem.islower())):
        return NONE  # not even a word end: "Dr. | Smith" stays together; "2.) The", "b. The"
    if not nxt:  # the next word has not come: these wait for it (then a stall sends them)
        return WORD if low in BEFORE_NUMBERS or low in UNITS or low in JUDGMENT else None
    if nxt.isdigit() and (low in BEFORE_NUMBERS or (low in UNITS and is_number(prev))):
        return NONE
    return WORD if low in JUDGMENT and nxt in OPENERS else None  # "Inc. (the maker)"


def breaks(text: str, line_start: bool, after_end: bool = False, ended: bool = False) -> List[Tuple[int, int]]:
    """Every confirmed break in ``text`` (which begins a line if ``line_start``, follows a
    sentence end if ``after_end``) as (position, kind), in order: a unit may end before
    ``text[position]``, a non-space. ``ended``: judge trailing whitespace too, as if the
    next word were unknown."""
    found = []
    token_start, at_line_start, prev, prev_end = 0, line_start, "", line_start or after_end
    dots = 0  # spaced dots so far in a run
    horizon = len(text)
    for match in _SPACE_RE.finditer(text):
        start, end = match.span()
        if end >= len(text) and not ended:
            break  # the next character has not arrived yet
        nxt = text[end] if end < len(text) else ""
        newlines = match.group().count("\n")
        token = text[token_start:start]
        is_dot = start > 0 and token.rstrip(CLOSERS) == "."
        kind = NONE
        if start > 0:
            if newlines:
                kind = PARAGRAPH if newlines >= 2 else SENTENCE
            elif nxt == "." and _DOT_TOKEN_RE.match(text, end) and not is_dot:  # a word, then ". . ."
                run = _DOT_RUN_RE.match(text, end)
                if run is None:
                    horizon = start  # to judge "compounds. . . ." the run's end must have come
                    break
                dotted = token.endswith(".")
                kind = _classify(token, run.group(1), at_line_start, prev, prev_end) if dotted else WORD
            elif is_dot:
                dots += 1
                if nxt == "." and _DOT_TOKEN_RE.match(text, end):
                    kind = NONE  # inside ". . ."
                elif dots <= 3:
                    kind = WORD  # an ellipsis: "is . . . I didn't", "compounds. . . . The"
                else:
                    kind = _classify(token, nxt, at_line_start, prev, prev_end)  # its last dot ends it
            else:
                kind = _classify(token, nxt, at_line_start, prev, prev_end)
            if kind:
                found.append((end, kind))
            dots = dots if is_dot else 0
            prev, prev_end = token, kind >= SENTENCE
        token_start, at_line_start = end, newlines > 0 or (start == 0 and at_line_start)
    for match in _NOSPACE_RE.finditer(text, 0, horizon):
        mark = match.group(1)[0]
        before = text[:match.start()]
        if mark in "！？!?" and sum(map(before.count, TITLE_OPEN)) > sum(map(before.count, TITLE_CLOSE)):
            continue  # inside a title: 《摔跤吧！爸爸》
        found.append((match.end(), SENTENCE if mark in NOSPACE_ENDS else CLAUSE))
    found.sort()
    return found
