"""The Ports list page: one URL (filters and sort in the query), and the person's preferences."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console.foundation.access import SignedInRequest, require_role
from console.foundation.htmx import HtmxHttpRequest, render_partial_or_page
from console.foundation.roles import VIEWER
from ports import inventory
from ports.list_rows import page_rows
from ports.listing import EXPOSURES, PROTOCOLS, ListenerFilter
from ports.preferences import ListView, preferences_of, save_preferences

TEMPLATE = "ports/list.html"


@require_GET
def port_list(request: HtmxHttpRequest) -> HttpResponse:
    prefs = preferences_of(request.user)
    view = _with_preferences(ListenerFilter.from_params(request.GET), prefs)
    return render_partial_or_page(request, TEMPLATE, "port-table", list_context(view))


@require_POST
@require_role(VIEWER, "ports.list-preferences")
def list_preferences(request: SignedInRequest) -> HttpResponse:
    """Hide system services / group by server: saved for this user, then the table again."""
    flags = {"hide_system": "1", "group": "server"}
    wrong = [name for name, on in flags.items() if request.POST.get(name, on) != on]
    if wrong:
        reason = ", ".join(f"{name} is {flags[name]!r} or left out" for name in wrong)
        return HttpResponse(reason, status=422, content_type="text/plain")
    prefs = save_preferences(
        request.user,
        ListView(
            hide_system="hide_system" in request.POST,
            group_by_server="group" in request.POST,
        ),
    )
    view = _with_preferences(ListenerFilter.from_params(request.POST), prefs)
    if not request.htmx:
        query = urlencode(view.as_query())
        return redirect(reverse("ports:list") + (f"?{query}" if query else ""))
    return render_partial_or_page(request, TEMPLATE, "port-table", list_context(view))


def list_context(view: ListenerFilter) -> dict:
    # A fresh snapshot: a socket opened a moment ago is on the page at once, also without
    # JavaScript. CPU shares cover the last two reads of each process (about a second apart).
    snapshot = inventory.snapshot()
    rows = page_rows(view, snapshot)
    listeners = rows.listeners
    hidden = 0
    if view.hide_system:
        hidden = len(replace(view, hide_system=False).apply(snapshot.listeners, rows.servers))
        hidden -= len(listeners)
    return {
        "view": view,
        "groups": rows.groups,
        "shown": len(listeners),
        "hidden_system": hidden,
        "snapshot": snapshot,
        "total": len(snapshot.listeners),
        "exposed": sum(1 for listener in snapshot.listeners if listener.exposure != "loopback"),
        "protocols": PROTOCOLS,
        "exposures": EXPOSURES,
        "query": view.as_query(),
        "unknown_owners": sum(1 for listener in listeners if not listener.pids),
    }


def _with_preferences(view: ListenerFilter, prefs: ListView) -> ListenerFilter:
    return replace(view, hide_system=prefs.hide_system, group_by_server=prefs.group_by_server)
