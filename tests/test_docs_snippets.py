"""The Python in the README and docs/*.md: every block parses, and no name is used that the document never
defines or imports (ruff's pyflakes rules over each document's blocks in order; a block that starts with
``# <file>.py`` starts a new file, as the testing-plugin guide shows an app and its test side by side)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A block may sit indented in a list item: its fence's indentation is removed from its lines.
BLOCK = re.compile(r"^([ \t]*)```python\n(.*?)^[ \t]*```", re.S | re.M)
FILE_MARKER = re.compile(r"^# (\w+\.py)\n")


def files_of(document: Path) -> Dict[str, str]:
    files: Dict[str, List[str]] = {}
    current = f"{document.stem.replace('-', '_')}.py"
    for _, indented in BLOCK.findall(document.read_text()):
        block = textwrap.dedent(indented)
        marker = FILE_MARKER.match(block)
        if marker:
            current = marker.group(1)
        files.setdefault(current, []).append(block)
    return {name: "\n\n".join(blocks) for name, blocks in files.items()}


DOCUMENTED = [(document, name) for document in DOCUMENTS for name in files_of(document)]


def test_the_docs_have_python_to_check() -> None:
    assert {document.name for document, _ in DOCUMENTED} >= {"README.md", "logging-and-events.md", "testing-plugin.md"}


@pytest.mark.parametrize(("document", "name"), DOCUMENTED, ids=[f"{d.name}:{n}" for d, n in DOCUMENTED])
def test_each_snippet_parses_and_defines_what_it_uses(document: Path, name: str, tmp_path: Path) -> None:
    source = files_of(document)[name]
    ast.parse(source, filename=f"{document.name}:{name}")
    (tmp_path / name).write_text(source)
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "check", "--isolated", "--select", "F", "--ignore", "F401", "--output-format", "concise", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"{document.name}: {result.stdout}"


def test_relative_links_in_the_docs_lead_to_files_that_exist() -> None:
    broken = []
    for document in DOCUMENTS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (document.parent / target).exists():
                broken.append(f"{document.name} -> {target}")
    assert broken == []
