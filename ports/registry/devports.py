"""The port registry as data: validation and the `.devports.yml` format. No Django here.

    projects:
      api-gateway: {preferred_port: 5000, fallback_ports: [5001, 5002], service_type: flask}

Parsing keeps each value's line so every error can say where it is. The text is read by
`console.safe_yaml`, the one loader of both importers: size-capped, no anchors or aliases, a
nesting cap, finite numbers only, each refused before it costs anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from console.foundation import safe_yaml
from console.foundation.limits import PORT_MAX, PORT_MIN, is_port

MAX_BYTES = safe_yaml.DEFAULT_MAX_BYTES
MAX_PROJECTS = 1000
MAX_FALLBACKS = 50
EMPTY_FILE = "the file is empty: there is nothing to import"
NO_PROJECTS = "the file lists no projects under 'projects:': there is nothing to import"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
FIELDS = ("preferred_port", "fallback_ports", "service_type", "working_directory", "notes")
SPEC_FIELDS = ("name", *FIELDS)  # a ProjectSpec's fields, as the Project model has them


@dataclass
class ProjectSpec:
    name: str
    preferred_port: int
    fallback_ports: list[int] = field(default_factory=list)
    service_type: str = ""
    working_directory: str = ""
    notes: str = ""

    @property
    def ports(self) -> list[int]:
        return [self.preferred_port, *self.fallback_ports]

    def as_dict(self) -> dict:
        data: dict = {"preferred_port": self.preferred_port}
        if self.fallback_ports:
            data["fallback_ports"] = list(self.fallback_ports)
        for name in ("service_type", "working_directory", "notes"):
            if value := getattr(self, name):
                data[name] = value
        return data


@dataclass
class Problem:
    message: str
    project: str = ""
    field: str = ""
    line: int | None = None  # 1-based

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        subject = ".".join(part for part in (self.project, self.field) if part)
        return f"{where}{subject + ': ' if subject else ''}{self.message}"


class RegistryError(ValueError):
    """The file or form is refused as a whole; `problems` says every reason, with lines."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(problem) for problem in problems))


def port_problem(value, project: str, name: str, line: int | None) -> Problem | None:
    if not is_port(value):
        return Problem(
            f"must be a port number from {PORT_MIN} to {PORT_MAX}, not {value!r}",
            project,
            name,
            line,
        )
    return None


def validate_spec(spec: ProjectSpec, lines: dict[str, int] | None = None) -> list[Problem]:
    """Errors that refuse the project. Sharing a port with another project is a warning instead."""
    lines = lines or {}
    problems: list[Problem] = []
    if not NAME_PATTERN.match(spec.name or ""):
        problems.append(
            Problem(
                "use lower-case letters, digits, - and _, at most 100 characters",
                spec.name,
                "name",
                lines.get("name"),
            )
        )
    if problem := port_problem(
        spec.preferred_port, spec.name, "preferred_port", lines.get("preferred_port")
    ):
        problems.append(problem)
    if not isinstance(spec.fallback_ports, list):
        problems.append(
            Problem(
                "must be a list of ports", spec.name, "fallback_ports", lines.get("fallback_ports")
            )
        )
    else:
        if len(spec.fallback_ports) > MAX_FALLBACKS:
            problems.append(
                Problem(
                    f"at most {MAX_FALLBACKS} fallback ports",
                    spec.name,
                    "fallback_ports",
                    lines.get("fallback_ports"),
                )
            )
        for port in spec.fallback_ports:
            if problem := port_problem(
                port, spec.name, "fallback_ports", lines.get("fallback_ports")
            ):
                problems.append(problem)
        if not problems:
            seen: set[int] = set()
            for port in spec.ports:
                if port in seen:
                    problems.append(
                        Problem(
                            f"port {port} is listed twice",
                            spec.name,
                            "fallback_ports",
                            lines.get("fallback_ports"),
                        )
                    )
                seen.add(port)
    for name, limit in (("service_type", 50), ("working_directory", 500), ("notes", 5000)):
        value = getattr(spec, name)
        if not isinstance(value, str):
            problems.append(Problem("must be text", spec.name, name, lines.get(name)))
        elif len(value) > limit:
            problems.append(
                Problem(f"at most {limit} characters", spec.name, name, lines.get(name))
            )
    return problems


