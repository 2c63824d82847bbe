"""fetch_tenant and GraphClient against what real Graph does (docs/graph-intune.md §7), through
the HTTPS simulator with MSAL and requests unpatched.

Deleted-mid-sync policies (400 ResourceNotFound), persistent 5xx on one type or on a later page,
403/400/404 on a list, 429s with and without Retry-After up to a deadline, an outer 429 on
$batch, per-family pacing at the published limits and below them, unsupportedDeviceConfiguration
items and a managedAppPolicies list that mixes protection and app configuration.

Back-offs that would take minutes run on a fake clock (``FakeTime``: ``sleep`` advances the
``clock`` the client and its pacer read); pacing against the simulator's real-time windows runs
on real time. No assertion is about how long anything took.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

from graphsim.server import GraphSimulator
from graphsim.tenants import build_tenant
from tenantpilot.flatten import flatten_policy, referenced_definition_ids
from tenantpilot.graph import (
    POLICY_TYPES,
    AuthError,
    BatchRequest,
    ConnectionFailed,
    GraphClient,
    GraphError,
    NotFound,
    Throttled,
    TokenProvider,
    fetch_tenant,
)
from tenantpilot.graph.fetch import covering_policies, fetch_definitions, fetch_expanded_settings
from tenantpilot.graph.policy_types import get_policy_type
from tenantpilot.graph.throttle import family_of

TENANT = "11111111-1111-4111-8111-111111111111"
ALL_TYPES = [t.key for t in POLICY_TYPES]
# simulator collection -> the policy type that reads it
TYPE_OF = {"iosManagedAppProtections": "managedAppPolicies", "androidManagedAppProtections": "managedAppPolicies",
           "windowsManagedAppProtections": "managedAppPolicies",
           "windowsInformationProtectionPolicies": "managedAppPolicies",
           "mdmWindowsInformationProtectionPolicies": "managedAppPolicies"}


class Recorder:
    """A ``sleep`` that records what it was asked to wait and does not wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class FakeTime:
    """``clock`` and ``sleep`` for the client: sleeping moves the clock, nothing really waits."""

    def __init__(self) -> None:
        self.t = 5000.0
        self.delays: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.t += seconds


def start_sim(n_policies: int = 40, **kw: Any) -> GraphSimulator:
    tenant = build_tenant(TENANT, "Contoso", n_policies=n_policies, seed=1)
    return GraphSimulator({TENANT: tenant}, **kw).start()


@pytest.fixture
def sim():
    s = start_sim()
    yield s
    s.stop()


def client(sim: GraphSimulator, **kw: Any) -> GraphClient:
    tokens = TokenProvider(TENANT, sim.client_id, client_secret=sim.client_secret, authority_host=sim.url,
                           verify=str(sim.ca_path))
    kw.setdefault("verify", str(sim.ca_path))
    kw.setdefault("sleep", Recorder())
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("throttle_backoff_base", 0.01)
    return GraphClient(tokens, base_url=sim.url, **kw)


def fake_client(sim: GraphSimulator, fake: FakeTime, **kw: Any) -> GraphClient:
    return client(sim, sleep=fake.sleep, clock=fake.clock, **kw)


def by_id(result) -> dict[str, dict]:
    return {p.raw["id"]: p.raw for p in result.policies}


def ids_of(sim: GraphSimulator, *, without: str | None = None) -> set[str]:
    """Ids of the tenant's policies and (read since issue 19) assignment filters now, leaving out those of
    the type ``without``."""
    tenant = sim.tenants[TENANT]
    filters = set(tenant.assignment_filters) if without != "assignmentFilters" else set()
    read = set(tenant.object_ids())  # without the built-in store apps the mobileApps $filter leaves out
    return {p.id for p in tenant.all_policies()
            if p.id in read and TYPE_OF.get(p.collection, p.collection) != without} | filters


