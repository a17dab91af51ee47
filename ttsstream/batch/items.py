"""A batch's items: what to say, under which name, and reading them from files.

This module owns ``Item`` and the readers: ``read_items`` (a ``.txt``, ``.jsonl`` or
``.csv`` file), ``as_items`` (strings or dicts from Python) and ``check_id`` (an id is a
file's name, so it must be safe as one). Every mistake is an ``InvalidParameterError``
that names the line and says what to change. Imports only ``ttsstream.errors`` and the
standard library.
"""

from __future__ import annotations

import csv
import json
import os
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from ..errors import InvalidParameterError

__all__ = ["Item", "read_items", "as_items", "check_id", "MAX_ID_CHARS", "INPUT_SUFFIXES"]

# Room for the extension and the temporary name's decoration under the 255 bytes most
# file systems allow a name (ext4, APFS, NTFS), even when every character takes 4 bytes.
MAX_ID_CHARS = 50 if os.name == "nt" else 200
INPUT_SUFFIXES = (".txt", ".jsonl", ".csv")
# Line numbers as ids get at least this many digits, so that a file growing past 999
# lines keeps its old names (and its finished items) and the names still sort.
_MIN_DIGITS = 4
# The keys of an item that are not model parameters.
_OWN_KEYS = ("id", "text", "voice")

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Item:
    """One text to speak into one file.

    Attributes:
        id: the file's name without its extension (unique in the batch; see ``check_id``).
        text: what to say; a long text (a chapter) is one speech into one file.
        voice: the voice, or None for the client's.
        params: model parameters for this item (``speed``, ``language``, ...), checked by
            the client before anything is sent.
    """

    id: str
    text: str
    voice: Optional[str] = None
    params: Mapping[str, Any] = field(default_factory=dict)


