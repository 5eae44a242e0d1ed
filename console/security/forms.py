"""Forms of the console's own pages: security settings, personal tokens, users."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.validators import MaxValueValidator, MinValueValidator

from console.foundation import runtime_settings
from console.foundation.models import SecuritySettings
from console.foundation.roles import ROLES


class SecuritySettingsForm(forms.ModelForm):
    class Meta:
        model = SecuritySettings
        fields = list(runtime_settings.EDITABLE)
        widgets = {
            "allowed_networks": forms.Textarea(attrs={"rows": 3}),
            "check_networks": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {
            "allowed_networks": "Allowed networks (CIDR, one per line; loopback always allowed)",
            "check_networks": (
                "Check networks: where health checks may connect besides this machine (CIDR, "
                "one per line; link-local and metadata addresses only when listed exactly)"
            ),
            "command_checks": "Allow command checks in LAN mode",
            "lockout_failures": "Failed sign-ins per username and address",
            "lockout_username_failures": "Failed sign-ins per username from anywhere",
            "lockout_minutes": "Cool-off (minutes)",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (low, high) in runtime_settings.LIMITS.items():
            self.fields[name].widget.attrs.update(min=low, max=high)
            self.fields[name].validators += [MinValueValidator(low), MaxValueValidator(high)]

    def _clean_networks(self, field: str) -> str:
        try:
            networks = runtime_settings.parse_networks(self.cleaned_data[field])
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        return "\n".join(str(network) for network in networks)

    def clean_allowed_networks(self) -> str:
        return self._clean_networks("allowed_networks")

    def clean_check_networks(self) -> str:
        return self._clean_networks("check_networks")


class PersonalTokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in ("read", "operate", "admin")],
        widget=forms.CheckboxSelectMultiple,
        initial=["read"],
    )
    expires_in_days = forms.IntegerField(min_value=1, max_value=365, initial=30)


class NewUserForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=[(role, role) for role in ROLES], initial="viewer")
    password = forms.CharField(
        widget=forms.PasswordInput,
        required=False,
        strip=False,
        help_text="Leave empty to send a one-time sign-in link instead.",
    )

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("a user with that name exists")
        return username

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("username"):
            validate_password(data["password"], get_user_model()(username=data["username"]))
        return data


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=[(role, role) for role in ROLES])
    active = forms.BooleanField(required=False)
