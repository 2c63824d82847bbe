"""Alerts that survive (issue 18, rows 1-4), with real receivers: a local server that drips its answer one
byte at a time, one that answers a redirect, a real SMTP server (aiosmtpd), a real consumer, a Redis
server restarted mid-retry.

Row 1: a slow receiver never holds a sync worker, and one call has one deadline.
Row 2: undelivered alerts survive a Redis restart; one given up on shows in `health` and the JSON log.
Row 3: hostile names leave inert on every channel; a mail header can never be injected.
Row 4: a redirect is never followed.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from realparts import CONTOSO, FABRIKAM, Consumer, free_port, run_cli, wait_port
from test_alerts_e2e import Mailbox, Receiver, log_events, scheduled_sync, wait_for

from tenantpilot.config import load_settings
from tenantpilot.ops import alerts

HOSTILE_NAME = "Contoso\r\nBcc: evil@example.com\u2028\u202Egpj.exe\x1b[2J"


def alert(tenant: str = "Contoso", policy: str = "Firewall") -> alerts.Alert:
    return alerts.Alert(
        tenant_id=CONTOSO, tenant=tenant, run_id=7, status="succeeded", error=None, previous_run=6,
        counts={"policy_events": 0, "setting_changes": 1, "policy_added": 0, "policy_deleted": 0,
                "policy_renamed": 0, "settings_changed": 1, "settings_added": 0, "settings_removed": 0,
                "new_deviations": 0, "expired_deviations": 0, "not_read_types": 0},
        changes=[{"kind": "setting changed", "policy_type": "Device configuration", "policy": policy,
                  "setting": "fw", "old": "On", "new": "Off", "changed_by": "admin\r\nX-Evil: 1"}],
        not_read=[], deviations=[], expired=[], url="https://tp.example.com/compare?cmp_tenants=Contoso")


class Drip(socketserver.ThreadingTCPServer):
    """Reads a request, then answers one byte per `every` seconds: from the status line ("status"),
    after the status line ("headers"), or after complete headers ("body"). Records each connection."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str, every: float = 0.5, total: int = 400) -> None:
        self.mode, self.every, self.total = mode, every, total
        self.connected = threading.Event()
        self.cut = threading.Event()  # the client hung up before the drip ended
        drip = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                data = b""
                while b"\r\n\r\n" not in data:
                    data += sock.recv(4096)
                drip.connected.set()
                status = b"HTTP/1.1 200 OK\r\n"
                headers = f"Content-Type: text/plain\r\nContent-Length: {drip.total}\r\n\r\n".encode()
                fast, slow = {"status": (b"", status + headers + b"x" * drip.total),
                              "headers": (status, b"X-Slow: " + b"y" * drip.total + b"\r\n" + headers),
                              "body": (status + headers, b"x" * drip.total)}[drip.mode]
                try:
                    sock.sendall(fast)
                    for i in range(len(slow)):
                        sock.sendall(slow[i:i + 1])
                        time.sleep(drip.every)
                except OSError:
                    drip.cut.set()

        super().__init__(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hook/s3cr3t-path"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def drip(request: pytest.FixtureRequest) -> Iterator[Drip]:
    server = Drip(request.param)
    yield server
    server.shutdown()


@pytest.mark.parametrize("drip", ["status", "headers", "body"], indirect=True)
def test_one_deadline_for_the_whole_webhook_call(drip: Drip) -> None:
    """Row 1: each byte comes well within any per-read timeout; the whole answer would take 200 s."""
    cfg = load_settings({"TENANTPILOT_ALERT_WEBHOOK": drip.url, "TENANTPILOT_ALERT_DEADLINE_SECONDS": "2"},
                        dotenv=False)
    started = time.monotonic()
    with pytest.raises(alerts.DeliveryError) as caught:
        alerts.send(alerts.WEBHOOK, alert(), cfg)
    spent = time.monotonic() - started
    assert "no complete answer within 2 s" in str(caught.value) and caught.value.outcome == "connection"
    assert "s3cr3t" not in str(caught.value)
    assert drip.connected.is_set() and spent < 60, f"the call took {spent:.1f} s; the drip lasts 200 s"
    wait_for(drip.cut.is_set, timeout=10, what="the receiver seeing the connection closed")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed(status: int) -> None:
    """Row 4: the body is never posted to wherever a redirect points; the failure names the redirect."""
    target = Receiver(fail_first=0)
    seen: list[str] = []

    class Redirect(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            seen.append(self.request.recv(65536).decode(errors="replace"))
            self.request.sendall(f"HTTP/1.1 {status} Moved\r\nLocation: {target.url}\r\nContent-Length: 0\r\n\r\n"
                                 .encode())

    server = socketserver.ThreadingTCPServer(("127.0.0.1", free_port()), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = load_settings({"TENANTPILOT_ALERT_WEBHOOK": f"http://127.0.0.1:{server.server_address[1]}/h"},
                            dotenv=False)
        with pytest.raises(alerts.DeliveryError) as caught:
            alerts.send(alerts.WEBHOOK, alert(), cfg)
        assert f"HTTP {status} redirect (to 127.0.0.1) not followed" in str(caught.value)
        assert len(seen) == 1 and target.answers == [] and target.bodies == []
        # a redirect is configuration, not a passing fault: given up at once, not retried for minutes
        assert not alerts.deliver(alert(), [alerts.WEBHOOK], cfg).retry
    finally:
        server.shutdown()
        target.server.shutdown()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.mark.parametrize("field", ["tenant", "policy"])
def test_a_hostile_name_never_adds_a_mail_header(field: str, mailbox: tuple[Mailbox, int]) -> None:
    """Row 3: a name holding CR/LF, U+2028, U+202E and an escape sequence reaches a real SMTP server as
    one visible line: no forged Bcc, no second recipient, no ValueError."""
    box, port = mailbox
    cfg = load_settings({"TENANTPILOT_ALERT_SMTP": f"smtp://127.0.0.1:{port}",
                         "TENANTPILOT_ALERT_TO": "ops@example.com"}, dotenv=False)
    alerts.send(alerts.EMAIL, alert(**{field: HOSTILE_NAME}), cfg)
    (rcpt, mail), = box.messages
    assert rcpt == ["ops@example.com"] and mail["Bcc"] is None and mail["X-Evil"] is None
    text = mail.get_payload(decode=True).decode()
    subject = re.sub(r"\r\n(?=[ \t])", "", str(mail["Subject"]))  # RFC 5322 unfolding of a long header
    shown = "Contoso[U+000D][U+000A]Bcc: evil@example.com[U+2028][U+202E]gpj.exe[U+001B][2J"
    assert shown in (subject if field == "tenant" else text)
    assert "admin[U+000D][U+000A]X-Evil: 1" in text
    for raw in ("\r", "\n", "\u2028", "\u202e", "\x1b"):
        assert raw not in subject
    for raw in ("\r\nBcc", "\u2028", "\u202e", "\x1b"):
        assert raw not in text


@pytest.mark.parametrize("payload", [alerts.webhook_payload, alerts.teams_payload, alerts.slack_payload])
def test_a_hostile_name_is_inert_in_every_chat_and_webhook_payload(payload: Any) -> None:
    """Row 3: no CR, line or paragraph separator, bidi control or escape leaves in any string."""
    body = json.dumps(payload(alert(tenant=HOSTILE_NAME, policy=HOSTILE_NAME)), ensure_ascii=False)
    for raw in ("\\r", "\u2028", "\u2029", "\u202e", "\\u001b"):
        assert raw not in body, raw
    assert "202E" in body and "000D" in body  # shown ([U+202E]; Teams escapes its brackets)


def test_a_slow_receiver_never_holds_a_sync(env: dict[str, str], tmp_path: Path) -> None:
    """Row 1, end to end: one consumer worker; a scheduled sync's webhook drips for 200 s; a manual sync of
    another tenant queued meanwhile runs and finishes; the alert fails at its deadline, logged."""
    slow = Drip("body", every=0.5)
    env = {**env, "TENANTPILOT_ALERT_WEBHOOK": slow.url, "TENANTPILOT_ALERT_ALWAYS": "1",
           "TENANTPILOT_ALERT_DEADLINE_SECONDS": "4"}
    consumer = Consumer(env, tmp_path / "consumer.log", workers=1).start()
    try:
        run_cli(env, "tenants", "add", CONTOSO, "--name", "Contoso")
        run_cli(env, "tenants", "add", FABRIKAM, "--name", "Fabrikam")
        assert scheduled_sync(env)["status"] == "succeeded"
        wait_for(slow.connected.is_set, timeout=60, what="the alert reaching the slow receiver")
        manual = run_cli(env, "sync", FABRIKAM, "--wait", "--timeout", "90", timeout=150)
        assert "succeeded" in manual.stdout, manual.stdout
        failure = wait_for(lambda: [e for e in log_events(env) if e["event"] == "alert not delivered"], timeout=60,
                           what="the alert's deadline")
        assert "no complete answer within 4 s" in failure[0]["error"] and failure[0]["channel"] == "webhook"
    finally:
        consumer.stop()
        slow.shutdown()


class RedisServer:
    """A private redis-server without persistence on a fixed port: `restart` loses everything it held."""

    def __init__(self, workdir: Path) -> None:
        self.port, self.workdir, self.proc = free_port(), workdir, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if not binary:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait(10)


class Gone(ThreadingHTTPServer):
    """A webhook receiver that answers 404 to every POST (a deleted Teams connector)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/teams404/s3cr3t"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_undelivered_alerts_survive_a_redis_restart_and_a_given_up_one_is_shown(
        env: dict[str, str], tmp_path: Path) -> None:
    """Row 2: the webhook answers 500; the consumer stops, Redis restarts empty, the consumer starts again:
    the alert still arrives. The Teams channel answers 404: given up at once, in `health` and the JSON
    log. A corrupt outbox entry (an unexpected error while building) is logged and retried, not lost."""
    from tenantpilot.ops import outbox

    redis = RedisServer(tmp_path).start()
    hook, teams = Receiver(fail_first=1000), Gone()
    env = {**env, "REDIS_URL": redis.url, "TENANTPILOT_ALERT_WEBHOOK": hook.url,
           "TENANTPILOT_ALERT_TEAMS": teams.url, "TENANTPILOT_ALERT_ALWAYS": "1"}
    consumer = Consumer(env, tmp_path / "consumer.log").start()
    try:
        run_cli(env, "tenants", "add", CONTOSO, "--name", "Contoso")
        run = scheduled_sync(env)
        wait_for(lambda: hook.answers, what="the first (failing) webhook attempt")
        consumer.stop()
        redis.stop()
        redis.start()  # empty: whatever the queue held is gone
        cfg = load_settings(env, dotenv=False)
        (entry,) = outbox.pending(cfg)
        assert entry["run_id"] == run["run_id"] and entry["channels"] == ["webhook"]
        corrupt = outbox.folder(cfg) / "pending" / "run-999999.json"
        corrupt.write_text(json.dumps({"run_id": 999999, "attempt": 0, "due": 0, "message": {"bogus": 1},
                                       "channels": ["webhook"]}))

        hook.fail_first = 0
        hook.answers.clear()
        consumer = Consumer(env, tmp_path / "consumer2.log").start()
        body = wait_for(lambda: hook.bodies, what="the webhook message after the Redis restart")[0]
        assert body["run_id"] == run["run_id"] and body["tenant_id"] == CONTOSO

        events = wait_for(lambda: [e for e in log_events(env) if e["event"] == "alert attempt failed"],
                          what="the corrupt entry's failure in the JSON log")
        assert events[0]["run_id"] == 999999 and "TypeError" in events[0]["error"]
        assert json.loads(corrupt.read_text())["attempt"] == 1  # kept, retried later

        given_up = [e for e in log_events(env) if e["event"] == "alert given up"]
        assert [(e["run_id"], e["channel"]) for e in given_up] == [(run["run_id"], "teams")]
        assert "HTTP 404" in given_up[0]["error"] and "teams404" not in json.dumps(given_up)
        report = json.loads(run_cli(env, "health", expect=None).stdout)
        (shown,) = report["alerts"]["given_up"]
        assert shown["run_id"] == run["run_id"] and shown["channel"] == "teams" and shown["tenant"] == "Contoso"
        assert any("not delivered to teams" in line for line in report["attention"])
    finally:
        consumer.stop()
        redis.stop()
        hook.server.shutdown()
        teams.shutdown()


def test_https_webhooks_verify_the_receivers_certificate(sim) -> None:
    """The deadline transport speaks verified TLS: the simulator's HTTPS answers with its CA given
    (REQUESTS_CA_BUNDLE), and is refused as unverified without it."""
    from tenantpilot.ops import transport

    url = f"{sim.url}/_sim/knobs/reset"
    assert transport.post_json(url, b"{}", what="webhook", deadline_s=10, ca_bundle=str(sim.ca_path)) == 200
    with pytest.raises(transport.CallFailed) as caught:
        transport.post_json(url, b"{}", what="webhook", deadline_s=10)
    assert "SSLCertVerificationError" in str(caught.value) and caught.value.outcome == "connection"
