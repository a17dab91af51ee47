"""The package's layout: imports point one way, and every module says what it owns.

Reads the source with ``ast`` (nothing is imported), so it checks lazy imports inside
functions too. Imports under ``if TYPE_CHECKING:`` are annotations only and are left
out of the graph.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ttsstream"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, name: str) -> Set[str]:
    """Every ttsstream module ``name`` imports at run time (top level or in a function)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: Set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names if alias.name.startswith("ttsstream"))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.startswith("ttsstream"):
                    found.add(target)
                    # "from . import x" and "from .pkg import module" name modules too
                    for alias in child.names:
                        candidate = f"{target}.{alias.name}"
                        if candidate in MODULES:
                            found.add(candidate)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return found


PATHS: Dict[str, Path] = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
MODULES = set(PATHS)
GRAPH: Dict[str, Set[str]] = {name: _imports(path, name) for name, path in PATHS.items()}


def _reaches(start: str) -> Set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: Set[str] = set()
    todo = [start]
    while todo:
        for target in GRAPH.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _imports_of(prefixes: List[str]) -> Dict[str, Set[str]]:
    return {name: GRAPH[name] for name in GRAPH if any(name == p or name.startswith(p + ".") for p in prefixes)}


def test_the_graph_was_read() -> None:
    # A broken reader would find nothing and pass every rule below.
    assert "ttsstream.connection" in GRAPH["ttsstream.pool"]
    assert "ttsstream.protocols.base" in GRAPH["ttsstream.protocols.eigenai"]
    assert "ttsstream.server" in GRAPH["ttsstream.local"]  # a lazy import, inside a function
    assert "ttsstream.playline" not in GRAPH["ttsstream.speech"]  # under TYPE_CHECKING only


def test_no_import_cycle() -> None:
    cycles = sorted(name for name in GRAPH if name in _reaches(name))
    assert cycles == [], f"modules that import themselves through others: {cycles}"


@pytest.mark.parametrize("leaf", ["ttsstream.errors", "ttsstream.checks", "ttsstream.redaction",
                                  "ttsstream.sentence_rules", "ttsstream.words.tokens"])
def test_leaves_import_nothing_of_the_package(leaf: str) -> None:
    assert GRAPH[leaf] == set()


@pytest.mark.parametrize("layer, forbidden", [
    # Protocols are pure: errors and checks, nothing with I/O or threads.
    ("ttsstream.protocols", ["ttsstream.connection", "ttsstream.client", "ttsstream.speech", "ttsstream.pool",
                             "ttsstream.playback", "ttsstream.server", "ttsstream.audio", "ttsstream.redaction"]),
    # Playback knows nothing of networks.
    ("ttsstream.playback", ["ttsstream.connection", "ttsstream.client", "ttsstream.speech", "ttsstream.pool",
                            "ttsstream.protocols", "ttsstream.server", "ttsstream.playline"]),
    # The connection never plays and never reaches up to the client.
    ("ttsstream.connection", ["ttsstream.playback", "ttsstream.client", "ttsstream.speech", "ttsstream.pool"]),
    # The wire knows sockets, not speeches or dialects.
    ("ttsstream.wire", ["ttsstream.connection", "ttsstream.protocols", "ttsstream.speech", "ttsstream.playback"]),
    # The speech never reaches up to the client, and plays only through its turn.
    ("ttsstream.speech", ["ttsstream.client", "ttsstream.playback", "ttsstream.pool", "ttsstream.playline"]),
    ("ttsstream.pool", ["ttsstream.client", "ttsstream.speech", "ttsstream.playback"]),
    # The bundled server speaks the dialects from the other side: never the client's parts.
    # Word timing is pure: the text and the audio in, times out; the speech uses it, never the reverse.
    ("ttsstream.words", ["ttsstream.client", "ttsstream.connection", "ttsstream.speech", "ttsstream.pool",
                         "ttsstream.playback", "ttsstream.playline", "ttsstream.wire", "ttsstream.protocols",
                         "ttsstream.server", "ttsstream.api", "ttsstream.cli", "ttsstream.local"]),
    ("ttsstream.server", ["ttsstream.client", "ttsstream.connection", "ttsstream.speech", "ttsstream.pool",
                          "ttsstream.playback", "ttsstream.playline", "ttsstream.api", "ttsstream.cli"]),
    # Word timing sits below the speech and knows nothing of sockets, dialects or servers.
    ("ttsstream.words", ["ttsstream.client", "ttsstream.connection", "ttsstream.wire", "ttsstream.speech",
                         "ttsstream.pool", "ttsstream.playback", "ttsstream.playline", "ttsstream.server",
                         "ttsstream.protocols", "ttsstream.api", "ttsstream.cli"]),
    # Output formats are a leaf over numpy, soxr and soundfile: the speech and playback use
    # them, never the reverse.
    ("ttsstream.formats", ["ttsstream.client", "ttsstream.speech", "ttsstream.connection", "ttsstream.pool",
                           "ttsstream.wire", "ttsstream.playback", "ttsstream.playline", "ttsstream.protocols",
                           "ttsstream.server", "ttsstream.api", "ttsstream.cli", "ttsstream.notebook",
                           "ttsstream.streaming", "ttsstream.routing"]),
    # Telemetry is told what happened; it reaches for nothing that makes it happen.
    ("ttsstream.telemetry", ["ttsstream.client", "ttsstream.speech", "ttsstream.connection", "ttsstream.pool",
                             "ttsstream.wire", "ttsstream.playback", "ttsstream.protocols", "ttsstream.server"]),
])
def test_arrows_point_one_way(layer: str, forbidden: List[str]) -> None:
    for name, targets in _imports_of([layer]).items():
        reached = targets | _reaches(name)
        bad = sorted(t for t in reached if any(t == f or t.startswith(f + ".") for f in forbidden))
        assert not bad, f"{name} imports {bad}"


