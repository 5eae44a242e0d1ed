"""The table of the last `make mutate` run, per module, for docs/testing.md.

    python -m tools.mutation_table            # markdown table of mutants/**.meta
    python -m tools.mutation_table --survivors  # every surviving mutant's name, for `mutmut show`

A mutant listed in tests/mutation_equivalents.toml (name = "why it cannot change behaviour") is
counted as equivalent, not as a survivor. "No tests" (no selected test reaches the function) is
a survivor: nothing would notice the change.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.toml"
KILLED = {1, 3, 37}  # the tests failed, or mypy refused the mutant (37): shown apart
BY_MYPY = 37  # type_check_command: make test runs the same mypy, so it could not land
TIMED_OUT = {36, -24, 24, 152, 255}  # past the time limit (SIGXCPU): killed, shown apart
SURVIVED = {0, 5, 33}  # tests passed, or no test reaches it


def equivalents() -> dict[str, str]:
    if not EQUIVALENTS.exists():
        return {}
    return {str(key): str(value) for key, value in tomllib.loads(EQUIVALENTS.read_text()).items()}


def results(mutants: Path) -> dict[str, dict[str, int | None]]:
    """module path -> {mutant name: exit code}."""
    found = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants))[: -len(".meta")]
        found[module] = json.loads(meta.read_text())["exit_code_by_key"]
    return found


def table(mutants: Path) -> tuple[str, list[str]]:
    known = equivalents()
    lines = [
        "| module | mutants | killed | of which by mypy | of which timed out | survived "
        "| equivalent | not run | killed, of judged |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    totals: Counter[str] = Counter()
    survivors = []
    for module, codes in results(mutants).items():
        counts: Counter[str] = Counter()
        for name, code in codes.items():
            if name in known:
                counts["equivalent"] += 1
            elif code in KILLED:
                counts["killed"] += 1
                counts["by mypy"] += code == BY_MYPY
            elif code in TIMED_OUT:
                counts["killed"] += 1
                counts["timed out"] += 1
            elif code in SURVIVED:
                counts["survived"] += 1
                survivors.append(name)
            else:
                counts["not run"] += 1
        counts["mutants"] = len(codes)
        totals.update(counts)
        lines.append(_row(module, counts))
    lines.append(_row("**all**", totals))
    return "\n".join(lines), survivors


def _row(name: str, counts: Counter[str]) -> str:
    judged = counts["killed"] + counts["survived"]
    share = f"{100 * counts['killed'] / judged:.1f}%" if judged else "-"
    return (
        f"| {name} | {counts['mutants']} | {counts['killed']} | {counts['by mypy']} | "
        f"{counts['timed out']} | "
        f"{counts['survived']} | "
        f"{counts['equivalent']} | {counts['not run']} | {share} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation_table", description=__doc__)
    parser.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    parser.add_argument("--survivors", action="store_true", help="list surviving mutants")
    args = parser.parse_args(argv)
    if not args.mutants.is_dir():
        print(f"no {args.mutants}: run `make mutate` first", file=sys.stderr)
        return 2
    text, survivors = table(args.mutants)
    print("\n".join(survivors) if args.survivors else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
