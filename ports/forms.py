from __future__ import annotations

from django import forms

from console.foundation.limits import PORT_MAX, PORT_MIN, is_port
from ports.stopping import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS


class TerminateForm(forms.Form):
    pid = forms.IntegerField(min_value=0)
    create_time = forms.FloatField()
    signal = forms.ChoiceField(choices=[("TERM", "SIGTERM"), ("KILL", "SIGKILL")], required=False)
    grace_seconds = forms.FloatField(min_value=0, max_value=MAX_GRACE_SECONDS, required=False)
    escalate = forms.BooleanField(required=False)

    def clean_signal(self) -> str:
        return self.cleaned_data.get("signal") or "TERM"

    def clean_grace_seconds(self) -> float:
        grace = self.cleaned_data.get("grace_seconds")
        return float(DEFAULT_GRACE_SECONDS) if grace is None else grace


class FreePortForm(forms.Form):
    near = forms.IntegerField(
        min_value=PORT_MIN, max_value=PORT_MAX, initial=8000, label="Near port"
    )
    count = forms.IntegerField(min_value=1, max_value=20, initial=5, label="How many")


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
        from ports.registry.devports import ProjectSpec

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
