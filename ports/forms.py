from __future__ import annotations

from django import forms

from console.foundation.limits import PORT_MAX, PORT_MIN
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


class StopForm(forms.Form):
    server_pid = forms.IntegerField(min_value=0)
    server_create_time = forms.FloatField()
    grace_seconds = forms.FloatField(min_value=0, max_value=MAX_GRACE_SECONDS, required=False)
    escalate = forms.BooleanField(required=False)

    def clean_grace_seconds(self) -> float:
        grace = self.cleaned_data.get("grace_seconds")
        return float(DEFAULT_GRACE_SECONDS) if grace is None else grace


class FreePortForm(forms.Form):
    near = forms.IntegerField(
        min_value=PORT_MIN, max_value=PORT_MAX, initial=8000, label="Near port"
    )
    count = forms.IntegerField(min_value=1, max_value=20, initial=5, label="How many")
