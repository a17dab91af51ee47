"""The segmenter: where streamed text is cut into units. Pure: times are arguments, no sleeps."""

from __future__ import annotations

import re
from typing import List, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation_sets import boundaries, load_expected, load_sets, nonspace, score, ttsstream_cuts
from ttsstream.segmenter import SPEECH_CHARS_PER_SECOND, Segmenter, spoken_len, split_text


def stream(text: str, seg: Segmenter = None, step: int = 1, now: float = 0.0) -> List[str]:
    """Push ``text`` in ``step``-character fragments at time ``now``; all units, finish included."""
    seg = seg or Segmenter()
    units: List[str] = []
    for i in range(0, len(text), step):
        units += seg.push(text[i:i + step], now)
    return units + seg.finish()


def every_break(text: str) -> List[str]:
    """The units when every sentence or clause end is taken: no queued audio, no minimum;
    the text comes at once, so that each break is judged with the character after it (a
    fragment that ends in a sentence end and a space would be released at once)."""
    seg = Segmenter(first_min_chars=1, min_chars=1)
    seg.set_ahead(0.0, now=0.0)
    return [u.strip() for u in stream(text, seg, step=max(1, len(text)))]


# -- numbers, abbreviations, sentence ends ------------------------------------------------


def test_numbers_stay_whole():
    text = ("It costs $29.99 today. Pi is 3.14, and 112,000 people came. The 1.5x speedup "
            "at 10:30 was great. In 2023. Then more.")
    assert every_break(text) == [
        "It costs $29.99 today.", "Pi is 3.14,", "and 112,000 people came.",
        "The 1.5x speedup at 10:30 was great.", "In 2023.", "Then more."]


def test_a_period_waits_for_the_next_character():
    seg = Segmenter(first_min_chars=5)
    assert seg.push("It costs $29.", 0.0) == []
    assert seg.push("99", 0.0) == []                        # it was a decimal point
    assert seg.push(" today.", 0.0) == []
    assert seg.push(" ", 0.0) == ["It costs $29.99 today. "]  # a sentence end, then a space: whole
    seg = Segmenter(first_min_chars=5)
    assert seg.push("Ask Dr. ", 0.0) == []                  # but "Dr. " waits for its name
    assert seg.push("Smith", 0.0) == []
    seg = Segmenter(first_min_chars=5)
    assert seg.push("It costs $29. ", 0.0) == ["It costs $29. "]  # a price that ends a sentence


@pytest.mark.parametrize("text", [
    "Dr. Smith met Mr. Jones, Mrs. Lee and Ms. Gomez at St. Mary's.",
    "Fruits, e.g. Apples, and vegetables, i.e. Carrots, are sold in the U.S. Today.",
    "Compare A vs. B and read J. R. R. Tolkien with Prof. Patel in Jan. 2021 now.",
    "See No. 5 on p. 12 of vol. 3 here.",
    "We met at 10 a.m. Then at 2 p.m. Again.",
])
def test_no_cut_after_abbreviations(text):
    for unit in every_break(text)[:-1]:
        last = unit.split()[-1]
        assert last.endswith((",", ".")) and last.rstrip(",") not in {
            "Dr.", "Mr.", "Mrs.", "Ms.", "St.", "e.g.", "i.e.", "U.S.", "vs.", "J.", "R.",
            "Prof.", "Jan.", "No.", "p.", "vol.", "a.m.", "p.m."}, unit


def test_abbreviation_units():
    assert every_break("Dr. Smith arrived. Mr. Jones left.") == ["Dr. Smith arrived.", "Mr. Jones left."]
    assert every_break("Made in the U.S. Then shipped.") == ["Made in the U.S. Then shipped."]


def test_etc_ends_a_sentence_before_a_capital_only():
    assert every_break("Apples, pears, etc. Then we eat.") == ["Apples,", "pears,", "etc.", "Then we eat."]
    assert every_break("Pears etc. are fine. Yes.") == ["Pears etc. are fine.", "Yes."]
    assert every_break("The answer is no. Then stop.") == ["The answer is no.", "Then stop."]


def test_lowercase_after_a_period_or_ellipsis_continues():
    assert every_break("Wait... what is it? Well... Maybe.") == ["Wait... what is it?", "Well...", "Maybe."]
    assert every_break("It was 5 ft. tall. Ok.") == ["It was 5 ft. tall.", "Ok."]
    assert every_break("He said “Why?” and left.") == ["He said “Why?” and left."]


