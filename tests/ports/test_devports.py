"""The .devports.yml format: errors with lines, merge and replace, the round trip, hostile files."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ports.models import Project
from ports.registry import devports
from ports.registry import operations as registry

pytestmark = pytest.mark.django_db

# The example (its column alignment dropped to fit the line limit).
TEAM_FILE = """\
projects:
  api-gateway: {preferred_port: 5000, fallback_ports: [5001, 5002, 5100], service_type: flask}
  user-service: {preferred_port: 5001, fallback_ports: [5003, 5004], service_type: fastapi}
  frontend-dashboard: {preferred_port: 3000, fallback_ports: [3001, 3002], service_type: node}
"""


def test_it_imports_the_teams_file_and_exports_the_same_registry(admin_user):
    result = registry.import_registry(admin_user, TEAM_FILE)
    assert result["created"] == 3 and result["warnings"] == [
        "port 5001 is listed by api-gateway, user-service"
    ]
    exported = registry.export_registry()
    Project.objects.all().delete()
    registry.import_registry(admin_user, exported)
    assert registry.export_registry() == exported
    by_name = lambda specs: sorted(specs, key=lambda spec: spec.name)  # noqa: E731
    assert by_name(devports.parse(exported)) == by_name(devports.parse(TEAM_FILE))
    gateway = Project.objects.get(name="api-gateway")
    assert gateway.fallback_ports == [5001, 5002, 5100] and gateway.service_type == "flask"


def test_it_names_the_line_and_field_of_every_error(admin_user):
    text = (
        "projects:\n"
        "  good: {preferred_port: 4000}\n"
        "  bad:\n"
        "    preferred_port: 70000\n"
        "    colour: blue\n"
        "  worse: {fallback_ports: [1]}\n"
    )
    with pytest.raises(devports.RegistryError) as caught:
        registry.import_registry(admin_user, text)
    messages = [str(problem) for problem in caught.value.problems]
    assert (
        "line 4: bad.preferred_port: must be a port number from 1 to 65535, not 70000" in messages
    )
    assert any(m.startswith("line 5: bad.colour: unknown field") for m in messages)
    assert "line 6: worse.preferred_port: is required" in messages
    assert not Project.objects.exists()  # all or nothing: "good" was not written either


def test_it_reports_the_line_of_broken_yaml(admin_user):
    with pytest.raises(devports.RegistryError) as caught:
        registry.import_registry(admin_user, "projects:\n  api: {preferred_port: 5000\n")
    assert caught.value.problems[0].line is not None
    assert "not valid YAML" in str(caught.value)


def test_it_merges_by_name_or_replaces_when_asked(admin_user):
    registry.import_registry(admin_user, TEAM_FILE)
    registry.import_registry(admin_user, "projects:\n  api-gateway: {preferred_port: 5500}\n")
    assert Project.objects.count() == 3
    assert Project.objects.get(name="api-gateway").preferred_port == 5500
    result = registry.import_registry(
        admin_user, "projects:\n  solo: {preferred_port: 7000}\n", replace=True
    )
    assert sorted(result["removed"]) == ["api-gateway", "frontend-dashboard", "user-service"]
    assert list(Project.objects.values_list("name", flat=True)) == ["solo"]


@pytest.mark.parametrize(
    "hostile",
    [
        "projects: !!python/object/apply:os.system ['echo pwned']\n",
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nprojects: [*c, *c, *c]\n",
        "x" * (devports.MAX_BYTES + 1),
        "[" * 5000,
        "projects: 5\n",
        b"\xff\xfe not utf-8",
    ],
    ids=["python-tag", "alias-bomb", "too-large", "deep-nesting", "wrong-shape", "not-utf8"],
)
def test_it_refuses_hostile_files_cleanly(admin_user, hostile):
    with pytest.raises(devports.RegistryError):
        registry.import_registry(admin_user, hostile)
    assert not Project.objects.exists()


def test_it_works_from_the_terminal(admin_user, tmp_path, capsys, listening_child):
    path = tmp_path / ".devports.yml"
    child = listening_child()
    path.write_text(
        f"projects:\n  api: {{preferred_port: {child.port}, fallback_ports: [{child.port + 1}]}}\n"
    )
    call_command("devports", "import", str(path))
    call_command("devports", "allocate", "api")
    out, err = capsys.readouterr()
    port = int(out.strip().splitlines()[-1])
    assert port != child.port and f"{child.port} held by python" in err
    call_command("devports", "export", "-o", str(tmp_path / "out.yml"))
    assert "api:" in (tmp_path / "out.yml").read_text()
    with pytest.raises(CommandError, match="no project named"):
        call_command("devports", "allocate", "nope")
