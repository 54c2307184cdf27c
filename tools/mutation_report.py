"""Kill rate per module, and every surviving mutant with its line, from the results `mutmut run` left in mutants/.

Run by `make mutation`; `python tools/mutation_report.py --survivors` also prints each survivor's changed line.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

MUTANTS = Path("mutants")
# mutmut's exit codes (mutmut/stats.py): 1 and 3 are a failing test, the timeouts a mutant stuck in a loop.
KILLED = {1, 3}
TIMEOUT = {24, -24, 152, 255, 36}
SURVIVED = 0
NO_TESTS = {5, 33}
CLASS_SEPARATOR = "ǁ"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--survivors", action="store_true", help="list each surviving mutant with its changed line")
    args = parser.parse_args(argv)
    metas = sorted(MUTANTS.rglob("*.py.meta"))
    if not metas:
        print("no mutmut results in mutants/: run `make mutation` first", file=sys.stderr)
        return 1
    rows = [(meta, _exit_codes(meta)) for meta in metas]
    print(f"{'module':<42} {'killed':>7} {'total':>6} {'rate':>7}  survived  timeout  no-tests  unchecked")
    all_killed = all_total = 0
    for meta, codes in rows:
        module = str(meta.relative_to(MUTANTS))[: -len(".meta")]
        killed, total = _killed(codes), len(codes)
        all_killed, all_total = all_killed + killed, all_total + total
        print(
            f"{module:<42} {killed:>7} {total:>6} {_percent(killed, total):>7}  "
            f"{sum(c == SURVIVED for c in codes.values()):>8}  {sum(c in TIMEOUT for c in codes.values()):>7}  "
            f"{sum(c in NO_TESTS for c in codes.values()):>8}  {sum(c is None for c in codes.values()):>9}"
        )
    print(f"{'all core modules':<42} {all_killed:>7} {all_total:>6} {_percent(all_killed, all_total):>7}")
    if args.survivors:
        for meta, codes in rows:
            source = Path(str(meta.relative_to(MUTANTS))[: -len(".meta")])
            for name, line, change in _survivors(source, codes):
                print(f"{source}:{line}  {name.rpartition('.')[2]}\n{change}")
    return 0


def _exit_codes(meta: Path) -> Dict[str, Optional[int]]:
    codes: Dict[str, Optional[int]] = json.loads(meta.read_text())["exit_code_by_key"]
    return codes


def _killed(codes: Dict[str, Optional[int]]) -> int:
    return sum(code in KILLED or code in TIMEOUT for code in codes.values())


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _survivors(source: Path, codes: Dict[str, Optional[int]]) -> Iterator[Tuple[str, int, str]]:
    spans: Dict[str, List[int]] = json.loads((MUTANTS / f"{source}.spans").read_text())["spans"]
    mutated = (MUTANTS / source).read_text().splitlines()
    def_lines = _def_lines(source.read_text())
    for key, code in codes.items():
        if code not in (SURVIVED, *NO_TESTS):
            continue
        name = key.rpartition(".")[2]
        mangled = name.rpartition("__mutmut_")[0]
        orig, mutant = (_function(mutated, spans[n]) for n in (f"{mangled}__mutmut_orig", name))
        offset, change = _first_change(orig, mutant)
        status = "survived" if code == SURVIVED else "no tests"
        yield key, def_lines.get(mangled, 0) + offset, f"    ({status})\n{change}"


def _def_lines(source: str) -> Dict[str, int]:
    lines: Dict[str, int] = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines[f"x_{node.name}"] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines[f"x{CLASS_SEPARATOR}{node.name}{CLASS_SEPARATOR}{item.name}"] = item.lineno
    return lines


def _function(lines: List[str], span: List[int]) -> List[str]:
    body = lines[span[0] - 1 : span[1]]
    # Generated functions carry the mutant's name: compare from the line after `def`, signatures aside.
    start = next(i for i, line in enumerate(body) if line.lstrip().startswith(("def ", "async def ")))
    return body[start:]


def _first_change(orig: List[str], mutant: List[str]) -> Tuple[int, str]:
    matcher = difflib.SequenceMatcher(a=orig[1:], b=mutant[1:], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed = [f"    - {line.strip()}" for line in orig[1 + i1 : 1 + i2]]
            added = [f"    + {line.strip()}" for line in mutant[1 + j1 : 1 + j2]]
            return 1 + i1, "\n".join(removed + added)
    return 0, "    (signature changed)"


if __name__ == "__main__":
    sys.exit(main())
