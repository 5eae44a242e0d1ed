"""A person's Ports list preferences: hide system services, group rows by server.

They are the person's, not the URL's: a link to /ports/ opens the list the way its reader
likes it. Saving one is the person's own view of the page, so any signed-in user may, and it
is not audited (it changes nothing on the machine or in the console's configuration).
"""

from __future__ import annotations

from dataclasses import dataclass

from ports.models import ListPreference


@dataclass(frozen=True)
class ListView:
    hide_system: bool = False
    group_by_server: bool = False


def preferences_of(user) -> ListView:
    if user is None or not user.is_authenticated:
        return ListView()
    stored = ListPreference.objects.filter(user=user).first()
    if stored is None:
        return ListView()
    return ListView(hide_system=stored.hide_system, group_by_server=stored.group_by_server)


def save_preferences(user, view: ListView) -> ListView:
    ListPreference.objects.update_or_create(
        user=user,
        defaults={"hide_system": view.hide_system, "group_by_server": view.group_by_server},
    )
    return view
