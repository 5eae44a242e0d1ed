"""/ws/health/ pushes only what a page shows: the list's rows, or one check's page."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from health import live, operations, storage
from health.consumers import HealthPageConsumer
from health.models import Check

pytestmark = pytest.mark.django_db(transaction=True)


def _check(name: str, service: str = "main_api", port: int = 5000) -> Check:
    return Check.objects.create(
        name=name, service=service, type="tcp", target={"host": "127.0.0.1", "port": port}
    )


async def _connect(user, view: dict) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(HealthPageConsumer.as_asgi(), "/ws/health/")
    communicator.scope["user"] = user
    communicator.scope["origin_verified"] = True
    connected, _ = await communicator.connect()
    assert connected
    # With resync the page gets its current state at once, so we know the view was read.
    await communicator.send_to(text_data=json.dumps({**view, "resync": "1"}))
    return communicator


async def _publish(*checks: Check, ok: bool = True) -> None:
    observations = [
        storage.Observation(check.id, timezone.now(), ok, 7.0, "refused" if not ok else "ok")
        for check in checks
    ]
    transitions = await sync_to_async(storage.store)(observations)
    await live.publish_results(observations, transitions)


async def test_the_list_gets_only_the_rows_its_search_shows(viewer_user):
    api = await sync_to_async(_check)("api")
    other = await sync_to_async(_check)("cache", service="redis", port=6379)
    communicator = await _connect(viewer_user, {"q": "api", "state": ""})
    resynced = await communicator.receive_from(timeout=5)
    assert f'id="check-{api.id}"' in resynced and f'id="check-{other.id}"' not in resynced

    await _publish(api, other)
    pushed = await communicator.receive_from(timeout=5)
    assert f'id="check-{api.id}"' in pushed and 'id="check-summary"' in pushed
    assert f'id="check-{other.id}"' not in pushed  # no target on that page: no htmx error
    await communicator.disconnect()


async def test_a_page_that_has_not_said_what_it_shows_gets_nothing(viewer_user):
    check = await sync_to_async(_check)("api")
    communicator = WebsocketCommunicator(HealthPageConsumer.as_asgi(), "/ws/health/")
    communicator.scope["user"] = viewer_user
    communicator.scope["origin_verified"] = True
    assert (await communicator.connect())[0]
    await _publish(check)
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_a_checks_page_gets_its_state_actions_and_history_as_they_change(operator_user):
    check = await sync_to_async(_check)("api")
    other = await sync_to_async(_check)("db", port=5432)
    communicator = await _connect(operator_user, {"check": str(check.id)})
    first = await communicator.receive_from(timeout=5)
    assert 'id="check-state" class="check-state" hx-swap-oob="true"' in first
    assert "pending" in first

    await _publish(other)  # another check: nothing for this page
    assert await communicator.receive_nothing(timeout=0.3)
    await _publish(check, ok=False)
    pushed = await communicator.receive_from(timeout=5)
    assert 'id="check-live" hx-swap-oob="true"' in pushed
    assert 'id="check-actions" class="head-actions" hx-swap-oob="true"' in pushed
    assert "state-down" in pushed and "pending → " in pushed and "refused" in pushed
    assert "Run now" in pushed  # an operator's actions
    assert 'id="check-summary"' not in pushed  # not on this page
    await communicator.disconnect()


async def test_a_viewers_check_page_gets_no_buttons(viewer_user):
    check = await sync_to_async(_check)("api")
    communicator = await _connect(viewer_user, {"check": str(check.id)})
    first = await communicator.receive_from(timeout=5)
    assert "Run now" not in first and "Pause" not in first
    await communicator.disconnect()


async def test_a_pause_elsewhere_reaches_the_checks_page(operator_user):
    check = await sync_to_async(_check)("api")
    communicator = await _connect(operator_user, {"check": str(check.id)})
    await communicator.receive_from(timeout=5)
    await sync_to_async(operations.pause_check)(operator_user, check)
    pushed = await communicator.receive_from(timeout=5)
    assert "state-paused" in pushed and "Resume" in pushed and "paused by olive" in pushed
    await communicator.disconnect()


async def test_it_ignores_what_it_cannot_read(viewer_user):
    check = await sync_to_async(_check)("api")
    communicator = await _connect(viewer_user, {"q": "", "state": ""})
    await communicator.receive_from(timeout=5)
    for junk in ("not json", "[1, 2]", json.dumps({"check": "x"}), "x" * 5000):
        await communicator.send_to(text_data=junk)
    await _publish(check)  # the list view it had still holds
    assert f'id="check-{check.id}"' in await communicator.receive_from(timeout=5)
    await communicator.disconnect()