# ---------------------------------------------------------------------------------------
# A policy deleted between list and follow-up
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "sequential"])
@pytest.mark.parametrize(
    "collection, type_key, n",
    [
        ("configurationPolicies", "configurationPolicies", 3),
        ("intents", "intents", 1),  # two follow-ups, both 400: one note
        ("groupPolicyConfigurations", "groupPolicyConfigurations", 1),  # nested ones
        ("managedAppPolicies", "managedAppPolicies", 1),  # the typed GET answers 400
    ],
)
def test_policies_deleted_mid_sync_are_dropped_one_by_one(sim, mode, collection, type_key, n):
    label = get_policy_type(type_key).label
    names = {p.id: p.name for p in sim.tenants[TENANT].all_policies()}
    sim.vanish_after_list = {collection: n}
    with client(sim) as c:
        result = fetch_tenant(c, mode=mode)
    victims = sim.vanished_ids(TENANT)
    assert len(victims) == n
    assert set(by_id(result)) == ids_of(sim)  # every other policy of the type (and tenant) is kept
    assert sorted(result.dropped) == sorted((type_key, v, "deleted") for v in victims)
    [note] = result.warnings
    assert note.startswith(f"{label}: {n} polic{'y' if n == 1 else 'ies'} deleted during the sync and skipped: ")
    assert all(f"{names[v]} ({v})" in note for v in victims)
    assert not result.partial and result.failed_types == [] and result.read_types == ALL_TYPES


def test_a_vanished_policy_answers_400_resource_not_found_not_404(sim):
    victim = sim.tenants[TENANT].list_policies("configurationPolicies")[0]
    sim.vanish(TENANT, victim.id)
    with client(sim) as c:
        for path in (f"/deviceManagement/configurationPolicies/{victim.id}",
                     f"/deviceManagement/configurationPolicies/{victim.id}/settings?$top=1000"):
            with pytest.raises(GraphError) as exc:
                c.get(path)
            assert exc.value.status == 400 and exc.value.code == "ResourceNotFound"
            assert not isinstance(exc.value, NotFound) and "_version" not in str(exc.value)
        [inner] = c.batch([BatchRequest(f"/deviceManagement/configurationPolicies/{victim.id}/settings")])
        assert inner.status == 400 and inner.error.code == "ResourceNotFound"
        with pytest.raises(NotFound):  # a policy that never existed is still a 404
            c.get("/deviceManagement/configurationPolicies/00000000-0000-0000-0000-000000000000")
        assert c.stats.retries == 0


@pytest.mark.parametrize("mode", ["fast", "sequential"])
def test_another_400_on_a_follow_up_drops_only_that_policy_with_graphs_message(sim, mode):
    victim = sim.tenants[TENANT].list_policies("configurationPolicies")[1]
    sim.fail_next(1, 400, path_prefix=f"/deviceManagement/configurationPolicies/{victim.id}/settings")
    with client(sim) as c:
        result = fetch_tenant(c, mode=mode)
    assert set(by_id(result)) == ids_of(sim) - {victim.id}
    assert result.dropped == [("configurationPolicies", victim.id, "400 BadRequest: Bad request.")]
    assert result.warnings == [f"{get_policy_type('configurationPolicies').label}: 1 policy could not be read and was skipped: {victim.name} "
                               f"({victim.id}): 400 BadRequest: Bad request."]
    assert not result.partial and result.read_types == ALL_TYPES


# ---------------------------------------------------------------------------------------
# One type fails: it is skipped whole, the others complete
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "sequential"])
@pytest.mark.parametrize(
    "prefix, type_key, status",
    [
        ("/deviceManagement/intents", "intents", 503),
        ("/deviceManagement/groupPolicyConfigurations", "groupPolicyConfigurations", 500),
        ("/deviceAppManagement/iosManagedAppProtections", "managedAppPolicies", 502),  # follow-ups only
        ("/deviceManagement/deviceShellScripts", "deviceShellScripts", 504),
    ],
)
def test_persistent_5xx_on_one_type_skips_that_type_only(sim, mode, prefix, type_key, status):
    sim.failing_paths = {prefix: status}
    with client(sim, max_retries=2) as c:
        result = fetch_tenant(c, mode=mode)
    [skipped] = result.skipped
    assert (skipped.key, skipped.reason, skipped.status) == (type_key, "failed", status)
    assert result.partial and result.failed_types == [type_key]
    assert result.read_types == [k for k in ALL_TYPES if k != type_key]
    assert set(by_id(result)) == ids_of(sim, without=type_key)  # never half a type
    assert result.warnings[0].startswith(f"{skipped.label} skipped: {status} — could not be read (Graph kept failing")
    assert "gave up after 2 retries" in result.warnings[0]
    assert result.stats["retries"] >= 2 and result.stats["failed"] >= 1


