"""`{% load roles %}{{ role|role_words }}`: a role as a person reads it, "viewer (read only)"."""

from __future__ import annotations

from django import template

from console.security import role_words as words

register = template.Library()


@register.filter
def role_words(role: str | None) -> str:
    return words.role_words(role)


@register.filter
def role_powers(role: str | None) -> str:
    return words.role_powers(role)
