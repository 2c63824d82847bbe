"""Alerts after scheduled syncs, with real parts: a real huey_consumer runs scheduled syncs against the
simulator, a change made through the simulator's control API reaches a real local HTTP webhook
receiver (that answers 500 first: the message arrives on a retry, the sync still succeeded) and a
real local SMTP server (aiosmtpd); an unchanged tenant's next scheduled sync sends nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from realparts import CONTOSO, Consumer, free_port, run_cli, store_of

POLICY = "POC_WIN_D_CO_SBL_MSZT_DeviceRestrictions"
SETTING = "defenderDetectedMalwareActions.lowSeverity"
SECRET_PATH = "/hook/s3cr3t-path-token"


class Receiver:
    """A threading http.server that records every POST; the first `fail_first` answers are 500."""

    def __init__(self, fail_first: int = 1) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = 500 if len(receiver.answers) < receiver.fail_first else 200
                receiver.answers.append(status)
                if status == 200:
                    receiver.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Mailbox:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Any]] = []
        self.logins: list[tuple[bytes, bytes]] = []

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alerts", b"p@ss-w0rd")
        if isinstance(data, LoginPassword):
            self.logins.append((data.login, data.password))
        return AuthResult(success=ok)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1)
    yield r
    r.server.shutdown()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=box.authenticate,
                            auth_require_tls=False)
    controller.start()
    yield box, port
    controller.stop()


def wait_for(check, timeout: float = 120, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def scheduled_sync(env: dict[str, str]) -> dict:
    from tenantpilot.ops import queue

    store = store_of(env)
    queued = queue.enqueue_sync(CONTOSO, store, trigger="schedule")
    assert queued.created
    return wait_for(lambda: (r := store.get_run(queued.run_id)) and r["status"] not in ("queued", "running") and r,
                    what=f"run {queued.run_id}")


def log_events(env: dict[str, str]) -> list[dict]:
    path = Path(env["TENANTPILOT_LOG_DIR"]) / "worker-combined.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_scheduled_sync_alerts_webhook_and_mail(queue_env: dict[str, str], sim, tmp_path: Path,
                                               receiver: Receiver, mailbox: tuple[Mailbox, int]) -> None:
    """On each queue backend (the retry is a scheduled Huey task)."""
    box, smtp_port = mailbox
    env = {**queue_env, "TENANTPILOT_ALERT_WEBHOOK": receiver.url,
           "TENANTPILOT_ALERT_SMTP": f"smtp://alerts:p%40ss-w0rd@127.0.0.1:{smtp_port}",
           "TENANTPILOT_ALERT_TO": "ops@example.com", "TENANTPILOT_APP_URL": "https://tp.example.com"}
    consumer = Consumer(env, tmp_path / "consumer.log").start()
    control = f"{sim.url}/_sim/tenants/{CONTOSO}"
    policy = next(p for p in requests.get(control, verify=str(sim.ca_path), timeout=10).json()["policies"]
                  if p["name"] == POLICY)
    change = f"{control}/policies/{policy['collection']}/{policy['id']}/change"
    old = None
    try:
        run_cli(env, "tenants", "add", CONTOSO, "--name", "Contoso")
        first = scheduled_sync(env)  # the first snapshot: nothing to compare with, nothing sent
        assert first["status"] == "succeeded" and first["trigger"] == "schedule"
        wait_for(lambda: any(e["event"] == "no alert: nothing changed" and e.get("run_id") == first["run_id"]
                             for e in log_events(env)), what="the first run's alert decision")
        assert receiver.answers == [] and box.messages == []

        answer = requests.post(change, json={"setting_id": SETTING, "value": "block"}, verify=str(sim.ca_path),
                               timeout=10)
        assert answer.status_code == 200, answer.text
        old = answer.json()["old"]
        second = scheduled_sync(env)
        assert second["status"] == "succeeded"  # the receiver's 500 never touches the sync
        wait_for(lambda: receiver.bodies, what="the webhook message (after a 500 and a retry)")
        assert receiver.answers == [500, 200]
        body = receiver.bodies[0]
        assert body["run_id"] == second["run_id"] and body["tenant_id"] == CONTOSO
        assert body["counts"]["settings_changed"] >= 1
        hit = [c for c in body["changes"] if c["policy"] == POLICY]
        assert hit and hit[0]["new"] == "block" and hit[0]["old"] == old, body["changes"]
        assert body["url"].startswith("https://tp.example.com/compare?cmp_tenants=Contoso")
        assert POLICY in body["text"]

        wait_for(lambda: box.messages, what="the mail")
        (rcpt, mail), = box.messages
        assert rcpt == ["ops@example.com"] and "Contoso" in mail["Subject"]
        assert box.logins == [(b"alerts", b"p@ss-w0rd")]  # the URL's percent-encoded password, decoded
        text = mail.get_payload(decode=True).decode()
        assert POLICY in text and "block" in text and "https://tp.example.com/compare" in text

        third = scheduled_sync(env)  # nothing changed since: nothing sent
        wait_for(lambda: any(e["event"] == "no alert: nothing changed" and e.get("run_id") == third["run_id"]
                             for e in log_events(env)), what="the third run's alert decision")
        assert receiver.answers == [500, 200] and len(box.messages) == 1

        # the webhook URL and the mail password are secrets: never in a log
        logged = (Path(env["TENANTPILOT_LOG_DIR"]) / "worker-combined.log").read_text() + consumer.output()
        assert SECRET_PATH not in logged and "p%40ss-w0rd" not in logged and "p@ss-w0rd" not in logged
        assert any(e["event"] == "alert not delivered" and e["channel"] == "webhook" for e in log_events(env))
    finally:
        if old is not None:
            requests.post(change, json={"setting_id": SETTING, "value": old}, verify=str(sim.ca_path), timeout=10)
        consumer.stop()


def test_partial_and_failed_scheduled_syncs_are_alerted(env: dict[str, str], sim, tmp_path: Path) -> None:
    receiver = Receiver(fail_first=0)
    env = {**env, "TENANTPILOT_ALERT_WEBHOOK": receiver.url}
    consumer = Consumer(env, tmp_path / "consumer.log").start()
    try:
        run_cli(env, "tenants", "add", CONTOSO, "--name", "Contoso")
        assert scheduled_sync(env)["status"] == "succeeded"
        sim.forbidden_paths = {"/deviceManagement/deviceCompliancePolicies"}
        partial = scheduled_sync(env)
        assert partial["status"] == "partial"
        body = wait_for(lambda: receiver.bodies, what="the partial run's message")[0]
        assert body["run_id"] == partial["run_id"] and body["status"] == "partial"
        assert any("Compliance" in t and "forbidden" in t for t in body["not_read"]), body["not_read"]
        assert "sync partial" in body["subject"]

        # every type forbidden, Entra's conditional access (/identity, read since issue 19) included
        sim.forbidden_paths = {"/deviceManagement", "/deviceAppManagement", "/identity"}
        failed = scheduled_sync(env)
        assert failed["status"] == "failed"
        body = wait_for(lambda: len(receiver.bodies) == 2 and receiver.bodies[1], what="the failed run's message")
        assert body["run_id"] == failed["run_id"] and body["status"] == "failed" and body["error"]
        assert "Sync failed" in body["text"]
    finally:
        sim.reset_knobs()
        consumer.stop()
        receiver.server.shutdown()