@pytest.mark.parametrize("mode", ["fast", "sequential"])
def test_persistent_5xx_on_page_two_of_a_list_skips_the_whole_type(mode):
    with start_sim(n_policies=80) as s:
        assert len(s.tenants[TENANT].list_policies("configurationPolicies")) > 25  # more than one page
        s.failing_later_pages = {"/deviceManagement/configurationPolicies": 500}
        with client(s, max_retries=1) as c:
            result = fetch_tenant(c, mode=mode)
        assert result.failed_types == ["configurationPolicies"] and result.skipped[0].reason == "failed"
        assert not any(p.type_key == "configurationPolicies" for p in result.policies)
        assert set(by_id(result)) == ids_of(s, without="configurationPolicies")
        assert result.read_types == [k for k in ALL_TYPES if k != "configurationPolicies"]
        assert "$skiptoken=" in result.skipped[0].message  # the page that failed is named


@pytest.mark.parametrize(
    "knobs, reason, status, warning",
    [
        ({"forbidden_paths": ["/deviceManagement/deviceEnrollmentConfigurations"]}, "forbidden", 403,
         "skipped: 403 — the app lacks DeviceManagementConfiguration.Read.All"),
        ({"failing_paths": {"/deviceManagement/deviceEnrollmentConfigurations": 400}}, "unavailable", 400,
         "skipped: 400 — not available here (BadRequest: Bad request.)"),
        ({"failing_paths": {"/deviceManagement/deviceEnrollmentConfigurations": 404}}, "unavailable", 404,
         "skipped: 404 — not available here (ResourceNotFound: Resource not found.)"),
    ],
    ids=["403", "400", "404"],
)
def test_403_400_404_on_a_list_skip_that_type_with_the_right_reason(sim, knobs, reason, status, warning):
    sim.apply_knobs(knobs)
    with client(sim) as c:
        result = fetch_tenant(c)
    [skipped] = result.skipped
    assert (skipped.key, skipped.reason, skipped.status) == ("deviceEnrollmentConfigurations", reason, status)
    label = get_policy_type("deviceEnrollmentConfigurations").label
    assert result.warnings == [f"{label} {warning}"] and result.partial
    assert "deviceEnrollmentConfigurations" not in result.read_types
    assert set(by_id(result)) == ids_of(sim, without="deviceEnrollmentConfigurations")
    assert result.stats["retries"] == 0  # none of these is worth another try


def test_only_auth_errors_fail_the_fetch_at_once(sim):
    sim.token_lifetime = 0  # every token is dead on arrival: 401, refresh, 401
    with client(sim) as c:
        with pytest.raises(AuthError) as exc:
            fetch_tenant(c)
    assert exc.value.status == 401 and TENANT in str(exc.value)


def test_a_failure_of_every_type_fails_the_fetch():
    s = start_sim()
    tokens = TokenProvider(TENANT, s.client_id, client_secret=s.client_secret, authority_host=s.url,
                           verify=str(s.ca_path))
    tokens.get_token()  # signed in while the simulator was up
    url = s.url
    s.stop()  # now every type meets a refused connection
    with GraphClient(tokens, base_url=url, verify=True, sleep=Recorder(), max_retries=1, backoff_base=0.01) as c:
        with pytest.raises(ConnectionFailed, match="Connection refused"):
            fetch_tenant(c)