def test_the_dialect_base_imports_no_dialect() -> None:
    assert not {"ttsstream.protocols.eigenai", "ttsstream.protocols.shunyalabs"} & _reaches("ttsstream.protocols.base")


def _third_party(path: Path) -> Set[str]:
    """The top-level names of the absolute imports in ``path``."""
    names: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_wire_touches_websocket_client() -> None:
    assert sorted(name for name, path in PATHS.items() if "websocket" in _third_party(path)) == ["ttsstream.wire"]


def test_word_timing_opens_no_socket() -> None:
    words = [path for name, path in PATHS.items() if name.startswith("ttsstream.words")]
    assert words, "no ttsstream.words modules were found"
    for path in words:
        assert not {"socket", "ssl", "websocket", "websockets", "asyncio"} & _third_party(path), path


def test_opentelemetry_is_imported_only_by_telemetry() -> None:
    assert sorted(name for name, path in PATHS.items() if "opentelemetry" in _third_party(path)) == [
        "ttsstream.telemetry"]


def test_pyaudio_is_imported_only_by_playback_devices() -> None:
    users = sorted(name for name, path in PATHS.items() if "pyaudio" in _third_party(path))
    assert users and all(name.startswith("ttsstream.playback") for name in users), users


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_says_what_it_owns_and_may_import(name: str) -> None:
    source = PATHS[name].read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source))
    assert doc, f"{name} has no module docstring"
    if name not in ("ttsstream", "ttsstream.__main__"):
        assert "import" in doc.lower(), f"{name}'s docstring does not say what it may import"
    assert "noqa: E402" not in source


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_or_class_is_too_big(name: str) -> None:
    source = PATHS[name].read_text(encoding="utf-8")
    # A module past ~450 lines or a class past ~350 has usually grown a second concern.
    assert source.count("\n") <= 450, f"{name} has {source.count(chr(10))} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            size = node.end_lineno - node.lineno + 1
            assert size <= 360, f"{name}.{node.name} is {size} lines"


def test_batches_use_the_client_only_through_its_public_api() -> None:
    """STYLE.md: batches sit above the client, as a user of its public API."""
    batch = _imports_of(["ttsstream.batch"])
    assert batch, "no ttsstream.batch modules were found"
    inner = ["ttsstream.connection", "ttsstream.pool", "ttsstream.wire", "ttsstream.protocols", "ttsstream.routing",
             "ttsstream.speech", "ttsstream.playback", "ttsstream.server", "ttsstream.cli"]
    for name, targets in batch.items():
        bad = sorted(t for t in targets if any(t == f or t.startswith(f + ".") for f in inner))
        assert not bad, f"{name} imports {bad}"
