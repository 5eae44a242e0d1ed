"""What a non-admin sees of a check's secrets, value by value, and what an edit that sends the
redacted view back keeps. No database: these are the functions the API, pages and export use.
"""

from __future__ import annotations

import pytest

from health import secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:pw@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("postgresql://token@db/app", "postgresql://***@db/app"),
        # An @ or a : inside the password: the host is after the last @, the user before the
        # first :, so no part of the password shows.
        ("postgresql://app:p@ss@db/app", "postgresql://app:***@db/app"),
        ("postgresql://app:pa:ss@db/app", "postgresql://app:***@db/app"),
        (
            "postgresql://db/app?sslmode=require&Password=pw&application_name=",
            "postgresql://db/app?sslmode=require&Password=***&application_name=",
        ),
        ("postgresql://db/app?sslmode=require&x=%20", "postgresql://db/app?sslmode=require&x=%20"),
        ("http://127.0.0.1:5000/health", "http://127.0.0.1:5000/health"),
    ],
)
def test_a_url_shows_everything_but_its_passwords(url, shown):
    assert secrets.redact_url(url) == shown


def test_each_check_type_hides_its_own_secret_fields():
    http = {
        "url": "http://user:pw@127.0.0.1/",
        "headers": {"Authorization": "Bearer x", "X-Empty": ""},
        "body": "kept",
    }
    assert secrets.redact_target("http", http) == {
        "url": "http://user:***@127.0.0.1/",
        "headers": {"Authorization": "***", "X-Empty": ""},
        "body": "kept",
    }
    assert secrets.redact_target("query", {"dsn": "mysql://a:pw@127.0.0.1/x", "query": "q"}) == {
        "dsn": "mysql://a:***@127.0.0.1/x",
        "query": "q",
    }
    assert secrets.redact_target("redis", {"password": "pw", "host": "h"}) == {
        "password": "***",
        "host": "h",
    }
    assert secrets.redact_target("tcp", {"send": "", "host": "h"}) == {"send": "", "host": "h"}
    assert secrets.redact_target("ping", {"command": "x"}) == {"command": "x"}  # no secrets


def test_an_edit_that_sends_the_redacted_view_back_keeps_every_stored_secret():
    stored = {
        "url": "http://user:pw@127.0.0.1/",
        "headers": {"Authorization": "Bearer x", "X-Key": "k"},
    }
    incoming = {
        "url": "http://user:***@127.0.0.1/",  # the view, unchanged
        "headers": {"Authorization": "***", "X-Key": "new", "X-Added": "***"},
    }
    assert secrets.keep_unchanged_secrets("http", stored, incoming) == {
        "url": "http://user:pw@127.0.0.1/",
        "headers": {"Authorization": "Bearer x", "X-Key": "new", "X-Added": "***"},
    }


def test_a_secret_the_edit_leaves_out_or_never_had_is_not_invented():
    # The first secret field is missing on one side; the second is still judged.
    stored = {"headers": {"A": "a"}}
    incoming = {"url": "http://127.0.0.1/", "headers": {"A": "***"}}
    assert secrets.keep_unchanged_secrets("http", stored, incoming) == {
        "url": "http://127.0.0.1/",
        "headers": {"A": "a"},
    }
    assert secrets.keep_unchanged_secrets("redis", {}, {"password": "***"}) == {"password": "***"}
    # A header map replaced by text (or text by a map) is the edit's, not merged.
    assert secrets.keep_unchanged_secrets("http", {"headers": {"A": "a"}}, {"headers": "A: b"}) == {
        "headers": "A: b"
    }
    assert secrets.keep_unchanged_secrets("ping", {"command": "x"}, {"command": "***"}) == {
        "command": "***"
    }
