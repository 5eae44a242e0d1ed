"""The helpers of `make mutate`: which mypy errors judge a mutant, and how the table counts."""

from __future__ import annotations

import json

from tools import mutation_table, mutation_typecheck


def test_only_mutmuts_own_redeclared_attributes_are_dropped_from_mypys_report():
    copy = {"code": "no-redef", "message": 'Attribute "current" already defined on line 5040'}
    assert mutation_typecheck.is_artifact(copy)
    # A mutation that really redefines a name, or any other error, still judges the mutant.
    assert not mutation_typecheck.is_artifact(
        {"code": "no-redef", "message": 'Name "x" already defined on line 3'}
    )
    assert not mutation_typecheck.is_artifact(
        {"code": "arg-type", "message": 'Attribute "a" already defined on line 1'}
    )


def test_the_table_counts_each_verdict_in_its_column(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    codes = {
        "pkg.x_f__mutmut_1": 1,  # tests failed
        "pkg.x_f__mutmut_2": 37,  # mypy refused it
        "pkg.x_f__mutmut_3": -24,  # past its CPU limit
        "pkg.x_f__mutmut_4": 0,  # survived
        "pkg.x_f__mutmut_5": 33,  # no test reaches it: a survivor too
        "pkg.x_f__mutmut_6": 0,  # listed as equivalent
        "pkg.x_f__mutmut_7": None,  # not run yet
    }
    (tmp_path / "pkg" / "mod.py.meta").write_text(json.dumps({"exit_code_by_key": codes}))
    monkeypatch.setattr(mutation_table, "equivalents", lambda: {"pkg.x_f__mutmut_6": "why"})
    text, survivors = mutation_table.table(tmp_path)
    assert "| pkg/mod.py | 7 | 3 | 1 | 1 | 2 | 1 | 1 | 60.0% |" in text.splitlines()
    assert survivors == ["pkg.x_f__mutmut_4", "pkg.x_f__mutmut_5"]
