"""Both importers refuse hostile YAML while parsing: a small 4xx naming the line, nothing lost.

Before: a 437-byte alias bomb in `.devports.yml` stalled the console (measured here: 54 s and a
MemoryError under a 3 GB limit), and 10,000 `[` in a viewer's `healthcheck.yml` cost 47 s of CPU
and a 500 (RecursionError).
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from console.foundation import safe_yaml
from health.models import Check
from ports.models import Project

pytestmark = pytest.mark.django_db

YAML = "application/yaml"


def _alias_bomb(tail: str) -> str:
    """Nine levels of nine aliases: 9**9 (387 million) items from under 450 bytes."""
    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, current in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{current}: &{current} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join([*rows, tail]) + "\n"


DEVPORTS_BOMB = _alias_bomb("projects: {x: {preferred_port: 1, fallback_ports: *i}}")
HEALTH_BOMB = _alias_bomb("checks: [{type: tcp, host: localhost, port: 1, send: *i}]")
DEEP = "[" * 10_000
DEEP_BLOCK = "".join("  " * level + "a:\n" for level in range(40))

# (file, the line to blame, words of the message)
HOSTILE_DEVPORTS = [
    (DEVPORTS_BOMB, 1, "anchors and aliases"),
    ("projects:\n  api: {preferred_port: 5000}\n  web: {preferred_port: *p}\n", 3, "aliases"),
    (DEEP, 1, "nest"),
    ("projects:\n" + DEEP_BLOCK.replace("a:", "  a:"), 21, "nested more than 20 levels"),
    ("projects:\n  api: {preferred_port: .inf}\n", 2, "not a finite number"),
    ("projects:\n  api: {preferred_port: 5000, fallback_ports: [.nan]}\n", 2, "finite"),
    ("projects:\n  api: {preferred_port: 18446744073709551617}\n", 2, "out of range"),
]
HOSTILE_HEALTH = [
    (HEALTH_BOMB, 1, "anchors and aliases"),
    (DEEP, 1, "nest"),
    (DEEP_BLOCK, 21, "nested more than 20 levels"),
    ("checks:\n  - {type: tcp, host: localhost, port: 1, interval: .inf}\n", 2, "finite"),
    ("checks:\n  - {type: tcp, host: localhost, port: 1, timeout: -.inf}\n", 2, "finite"),
    ("checks:\n  - {type: tcp, host: localhost, port: 99999999999999999999}\n", 2, "range"),
]


@pytest.fixture
def stored_project(db):
    return Project.objects.create(name="keep", preferred_port=4000, fallback_ports=[4001])


@pytest.fixture
def stored_check(db):
    return Check.objects.create(name="keep", type="tcp", target={"host": "127.0.0.1", "port": 1})


def _assert_project_kept():
    kept = Project.objects.get()
    assert kept.name == "keep"
    assert kept.preferred_port == 4000
    assert kept.fallback_ports == [4001]


def _assert_check_kept():
    assert list(Check.objects.values_list("name", flat=True)) == ["keep"]


# -- the loader itself -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "words"), HOSTILE_DEVPORTS + HOSTILE_HEALTH)
def test_it_refuses_each_hostile_file_with_its_line(text, line, words):
    with pytest.raises(safe_yaml.YamlRefused) as refused:
        safe_yaml.load(text)
    assert refused.value.line == line, str(refused.value)
    assert words in refused.value.message
    assert not refused.value.too_large


def test_the_bomb_is_refused_at_its_first_anchor_before_anything_is_built():
    assert len(DEVPORTS_BOMB.encode()) < 450
    with pytest.raises(safe_yaml.YamlRefused) as refused:
        safe_yaml.load(DEVPORTS_BOMB)
    assert str(refused.value) == "line 1: anchors and aliases (& and *) are not allowed"


def test_it_refuses_a_file_over_the_size_before_parsing_it():
    with pytest.raises(safe_yaml.YamlRefused) as refused:
        safe_yaml.load("[" * 300_000)  # would be a nesting error if it were parsed
    assert refused.value.too_large
    assert refused.value.message == "the file is larger than 256 KiB"
    with pytest.raises(safe_yaml.YamlRefused, match="larger than 100 bytes"):
        safe_yaml.load("é" * 51, max_bytes=100)  # counted in bytes, not characters


def test_it_reads_an_ordinary_file_once_with_every_line():
    data, lines, key_lines = safe_yaml.load(
        "projects:\n  api:\n    preferred_port: 5000\n    when: 2024-01-01\n5001: x\n"
    )
    assert data == {"projects": {"api": {"preferred_port": 5000, "when": "2024-01-01"}}, 5001: "x"}
    assert lines[("projects", "api", "preferred_port")] == 3
    assert key_lines[("projects", "api")] == 2
    assert lines[(5001,)] == 5  # keys as the data has them


def test_it_refuses_values_that_have_no_json_form():
    with pytest.raises(safe_yaml.YamlRefused, match="line 2: binary values are not allowed"):
        safe_yaml.load("a: 1\nb: !!binary aGVsbG8=\n")


# -- .devports.yml: API, page, terminal --------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "words"), HOSTILE_DEVPORTS)
def test_the_projects_api_answers_422_naming_the_line(
    client, operator_user, bearer, stored_project, text, line, words
):
    response = client.post(
        "/api/v1/projects/import?replace=true",
        text,
        content_type=YAML,
        headers=bearer(operator_user),
    )
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert detail.startswith(f"line {line}: ")
    assert words in detail
    _assert_project_kept()


def test_the_projects_api_answers_413_for_a_large_body_or_file(
    client, operator_user, bearer, stored_project
):
    headers = bearer(operator_user)
    large = b"#" * (256 * 1024 + 1)
    raw = client.post(
        "/api/v1/projects/import?replace=true", large, content_type=YAML, headers=headers
    )
    assert raw.status_code == 413
    assert raw.json()["detail"] == "the file is larger than 256 KiB"
    upload = SimpleUploadedFile(".devports.yml", large)
    form = client.post("/api/v1/projects/import?replace=true", {"file": upload}, headers=headers)
    assert form.status_code == 413
    _assert_project_kept()


def test_the_projects_page_says_the_same(client, operator_user, stored_project):
    client.force_login(operator_user)
    upload = SimpleUploadedFile(".devports.yml", DEVPORTS_BOMB.encode())
    response = client.post("/projects/import/", {"file": upload, "replace": "on"})
    assert response.status_code == 422  # refused on the import page, with the reason
    text = response.content.decode()
    assert "Not imported: line 1: anchors and aliases (&amp; and *) are not allowed" in text
    _assert_project_kept()


def test_the_devports_command_says_the_same(admin_user, stored_project, tmp_path):
    path = tmp_path / ".devports.yml"
    path.write_text(DEVPORTS_BOMB)
    with pytest.raises(CommandError) as refused:
        call_command("devports", "import", str(path), "--replace")
    assert "line 1: anchors and aliases (& and *) are not allowed" in str(refused.value)
    _assert_project_kept()


# -- healthcheck.yml: API, page, terminal ------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "words"), HOSTILE_HEALTH)
def test_the_health_api_answers_422_naming_the_line(
    client, admin_user, bearer, stored_check, text, line, words
):
    response = client.post(
        "/api/v1/health/import?replace=true", text, content_type=YAML, headers=bearer(admin_user)
    )
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert detail.startswith(f"line {line}: ")
    assert words in detail
    _assert_check_kept()


def test_a_viewers_deeply_nested_file_is_a_small_4xx(client, viewer_user, bearer, stored_check):
    response = client.post(
        "/api/v1/health/import", DEEP, content_type=YAML, headers=bearer(viewer_user)
    )
    assert response.status_code in (403, 422), response.content
    assert "detail" in response.json()
    _assert_check_kept()


def test_the_health_api_answers_413_for_a_large_body_or_file(
    client, admin_user, bearer, stored_check
):
    headers = bearer(admin_user)
    large = b"#" * (256 * 1024 + 1)
    raw = client.post(
        "/api/v1/health/import?replace=true", large, content_type=YAML, headers=headers
    )
    assert raw.status_code == 413
    assert raw.json()["detail"] == "the file is larger than 256 KiB"
    upload = SimpleUploadedFile("healthcheck.yml", large)
    form = client.post("/api/v1/health/import?replace=true", {"file": upload}, headers=headers)
    assert form.status_code == 413
    assert form.json()["detail"] == "file: the file is larger than 256 KiB"
    _assert_check_kept()


def test_the_health_page_says_the_same(client, admin_user, stored_check):
    client.force_login(admin_user)
    response = client.post("/checks/import/", {"text": DEEP, "replace": "on"})
    assert response.status_code == 422
    assert "line 1: " in response.content.decode()
    assert "nest" in response.content.decode()  # libyaml's words or ours, by the parser in use
    bomb = client.post("/checks/import/", {"text": HEALTH_BOMB, "replace": "on"})
    assert bomb.status_code == 422
    assert "line 1: anchors and aliases (&amp; and *) are not allowed" in bomb.content.decode()
    _assert_check_kept()


def test_the_health_command_says_the_same(admin_user, stored_check, tmp_path):
    path = tmp_path / "healthcheck.yml"
    path.write_text("checks:\n  - {type: tcp, host: localhost, port: 1, interval: .inf}\n")
    with pytest.raises(CommandError) as refused:
        call_command("health", "import", str(path), "--replace")
    assert "line 2: .inf is not a finite number" in str(refused.value)
    _assert_check_kept()


@pytest.mark.parametrize(
    ("header", "size"),
    [
        (None, 0),
        ("", 0),
        (" 42 ", 42),
        ("4x", 0),  # not a number: measured from the body instead
        ("-1", 0),
        ("9" * 19, int("9" * 19)),
        ("9" * 20, 0),  # longer than any real body: not trusted as a size
    ],
)
def test_a_declared_size_is_read_only_from_a_plain_content_length(header, size):
    assert safe_yaml.declared_size(header) == size


def test_nesting_is_counted_down_again_after_each_collection():
    # Each level holds an empty list before the next level: a count that forgot the depth on the
    # way out of the list would never reach the limit.
    level = "{}"
    for _ in range(safe_yaml.DEFAULT_MAX_DEPTH):
        level = "{a: [], b: " + level + "}"
    with pytest.raises(safe_yaml.YamlRefused, match="nested more than 20 levels deep"):
        safe_yaml.load(level, max_bytes=10_000)
    within = "{}"
    for _ in range(safe_yaml.DEFAULT_MAX_DEPTH - 1):
        within = "{a: [], b: " + within + "}"
    assert safe_yaml.load(within, max_bytes=10_000)[0]["a"] == []


def test_integers_are_read_up_to_two_to_the_53rd_and_refused_beyond():
    assert safe_yaml.load(f"n: {2**53}\n", max_bytes=10_000)[0] == {"n": 2**53}
    with pytest.raises(safe_yaml.YamlRefused, match="is out of range"):
        safe_yaml.load(f"n: {2**53 + 1}\n", max_bytes=10_000)
    # Past the digits int() reads from text at all: refused the same way, not an error.
    with pytest.raises(safe_yaml.YamlRefused, match=r"^.* is out of range") as raised:
        safe_yaml.load("n: " + "9" * 5000 + "\n", max_bytes=10_000)
    assert raised.value.line == 1
