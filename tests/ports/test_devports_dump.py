"""The registry written back as .devports.yml reads as a team writes it, and reads back the same."""

from __future__ import annotations

from ports.registry import devports
from ports.registry.devports import ProjectSpec


def test_each_project_is_one_line_with_its_fields_in_the_file_s_order():
    long_notes = "run with make dev; " * 10  # 190 characters: no wrapping, whatever its length
    specs = [
        ProjectSpec("web", 5173, [5174], "vite", "/srv/web", long_notes.strip()),
        ProjectSpec("api", 8000),
    ]
    text = devports.dump(specs)
    lines = text.splitlines()
    assert lines[0] == "projects:"
    assert lines[1] == "  api: {preferred_port: 8000}"
    assert lines[2].startswith(
        "  web: {preferred_port: 5173, fallback_ports: [5174], service_type: vite, "
        "working_directory: /srv/web, notes: "
    )
    assert len(lines) == 3
    assert devports.parse(text) == sorted(specs, key=lambda spec: spec.name)


def test_a_number_where_text_belongs_is_read_as_its_text():
    (spec,) = devports.parse(
        "projects:\n  api: {preferred_port: 8000, notes: 123, service_type: 2.5}\n"
    )
    assert (spec.notes, spec.service_type, spec.working_directory) == ("123", "2.5", "")
