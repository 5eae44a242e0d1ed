"""The registry's forms: one project, and a .devports.yml to import."""

from __future__ import annotations

from django import forms

from console.foundation.limits import PORT_MAX, PORT_MIN, is_port
from ports.registry.devports import ProjectSpec


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="lower-case letters, digits, - and _")
    preferred_port = forms.IntegerField(min_value=PORT_MIN, max_value=PORT_MAX)
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

    def clean_fallback_ports(self) -> list[int]:
        text = self.cleaned_data.get("fallback_ports") or ""
        ports = []
        for part in text.replace(";", ",").replace(" ", ",").split(","):
            if not part:
                continue
            if not part.isdigit() or not is_port(int(part)):
                raise forms.ValidationError(
                    f"{part!r} is not a port number from {PORT_MIN} to {PORT_MAX}"
                )
            ports.append(int(part))
        return ports

    def spec(self):
        return ProjectSpec(**self.cleaned_data)

    def add_problems(self, problems) -> None:
        """Registry problems onto the fields they name."""
        for problem in problems:
            self.add_error(problem.field if problem.field in self.fields else None, problem.message)

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
        return cls(data, initial=initial)


class ImportForm(forms.Form):
    file = forms.FileField(label=".devports.yml")
    replace = forms.BooleanField(
        required=False, label="Replace: remove projects the file does not list"
    )