def test_list_numbers_are_not_sentence_ends():
    text = "Steps:\n1. Open it.\n2. Close it.\n10. Done."
    assert every_break(text) == ["Steps:", "1. Open it.", "2. Close it.", "10. Done."]


def test_sentence_end_combinations_and_closers():
    assert every_break('He said "Stop." Then he left?! Yes.') == ['He said "Stop."', "Then he left?!", "Yes."]
    assert every_break("(See above.) Next one… And “Hello.” Bye.") == [
        "(See above.)", "Next one…", "And “Hello.”", "Bye."]


def test_clause_ends_and_dashes():
    assert every_break("One; two: three — four – five - six—seven -- eight, nine.") == [
        "One;", "two:", "three —", "four –", "five -", "six—", "seven --", "eight,", "nine."]
    assert every_break("A well-known pre- and post-war fact.") == ["A well-known pre- and post-war fact."]


def test_urls_and_emails_stay_whole():
    text = "Visit https://example.com/a.b?c=1,2;d=3:4 or mail me@mail.example.org. Thanks, bye."
    assert every_break(text) == [
        "Visit https://example.com/a.b?c=1,2;d=3:4 or mail me@mail.example.org.", "Thanks,", "bye."]


def test_newlines_and_paragraphs():
    assert every_break("Title\nLine two\n\nNew paragraph") == ["Title", "Line two", "New paragraph"]
    assert every_break("- item one\n- item two") == ["- item one", "- item two"]
    seg = Segmenter()                                       # a paragraph break always cuts
    assert seg.push("Sure!\n\nH", 0.0) == ["Sure!\n\n"]
    assert seg.push("ere are three ways.", 0.0) == []


# -- CJK, Hindi ------------------------------------------------------------------------


def test_chinese_and_japanese_punctuation_without_spaces():
    assert every_break("今天天气很好，我们去公园散步吧。你觉得怎么样？好！") == [
        "今天天气很好，", "我们去公园散步吧。", "你觉得怎么样？", "好！"]
    assert every_break("こんにちは。元気ですか？はい、元気です。") == [
        "こんにちは。", "元気ですか？", "はい、", "元気です。"]
    assert every_break("他说：“你好。”然后走了。") == ["他说：", "“你好。”", "然后走了。"]
    assert every_break("价格是3.14元。好") == ["价格是3.14元。", "好"]


def test_cjk_counts_as_longer_speech():
    assert spoken_len("你好") == 6 and spoken_len("hi") == 2 and spoken_len("नमस्ते") == 6
    seg = Segmenter(first_min_chars=20)
    assert seg.push("北京很大，上海也很大，", 0.0) == []            # 4 characters = 12 < 20
    assert seg.push("我", 0.0) == ["北京很大，上海也很大，"]         # 9 characters = 27


def test_cjk_without_punctuation_cut_at_the_length_limit():
    text = "我们去公园散步吧然后去吃饭" * 6
    units = stream(text, Segmenter(first_min_chars=5, min_chars=5, max_chars=30))
    assert "".join(units) == text
    assert all(0 < spoken_len(u) <= 30 for u in units) and len(units) == 8


def test_hindi_danda():
    assert every_break("नमस्ते। आप कैसे हैं? मैं ठीक हूँ।") == ["नमस्ते।", "आप कैसे हैं?", "मैं ठीक हूँ।"]
    assert every_break("नमस्ते।आप कैसे हैं॥ठीक") == ["नमस्ते।", "आप कैसे हैं॥", "ठीक"]


# -- limits: length and time ------------------------------------------------------------


WORDS = "so basically what you want to do is open the settings page and then look for it " * 8


def test_no_punctuation_length_limit_cuts_at_a_space():
    units = stream(WORDS, Segmenter(max_chars=50), step=3)
    assert "".join(units) == WORDS
    for unit in units[:-1]:
        assert len(unit) <= 50 and unit.endswith(" ") and not unit[-2].isspace()
    assert all(set(u.split()) <= set(WORDS.split()) for u in units)


def test_a_run_without_any_break_is_cut_at_the_limit():
    text = "x" * 120
    units = stream(text, Segmenter(first_min_chars=5, min_chars=5, max_chars=50))
    assert units == ["x" * 50, "x" * 50, "x" * 20]


