"""Who accepted a deviation is a column of the register (schema version 12), written from the signed-in user or
cli:<os user>, listed by the CLI and exported; a file from version 9 to 11 gets it back from the activity log."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from tenantpilot.analysis import deviations
from tenantpilot.store import SCHEMA_VERSION, Store

ROOT = Path(__file__).resolve().parents[2]
NEXT_MONTH = date.today() + timedelta(days=30)


def _new(tenant: str, key: str) -> deviations.NewDeviation:
    return deviations.NewDeviation(tenant, "baseline:cis", "settingsCatalog", "windows", key, key, "legacy VPN", "Ops",
                                   NEXT_MONTH)


def _version_9_file(path: Path) -> Path:
    """A file as schema version 9 left it: deviations without accepted_by, no alert channel tables, and the activity
    log that named who accepted (with noise: another action, an id that no deviation has, a text that names none)."""
    store = Store(path.with_name("build.duckdb"))  # a file this process has not opened is checked on first open
    for tid, name, kind in (("t-1", "Contoso", "tenant"), ("baseline:cis", "CIS", "baseline")):
        store.add_tenant(tid, name, kind)
    first, second = store.add_deviation(_new("t-1", "fw")), store.add_deviation(_new("t-1", "usb"))
    store.record_activity("ann@msp.example", "deviation accepted", ["t-1"], f"deviation {first}: fw until 2027-01-01")
    store.record_activity("bob@msp.example", "deviation removed", ["t-1"], f"deviation {second}")
    store.record_activity("eve@msp.example", "deviation accepted", ["t-1"], "deviation 999: gone until 2027-01-01")
    store.record_activity("eve@msp.example", "deviation accepted", ["t-1"], f"not deviation {second}: x")
    store.record_activity("later@msp.example", "deviation accepted", ["t-1"], f"deviation {first}: fw again")
    con = duckdb.connect(str(store.path))
    con.execute("ALTER TABLE deviations DROP COLUMN accepted_by")
    con.execute("DROP TABLE group_alert_channels")
    con.execute("DROP TABLE tenant_alert_channels")
    con.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    con.close()
    return Path(shutil.copy(store.path, path))


def test_a_version_9_file_gets_accepted_by_from_the_activity_log(tmp_path: Path) -> None:
    path = tmp_path / "v9.duckdb"
    store = Store(_version_9_file(path))
    register = store.deviations()
    assert dict(zip(register["setting_key"], register["accepted_by"], strict=True)) == {
        "fw": "ann@msp.example", "usb": None}  # the first who accepted it; nobody recorded for usb
    assert store.alert_channels_of("t-1") == ([], [])  # version 11's tables
    with store.connect() as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)


def test_the_store_and_the_cli_write_who_accepted(tmp_path: Path) -> None:
    from apptest import write_snapshot

    db = tmp_path / "cli.duckdb"
    store = Store(db)
    store.add_tenant("t-1", "Contoso", "tenant")
    store.add_tenant("baseline:cis", "CIS", "baseline")
    write_snapshot(store, "t-1", {"P": {"fw_enable": "false"}})
    write_snapshot(store, "baseline:cis", {"P": {"fw_enable": "true"}})
    store.add_deviation(_new("t-1", "usb"), accepted_by="ann@msp.example")
    env = {"TENANTPILOT_DB": str(db), "TENANTPILOT_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path), "USER": getpass.getuser(), "LOGNAME": getpass.getuser()}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "tenantpilot", *args], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    cli("deviations", "add", "Contoso", "--baseline", "CIS", "--setting", "fw_enable", "--reason", "pilot",
        "--owner", "Ops", "--expires", NEXT_MONTH.isoformat())
    listed = cli("deviations", "list").stdout
    assert "(accepted by ann@msp.example)" in listed and f"(accepted by cli:{getpass.getuser()})" in listed
    csv = cli("deviations", "list", "--format", "csv").stdout
    assert "accepted_by" in csv.splitlines()[0] and f"cli:{getpass.getuser()}" in csv


@pytest.mark.parametrize("who", [None, "ann@msp.example"])
def test_the_register_schema_holds_accepted_by(tmp_path: Path, who: str | None) -> None:
    store = Store(tmp_path / "s.duckdb")
    store.add_deviation(_new("t-1", "fw"), accepted_by=who)
    register = store.deviations()
    assert register.columns == list(deviations.REGISTER_COLUMNS) and register["accepted_by"].to_list() == [who]
    assert dict(deviations.empty_register().schema) == dict(register.schema)
