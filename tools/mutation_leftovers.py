"""End the processes a `make mutate` run left behind, by pid.

A mutant whose tests time out is killed before their teardown runs, so a listener or a server
a test started can outlive it. Every process whose working directory is under this checkout's
`mutants/` was started by the run (mutmut runs the tests there), and nothing else is touched.
Only once the run is over: while it goes, its own workers and their tests are there too.

    python -m tools.mutation_leftovers           # list them
    python -m tools.mutation_leftovers --end     # and end them (SIGKILL, by pid)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

MUTANTS = (Path(__file__).resolve().parent.parent / "mutants").resolve()


def leftovers() -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = (entry / "cwd").resolve(strict=True)
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone, or not ours to read
        if cwd == MUTANTS or MUTANTS in cwd.parents:
            found.append((int(entry.name), command.strip()))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end", action="store_true", help="end them with SIGKILL")
    args = parser.parse_args()
    found = leftovers()
    if args.end and any("mutmut" in command for _pid, command in found):
        # mutmut and its workers run there too: a run is going, and its tests are not leftovers.
        sys.exit("a mutmut run is going: stop it first")
    for pid, command in found:
        print(pid, command[:100])
        if args.end:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
