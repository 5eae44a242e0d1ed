"""Each shared limit has one home: the port range in console.foundation.limits, the default grace
of a stop in ports.stopping. Code and templates use the constant, never the number itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.foundation.limits import PORT_MAX, PORT_MIN, is_port, validate_port
from ports.stopping import DEFAULT_GRACE_SECONDS

ROOT = Path(__file__).resolve().parent.parent
# The pure engines may not import the foundation; they only report ports the kernel gave them.
ENGINES = ("ports/inventory", "health/probes")


def _sources() -> list[Path]:
    files = [
        path
        for package in ("console", "ports", "health")
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    ]
    return files + list((ROOT / "templates").rglob("*.html"))


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_it_writes_the_highest_port_number_in_one_place_only():
    spelled_out = sorted(
        _relative(path)
        for path in _sources()
        if "65535" in path.read_text()
        and _relative(path) != "console/foundation/limits.py"
        and not _relative(path).startswith(ENGINES)
    )
    assert spelled_out == []


@pytest.mark.parametrize("port", [PORT_MIN, 8000, PORT_MAX])
def test_it_takes_every_port_number(port):
    assert is_port(port)
    validate_port("port", port)


@pytest.mark.parametrize("value", [0, PORT_MAX + 1, -1, True, 80.0, "80", None])
def test_it_refuses_what_is_not_a_port_number_by_name(value):
    assert not is_port(value)
    with pytest.raises(ValueError) as refused:
        validate_port("near", value)
    assert str(refused.value) == f"near must be an integer between 1 and 65535, got {value!r}"


def test_it_states_the_default_grace_nowhere_but_in_its_constant():
    template = (ROOT / "templates/ports/detail.html").read_text()
    assert 'name="grace_seconds" value="5"' not in template
    assert "after 5 s" not in template and "up to 5 seconds" not in template


def test_it_gives_the_api_and_the_page_form_the_same_default_grace():
    from ports.api import TerminateIn
    from ports.forms import TerminateForm

    assert TerminateIn(pid=2, create_time=1.0).grace_seconds == DEFAULT_GRACE_SECONDS
    form = TerminateForm({"pid": 2, "create_time": 1.0})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["grace_seconds"] == DEFAULT_GRACE_SECONDS


@pytest.mark.django_db
def test_it_confirms_a_terminate_with_the_default_grace(client, operator_user, listening_child):
    child = listening_child()
    client.force_login(operator_user)
    response = client.get(
        f"/ports/{child.port}/terminate/",
        {"pid": child.pid, "create_time": child.create_time()},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert f'name="grace_seconds" value="{DEFAULT_GRACE_SECONDS}"' in body
    assert f"waits up to {DEFAULT_GRACE_SECONDS} seconds" in body
    assert f"after {DEFAULT_GRACE_SECONDS} s, send SIGKILL" in body