# ---------------------------------------------------------------------------------------
# 429: wait as Graph asks, keep going while the run has time, then say so
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    ["/deviceManagement/intents",  # the list: direct GETs
     "settings-of-one-intent"],  # one inner $batch request
)
def test_429_without_retry_after_for_a_long_stretch_does_not_fail_the_run(sim, prefix):
    if prefix == "settings-of-one-intent":
        prefix = f"/deviceManagement/intents/{sim.tenants[TENANT].list_policies('intents')[0].id}/settings"
    sim.drop_retry_after = True
    sim.fail_next(15, 429, path_prefix=prefix)  # far more than max_retries
    fake = FakeTime()
    waits: list[tuple[float, str]] = []
    with fake_client(sim, fake, max_retries=3, throttle_backoff_base=10.0, deadline=fake.t + 3600,
                     on_wait=lambda s, why: waits.append((s, why))) as c:
        result = fetch_tenant(c)
    assert set(by_id(result)) == ids_of(sim) and result.read_types == ALL_TYPES and not result.warnings
    assert result.stats["throttled"] == 15 and result.stats["failed"] == 0
    # IntuneCD's rule: min(2**n * 10, 60) s with jitter in [0.5, 1), n counted per request
    throttle_waits = [d for d in fake.delays if d >= 5]
    assert len(throttle_waits) == 15
    for n, d in enumerate(throttle_waits):
        assert 0.5 * min(2**n * 10, 60) <= d <= min(2**n * 10, 60)
    assert waits and all(why == "throttle" and s > 1 for s, why in waits)


def test_429_storm_without_retry_after_clears_on_real_time():
    with start_sim() as s:
        s.drop_retry_after = True
        s.throttle = (15, 1.0)  # 15 Graph calls per second for the tenant, no Retry-After on the 429s
        with client(s, sleep=time.sleep, throttle_backoff_base=0.2, deadline=time.monotonic() + 300) as c:
            result = fetch_tenant(c)
        assert set(by_id(result)) == ids_of(s) and result.read_types == ALL_TYPES
        assert result.stats["throttled"] > 0 and result.stats["failed"] == 0


@pytest.mark.parametrize("drop_retry_after", [False, True], ids=["retry-after", "no-retry-after"])
def test_a_deadline_that_runs_out_raises_throttled_naming_the_wait(sim, drop_retry_after):
    sim.throttle = (0, 60.0)  # every call: 429 (Retry-After: 60)
    sim.drop_retry_after = drop_retry_after
    fake = FakeTime()
    with fake_client(sim, fake, throttle_backoff_base=10.0, deadline=fake.t + 200) as c:
        with pytest.raises(Throttled) as exc:
            c.get("/deviceManagement/intents")
        assert "would pass the sync deadline" in str(exc.value) and exc.value.wait_s
        assert exc.value.status == 429 and fake.t <= c.deadline
        with pytest.raises(Throttled):  # every type throttled past the deadline: the fetch fails
            fetch_tenant(c)


def test_an_outer_429_on_the_batch_post_is_waited_out_by_the_same_rule(sim):
    sim.fail_next(2, 429, path_prefix="/$batch")
    sleeper = Recorder()
    with client(sim, sleep=sleeper) as c:
        result = fetch_tenant(c)
    assert set(by_id(result)) == ids_of(sim) and result.stats["failed"] == 0
    assert sleeper.delays.count(1.0) == 2  # the outer Retry-After: 1
    assert sim.requests_by_status[429] == 2 and result.stats["throttled"] == 2


# ---------------------------------------------------------------------------------------
# Pacing per service family
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pacing_at_the_published_limits_fetches_more_than_a_window_without_failures():
    with start_sim(n_policies=2000) as s:
        s.family_throttle = True  # 1,000 requests per 20 s per family (2,000 for scripts), inner ones each
        waits: list[tuple[float, str]] = []
        with client(s, sleep=time.sleep, deadline=time.monotonic() + 600,
                    on_wait=lambda secs, why: waits.append((secs, why))) as c:
            result = fetch_tenant(c)
        v2 = sum(1 for m, path, _ in s.request_log if family_of(path) == "deviceConfigV2")
        print(f"\n2,000 policies: {v2} device config v2 calls, {result.requests} HTTP requests, "
              f"{result.stats['throttled']} throttled, paced {result.stats['paced_s']:.1f} s, "
              f"{result.elapsed:.1f} s")
        assert v2 > 1000  # more than one window's budget for that family
        assert set(by_id(result)) == ids_of(s) and result.read_types == ALL_TYPES
        assert result.stats["failed"] == 0 and result.stats["throttled"] <= 3
        assert result.stats["paced_s"] > 0 and ("pacing" in {why for _, why in waits})


