"""`{% load console_forms %}`: what a form's error summary needs."""

from __future__ import annotations

from django import forms, template

register = template.Library()


@register.filter
def invalid_fields(form: forms.BaseForm) -> list[forms.BoundField]:
    """The visible fields with an error, in the form's order (the summary links to each)."""
    return [field for field in form.visible_fields() if field.errors]
