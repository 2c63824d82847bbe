"""The Sync page shows alerts given up on (issue 18, row 2): the outbox's given-up record, written as the
consumer's delivery thread writes it, appears as an error naming the run, the tenant, the channel and why
(hostile tenant names inert)."""

from __future__ import annotations

from apptest import app, texts

from tenantpilot.config import settings
from tenantpilot.ops import outbox


def test_the_sync_page_shows_an_alert_given_up(db) -> None:
    outbox.give_up(settings(), 41, {"tenant": "Contoso **bold** [x](https://evil.example)", "tenant_id": "t"},
                   {"teams": "teams: HTTP 404"}, 1)
    outbox.give_up(settings(), 42, None, {"webhook": "webhook: HTTP 307 redirect (to evil.example) not followed"}, 1)
    shown = texts(app("sync"))
    assert "Alert of run 41 (Contoso **bold** [x](https://evil.example)) never reached teams: teams: HTTP 404" in shown
    assert "Alert of run 42 (unknown tenant) never reached webhook: webhook: HTTP 307 redirect" in shown
