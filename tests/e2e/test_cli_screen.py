"""The CLI's screen is inert and says what it did (issue 18, rows 5, 14, 16), with a real consumer, the
simulator and a real DuckDB file: a policy renamed (by an actor) to terminal escape sequences shows in
`changes`, `tenants list`, `schedule show`, `runs` and in errors as [U+001B]…; JSON on standard output
keeps every character as an escape; a baseline is never synced; `runs` with nothing says so."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests
from realparts import CONTOSO, add_and_sync, run_cli

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31mFAKE OK\x1b[0m\u202egpj.exe\r"
RAW = ("\x1b", "\x07", "\u202e", "\r")


def inert(result: subprocess.CompletedProcess) -> str:
    for stream in (result.stdout, result.stderr):
        for raw in RAW:
            assert raw not in stream, (raw, stream)
    return result.stdout + result.stderr


def test_the_cli_screen_shows_escape_sequences_as_text(consumer, env: dict[str, str], sim, tmp_path) -> None:
    add_and_sync(env)
    control = f"{sim.url}/_sim/tenants/{CONTOSO}"
    policy = next(p for p in requests.get(control, verify=str(sim.ca_path), timeout=10).json()["policies"]
                  if p["collection"] == "deviceConfigurations")
    change = f"{control}/policies/{policy['collection']}/{policy['id']}/change"
    answer = requests.post(change, json={"setting_id": "displayName", "value": policy["name"] + ESCAPES,
                                         "actor": "mallory" + ESCAPES}, verify=str(sim.ca_path), timeout=10)
    assert answer.status_code == 200, answer.text
    try:
        run_cli(env, "tenants", "add", "fabrikam.onmicrosoft.com", "--name", "Fab" + ESCAPES)
        run_cli(env, "sync", CONTOSO, "--wait", "--timeout", "180", timeout=210)

        changes = inert(run_cli(env, "changes", "--since", "7d", "--tenant", CONTOSO))
        assert "[U+001B]]0;owned[U+0007][U+001B][2J[U+001B][31mFAKE OK" in changes
        assert "[U+202E]gpj.exe[U+000D]" in changes
        for args in (("tenants", "list"), ("schedule", "show")):
            assert "Fab[U+001B]]0;owned" in inert(run_cli(env, *args))
        inert(run_cli(env, "runs"))
        inert(run_cli(env, "runs", "Fab" + ESCAPES + "x", expect=2))  # an error naming what was typed
        # JSON on standard output: every character kept, as an escape
        as_json = inert(run_cli(env, "changes", "--since", "7d", "--tenant", CONTOSO, "--format", "json"))
        rows = json.loads(as_json)["changes"]
        assert any(ESCAPES in str(value) for row in rows for value in row.values())
        # a file keeps text as it is
        out = tmp_path / "changes.csv"
        run_cli(env, "changes", "--since", "7d", "--tenant", CONTOSO, "--format", "csv", "--output", str(out))
        assert ESCAPES.rstrip("\r") in out.read_text(encoding="utf-8-sig")
    finally:
        requests.post(change, json={"setting_id": "displayName", "value": policy["name"]},
                      verify=str(sim.ca_path), timeout=10)


@pytest.mark.parametrize("args, code, says", [
    (("runs", "fabrikam.onmicrosoft.com"), 0, "no sync runs for Fabrikam"),
    (("sync", "CIS L1"), 2, "is a baseline (imported from files), not a tenant: it is never synced from Graph"),
])
def test_the_cli_says_what_it_did_not_do(env: dict[str, str], tmp_path, args: tuple[str, ...], code: int,
                                         says: str) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "p.json").write_text(json.dumps({"@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
                                               "id": "p1", "displayName": "P", "passwordRequired": True}))
    run_cli(env, "import", str(export), "--name", "CIS L1")
    run_cli(env, "tenants", "add", "fabrikam.onmicrosoft.com", "--name", "Fabrikam")
    result = run_cli(env, *args, expect=code)
    assert says in result.stdout + result.stderr
    runs = run_cli(env, "runs", "CIS L1")
    assert "failed" not in runs.stdout  # the baseline's one run is its import; no sync was attempted
