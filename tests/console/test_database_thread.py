"""A service's own database thread: its work runs off asgiref's shared thread, and a service
that keeps its connection gets a new one after a call failed."""

from __future__ import annotations

import threading

import pytest
from django import db

from console.foundation.database_thread import DatabaseThread

pytestmark = pytest.mark.django_db(transaction=True)


def _connection_and_thread():
    from django.contrib.auth import get_user_model

    get_user_model().objects.exists()
    return id(db.connection.connection), threading.current_thread().name


def _holds_a_connection() -> bool:
    return db.connection.connection is not None


def _fail():
    raise db.OperationalError("server closed the connection unexpectedly")


async def test_a_kept_connection_is_replaced_after_a_failed_call():
    thread = DatabaseThread("test-db", as_request=False)
    try:
        first, name = await thread.run(_connection_and_thread)
        again, _ = await thread.run(_connection_and_thread)
        assert name.startswith("test-db") and again == first  # kept between calls
        with pytest.raises(db.OperationalError):
            await thread.run(_fail)
        if not db.connection.settings_dict["NAME"].startswith("file:memorydb"):
            # (Django never closes an in-memory SQLite database: it would lose it.)
            assert not await thread.run(_holds_a_connection)  # closed, not kept broken
        await thread.run(_connection_and_thread)  # and the next call works
    finally:
        await thread.close()


async def test_wrapped_work_runs_on_the_services_own_thread():
    thread = DatabaseThread("own-db")
    try:
        _conn, name = await thread.wrap(_connection_and_thread)()
        assert name.startswith("own-db")
    finally:
        await thread.close()
