from __future__ import annotations

from django import forms


class TerminateForm(forms.Form):
    pid = forms.IntegerField(min_value=0)
    create_time = forms.FloatField()
    signal = forms.ChoiceField(choices=[("TERM", "SIGTERM"), ("KILL", "SIGKILL")], required=False)
    grace_seconds = forms.FloatField(min_value=0, max_value=60, required=False)
    escalate = forms.BooleanField(required=False)

    def clean_signal(self) -> str:
        return self.cleaned_data.get("signal") or "TERM"

    def clean_grace_seconds(self) -> float:
        grace = self.cleaned_data.get("grace_seconds")
        return 5.0 if grace is None else grace


class FreePortForm(forms.Form):
    near = forms.IntegerField(min_value=1, max_value=65535, initial=8000, label="Near port")
    count = forms.IntegerField(min_value=1, max_value=20, initial=5, label="How many")