def test_pacing_learns_a_smaller_share_of_the_budget(sim):
    # another app already uses most of the tenant's device config v2 budget: we get 10 per 2 s (fewer
    # than the ~20 settings-catalog calls of the 40-policy tenant, so the first window overflows)
    sim.family_throttle = True
    sim.family_limits = {"deviceConfigV2": (10, 2.0)}
    with client(sim, sleep=time.sleep, throttle_backoff_base=0.2, deadline=time.monotonic() + 300) as c:
        result = fetch_tenant(c)
        allowed = c.pacer.snapshot()["deviceConfigV2"]["allowed"]
    assert set(by_id(result)) == ids_of(sim) and result.stats["failed"] == 0
    assert result.stats["throttled"] > 0 and allowed < 1000  # slowed down after the 429s


# ---------------------------------------------------------------------------------------
# Items real Graph lists that the simulator's defaults do not hold
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "sequential"])
def test_unsupported_device_configurations_are_kept_as_what_they_are(sim, mode):
    sim.unsupported_device_configurations = 2
    with client(sim) as c:
        result = fetch_tenant(c, mode=mode)
    assert set(by_id(result)) == ids_of(sim) and not result.warnings
    unsupported = [p for p in result.policies if p.raw.get("@odata.type") == "#microsoft.graph.unsupportedDeviceConfiguration"]
    assert len(unsupported) == 2 and {p.type_key for p in unsupported} == {"deviceConfigurations"}
    for p in unsupported:
        assert p.raw["originalEntityTypeName"] and "details" in p.raw and p.raw["assignments"]
        rows = flatten_policy(p.raw, p.family)  # the flattener takes them without crashing
        assert rows and {r["policy_type"] for r in rows} == {"deviceConfiguration"}
        assert any(r["setting_key"].startswith("originalEntityTypeName") for r in rows)


@pytest.mark.parametrize("mode", ["fast", "sequential"])
def test_mixed_managed_app_policies_app_configuration_is_not_app_protection(sim, mode):
    sim.mixed_app_policies = True
    with client(sim) as c:
        result = fetch_tenant(c, mode=mode)
    assert set(by_id(result)) == ids_of(sim) and not result.warnings and result.read_types == ALL_TYPES
    protection = {p.raw["@odata.type"].rsplit(".", 1)[1]: p for p in result.policies if p.type_key == "managedAppPolicies"}
    assert set(protection) == {"iosManagedAppProtection", "androidManagedAppProtection", "windowsManagedAppProtection",
                               "windowsInformationProtectionPolicy", "mdmWindowsInformationProtectionPolicy"}
    assert {p.family for p in protection.values()} == {"appProtection"}
    windows = protection["windowsManagedAppProtection"].raw
    assert windows["apps"] and windows["assignments"] and windows["id"].startswith("T_")  # from the typed GET
    assert protection["windowsInformationProtectionPolicy"].raw["assignments"]
    [config] = [p for p in result.policies if p.type_key == "targetedManagedAppConfigurations"]
    assert config.family == "appConfiguration" and config.raw["@odata.type"].endswith("targetedManagedAppConfiguration")
    assert config.raw["customSettings"] and config.raw["apps"] and config.raw["assignments"]
    assert config.raw["id"].startswith("A_")
    for p in result.policies:
        if p.type_key in ("managedAppPolicies", "targetedManagedAppConfigurations"):
            assert flatten_policy(p.raw, p.family)  # no crash, at least one row


