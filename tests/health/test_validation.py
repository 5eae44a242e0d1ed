"""A check's problems all at once, in words that name the field; timeouts that fit the interval."""

from __future__ import annotations

import json

import pytest

from health import config, specs
from health.forms import CheckForm, labelled
from health.models import Check

pytestmark = pytest.mark.django_db


def _form_data(**fields) -> dict:
    return {
        "name": "web",
        "type": "http",
        "interval_s": 30,
        "failures_before_down": 2,
        "successes_before_up": 1,
        "url": "http://127.0.0.1:5000/",
        "method": "GET",
        "expected_status": "200",
        **fields,
    }


def test_it_names_every_bad_field_of_a_definition_at_once():
    with pytest.raises(specs.InvalidCheck) as raised:
        specs.validate(
            {
                "name": "",
                "type": "http",
                "interval_s": "soon",
                "warn_ms": -5,
                "target": {"url": "", "method": "FETCH", "expected_status": [42]},
            }
        )
    fields = [field for field, _ in raised.value.errors]
    assert fields == [
        "name",
        "interval_s",
        "warn_ms",
        "target.url",
        "target.method",
        "target.expected_status",
    ]
    # The first problem stays the exception's field; its text lists them all.
    assert raised.value.field == "name"
    assert "target.method" in str(raised.value) and "interval_s" in str(raised.value)


def test_it_says_an_empty_url_is_required_rather_than_not_a_url():
    with pytest.raises(specs.InvalidCheck) as raised:
        specs.validate({"name": "web", "type": "http", "target": {"url": ""}})
    assert raised.value.errors == [("target.url", "is required: an http:// or https:// URL")]


def test_a_tcp_check_without_a_port_says_the_port_is_required():
    with pytest.raises(specs.InvalidCheck) as raised:
        specs.validate({"name": "db", "type": "tcp", "target": {"host": "127.0.0.1"}})
    assert raised.value.errors == [("target.port", "is required: a number from 1 to 65535")]


@pytest.mark.parametrize(
    ("interval", "timeout"), [(30, 5.0), (5, 4.0), (2, 1.6), (1, 0.8), (86400, 5.0)]
)
def test_a_timeout_nobody_set_fits_the_interval(interval, timeout):
    definition = specs.validate(
        {"name": "db", "type": "tcp", "interval_s": interval, "target": {"port": 5432}}
    )
    assert definition["timeout_s"] == timeout


def test_an_explicit_timeout_longer_than_the_interval_is_refused_naming_the_field():
    with pytest.raises(specs.InvalidCheck) as raised:
        specs.validate(
            {"name": "db", "type": "tcp", "interval_s": 2, "timeout_s": 5, "target": {"port": 1}}
        )
    assert raised.value.errors == [("timeout_s", "5 s is longer than the interval (2 s)")]


def test_the_api_gives_a_two_second_check_a_timeout_that_fits(client, operator_user, bearer):
    body = {"name": "db", "type": "tcp", "target": {"port": 5432}, "interval_s": 2}
    created = client.post(
        "/api/v1/checks", json.dumps(body), "application/json", headers=bearer(operator_user)
    )
    assert created.status_code == 201, created.content
    assert created.json()["timeout_s"] == 1.6

    body = {**body, "name": "db2", "timeout_s": 5}
    refused = client.post(
        "/api/v1/checks", json.dumps(body), "application/json", headers=bearer(operator_user)
    )
    assert refused.status_code == 422
    assert refused.json()["detail"] == "timeout_s: 5 s is longer than the interval (2 s)"