def shared_port_warnings(specs) -> list[str]:
    """Ports that more than one project lists: allowed, but worth saying."""
    owners: dict[int, list[str]] = {}
    for spec in specs:
        for port in spec.ports:
            owners.setdefault(port, []).append(spec.name)
    return [
        f"port {port} is listed by {', '.join(sorted(names))}"
        for port, names in sorted(owners.items())
        if len(names) > 1
    ]


def parse(text: str | bytes) -> list[ProjectSpec]:
    """Every project of a .devports.yml, or RegistryError naming each problem and its line."""
    try:
        data, value_lines, key_lines = safe_yaml.load(text, max_bytes=MAX_BYTES)
    except safe_yaml.YamlRefused as error:
        raise RegistryError([Problem(error.message, line=error.line)]) from None
    if data is None:  # nothing but blank lines and comments
        raise RegistryError([Problem(EMPTY_FILE)])
    if isinstance(data, dict) and data.get("projects") is None and "projects" in data:
        return []  # `projects:` with nothing under it: no projects (import refuses it)
    if not isinstance(data, dict) or not isinstance(data.get("projects"), dict):
        raise RegistryError(
            [
                Problem(
                    "expected a top-level 'projects:' mapping of names to "
                    "{preferred_port, fallback_ports, service_type}",
                    line=1,
                )
            ]
        )
    lines = _project_lines(key_lines, value_lines)
    projects = data["projects"]
    if len(projects) > MAX_PROJECTS:
        raise RegistryError([Problem(f"at most {MAX_PROJECTS} projects")])
    specs: list[ProjectSpec] = []
    problems: list[Problem] = []
    for name, body in projects.items():
        name_text = str(name)
        where = lines.get(name_text, {})
        if not isinstance(body, dict):
            problems.append(
                Problem("expected a mapping with preferred_port", name_text, line=where.get("name"))
            )
            continue
        unknown = sorted(set(map(str, body)) - set(FIELDS))
        for key in unknown:
            problems.append(
                Problem(
                    f"unknown field (known: {', '.join(FIELDS)})", name_text, key, where.get(key)
                )
            )
        if "preferred_port" not in body:
            problems.append(Problem("is required", name_text, "preferred_port", where.get("name")))
            continue
        spec = ProjectSpec(
            name=name_text,
            preferred_port=body["preferred_port"],
            fallback_ports=body.get("fallback_ports") or [],
            service_type=_text(body.get("service_type")),
            working_directory=_text(body.get("working_directory")),
            notes=_text(body.get("notes")),
        )
        problems += validate_spec(spec, where)
        specs.append(spec)
    if problems:
        raise RegistryError(problems)
    return specs


def _text(value) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _project_lines(key_lines: dict, value_lines: dict) -> dict[str, dict[str, int]]:
    """name -> {"name": line of the name, field: line of its value} (1-based lines)."""
    found: dict[str, dict[str, int]] = {}
    for path, line in key_lines.items():
        if len(path) == 2 and path[0] == "projects":
            found.setdefault(str(path[1]), {})["name"] = line
    for path, line in value_lines.items():
        if len(path) == 3 and path[0] == "projects":
            found.setdefault(str(path[1]), {})[str(path[2])] = line
    return found


def dump(specs) -> str:
    """The registry as .devports.yml, in name order, flow style per project as teams write it."""
    lines = ["projects:"]
    for spec in sorted(specs, key=lambda s: s.name):
        body = yaml.safe_dump(
            spec.as_dict(), default_flow_style=True, sort_keys=False, width=10_000
        ).strip()
        lines.append(f"  {spec.name}: {body}")
    return "\n".join(lines) + "\n"