def test_time_limit_cuts_at_a_word_end_and_keeps_the_word_being_typed():
    seg = Segmenter(first_min_chars=20, flush_after=0.5)
    assert seg.push("so basically what you want to do is open the", 0.0) == []
    assert seg.poll(0.49) == []
    assert seg.push(" sett", 0.45) == []
    assert seg.deadline == 0.5
    assert seg.poll(0.5) == ["so basically what you want to do is open the "]
    assert seg.pending == "sett"
    assert seg.deadline == pytest.approx(0.5 + 44 / SPEECH_CHARS_PER_SECOND - 1.0)  # audio queued
    seg.set_ahead(0.0)                                       # say none is (not yet playing)
    assert seg.poll(0.99) == []                              # the word waits another flush_after
    assert seg.deadline == 1.0
    assert seg.poll(1.0) == ["sett"]                         # a stall: the whole pending text
    assert seg.pending == "" and seg.deadline is None


def test_time_limit_prefers_punctuation():
    seg = Segmenter(first_min_chars=20, flush_after=0.5)
    seg.push("Dr. Jane Smith, a researcher at St. Mary's Hospital", 0.0)
    seg.push(" in th", 0.3)                                  # still arriving
    assert seg.poll(0.5) == ["Dr. Jane Smith, "]


def test_a_few_words_are_not_forced_out_while_text_flows():
    seg = Segmenter(first_min_chars=20, flush_after=0.5)
    seg.push("The short", 0.0)
    seg.push(" answer", 0.4)
    assert seg.poll(0.6) == []                               # 16 characters, still arriving
    assert seg.deadline == pytest.approx(0.9)
    assert seg.poll(0.9) == ["The short "]                   # stalled: "answer" may go on
    assert seg.poll(1.4) == ["answer"]                       # the whole pending text, after a flush


def test_stall_releases_a_complete_sentence_but_not_a_number_or_title():
    seg = Segmenter(flush_after=0.5)
    seg.push("Hello there, my friend.", 0.0)
    assert seg.poll(0.5) == ["Hello there, my friend."]
    seg = Segmenter(flush_after=0.5)
    seg.push("The total comes to $29.", 0.0)
    assert seg.poll(0.5) == ["The total comes to "]
    seg.push("99 a month.", 0.6)
    assert seg.finish() == ["$29.99 a month."]
    seg = Segmenter(flush_after=0.5)
    seg.push("Please call Dr.", 0.0)
    assert seg.poll(0.5) == []


def test_time_limit_waits_while_audio_is_queued():
    seg = Segmenter(flush_after=0.5)
    assert seg.push("Here is the first part of it, and then", 0.0) == ["Here is the first part of it, "]
    seg.set_ahead(5.0, now=0.0)
    seg.push(" the rest.", 0.1)
    assert seg.poll(3.0) == []                               # 2 s still queued
    assert seg.deadline == pytest.approx(4.0)                # when less than 1 s remains
    assert seg.poll(4.0) == ["and then the rest."]


# -- first unit, later units, set_ahead ------------------------------------------------------


def test_first_unit_minimum_and_no_wait_for_the_next_sentence():
    seg = Segmenter(first_min_chars=20)
    assert seg.push("Sure! Here is how, step by step: f", 0.0) == ["Sure! Here is how, step by step: "]
    seg = Segmenter(first_min_chars=10)
    assert seg.push("Sure! Here is how, s", 0.0) == ["Sure! Here is how, "]
    seg = Segmenter()
    assert seg.push("Hello there, my friend.", 0.0) == []
    assert seg.push(" A", 0.0) == ["Hello there, my friend. "]


TEXT = ("Here is the first part of the answer, which is long enough. Short one. "
        + "This sentence, with a clause, has about fifty characters. " * 4 + "End.")


def units_with_ahead(ahead: float) -> List[str]:
    seg = Segmenter()
    units = seg.push(TEXT[:40], 0.0)
    seg.set_ahead(ahead, now=0.0)
    return units + stream(TEXT[40:], seg)


def test_set_ahead_shorter_units_when_little_is_queued_longer_when_much():
    low, normal, high = units_with_ahead(0.0), units_with_ahead(3.0), units_with_ahead(30.0)
    assert len(low) > len(normal) > len(high)
    assert "".join(low) == "".join(normal) == "".join(high) == TEXT
    s = "This sentence, with a clause, has about fifty characters. "
    assert normal[1:5] == ["which is long enough. Short one. " + s, s, s, s]  # short ones joined
    assert high[2] == s + s                                  # plenty queued: two sentences
    assert low[1:4] == ["which is long enough. ", "Short one. This sentence, ",
                        "with a clause, has about fifty characters. "]  # little: clauses


