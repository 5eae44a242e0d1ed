"""The layout's rules that import-linter's contracts do not state: no module imports one that
imports it back (a package's __init__ and its own modules included), and files stay short."""

from __future__ import annotations

from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("console", "ports", "health", "bench")
MAX_LINES = 600


def test_no_module_imports_one_that_imports_it_back():
    graph = grimp.build_graph(*PACKAGES)
    cycles = sorted(
        f"{module} -> {imported} -> ... -> {module}"
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if imported in graph.modules
        and graph.find_shortest_chain(importer=imported, imported=module) is not None
    )
    assert cycles == []


def test_every_module_stays_under_the_size_a_reader_can_hold():
    too_long = {
        str(path.relative_to(ROOT)): lines
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
        and (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}
