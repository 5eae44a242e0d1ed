from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_role_groups(sender, **kwargs) -> None:
    from django.contrib.auth.models import Group

    from console.foundation.roles import ROLES

    for role in ROLES:
        Group.objects.get_or_create(name=role)


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        post_migrate.connect(_ensure_role_groups, sender=self)
        from console.security import checks, signals  # noqa: F401  (registers the system checks)

        signals.connect()
