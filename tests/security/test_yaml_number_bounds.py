"""Both importers' YAML reader takes numbers up to 2**53 and refuses larger ones by line."""

from __future__ import annotations

import pytest

from console.foundation import safe_yaml


def test_a_float_of_exactly_two_to_the_53_is_taken():
    assert safe_yaml.load("a: 1\nb: 9007199254740992.0\n").data == {"a": 1, "b": 2.0**53}


@pytest.mark.parametrize("text", ["1.0e+16", "-1.0e+16", "9007199254740994.0"])
def test_a_larger_float_is_refused_naming_its_line_and_value(text):
    with pytest.raises(safe_yaml.YamlRefused) as refused:
        safe_yaml.load(f"name: api\nchecks:\n  timeout: {text}\n")
    assert refused.value.line == 3
    assert refused.value.message == (
        f"{text} is out of range (at most +-2**53, {safe_yaml.LARGEST_NUMBER})"
    )
    assert str(refused.value).startswith("line 3: ")
