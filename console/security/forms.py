"""Forms of the console's own pages: security settings, personal tokens, users."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.contrib.auth.password_validation import (
    password_validators_help_text_html,
    validate_password,
)
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.html import format_html

from console.foundation import runtime_settings
from console.foundation.models import SecuritySettings
from console.foundation.roles import ROLES
from console.security.role_words import role_words

ROLE_CHOICES = [(role, role_words(role)) for role in ROLES]


class SecuritySettingsForm(forms.ModelForm):
    class Meta:
        model = SecuritySettings
        fields = list(runtime_settings.EDITABLE)
        widgets = {
            "allowed_networks": forms.Textarea(attrs={"rows": 3}),
            "check_networks": forms.Textarea(attrs={"rows": 3}),
        }
        # Short labels (an error repeats its field's label); the rules go under the field.
        labels = {
            "allowed_networks": "Allowed networks",
            "check_networks": "Check networks",
            "command_checks": "Allow command checks in LAN mode",
            "lockout_failures": "Failed sign-ins per username and address",
            "lockout_username_failures": "Failed sign-ins per username from anywhere",
            "lockout_minutes": "Cool-off (minutes)",
        }
        help_texts = {
            "allowed_networks": (
                "Who may reach the console: CIDR, one per line. Loopback is always allowed."
            ),
            "check_networks": (
                "Where health checks may connect besides this machine: CIDR, one per line. "
                "Link-local and metadata addresses only when listed exactly."
            ),
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
        error_messages={"required": "choose at least one scope"},
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)",
        min_value=1,
        max_value=365,
        initial=30,
        error_messages={"invalid": "a whole number of days, 1 to 365"},
    )


class NewUserForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="viewer")
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        required=False,
        strip=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The rules before they are broken, from the validators that will judge the password.
        self.fields["password"].help_text = format_html(
            "{}{}",
            "Leave it empty to get a one-time sign-in link, shown here for you to pass on. "
            "A password must meet these rules:",
            password_validators_help_text_html(),
        )

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("a user with that name exists")
        return username

    def clean(self):
        data = super().clean()
        # Judged even when the username is refused, so every error shows at once.
        username = data.get("username") or str(self.data.get("username", "")).strip()
        if data.get("password"):
            try:
                validate_password(data["password"], get_user_model()(username=username))
            except forms.ValidationError as error:
                self.add_error("password", error)  # next to the field, every rule it breaks
        return data


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)
    active = forms.BooleanField(required=False)


class ConsoleSetPasswordForm(SetPasswordForm):
    """Django judges the confirmation field, and only once both match: here the rules judge the
    new password beside its own field, and a mismatch shows beside the confirmation, at once."""

    def clean(self):
        self.validate_passwords("new_password1", "new_password2")
        self.validate_password_for_user(self.user, "new_password1")
        return self.cleaned_data


class ConsolePasswordChangeForm(ConsoleSetPasswordForm, PasswordChangeForm):
    """The same, after the old password (PasswordChangeForm's own field and field order)."""
