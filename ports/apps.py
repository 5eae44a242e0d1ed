from __future__ import annotations

from django.apps import AppConfig


class PortsConfig(AppConfig):
    name = "ports"
