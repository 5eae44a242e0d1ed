"""What the YAML reader of both importers refuses, and how its refusal reads: line and value."""

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


def test_a_refused_value_of_forty_characters_is_quoted_whole():
    forty = "1" + "0" * 37 + ".0"
    with pytest.raises(safe_yaml.YamlRefused) as refused:
        safe_yaml.load(f"port: {forty}\n")
    assert refused.value.message.startswith(f"{forty} is out of range")


def test_a_longer_refused_value_is_cut_to_thirty_seven_characters_and_an_ellipsis():
    long = "1" + "0" * 38 + ".0"
    with pytest.raises(safe_yaml.YamlRefused) as refused:
        safe_yaml.load(f"port: {long}\n")
    assert refused.value.message.startswith(f"{long[:37]}... is out of range")


def test_a_syntax_error_names_its_line_and_what_is_wrong():
    with pytest.raises(safe_yaml.YamlRefused) as refused:
        safe_yaml.load("projects:\n  api:\n    port: 1: 2\n")
    assert refused.value.line == 3
    assert refused.value.message == "not valid YAML: mapping values are not allowed in this context"


def test_a_forbidden_character_names_its_line():
    with pytest.raises(safe_yaml.YamlRefused) as refused:
        safe_yaml.load("a: 1\nb: 2\nc: bell\x07\n")
    assert refused.value.line == 3
    assert refused.value.message.startswith("not valid YAML: unacceptable character #x0007")


def test_a_forbidden_character_counts_a_leading_blank_line():
    with pytest.raises(safe_yaml.YamlRefused) as refused:
        safe_yaml.load("\nb: 2\nc: bell\x07\n")
    assert refused.value.line == 3