def test_a_shorter_interval_takes_a_default_timeout_along_but_keeps_a_chosen_one(
    client, operator_user, bearer
):
    headers = bearer(operator_user)
    default = Check.objects.create(name="a", type="tcp", target={"port": 1}, timeout_s=5.0)
    chosen = Check.objects.create(name="b", type="tcp", target={"port": 1}, timeout_s=4.0)
    answer = client.patch(
        f"/api/v1/checks/{default.id}", {"interval_s": 2}, "application/json", headers=headers
    )
    assert answer.status_code == 200 and answer.json()["timeout_s"] == 1.6
    answer = client.patch(
        f"/api/v1/checks/{chosen.id}", {"interval_s": 2}, "application/json", headers=headers
    )
    assert answer.status_code == 422
    assert answer.json()["detail"] == "timeout_s: 4 s is longer than the interval (2 s)"
    chosen.refresh_from_db()
    assert (chosen.interval_s, chosen.timeout_s) == (30, 4.0)


def test_a_yaml_check_without_a_timeout_fits_its_interval(admin_user):
    config.import_yaml(
        "services:\n  db:\n    checks:\n      - {type: tcp, port: 5432, interval: 2s}\n", admin_user
    )
    assert Check.objects.get().timeout_s == 1.6


def test_the_form_leaves_the_timeout_empty_and_fills_one_that_fits(client, operator_user):
    client.force_login(operator_user)
    page = client.get("/checks/new/").content.decode()
    assert 'name="timeout_s"' in page and "80% of a shorter interval" in page
    response = client.post("/checks/new/", _form_data(interval_s=2))
    assert response.status_code == 302
    assert Check.objects.get(name="web").timeout_s == 1.6


def test_the_form_marks_every_error_at_once_with_the_fields_label():
    form = CheckForm(_form_data(name="", interval_s="", url="", expected_status="two hundred"))
    assert not form.is_valid()
    assert form.errors["interval_s"] == [
        "Interval must be a number of seconds, at least 1 (e.g. 30)"
    ]
    assert form.errors["url"] == ["URL is required: an http:// or https:// URL"]
    assert form.errors["expected_status"] == ["Expected status: numbers such as 200, 204"]
    assert form.errors["name"] == ["Name is required: what is checked"]
    assert form.error_summary() == [
        "Name is required: what is checked",
        "Interval must be a number of seconds, at least 1 (e.g. 30)",
        "URL is required: an http:// or https:// URL",
        "Expected status: numbers such as 200, 204",
    ]


def test_the_form_names_the_field_of_the_validators_own_messages():
    form = CheckForm(_form_data(interval_s=10, timeout_s=30))
    assert not form.is_valid()
    assert form.errors["timeout_s"] == ["Timeout: 30 s is longer than the interval (10 s)"]
    form = CheckForm(_form_data(type="tcp", url="", host="127.0.0.1"))
    assert not form.is_valid()
    assert form.errors["port"] == ["Port is required: a number from 1 to 65535"]


def test_the_page_lists_the_problems_above_the_form_and_beside_each_field(client, operator_user):
    client.force_login(operator_user)
    response = client.post("/checks/new/", _form_data(interval_s="", url="not a url"))
    html = response.content.decode()
    assert response.status_code == 422
    assert "2 problems to fix" in html  # the interval and the URL, both at once
    assert "Interval must be a number of seconds" in html
    assert "URL: &#x27;not a url&#x27; is not an http:// or https:// URL" in html
    assert html.count("Interval must be a number of seconds") == 2  # the list and the field
    assert "near:" not in html and "interval_s:" not in html


@pytest.mark.parametrize(
    ("label", "message", "expected"),
    [
        (
            "Interval (s)",
            "must be between 1 and 86400 seconds",
            "Interval must be between 1 and 86400 seconds",
        ),
        ("URL", "is required: an http:// URL", "URL is required: an http:// URL"),
        ("Timeout (s)", "5 s is longer", "Timeout: 5 s is longer"),
        ("Interval (s)", "Interval must be a number", "Interval must be a number"),
    ],
)
def test_labelled_makes_a_sentence_that_names_the_field(label, message, expected):
    assert labelled(label, message) == expected


def test_a_field_the_form_could_not_read_is_compared_with_nothing():
    form = CheckForm(_form_data(interval_s="", timeout_s=60, crit_ms="soon", warn_ms=100))
    assert not form.is_valid()
    assert set(form.errors) == {"interval_s", "crit_ms"}  # no "longer than the interval (30 s)"
