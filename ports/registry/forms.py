"""The registry's forms: one project, and a .devports.yml to import.

Every error shows at once, on its field: the registry's own rules (the name's pattern, a port
listed twice, a name already taken) are checked with the field types, not after them.
"""

from __future__ import annotations

from django import forms

from console.foundation.limits import PORT_MAX, PORT_MIN, is_port
from ports.models import Project
from ports.registry import devports
from ports.registry.devports import ProjectSpec

PORT_RANGE = f"a whole number from {PORT_MIN} to {PORT_MAX}"


class ProjectForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="lower-case letters, digits, - and _",
        error_messages={"required": "Give the project a name."},
    )
    preferred_port = forms.IntegerField(
        min_value=PORT_MIN,
        max_value=PORT_MAX,
        error_messages={
            "required": f"Give the port the project starts on: {PORT_RANGE}.",
            "invalid": f"A port is {PORT_RANGE}.",
            "min_value": f"A port is {PORT_RANGE}.",
            "max_value": f"A port is {PORT_RANGE}.",
        },
    )
    fallback_ports = forms.CharField(
        required=False, help_text="in order, e.g. 5001, 5002", max_length=600
    )
    service_type = forms.CharField(
        required=False, max_length=50, help_text="flask, django, node, … or your own word"
    )
    working_directory = forms.CharField(
        required=False, max_length=500, help_text="recognises the project's own process"
    )
    notes = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=5000
    )

    def __init__(self, *args, project: Project | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.project = project  # the project being edited: its own name is not a clash

    def clean_fallback_ports(self) -> list[int]:
        text = self.cleaned_data.get("fallback_ports") or ""
        parts = [part for part in text.replace(";", ",").replace(" ", ",").split(",") if part]
        bad = [part for part in parts if not part.isdigit() or not is_port(int(part))]
        if bad:
            listed = ", ".join(bad)
            verb = "is not a port" if len(bad) == 1 else "are not ports"
            raise forms.ValidationError(f"{listed} {verb}: each is {PORT_RANGE}.")
        return [int(part) for part in parts]

    def clean(self) -> dict:
        """The registry's rules for the fields that passed their own checks."""
        cleaned = super().clean() or {}
        spec = ProjectSpec(
            name=cleaned.get("name", ""),
            preferred_port=cleaned.get("preferred_port", PORT_MIN),
            fallback_ports=cleaned.get("fallback_ports", []),
            service_type=cleaned.get("service_type", ""),
            working_directory=cleaned.get("working_directory", ""),
            notes=cleaned.get("notes", ""),
        )
        problems = devports.validate_spec(spec)
        if "name" in cleaned and self._name_taken(cleaned["name"]):
            problems.append(devports.Problem("a project with this name exists", field="name"))
        self.add_problems(p for p in problems if p.field in cleaned)
        return cleaned

    def _name_taken(self, name: str) -> bool:
        others = Project.objects.filter(name=name)
        if self.project is not None:
            others = others.exclude(pk=self.project.pk)
        return others.exists()

    def spec(self):
        return ProjectSpec(**self.cleaned_data)

    def add_problems(self, problems) -> None:
        """Registry problems onto the fields they name (a field's first problem only)."""
        for problem in problems:
            field = problem.field if problem.field in self.fields else None
            if field is None or field not in self.errors:
                self.add_error(field, _sentence(problem.message))

    @classmethod
    def for_project(cls, project, data=None):
        initial = {
            "name": project.name,
            "preferred_port": project.preferred_port,
            "fallback_ports": ", ".join(map(str, project.fallback_ports)),
            "service_type": project.service_type,
            "working_directory": project.working_directory,
            "notes": project.notes,
        }
        return cls(data, initial=initial, project=project)


class ImportForm(forms.Form):
    """A .devports.yml as a file or pasted; the file wins when both are given."""

    file = forms.FileField(label=".devports.yml", required=False, allow_empty_file=True)
    text = forms.CharField(
        label="or paste it",
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "class": "mono", "spellcheck": "false"}),
    )
    replace = forms.BooleanField(
        required=False, label="Replace: remove projects the file does not list"
    )

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        nothing = cleaned.get("file") is None and not (cleaned.get("text") or "").strip()
        if nothing and "file" not in self.errors:
            self.add_error("file", "Choose a .devports.yml file, or paste its text below.")
        return cleaned


def _sentence(message: str) -> str:
    """A registry message ("use lower-case letters ...") as a sentence on its field."""
    text = message[:1].upper() + message[1:]
    return text if text.endswith((".", "?", "!", ")")) else text + "."
