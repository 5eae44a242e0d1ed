"""The port registry against real sockets: statuses, allocation, reserved ports."""

from __future__ import annotations

import os

import pytest

from ports import inventory
from ports.free_ports import find_free_port
from ports.models import Project
from ports.registry import devports
from ports.registry import operations as registry

pytestmark = pytest.mark.django_db


def _project(name, preferred, fallbacks=(), directory="") -> Project:
    return Project.objects.create(
        name=name,
        preferred_port=preferred,
        fallback_ports=list(fallbacks),
        working_directory=directory,
    )


def _status(project):
    return registry.status_of(project, inventory.snapshot())


def test_it_validates_ports_and_duplicates():
    bad = devports.ProjectSpec(name="API Gateway", preferred_port=70000, fallback_ports=[0])
    fields = {(p.field, p.message.split(" ")[0]) for p in devports.validate_spec(bad)}
    assert ("name", "use") in fields and ("preferred_port", "must") in fields
    assert ("fallback_ports", "must") in fields
    twice = devports.ProjectSpec(name="api", preferred_port=5000, fallback_ports=[5001, 5000])
    assert [p.message for p in devports.validate_spec(twice)] == ["port 5000 is listed twice"]


def test_it_warns_but_accepts_two_projects_sharing_a_port(operator_user):
    registry.save_project(operator_user, devports.ProjectSpec("api", 5000, [5001]))
    _, warnings = registry.save_project(operator_user, devports.ProjectSpec("users", 5001))
    assert warnings == ["port 5001 is listed by api, users"]
    assert Project.objects.count() == 2


def test_it_refuses_a_viewer_changing_the_registry(viewer_user):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        registry.save_project(viewer_user, devports.ProjectSpec("api", 5000))
    assert not Project.objects.exists()


def test_it_says_running_when_the_project_holds_its_preferred_port(listening_child):
    child = listening_child()
    project = _project("api", child.port, directory=os.getcwd())
    status = _status(project)
    assert status.status == "running" and status.holder.pid == child.pid


def test_it_says_on_fallback_when_the_project_runs_on_a_fallback(listening_child):
    preferred = find_free_port(31000)[0]
    child = listening_child()
    project = _project("api", preferred, [child.port], directory=os.getcwd())
    assert _status(project).status == "on-fallback" and _status(project).port == child.port


def test_it_names_the_other_process_in_a_conflict(listening_child):
    child = listening_child()
    project = _project("api", child.port, directory="/srv/elsewhere")
    status = _status(project)
    assert status.status == "conflict"
    assert status.message == f"port {child.port} is held by python (pid {child.pid})"


def test_it_says_stopped_when_nothing_holds_its_ports():
    free = find_free_port(31100, count=2)
    assert _status(_project("api", free[0], [free[1]])).status == "stopped"


def test_it_allocates_the_preferred_port_when_free():
    free = find_free_port(31200, count=2)
    project = _project("api", free[0], [free[1]])
    allocation = registry.allocate(project)
    assert allocation.port == free[0] and "preferred port" in allocation.reason


def test_it_allocates_a_fallback_and_says_why_the_preferred_was_skipped(listening_child):
    holder = listening_child()
    fallback = find_free_port(holder.port + 1)[0]
    _project("other", holder.port)
    project = _project("api", holder.port, [fallback])
    allocation = registry.allocate(project)
    assert allocation.port == fallback
    assert allocation.skipped == (f"{holder.port} held by python (pid {holder.pid}): other",)
    assert "fallback #1" in allocation.reason


def test_it_offers_the_next_unreserved_port_when_all_are_taken(listening_child):
    first, second = listening_child(), listening_child()
    project = _project("api", first.port, [second.port])
    reserved_next = find_free_port(first.port + 1)[0]
    _project("neighbour", reserved_next)
    allocation = registry.allocate(project)
    assert allocation.outside_registry
    assert allocation.port not in (first.port, second.port, reserved_next)
    assert allocation.port > first.port and "no project reserves" in allocation.reason


def test_it_never_offers_another_projects_port_as_free(client, viewer_user, bearer):
    near = find_free_port(32000)[0]
    _project("api", near, [near + 1])
    ports = client.get(
        "/api/v1/ports/free", {"near": near, "count": 2}, headers=bearer(viewer_user)
    ).json()["ports"]
    assert near not in ports and near + 1 not in ports


def test_it_tags_a_listener_with_its_project(client, viewer_user, bearer, listening_child):
    child = listening_child()
    _project("api", child.port, directory=os.getcwd())
    body = client.get(f"/api/v1/ports/{child.port}", headers=bearer(viewer_user)).json()
    assert body["listeners"][0]["project"] == "api"
