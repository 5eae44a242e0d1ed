"""The ports app's records: the sampler's history, the port registry, a person's list view."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class PortEvent(models.Model):
    OPENED, CLOSED, OWNER_CHANGED = "opened", "closed", "owner-changed"
    KINDS = [(OPENED, "opened"), (CLOSED, "closed"), (OWNER_CHANGED, "owner changed")]

    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=KINDS)
    # The listener's identity (never the port alone: v4/v6 and tcp/udp are different sockets).
    proto = models.CharField(max_length=3)
    family = models.CharField(max_length=4)
    address = models.CharField(max_length=64)
    port = models.PositiveIntegerField()
    inode = models.BigIntegerField()
    exposure = models.CharField(max_length=8)
    uid = models.IntegerField()
    # Who held it at that moment (for "closed": who held it last).
    pid = models.IntegerField(null=True, blank=True)
    pids = models.JSONField(default=list, blank=True)
    process_name = models.CharField(max_length=255, blank=True)
    user = models.CharField(max_length=64, blank=True)
    cmdline = models.TextField(blank=True)
    cwd = models.TextField(blank=True)
    create_time = models.FloatField(null=True, blank=True)
    service = models.CharField(max_length=128, blank=True)
    # True for listeners already open when the sampler started: their real open time is unknown.
    seen_at_start = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["port", "at"], name="portevent_port_at"),
            models.Index(fields=["at"], name="portevent_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.proto} {self.address}:{self.port} {self.kind}"

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        return (self.proto, self.family, self.address, self.port, self.inode)


class Project(models.Model):
    """A project's place in the team's port registry (.devports.yml)."""

    name = models.SlugField(max_length=100, unique=True, allow_unicode=False)
    preferred_port = models.PositiveIntegerField()
    fallback_ports = models.JSONField(default=list, blank=True)  # ordered
    service_type = models.CharField(max_length=50, blank=True)
    # Recognises the project's own process by its cwd or command line.
    working_directory = models.CharField(max_length=500, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def ports(self) -> list[int]:
        return [self.preferred_port, *self.fallback_ports]


class ListPreference(models.Model):
    """How a person likes the Ports list: remembered per user, not carried in the URL."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="port_list_preference"
    )
    hide_system = models.BooleanField(default=False)
    group_by_server = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user}: hide system {self.hide_system}, group {self.group_by_server}"