def test_ahead_runs_down_and_is_estimated_without_set_ahead():
    seg = Segmenter(first_min_chars=20)
    assert seg.ahead(0.0) == 0.0
    unit = seg.push("Twenty eight characters in!! A", 1.0)[0]
    assert seg.ahead(1.0) == pytest.approx(spoken_len(unit.strip()) / SPEECH_CHARS_PER_SECOND)
    assert seg.ahead(100.0) == 0.0
    seg.set_ahead(3.0, now=10.0)
    assert seg.ahead(11.0) == pytest.approx(2.0)
    seg.set_ahead(None)
    assert seg.ahead(1.0) == pytest.approx(2.0)


# -- finish, pending, arguments ----------------------------------------------------------------


def test_finish_flushes_and_starts_afresh():
    seg = Segmenter()
    assert seg.push("Dr. Who", 0.0) == []
    assert seg.pending == "Dr. Who"
    assert seg.finish() == ["Dr. Who"]
    assert seg.pending == "" and seg.finish() == []
    assert seg.push("  \n ", 0.0) == [] and seg.finish() == []   # never a blank unit
    assert seg.push("Hello there, my friend. A", 0.0) == ["Hello there, my friend. "]  # first rules again


def test_arguments_are_checked():
    for bad in ({"first_min_chars": 0}, {"min_chars": True}, {"max_chars": 10},
                {"flush_after": 0}, {"flush_after": float("nan")}, {"max_chars": 2.5}):
        with pytest.raises(ValueError):
            Segmenter(**bad)
    with pytest.raises(TypeError):
        Segmenter().push(b"bytes", 0.0)  # type: ignore[arg-type]


# -- properties over random text ----------------------------------------------------------------


ALPHABET = st.sampled_from(list("ab cD EFxyz 0123 .,!?;:…—-\"')(\n\n   ") +
                           ["Dr.", "e.g.", "U.S.", "3.14", "$29.99", " J. ", "。", "，", "你好", "।", "नम", "“", "”"])
TEXTS = st.lists(ALPHABET, max_size=120).map("".join)


PAUSE_RE = re.compile(r"[.!?…。！？।॥۔؟][\"')\]}”’»」』）]*\s+$")


def split_at(text: str, cuts: Sequence[int]) -> List[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:])]


@settings(max_examples=250, deadline=None)
@given(TEXTS, st.lists(st.integers(0, 10_000), max_size=30),
       st.lists(st.floats(0, 1.0), min_size=1, max_size=30), st.integers(20, 80))
def test_units_give_back_the_text_and_are_never_blank(text, cuts, gaps, max_chars):
    seg = Segmenter(first_min_chars=10, min_chars=15, max_chars=max_chars, flush_after=0.3)
    units, now = [], 0.0
    for i, fragment in enumerate(split_at(text, cuts)):
        now += gaps[i % len(gaps)]
        units += seg.push(fragment, now)
        units += seg.poll(now + gaps[-i % len(gaps)] / 2)
        assert seg.pending == text[len("".join(units)):len("".join(units)) + len(seg.pending)]
    units += seg.finish()
    joined = "".join(units)
    assert text.startswith(joined) and not text[len(joined):].strip()
    for unit in units:
        assert unit.strip() and spoken_len(unit.lstrip()) <= max_chars


@settings(max_examples=250, deadline=None)
@given(TEXTS, st.lists(st.integers(0, 10_000), max_size=30), st.lists(st.floats(0, 1.0), min_size=1, max_size=30))
def test_a_timer_at_the_deadline_always_releases(text, cuts, gaps):
    seg, now, units = Segmenter(first_min_chars=10, min_chars=15, max_chars=40, flush_after=0.3), 0.0, []
    for i, fragment in enumerate(split_at(text, cuts)):
        now += gaps[i % len(gaps)]
        units += seg.push(fragment, now)
        if seg.deadline is not None and i % 2:               # the timer fires before more text
            assert seg.deadline >= now - 1e-9
            now = seg.deadline
            released = seg.poll(now)
            assert released and all(u.strip() for u in released)
            units += released
    assert text.startswith("".join(units + seg.finish()).rstrip())


