"""The demo tenants' settings-catalog names, synced for real: what the simulator serves as each
setting's definition is what the screen shows, and the rows with portal names vs names made from
ids are counted (printed) over the three demo tenants of ``python -m tenantpilot simulate``.

Portal names come only from definitions with a real ``displayName``: today the names written in
``graphsim/synthetic.py`` ``DEFINITION_HINTS``. No licensed public file of Graph's definitions was
found for the rest (see ``graphsim/corpus/SOURCES.md``), so those rows keep names made from ids;
this test is the measure to rerun when such a file is added to the corpus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from conftest import _apply, _values
from realparts import Consumer, run_cli

from graphsim import synthetic
from graphsim.catalog import load_catalog
from graphsim.demo import build_demo_tenants
from graphsim.server import GraphSimulator
from tenantpilot.families import COMPLIANCE_V2, SETTINGS_CATALOG
from tenantpilot.flatten.text import clean_label
from tenantpilot.store import Store


@pytest.fixture(scope="module")
def demo_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphSimulator]:
    """The simulator with the demo tenants exactly as ``simulate`` builds them."""
    server = GraphSimulator(build_demo_tenants(3), cert_dir=tmp_path_factory.mktemp("demo-sim"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def demo_rows(demo_sim: GraphSimulator, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """Every demo tenant added and synced through the CLI, a real consumer and DuckDB file."""
    import redis

    redis.Redis.from_url(redis_url).flushall()
    tmp = tmp_path_factory.mktemp("demo-sync")
    applied = _apply(_values(tmp, demo_sim, redis_url))
    env = next(applied)
    consumer = Consumer(env, tmp / "consumer.log").start()
    try:
        for tid, tenant in demo_sim.tenants.items():
            run_cli(env, "tenants", "add", tid, "--name", tenant.display_name)
            result = run_cli(env, "sync", tid, "--wait", "--timeout", "300", timeout=330)
            assert result.returncode == 0, result.stdout + result.stderr + consumer.output()[-3000:]
        frame = Store(Path(env["TENANTPILOT_DB"])).current_settings(list(demo_sim.tenants))
    finally:
        consumer.stop()
        next(applied, None)
    return frame.filter(pl.col("policy_type").is_in([SETTINGS_CATALOG, COMPLIANCE_V2]))


def _portal_name(def_id: str) -> str:
    """The name a definition with a real displayName gives ('' when the simulator has none)."""
    return clean_label(synthetic.DEFINITION_HINTS.get(def_id, {}).get("displayName") or "")


def test_each_row_shows_the_name_of_the_definition_served(demo_rows: pl.DataFrame) -> None:
    served = load_catalog().setting_definitions
    assert demo_rows.height > 0
    wrong = [(r["setting_id"], r["setting_name"]) for r in demo_rows.iter_rows(named=True)
             if r["setting_id"] in served and r["setting_name"] != clean_label(served[r["setting_id"]]["displayName"])]
    assert not wrong, wrong[:10]


def test_portal_names_vs_names_made_from_ids_counted(demo_rows: pl.DataFrame) -> None:
    counts: Counter[tuple[str, str]] = Counter()
    ids: dict[str, set[str]] = {"portal name": set(), "name made from id": set()}
    for r in demo_rows.iter_rows(named=True):
        portal = _portal_name(r["setting_id"])
        kind = "portal name" if portal and r["setting_name"] == portal else "name made from id"
        counts[(r["tenant"], kind)] += 1
        ids[kind].add(r["setting_id"])
    total = Counter(kind for (_, kind) in counts.elements())
    for (tenant, kind), n in sorted(counts.items()):
        print(f"{tenant:20} {kind:18} {n:5} rows")
    print(f"all demo tenants: {total['portal name']} of {demo_rows.height} settings-catalog rows with portal names "
          f"({len(ids['portal name'])} setting ids), {total['name made from id']} with names made from ids "
          f"({len(ids['name made from id'])} setting ids)")
    # every row of a setting that has a real displayName shows it (the sync keeps the definitions it fetches)
    hinted = demo_rows.filter(pl.col("setting_id").map_elements(lambda d: bool(_portal_name(d)),
                                                               return_dtype=pl.Boolean))
    assert hinted.height == total["portal name"] > 0