# ---------------------------------------------------------------------------------------
# Definitions the cheap way
# ---------------------------------------------------------------------------------------


def test_fetch_expanded_settings_finds_every_definition_in_one_request_per_policy():
    with start_sim(n_policies=60) as s:
        tenant = s.tenants[TENANT]
        pairs = [(p.collection, p.id) for p in tenant.list_policies("configurationPolicies")
                 + tenant.list_policies("compliancePolicies")]
        with client(s) as c:
            referenced = set()
            for raw in fetch_tenant(c).policies:
                for setting in raw.raw.get("settings") or ():
                    referenced |= {d["id"] for d in setting.get("settingDefinitions") or ()}
            before = c.stats.snapshot()
            found = fetch_expanded_settings(c, pairs)
            spent = c.stats.snapshot()
            by_id_defs = fetch_definitions(c, sorted(found))
        assert set(found) == referenced  # the definitions of every instance tree, nothing lost
        assert json.dumps(found, sort_keys=True) == json.dumps(by_id_defs, sort_keys=True)
        assert spent["batched"] - before["batched"] == len(pairs)  # one request per policy, not per definition
        assert spent["requests"] - before["requests"] == math.ceil(len(pairs) / 20)
        assert len(found) > len(pairs)
        # a covering set of policies finds them all with fewer requests
        with client(s) as c:
            needs = {(p.type_key, p.id): referenced_definition_ids(p.raw)
                     for p in fetch_tenant(c).policies if p.type_key in ("configurationPolicies", "compliancePolicies")}
            cover = covering_policies(needs)
            assert len(cover) < len(pairs)
            assert set().union(*needs.values()) <= set(fetch_expanded_settings(c, cover))


def test_fetch_expanded_settings_skips_a_policy_deleted_since_and_checks_its_input(sim):
    policies = sim.tenants[TENANT].list_policies("configurationPolicies")[:3]
    sim.vanish(TENANT, policies[0].id)
    with client(sim) as c:
        found = fetch_expanded_settings(c, [("configurationPolicies", p.id) for p in policies])
        assert found and fetch_expanded_settings(c, []) == {}
        with pytest.raises(ValueError, match="collection must be one of"):
            fetch_expanded_settings(c, [("deviceConfigurations", policies[1].id)])
    wanted = {d["id"] for p in policies[1:] for s in p.settings
              for d in sim.api.catalog.definitions_for(s["settingInstance"])}
    assert set(found) == wanted


# ---------------------------------------------------------------------------------------
# The caller's reuse predicate (tenantpilot/sync/reuse.py decides; fetch only obeys)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "sequential"])
def test_a_reused_policy_is_listed_without_follow_ups_and_not_returned_for_flattening(sim, mode):
    catalog = {p.id for p in sim.tenants[TENANT].list_policies("configurationPolicies")}
    asked: list[tuple[str, str]] = []

    def reuse(ptype, item) -> bool:
        asked.append((ptype.key, str(item["id"])))
        return ptype.key == "configurationPolicies"

    with client(sim) as c:
        full = fetch_tenant(c, mode=mode)
        settings_calls = [path for _, path, _ in sim.request_log if "/configurationPolicies/" in path
                          and "/settings" in path]
        sim.reset_counters()
        result = fetch_tenant(c, mode=mode, reuse=reuse)
    paths = [path for _, path, _ in sim.request_log]  # $batch items included
    assert set(result.reused) == {("configurationPolicies", pid) for pid in catalog} and catalog
    assert not catalog & set(by_id(result))  # not flattened ...
    assert set(by_id(result)) | catalog == set(by_id(full))  # ... and every other policy as a full read has it
    assert result.read_types == full.read_types and not result.dropped
    assert all(key != "deviceCompliancePolicies" for key, _ in asked)  # no follow-ups: never asked
    assert len(settings_calls) >= len(catalog)  # a full read asks each policy's settings ...
    assert paths and not any("/configurationPolicies/" in p and "/settings" in p for p in paths)  # ... this none
    assert result.stats["requests"] < full.stats["requests"]
