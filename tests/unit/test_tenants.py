"""Naming a tenant: ids, domains and display names (tenantpilot.tenants, pure) and the CLI that uses
it, in-process against a real DuckDB file and the SQLite queue (no server)."""

from __future__ import annotations

import pytest

from tenantpilot import cli
from tenantpilot.store import Store
from tenantpilot.tenants import Known, TenantNameError, baseline_id, resolve, tenant_key, valid_tenant_id

CONTOSO = Known("11111111-1111-4111-8111-111111111111", "Contoso Ltd", ("contoso.onmicrosoft.com",))
FABRIKAM = Known("fabrikam.onmicrosoft.com", "Fabrikam")
TWIN_A = Known("22222222-2222-4222-8222-222222222222", "Twin")
TWIN_B = Known("33333333-3333-4333-8333-333333333333", "twin")
BASE = Known(baseline_id("CIS Level 1"), "CIS Level 1")
KNOWN = [CONTOSO, FABRIKAM, TWIN_A, TWIN_B, BASE]


@pytest.mark.parametrize("name, expected", [
    ("11111111-1111-4111-8111-111111111111", CONTOSO),
    (" 11111111-1111-4111-8111-111111111111 ".upper(), CONTOSO),
    ("contoso.onmicrosoft.com", CONTOSO),  # an alias
    ("Contoso.OnMicrosoft.com", CONTOSO),
    ("Contoso Ltd", CONTOSO),  # the display name
    ("contoso ltd", CONTOSO),
    ("fabrikam.onmicrosoft.com", FABRIKAM),
    ("FABRIKAM", FABRIKAM),
    ("baseline:cis-level-1", BASE),
    ("CIS Level 1", BASE),
    ("22222222-2222-4222-8222-222222222222", TWIN_A),  # an id is exact even where names collide
])
def test_resolve(name: str, expected: Known) -> None:
    assert resolve(name, KNOWN) == expected


@pytest.mark.parametrize("name, message, suggestions", [
    ("Contso Ltd", "Unknown tenant 'Contso Ltd'; closest: Contoso Ltd", (CONTOSO.tenant_id,)),
    ("fabrikam.onmicrosoft.co", "closest: Fabrikam (fabrikam.onmicrosoft.com)", (FABRIKAM.tenant_id,)),
    ("twin", "'twin' names 2 tenants", (TWIN_A.tenant_id, TWIN_B.tenant_id)),
    ("zzzzzzzz", "Unknown tenant 'zzzzzzzz'", ()),
])
def test_unknown_or_ambiguous_names_list_the_closest(name: str, message: str, suggestions: tuple[str, ...]) -> None:
    with pytest.raises(TenantNameError) as err:
        resolve(name, KNOWN)
    assert message in str(err.value)
    assert err.value.suggestions[:len(suggestions)] == suggestions


@pytest.mark.parametrize("value, ok", [
    ("11111111-1111-4111-8111-111111111111", True), ("contoso.onmicrosoft.com", True), ("Contoso.COM", True),
    ("contoso", False), ("11111111-1111-4111-8111", False), ("", False), ("a b.com", False),
])
def test_valid_tenant_id(value: str, ok: bool) -> None:
    assert valid_tenant_id(value) is ok


def test_keys_are_trimmed_and_lower_cased() -> None:
    assert tenant_key("  Contoso.OnMicrosoft.com ") == "contoso.onmicrosoft.com"


# --- the CLI -------------------------------------------------------------------------------------
@pytest.fixture
def store(db: Store) -> Store:
    db.add_tenant(CONTOSO.tenant_id, "Contoso Ltd")
    db.add_tenant("fabrikam.onmicrosoft.com", "Fabrikam")
    return db


def test_abbreviated_options_are_rejected(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["sync", "--al"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --al" in capsys.readouterr().err
    assert store.runs().height == 0  # nothing was queued


@pytest.mark.parametrize("name", ["Contoso Ltd", "contoso ltd", CONTOSO.tenant_id])
def test_sync_and_runs_take_a_display_name(store: Store, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sync", name]) == 0
    out = capsys.readouterr().out
    run_id = store.runs(CONTOSO.tenant_id).row(0, named=True)["run_id"]
    assert f"run {run_id} queued" in out
    assert cli.main(["runs", name]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "Contoso Ltd" in lines[0] and "queued" in lines[0]  # names, not ids


def test_export_takes_a_display_name(store: Store, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from apptest import write_snapshot

    write_snapshot(store, CONTOSO.tenant_id, {"Firewall": {"fw_enable": "true"}})
    out = tmp_path / "c.csv"
    assert cli.main(["export", "--tenant", "Contoso Ltd", "--output", str(out)]) == 0
    assert "wrote 1 rows" in capsys.readouterr().out
    assert b"Enable firewall" in out.read_bytes()


@pytest.mark.parametrize("argv", [
    ["sync", "Contso"], ["runs", "Contso"], ["export", "--tenant", "Contso"], ["tenants", "remove", "Contso"],
])
def test_unknown_name_exits_2_with_suggestions(store: Store, argv: list[str], capsys) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown tenant 'Contso'; closest: Contoso Ltd"), err
    assert store.runs().height == 0 and store.tenants().height == 2


def test_tenants_remove_by_display_name(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tenants", "remove", "Fabrikam"]) == 0
    assert "removed Fabrikam (fabrikam.onmicrosoft.com)" in capsys.readouterr().out
    assert store.tenants()["tenant_id"].to_list() == [CONTOSO.tenant_id]


def _jwt(claims: dict) -> str:
    import base64
    import json

    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'typ': 'JWT', 'alg': 'RS256'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize("token, tid", [
    (_jwt({"tid": "72F988BF-86F1-41AF-91AB-2D7CD011DB47", "appid": "x"}), "72f988bf-86f1-41af-91ab-2d7cd011db47"),
    (_jwt({"appid": "x"}), None),  # no tid claim
    (_jwt({"tid": "contoso.onmicrosoft.com"}), None),  # not a GUID
    (_jwt({"tid": 7}), None),
    ("opaque-token", None),
    ("a.!!!.c", None),
    ("a.bm90IGpzb24.c", None),  # base64 of "not json"
])
def test_tenant_id_from_token(token: str, tid: str | None) -> None:
    from tenantpilot.tenants import tenant_id_from_token

    assert tenant_id_from_token(token) == tid
