"""The Sync and Health pages against the real queue, on each backend (redis, sqlite): enqueue,
dedupe, the worker banner, and a whole sync done by a real huey_consumer subprocess."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from apptest import CONTOSO, DATA, app, explore_table, find_table, texts

from tenantpilot.store import Store


@pytest.fixture
def app_queue(filled: Store, queue_url: str | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app's queue on the backend under test (the `filled` fixture already set the data folder)."""
    from tenantpilot.config import settings

    if queue_url:
        monkeypatch.setenv("REDIS_URL", queue_url)
    else:
        monkeypatch.delenv("REDIS_URL", raising=False)
    settings.cache_clear()
    yield settings().queue_backend
    settings.cache_clear()


def test_sync_page_history_and_worker_banner(filled, app_queue):
    at = app("sync")
    assert not at.exception
    history = find_table(at, "run_id", "status", "duration_s")
    assert len(history) == len(DATA)
    assert set(history["status"]) == {"succeeded"}
    assert any("huey_consumer huey_worker.huey" in w.value for w in at.warning)


def test_sync_now_enqueues_and_reports_already_queued(filled, app_queue):
    at = app("sync")
    at.multiselect(key="sync_tenants").set_value([CONTOSO])  # inside a form: sent with the submit
    next(b for b in at.button if b.label == "Sync now").click().run()
    assert not at.exception
    assert any("queued" in s.value for s in at.success), texts(at)
    run = filled.runs(CONTOSO).row(0, named=True)
    assert run["status"] == "queued"
    at.multiselect(key="sync_tenants").set_value([CONTOSO])  # inside a form: sent with the submit
    next(b for b in at.button if b.label == "Sync now").click().run()
    assert any(f"already queued or running as run {run['run_id']}" in i.value for i in at.info), texts(at)
    assert filled.runs(CONTOSO).height == 2  # the first snapshot + one queued run, not two
    assert "waiting for the worker" in texts(at)


def test_health_page(filled, app_queue):
    at = app("health")
    assert not at.exception
    assert "not running" in texts(at)
    assert "huey_consumer huey_worker.huey" in texts(at)
    last = find_table(at, "tenant_id", "last_run_id")
    assert set(last["tenant_id"]) == set(DATA)


# --- end to end: the real queue, a real huey_consumer, the Graph simulator ---------------------
def test_sync_through_the_real_queue_and_consumer(queue_env, queue_consumer, sim):
    """Add a tenant and sync it through the pages; the worker subprocess does the sync."""
    at = app()
    at.text_input(key="new_tenant_id").input(CONTOSO)
    at.text_input(key="new_tenant_name").input("Contoso")
    at.button[0].click().run()
    assert any("Added Contoso" in s.value for s in at.success), texts(at)

    at.switch_page("app_pages/sync.py").run()
    at.multiselect(key="sync_tenants").set_value([CONTOSO])
    next(b for b in at.button if b.label == "Sync now").click().run()
    assert not at.exception
    assert any("queued" in s.value for s in at.success), texts(at)

    deadline = time.monotonic() + 180
    while True:
        at.run()  # what the live-status fragment does every second in a browser
        assert not at.exception
        page = texts(at)
        if ":green-badge[succeeded]" in page or ":red-badge[failed]" in page:
            break
        assert time.monotonic() < deadline, f"sync did not finish:\n{page}\n{queue_consumer.output()[-3000:]}"
        time.sleep(0.5)
    assert ":green-badge[succeeded]" in page, page
    history = find_table(at, "run_id", "status", "duration_s")
    run = history.iloc[0]
    assert run["status"] == "succeeded" and run["policy_count"] > 0 and run["setting_count"] > run["policy_count"]
    assert run["request_count"] > 0
    assert not any("No sync worker" in w.value for w in at.warning)  # the worker's heartbeat is seen

    at.switch_page("app_pages/explore.py").run()
    assert not at.exception
    shown = explore_table(at).value
    assert len(shown) == min(1000, int(run["setting_count"]))
    assert set(shown["tenant"]) == {"Contoso"}
    assert f"of **{int(run['setting_count']):,}** matching rows" in texts(at)


