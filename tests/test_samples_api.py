"""The samples use only the public API: what they show is what a user may write.

Reads each sample (the scripts and the notebook's code cells) with ``ast``, nothing is
imported or run. A sample may import ``ttsstream`` and the names in its ``__all__``,
and the bundled server's public package ``ttsstream.server`` (the README's way to a
``LocalServer``) and the names in its ``__all__``; any other module of the package
(``ttsstream.api``, ``ttsstream.client``, ...) is an implementation detail.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def _all_of(init: Path) -> Set[str]:
    """The names in a module's ``__all__`` list, read from its source."""
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple))
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)):
            return {ast.literal_eval(element) for element in node.value.elts}
    raise AssertionError(f"{init} has no __all__")


PUBLIC: Dict[str, Set[str]] = {
    "ttsstream": _all_of(ROOT / "ttsstream" / "__init__.py"),
    "ttsstream.server": _all_of(ROOT / "ttsstream" / "server" / "__init__.py"),
}


def _sources() -> List[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.suffix in (".py", ".ipynb"))


def _code(path: Path) -> str:
    if path.suffix == ".py":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines: List[str] = []
    for cell in cells:
        if cell["cell_type"] == "code":
            source = cell["source"]
            text = "".join(source) if isinstance(source, list) else source
            # IPython's magics and shell escapes are not Python.
            lines.extend(line for line in text.splitlines() if not line.lstrip().startswith(("%", "!")))
    return "\n".join(lines)


def private_uses(code: str) -> List[str]:
    """What ``code`` takes from ttsstream beyond the public API, as readable lines."""
    found: List[str] = []
    aliases: Dict[str, str] = {}  # local name -> public module it is bound to
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "ttsstream":
                    continue
                if alias.name not in PUBLIC:
                    found.append(f"line {node.lineno}: import {alias.name}")
                else:  # "import ttsstream.server" binds the name ttsstream
                    aliases[alias.asname or "ttsstream"] = alias.name if alias.asname else "ttsstream"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ttsstream":
            module = node.module or ""
            if module not in PUBLIC:
                found.append(f"line {node.lineno}: from {module} import ...")
                continue
            for alias in node.names:
                if alias.name not in PUBLIC[module]:
                    found.append(f"line {node.lineno}: from {module} import {alias.name}")
    # ``import ttsstream`` and then ``ttsstream.api.choose_provider``: the same thing.
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            module = aliases[node.value.id]
            if node.attr not in PUBLIC[module] and f"{module}.{node.attr}" not in PUBLIC \
                    and not node.attr.startswith("__"):
                found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_every_sample_is_read() -> None:
    names = {p.name for p in _sources()}
    assert {"quickstart.py", "jupyter_demo.ipynb"} <= names, names


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_sample_uses_only_the_public_api(path: Path) -> None:
    assert private_uses(_code(path)) == [], f"{path.name} reaches past ttsstream's __all__"


@pytest.mark.parametrize("code, expected", [
    ("import ttsstream\nttsstream.TTSClient()", []),
    ("from ttsstream import TTSClient, speak", []),
    ("from ttsstream.server import LocalServer", []),
    ("import ttsstream.server\nttsstream.server.LocalServer()", []),
    ("from ttsstream.api import choose_provider", ["line 1: from ttsstream.api import ..."]),
    ("import ttsstream.client", ["line 1: import ttsstream.client"]),
    ("from ttsstream import Connection", ["line 1: from ttsstream import Connection"]),
    ("import ttsstream as t\nt.api.default_client()", ["line 2: t.api"]),
    ("def f():\n    from ttsstream.pool import Pool", ["line 2: from ttsstream.pool import ..."]),
])
def test_the_check_sees_private_imports(code: str, expected: List[str]) -> None:
    assert private_uses(code) == expected