def check_id(value: object, where: str) -> str:
    """``value`` as an id that is safe as a file name, or an error saying why not.

    Refused rather than changed, so that a name is what the user wrote: a separator
    (``/``, ``\\``), a name starting with ``.`` (``..``, and the hidden names the batch's
    own files use), NUL or any control character, an empty or over-long id.

    Args:
        value: the id (a str, or an int, which becomes its digits).
        where: the place to name in the error, e.g. ``"items.jsonl line 3"``.

    Raises:
        InvalidParameterError: the id is unsafe; the message names ``where`` and the reason.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _bad(where, f"the id must be a string or a whole number, got {type(value).__name__}")
    text = str(value)
    problem = None
    if not text.strip():
        problem = "the id is empty"
    elif "/" in text or "\\" in text:
        problem = f"the id {text!r} holds a path separator (/ or \\)"
    elif text.startswith("."):
        problem = f"the id {text!r} starts with '.' (names like '..' and hidden files are not allowed)"
    elif any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in text):
        problem = f"the id {text!r} holds a control character"
    elif len(text) > MAX_ID_CHARS:
        problem = f"the id is {len(text)} characters long; at most {MAX_ID_CHARS}"
    elif text != text.strip():
        problem = f"the id {text!r} starts or ends with a space"
    if problem is not None:
        raise _bad(where, f"{problem}: use letters, digits, '-', '_' (it names the file)")
    return text


def as_items(source: Iterable[Union[str, Item, Mapping[str, Any]]], where: str = "item") -> List[Item]:
    """Items from Python values: strings, dicts (``text``, optional ``id``, ``voice`` and
    model parameters) or ``Item``s.

    An item without an id is named by its position from 1, zero-padded (``0001``).

    Args:
        source: the items, in order.
        where: how errors name an item (``"item 3"``).

    Raises:
        InvalidParameterError: an item without text, a bad or repeated id.
    """
    items: List[Item] = []
    for number, value in enumerate(source, start=1):
        place = f"{where} {number}"
        if isinstance(value, Item):
            items.append(Item(check_id(value.id, place), _text(value.text, place), value.voice, dict(value.params)))
        elif isinstance(value, str):
            items.append(Item(_number_id(number), _text(value, place)))
        elif isinstance(value, Mapping):
            items.append(_from_mapping(value, number, place))
        else:
            raise _bad(place, f"an item is a str or a dict with 'text', got {type(value).__name__}")
    _check_unique(items, where)
    return items


def read_items(path: PathLike) -> List[Item]:
    """Read a batch's items from a ``.txt``, ``.jsonl`` or ``.csv`` file (UTF-8).

    - ``.txt``: one text per line; blank lines are skipped; the id is the line number,
      zero-padded (``0007``), so the files sort in the text's order.
    - ``.jsonl``: one object per line, ``{"id", "text", "voice", ...model parameters}``;
      ``id`` and ``voice`` are optional (the id defaults to the line number).
    - ``.csv``: a header row with a ``text`` column and optional ``id``, ``voice`` and
      parameter columns; an empty cell is left out; a parameter's cell is JSON where it
      parses (``1.2``, ``true``), else text.

    Raises:
        InvalidParameterError: another extension, or a line that is not an item (the
            message names the file and the line).
        OSError: the file cannot be read.
    """
    name = os.fspath(path)
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in INPUT_SUFFIXES:
        kind = suffix or "a name without an extension"
        raise InvalidParameterError(f"{name}: a batch reads {', '.join(INPUT_SUFFIXES)} files, not {kind}: rename "
                                    "it or convert it", parameter="items")
    label = os.path.basename(name)
    with open(name, encoding="utf-8-sig", newline="" if suffix == ".csv" else None) as file:
        if suffix == ".csv":
            items = _read_csv(file, label)
        else:
            lines = file.read().splitlines()
            items = _read_jsonl(lines, label) if suffix == ".jsonl" else _read_txt(lines, label)
    _check_unique(items, label)
    return items


def _read_txt(lines: List[str], label: str) -> List[Item]:
    return [Item(_number_id(number), line.strip())
            for number, line in enumerate(lines, start=1) if line.strip()]


def _read_jsonl(lines: List[str], label: str) -> List[Item]:
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        place = f"{label} line {number}"
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise _bad(place, f"not JSON ({exc.args[0] if exc.args else exc}): one object per line") from None
        if not isinstance(value, dict):
            raise _bad(place, f"each line is an object with \"text\", got {type(value).__name__}")
        items.append(_from_mapping(value, number, place))
    return items


def _read_csv(file: Iterable[str], label: str) -> List[Item]:
    reader = csv.DictReader(file)
    if reader.fieldnames is None or "text" not in reader.fieldnames:
        raise _bad(f"{label} line 1", "the header row must name a 'text' column (and optionally id, voice and "
                                      "parameters)")
    items = []
    for row in reader:
        place = f"{label} line {reader.line_num}"
        if None in row:
            raise _bad(place, "more cells than the header has columns")
        values: Dict[str, Any] = {}
        for key, cell in row.items():
            if cell is None or cell == "":
                continue
            values[key] = cell if key in _OWN_KEYS else _cell(cell)
        if not values:
            continue  # a blank row
        items.append(_from_mapping(values, reader.line_num, place))
    return items


def _cell(cell: str) -> Any:
    try:
        return json.loads(cell)
    except ValueError:
        return cell


def _from_mapping(value: Mapping[str, Any], number: int, place: str) -> Item:
    if "text" not in value:
        raise _bad(place, "no \"text\": each item needs the text to say")
    item_id = check_id(value["id"], place) if value.get("id") is not None else _number_id(number)
    voice = value.get("voice")
    if voice is not None and not isinstance(voice, str):
        raise _bad(place, f"\"voice\" must be a name (a string), got {type(voice).__name__}")
    params = {key: param for key, param in value.items() if key not in _OWN_KEYS}
    return Item(item_id, _text(value["text"], place), voice, params)


def _text(value: object, place: str) -> str:
    if not isinstance(value, str):
        raise _bad(place, f"the text must be a string, got {type(value).__name__}")
    if not value.strip():
        raise _bad(place, "the text is empty")
    return value


def _number_id(number: int) -> str:
    return f"{number:0{_MIN_DIGITS}d}"


def _check_unique(items: List[Item], where: str) -> None:
    seen: Dict[str, int] = {}
    for number, item in enumerate(items, start=1):
        if item.id in seen:
            raise InvalidParameterError(
                f"{where}: the id {item.id!r} is used twice (items {seen[item.id]} and {number}): each id names "
                "one file, so ids must be unique", parameter="items")
        seen[item.id] = number


def _bad(place: str, problem: str) -> InvalidParameterError:
    return InvalidParameterError(f"{place}: {problem}", parameter="items")
