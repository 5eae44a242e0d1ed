"""mypy over mutmut's mutated tree, for `type_check_command`: a mutant mypy refuses is caught.

mutmut runs this in `mutants/` and reads mypy's JSON lines. The mutated tree is checked with the
project's own mypy settings, less one: `warn_unused_ignores`, since an ignore the original code
needs is "unused" in the copies mutmut makes of the function. And one kind of error is dropped:
mutmut copies each `__init__` once per mutant, so an annotated attribute (`self.current: X = ...`)
is declared again in every copy, and mypy's "Attribute ... already defined" would mark every
mutant of that `__init__` caught whatever it changed.

    (cd mutants && ../.venv-mutate/bin/python ../tools/mutation_typecheck.py mypy)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

# The artifact of mutmut's copies, not of a mutation.
REDECLARED_ATTRIBUTE = re.compile(r'^Attribute "[^"]+" already defined on line \d+$')


def is_artifact(diagnostic: dict) -> bool:
    return diagnostic.get("code") == "no-redef" and bool(
        REDECLARED_ATTRIBUTE.match(diagnostic.get("message", ""))
    )


def main(argv: list[str]) -> int:
    # argv[0] is "mypy": mutmut picks its report parser by that word in the command.
    command = [sys.executable, "-m", "mypy", "--output", "json", "--no-warn-unused-ignores"]
    completed = subprocess.run(command + argv[1:], capture_output=True, text=True)
    if completed.returncode not in (0, 1):  # 2: mypy itself failed (a config or a crash)
        # Not JSON, so mutmut stops and shows it, rather than reading "no errors".
        print(f"mypy failed (exit {completed.returncode}): {completed.stderr or completed.stdout}")
        return completed.returncode
    for line in completed.stdout.splitlines():
        if line.strip() and not is_artifact(json.loads(line)):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