@settings(max_examples=250, deadline=None)
@given(TEXTS, st.lists(st.integers(0, 10_000), max_size=30), st.lists(st.integers(0, 10_000), max_size=30))
def test_units_do_not_depend_on_fragmentation(text, cuts_a, cuts_b):
    # Except where a fragment ends in a sentence end and a space: there the text so far is
    # a unit at once (the producer may pause), whatever comes next.
    pauses = {i for i in range(len(text) + 1) if PAUSE_RE.search(text, 0, i)}

    def run(cuts: Sequence[int]) -> List[str]:
        seg = Segmenter(first_min_chars=10, min_chars=15, max_chars=60)
        units = []
        for fragment in split_at(text, [c for c in cuts if c % (len(text) + 1) not in pauses]):
            units += seg.push(fragment, 0.0)
        return units + seg.finish()
    assert run(cuts_a) == run(cuts_b)


# -- split_text ----------------------------------------------------------------------------------


def test_split_text_prefers_sentence_ends_then_clauses_then_spaces():
    text = "First sentence here. Second one, with a clause and more words in it."
    assert split_text(text, 40) == ["First sentence here. ", "Second one, with a clause and more ",
                                    "words in it."]
    assert split_text(text, 200) == [text]
    assert split_text("  ", 10) == [] and split_text("", 10) == []


def test_split_text_long_string_at_the_request_limit():
    sentence = "The quick brown fox jumps over the lazy dog, again and again. "
    text = sentence * 700                                   # 43,400 characters
    pieces = split_text(text, 20_000)
    assert "".join(pieces) == text and len(pieces) == 3
    assert all(len(p) <= 20_000 and p.endswith(". ") for p in pieces[:-1])


def test_split_text_cjk_and_unbroken_runs():
    assert split_text("我们去公园散步吧" * 5, 16) == ["我们去公园散步吧我们去公园散步吧"] * 2 + ["我们去公园散步吧"]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    with pytest.raises(ValueError):
        split_text("text", 0)


@settings(max_examples=200, deadline=None)
@given(TEXTS, st.integers(1, 50))
def test_split_text_limits_and_content(text, max_chars):
    pieces = split_text(text, max_chars)
    assert all(0 < len(p) <= max_chars and p.strip() for p in pieces)
    joined, rest = "".join(pieces), text
    for piece in pieces:                                     # in order; only blank pieces left out
        at = rest.index(piece)
        assert not rest[:at].strip()
        rest = rest[at + len(piece):]
    assert not rest.strip() and "".join(joined.split()) == "".join(text.split())


# -- a text that pauses: a complete sentence, an abbreviation, flush (issue 17, defect 4) ----


@pytest.mark.parametrize("text", ["The first sentence arrives now. ", "Sure! ", "Really? ", "好！ ",
                                  "यह सच है। ", "کیا حال ہے؟ ", "It costs $29. ", "Here it is.\n"])
def test_a_complete_sentence_then_a_space_is_a_unit_at_once(text):
    seg = Segmenter(flush_after=60.0)
    assert seg.push(text, 0.0) == [text]
    assert seg.pending == "" and seg.deadline is None


@pytest.mark.parametrize("text", ["Please ask Dr. ", "Turn to p. ", "It was J. ", "He is 5 ft. ",
                                  "Apples, pears, etc. ", "Acme Inc. ", "You live in the U.S. ", "Steps:\n1. ",
                                  "Ask डॉ. ", "Sure!", "Wait... ", "It costs $29."])
def test_a_sentence_end_that_may_go_on_waits_for_the_next_word(text):
    seg = Segmenter(flush_after=60.0)
    assert seg.push(text, 0.0) == []
    assert seg.pending == text


def test_later_sentences_at_the_end_still_join_while_audio_is_queued():
    seg = Segmenter(flush_after=0.5)
    assert seg.push("The first sentence arrives now. ", 0.0) == ["The first sentence arrives now. "]
    seg.set_ahead(5.0, now=0.0)
    assert seg.push("Ok. ", 0.1) == []                      # 5 s of audio queued: it may join the next
    assert seg.push("Then the next one comes along right here. ", 0.2) == [
        "Ok. Then the next one comes along right here. "]


@pytest.mark.parametrize("text", ["Please ask Dr. ", "Please ask Dr.", "Read it in the U.S. ", "Ask डॉ. ",
                                  "1. "])
