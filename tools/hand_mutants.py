"""The hand-made mutants a review found passing the suite, each run against its area's tests.

    python -m tools.hand_mutants          # every mutant; exit 1 if one survives
    python -m tools.hand_mutants --list   # their names and what each breaks

mutmut (`make mutate`) only makes small operator and constant changes. A reviewer's mutants are
larger and closer to a real mistake: a second algorithm allowed, a claim check skipped, a name
added to a list. Each is applied to a copy of the tree (never to the checkout) and the tests
that guard that property are run against it. A mutant survives when those tests pass.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = [
    "console",
    "ports",
    "health",
    "tests",
    "templates",
    "static",
    "manage.py",
    "pyproject.toml",
]
SKIPPED = shutil.ignore_patterns("node_modules", "__pycache__", "*.pyc")


@dataclass(frozen=True)
class HandMutant:
    name: str
    breaks: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


TOKENS = "console/foundation/tokens.py"
TOKEN_TESTS = (
    "tests/security/test_tokens.py",
    "tests/console/test_api_auth.py",
    "tests/security/test_guard_properties.py",
)

MUTANTS = [
    HandMutant(
        "second-algorithm",
        "HS512 (and none) accepted besides HS256",
        TOKENS,
        "algorithms=[ALGORITHM],",
        'algorithms=[ALGORITHM, "HS512", "none"],',
        TOKEN_TESTS,
    ),
    HandMutant(
        "no-audience-issuer",
        "the audience and issuer are not checked",
        TOKENS,
        '"strict_aud": True}',
        '"strict_aud": True, "verify_aud": False, "verify_iss": False}',
        TOKEN_TESTS,
    ),
    HandMutant(
        "refresh-as-access",
        "a refresh token passes where an access token is asked for",
        TOKENS,
        'if claims.get("typ") not in (ACCESS, PERSONAL):',
        'if claims.get("typ") not in (ACCESS, PERSONAL, REFRESH):',
        TOKEN_TESTS,
    ),
    HandMutant(
        "access-as-refresh",
        "an access token is taken by auth/refresh",
        TOKENS,
        'if claims.get("typ") != token_type:',
        'if claims.get("typ") not in (token_type, ACCESS):',
        TOKEN_TESTS,
    ),
    HandMutant(
        "channel-secrets-to-operators",
        "operators see alert channels' webhook URLs and keys",
        "health/api.py",
        "def _channel_out(request, channel: AlertChannel) -> dict:\n    admin = _reveal(request)",
        "def _channel_out(request, channel: AlertChannel) -> dict:\n"
        "    admin = gate.allows(request.auth, OPERATOR, scope=_scope(request), request=request)",
        (
            "tests/health/test_alerts.py",
            "tests/health/test_api.py",
            "tests/security/test_guard_properties.py",
        ),
    ),
    HandMutant(
        "extra-allowed-host",
        "a name beyond localhost, 127.0.0.1 and [::1] is allowed in Host",
        "console/settings.py",
        'ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]',
        'ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "0.0.0.0"]',
        (
            "tests/security/test_http_guards.py",
            "tests/console/test_http_basics.py",
            "tests/security/test_guard_properties.py",
        ),
    ),
    HandMutant(
        "pid-1-unprotected-in-set",
        "pid 1 missing from the protected set (a server tree holding it is signalled)",
        "ports/stopping.py",
        "protected = {0, 1, os.getpid()}",
        "protected = {0, os.getpid()}",
        ("tests/ports/test_actions.py", "tests/security/test_guard_properties.py"),
    ),
    HandMutant(
        "pid-1-unprotected-at-stop",
        "stop_server's own guard lets pid 1 through",
        "ports/server_stopping.py",
        "if server_pid <= 1 or server_pid in protected_pids():",
        "if server_pid <= 0 or server_pid in protected_pids() - {1}:",
        (
            "tests/ports/test_server_stopping.py",
            "tests/ports/test_stop_api.py",
            "tests/security/test_guard_properties.py",
        ),
    ),
    HandMutant(
        "alerts-concurrently",
        "one check's alerts are sent to a channel at once instead of in order",
        "health/alerts.py",
        "        in_order.setdefault((alert.channel_id, alert.check_ref_id), []).append(alert)",
        "        in_order.setdefault(alert.id, []).append(alert)",
        ("tests/health/test_alerts.py", "tests/security/test_guard_properties.py"),
    ),
]


def tests_fail(mutant: HandMutant | None, tests: tuple[str, ...], python: str) -> str:
    """Whether `tests` fail against a copy of the tree with `mutant` applied (None: as it is)."""
    with tempfile.TemporaryDirectory(prefix="hand-mutant-") as scratch:
        tree = Path(scratch)
        for name in COPIED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, tree / name, ignore=SKIPPED)
            else:
                shutil.copy2(source, tree / name)
        if mutant is not None:
            target = tree / mutant.path
            text = target.read_text()
            if text.count(mutant.old) != 1:
                raise SystemExit(
                    f"{mutant.name}: {mutant.path} no longer holds the line it mutates"
                )
            target.write_text(text.replace(mutant.old, mutant.new))
        # The copy comes first on sys.path, so its packages shadow the checkout's editable install.
        result = subprocess.run(
            [python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
            capture_output=True,
            text=True,
        )
        # The failing tests' summary lines, or "" when every test passed.
        if result.returncode == 0:
            return ""
        failed = [
            line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))
        ]
        return "\n".join(failed) or result.stdout[-2000:] + result.stderr[-2000:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.hand_mutants", description=__doc__)
    parser.add_argument("--list", action="store_true", help="name the mutants and stop")
    parser.add_argument("--verbose", action="store_true", help="name the tests that killed each")
    parser.add_argument("names", nargs="*", help="run only these")
    args = parser.parse_args(argv)
    chosen = [mutant for mutant in MUTANTS if not args.names or mutant.name in args.names]
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name}: {mutant.breaks} ({mutant.path})")
        return 0
    every_test = tuple(sorted({test for mutant in chosen for test in mutant.tests}))
    if failures := tests_fail(None, every_test, sys.executable):
        print(f"the tests fail on the unmutated copy: fix them first\n{failures}", file=sys.stderr)
        return 2
    survivors = []
    for mutant in chosen:
        failures = tests_fail(mutant, mutant.tests, sys.executable)
        killed = bool(failures)
        print(f"{'killed  ' if killed else 'SURVIVED'} {mutant.name}: {mutant.breaks}", flush=True)
        if killed and args.verbose:
            print("  " + failures.replace("\n", "\n  "), flush=True)
        if not killed:
            survivors.append(mutant.name)
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} hand-made mutants killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