def test_the_timer_never_sends_a_text_that_ends_in_an_abbreviation(text):
    seg = Segmenter(flush_after=0.5)
    seg.push(text, 0.0)
    assert seg.deadline is None                              # no timer: it waits for the word after
    assert seg.poll(0.5) == [] and seg.poll(60.0) == []
    assert seg.push("Smith about it. ", 61.0) == [text + "Smith about it. "]


@pytest.mark.parametrize("text", ["Apples, pears, etc. ", "The answer is no. ", "It weighs 5 lb. "])
def test_the_timer_sends_an_abbreviation_that_may_end_a_sentence_whole(text):
    seg = Segmenter(flush_after=0.5)
    assert seg.push(text, 0.0) == []                         # "etc. Then" ends, "etc. and" goes on
    assert seg.deadline == pytest.approx(0.5)
    assert seg.poll(0.5) == [text]


def test_the_timer_sends_the_clauses_before_a_held_abbreviation():
    seg = Segmenter(flush_after=0.5)
    assert seg.push("Yes, and this question is a hard one; so please ask Dr. ", 0.0) == [
        "Yes, and this question is a hard one; "]
    seg = Segmenter(first_min_chars=40, flush_after=0.5)
    assert seg.push("Yes, and this question is a hard one; so please ask Dr. ", 0.0) == []
    assert seg.deadline == pytest.approx(0.5)
    assert seg.poll(0.5) == ["Yes, and this question is a hard one; "]
    assert seg.deadline is None and seg.pending == "so please ask Dr. "
    seg = Segmenter(flush_after=0.5)                         # long enough: the words before it go
    assert seg.push("I want you to go and ask Dr. ", 0.0) == []
    assert seg.poll(0.5) == ["I want you to go and ask "]
    assert seg.deadline is None and seg.pending == "Dr. "      # "Dr." never goes alone


def test_flush_sends_everything_pending_now():
    seg = Segmenter(flush_after=60.0)
    assert seg.push("An unpunctuated fragment", 0.0) == []
    assert seg.flush(0.1) == ["An unpunctuated fragment"]
    assert seg.pending == "" and seg.deadline is None
    assert seg.flush(0.2) == []                              # nothing pending: nothing to send
    assert seg.push(" ", 0.3) == [] and seg.flush(0.4) == []  # blank: never a unit
    assert seg.push("Ask Dr. ", 0.5) == [] and seg.flush(0.6) == [" Ask Dr. "]
    assert seg.push("Smith.", 0.7) == [] and seg.finish() == ["Smith."]


# -- public sentence-boundary test sets (tests/data/segmentation; the measure:
#    tests/segmentation_sets.py) --------------------------------------------------------


SETS = load_sets()
EXPECTED = load_expected()


def test_the_sets_are_read_and_their_gold_is_their_text():
    assert len(SETS) >= 10 and sum(len(cases) for cases in SETS.values()) >= 150
    for cases in SETS.values():
        for case in cases:
            assert nonspace("".join(case["sentences"])) == nonspace(case["text"])
    assert all(entry["reason"] and entry["set"] in SETS for entry in EXPECTED)


@pytest.mark.parametrize("name", sorted(SETS))
def test_a_set_loses_nothing_and_cuts_only_where_known(name):
    found = []
    for i, case in enumerate(SETS[name]):
        units, cuts, _ = ttsstream_cuts(case["text"])
        assert "".join(units) == case["text"] and all(unit.strip() for unit in units)
        false, missed = score(boundaries(case["sentences"]), cuts)
        found += [(i, "false_cut", k) for k in false] + [(i, "missed", k) for k in missed]
    expected = [(e["case"], e["kind"], e["at"]) for e in EXPECTED if e["set"] == name]
    assert sorted(found) == sorted(expected)  # a new error fails; so does a fixed one (update expected.json)


@pytest.mark.parametrize("name", sorted(SETS))
def test_a_set_is_cut_the_same_in_fragments(name):
    # Look-ahead rules (". . .", "compounds. . . . The") must wait for the text they need.
    for case in SETS[name]:
        text = case["text"]
        points = [i for i in range(len(text) + 1) if not PAUSE_RE.search(text, 0, i)]
        whole, _, _ = ttsstream_cuts(text)
        for step in (1, 3, 7):
            seg = Segmenter(first_min_chars=1, min_chars=1, max_chars=10 ** 6)
            seg.set_ahead(3.0, 0.0)
            units, last = [], 0
            for point in points[step::step] + [len(text)]:
                units += seg.push(text[last:point], 0.0)
                last = point
            assert units + seg.finish() == whole, (text, step)
