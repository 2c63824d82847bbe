"""The Graph simulator and token authority: real HTTPS, real MSAL (unpatched), real requests.

``verify=`` is passed on every request: REQUESTS_CA_BUNDLE in the environment overrides a
Session's own ``verify`` (docs/graph-intune.md §6). MSAL only takes ``verify`` on its session, so
the MSAL tests point REQUESTS_CA_BUNDLE at the simulator's CA.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msal
import pytest
import requests

from graphsim import DEMO_TENANTS, GraphSimulator, build_tenant, serve_forever
from graphsim.catalog import instance_kind, load_catalog, walk_instances
from graphsim.limits import FAMILY_LIMITS, effective_limits, service_family
from graphsim.tenants import COVERAGE_COLLECTIONS, OPTIONAL_COLLECTIONS, instance_value

CONTOSO = "0a1b2c3d-1111-4111-8111-111111111111"
FABRIKAM = "0a1b2c3d-2222-4222-8222-222222222222"
SCOPE = ["https://graph.microsoft.com/.default"]
DM = "/beta/deviceManagement"


@pytest.fixture(scope="module")
def graph_sim() -> Iterator[GraphSimulator]:
    tenants = [build_tenant(CONTOSO, "Contoso Ltd", 60, seed=3),
               build_tenant(FABRIKAM, "Fabrikam Inc", 60, seed=3, variant=1)]
    with GraphSimulator(tenants) as sim:
        yield sim


@pytest.fixture(autouse=True)
def _clean_knobs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "graph_sim" in request.fixturenames:
        sim = request.getfixturevalue("graph_sim")
        sim.reset_knobs()
        sim.reset_counters()


@pytest.fixture
def http(graph_sim: GraphSimulator) -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {graph_sim.issue_token(CONTOSO)}"
    yield session
    session.close()


def get(sim: GraphSimulator, session: requests.Session, path: str, **kw: Any) -> requests.Response:
    url = path if path.startswith("https://") else sim.url + path
    return session.get(url, verify=str(sim.ca_path), timeout=10, **kw)


def msal_app(sim: GraphSimulator, tenant: str, credential: Any) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(sim.client_id, client_credential=credential,
                                              authority=f"{sim.url}/{tenant}", instance_discovery=False,
                                              verify=str(sim.ca_path), token_cache=msal.TokenCache())


@pytest.fixture
def msal_env(graph_sim: GraphSimulator, monkeypatch: pytest.MonkeyPatch) -> GraphSimulator:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(graph_sim.ca_path))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    return graph_sim


# --- tenants ---------------------------------------------------------------------------------------


def _snapshot(tenant) -> str:
    return json.dumps([(p.collection, p.resource, p.settings, p.assignments, p.scheduled_actions,
                        p.definition_values, p.apps) for p in tenant.all_policies()], sort_keys=True)


def test_build_is_deterministic_and_scales_to_1000_policies() -> None:
    load_catalog()
    started = time.perf_counter()
    big = build_tenant(CONTOSO, "Contoso Ltd", 1000, seed=1)
    elapsed = time.perf_counter() - started
    assert big.policy_count == 1000
    print(f"built 1,000 policies in {elapsed:.2f} s")  # a figure, never a timed assertion (it failed under load)
    assert big.counts()["configurationPolicies"] > 500  # mostly settings catalog
    assert all(n > 0 for c, n in big.counts().items() if c not in OPTIONAL_COLLECTIONS | COVERAGE_COLLECTIONS)
    assert all(big.counts()[c] == 0 for c in OPTIONAL_COLLECTIONS)  # only knobs fill those
    # the coverage collections (remediations, apps, conditional access …) only with coverage=True
    assert all(big.counts()[c] == 0 for c in COVERAGE_COLLECTIONS)
    covered = build_tenant(CONTOSO, "Contoso Ltd", 40, seed=1, coverage=True)
    assert all(covered.counts()[c] > 0 for c in COVERAGE_COLLECTIONS)
    assert covered.policy_count == 40 + sum(covered.counts()[c] for c in COVERAGE_COLLECTIONS)
    assert _snapshot(build_tenant(CONTOSO, "Contoso Ltd", 40, seed=1)) == \
        _snapshot(build_tenant(CONTOSO, "Contoso Ltd", 40, seed=1))
    # same seed, another tenant: same names and settings, different ids and timestamps
    a, b = build_tenant(CONTOSO, "Contoso Ltd", 40, seed=1), build_tenant(FABRIKAM, "Fabrikam", 40, seed=1)
    assert sorted(p.name for p in a.all_policies()) == sorted(p.name for p in b.all_policies())
    assert not set(a.policy_ids()) & set(b.policy_ids())
    pa = a.list_policies("configurationPolicies")[3]
    pb = b.policy_by_name(pa.name)
    assert pb is not None and pa.settings == pb.settings and pa.resource["createdDateTime"] != \
        pb.resource["createdDateTime"]


def test_generated_settings_cover_every_shape_the_flattener_meets() -> None:
    tenant = build_tenant(CONTOSO, "Contoso Ltd", 40)
    kinds, depth, secrets, repeated = set(), 0, [], False
    for policy in tenant.list_policies("configurationPolicies"):
        for setting in policy.settings:
            for inst, d in walk_instances(setting["settingInstance"]):
                kinds.add(instance_kind(inst))
                depth = max(depth, d)
                value = inst.get("simpleSettingValue") or {}
                if value.get("valueState") == "encryptedValueToken":
                    secrets.append(value)
                rows = inst.get("groupSettingCollectionValue") or []
                ids = [tuple(c["settingDefinitionId"] for c in r["children"]) for r in rows]
                repeated |= len(ids) > 1 and len(set(ids)) < len(ids)
    assert kinds >= {"choice", "choiceCollection", "simple", "simpleCollection", "group", "groupCollection"}
    assert depth >= 4 and secrets and repeated
    assert all(s["@odata.type"].endswith("SecretSettingValue") for s in secrets)
    # every family has assignments of every kind somewhere
    targets = {a["target"]["@odata.type"] for p in tenant.all_policies() for a in p.assignments}
    assert targets >= {"#microsoft.graph.groupAssignmentTarget", "#microsoft.graph.exclusionGroupAssignmentTarget",
                       "#microsoft.graph.allDevicesAssignmentTarget",
                       "#microsoft.graph.allLicensedUsersAssignmentTarget"}
    assert any(a["target"]["deviceAndAppManagementAssignmentFilterId"] for p in tenant.all_policies()
               for a in p.assignments)
    assert all(p.assignments for p in tenant.all_policies())


def test_seeded_differences_are_deterministic_and_true() -> None:
    base = build_tenant(CONTOSO, "Contoso Ltd", 40, seed=5)
    v1 = build_tenant(FABRIKAM, "Fabrikam Inc", 40, seed=5, variant=1)
    again = build_tenant(FABRIKAM, "Fabrikam Inc", 40, seed=5, variant=1)
    v2 = build_tenant(FABRIKAM, "Fabrikam Inc", 40, seed=5, variant=2)
    assert base.seeded_differences == []
    assert v1.seeded_differences == again.seeded_differences
    assert {d["kind"] for d in v1.seeded_differences} == {"changed", "missing_policy", "extra_setting"}
    assert len(v2.seeded_differences) == 5 and v2.seeded_differences != v1.seeded_differences

    def find(tenant, name: str, def_id: str) -> Any:
        policy = tenant.policy_by_name(name)
        if def_id in policy.resource:
            return policy.resource[def_id]
        for s in policy.settings:
            for inst, _ in walk_instances(s["settingInstance"]):
                if inst.get("settingDefinitionId") == def_id:
                    return instance_value(inst)
        return None

    for diff in v2.seeded_differences:
        if diff["kind"] == "missing_policy":
            assert base.policy_by_name(diff["policy_name"]) and not v2.policy_by_name(diff["policy_name"])
        elif diff["kind"] == "extra_setting":
            assert find(base, diff["policy_name"], diff["setting_definition_id"]) is None
            assert find(v2, diff["policy_name"], diff["setting_definition_id"]) == diff["new"]
        else:
            assert find(base, diff["policy_name"], diff["setting_definition_id"]) == diff["old"]
            assert find(v2, diff["policy_name"], diff["setting_definition_id"]) == diff["new"] != diff["old"]
    # apart from the seeded differences, the variant is the baseline (tenant-specific values
    # aside: tenant id and domain inside values, secret tokens)
    def normalised(tenant, settings: list) -> str:
        text = json.dumps(settings).replace(tenant.tenant_id, "{tid}").replace(tenant.domain, "{domain}")
        return re.sub(r'"value": "[0-9a-f-]{36}", "valueState"', '"value": "{token}", "valueState"', text)

    touched = {d["policy_name"] for d in v2.seeded_differences}
    for policy in base.list_policies("configurationPolicies"):
        if policy.name not in touched:
            other = v2.policy_by_name(policy.name)
            assert normalised(v2, other.settings) == normalised(base, policy.settings)


def test_mutation_helpers() -> None:
    tenant = build_tenant(CONTOSO, "Contoso Ltd", 40)
    policy = tenant.policy_by_name("POC_WIN_D_CO_SBL_MSZT_HelloAndDeliveryOptimization")
    def_id = "device_vendor_msft_policy_config_deliveryoptimization_domaxcachesize"
    shared = policy.settings[1]
    assert tenant.change_setting(policy.id, def_id, 55) == 20
    assert policy.settings[1] is not shared  # copy on write: the catalog template is untouched
    assert "55" in json.dumps(policy.settings[1]) and "55" not in json.dumps(shared)
    choice_id = "device_vendor_msft_policy_config_deliveryoptimization_dodownloadmode"
    assert tenant.change_setting(policy.id, choice_id, "1") == f"{choice_id}_2"
    restrictions = tenant.policy_by_name("POC_WIN_D_CO_SBL_MSZT_DeviceRestrictions")
    assert tenant.change_setting(restrictions.id, "defenderDetectedMalwareActions.lowSeverity", "block") == "clean"
    assert restrictions.resource["version"] >= 2
    removed = tenant.delete_policy(policy.id)
    assert removed is policy and tenant.find_policy(policy.id) is None
    added = tenant.add_policy("configurationPolicies", {"name": "Injected", "platforms": "windows10",
                                                        "technologies": "mdm"},
                              settings=[{"settingInstance": {
                                  "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
                                  "settingDefinitionId": "vendor_test_injected",
                                  "choiceSettingValue": {"value": "vendor_test_injected_1", "children": []}}}])
    assert added.resource["settingCount"] == 1 and added.resource["id"]
    assert "vendor_test_injected" in load_catalog().setting_definitions
    changed = tenant.change_any_setting()
    assert changed["new_display"] == str(changed["new"]) and changed["new"] != changed["old"]
    with pytest.raises(KeyError):
        tenant.change_setting(added.id, "no_such_setting", 1)


# --- authority -------------------------------------------------------------------------------------


def test_msal_gets_a_token_and_caches_it(msal_env: GraphSimulator) -> None:
    sim = msal_env
    app = msal_app(sim, CONTOSO, sim.client_secret)
    first = app.acquire_token_for_client(scopes=SCOPE)
    assert first["token_type"] == "Bearer" and first["token_source"] == "identity_provider", first
    assert 3000 < first["expires_in"] <= 3600
    assert app.acquire_token_for_client(scopes=SCOPE)["token_source"] == "cache"
    r = get(sim, requests.Session(), f"{DM}/configurationPolicies",
            headers={"Authorization": f"Bearer {first['access_token']}"})
    assert r.status_code == 200 and r.json()["@odata.count"] == len(sim.tenant(CONTOSO).list_policies(
        "configurationPolicies"))
    # the domain name works as authority too, and the token is bound to its tenant
    other = msal_app(sim, "fabrikam.onmicrosoft.com", sim.client_secret).acquire_token_for_client(scopes=SCOPE)
    names = {p["name"] for p in get(sim, requests.Session(), f"{DM}/configurationPolicies?$top=100",
                                    headers={"Authorization": f"Bearer {other['access_token']}"}).json()["value"]}
    assert names == {p.name for p in sim.tenant(FABRIKAM).list_policies("configurationPolicies")}


def test_msal_wrong_secret_and_unknown_tenant(msal_env: GraphSimulator) -> None:
    sim = msal_env
    result = msal_app(sim, CONTOSO, "not-the-secret").acquire_token_for_client(scopes=SCOPE)
    assert result["error"] == "invalid_client" and result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert {"trace_id", "correlation_id", "timestamp"} <= set(result)
    unknown = "00000000-dead-4bad-8bad-000000000000"
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        msal_app(sim, unknown, sim.client_secret)  # MSAL hides the body; here it is:
    r = requests.get(f"{sim.url}/{unknown}/v2.0/.well-known/openid-configuration", verify=str(sim.ca_path))
    assert r.status_code == 400 and r.json()["error_codes"] == [90002]
    assert r.json()["error_description"].startswith(f"AADSTS90002: Tenant '{unknown}' not found.")
    r = requests.post(f"{sim.url}/{CONTOSO}/oauth2/v2.0/token", verify=str(sim.ca_path), data={
        "grant_type": "client_credentials", "client_id": sim.client_id, "client_secret": sim.client_secret,
        "scope": "https://graph.microsoft.com/User.Read"})
    assert r.status_code == 400 and r.json()["error_codes"] == [1002012]


def test_msal_certificate_assertion(msal_env: GraphSimulator) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def make() -> tuple[bytes, bytes, str]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenantpilot-test")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        thumb = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()  # noqa: S324
        return key_pem, cert.public_bytes(serialization.Encoding.PEM), thumb

    sim = msal_env
    key_pem, cert_pem, thumb = make()
    other_key, _, _ = make()
    sim.client_certificate = cert_pem
    try:
        ok = msal_app(sim, CONTOSO, {"private_key": key_pem, "thumbprint": thumb}).acquire_token_for_client(SCOPE)
        assert "access_token" in ok, ok
        bad = msal_app(sim, CONTOSO, {"private_key": other_key, "thumbprint": thumb}).acquire_token_for_client(SCOPE)
        assert bad["error"] == "invalid_client" and bad["error_codes"] == [700027]
    finally:
        sim.client_certificate = None


# --- Graph -----------------------------------------------------------------------------------------


def test_paging_25_with_full_next_link(graph_sim: GraphSimulator, http: requests.Session) -> None:
    sim, url = graph_sim, f"{graph_sim.url}{DM}/configurationPolicies?$expand=assignments"
    sizes, ids, first = [], [], None
    while url:
        body = get(sim, http, url).json()
        first = first or body
        sizes.append(len(body["value"]))
        ids += [p["id"] for p in body["value"]]
        assert all("assignments" in p for p in body["value"])
        url = body.get("@odata.nextLink")
        if url:
            assert url.startswith(f"{sim.url}{DM}/configurationPolicies?") and "$skiptoken=" in url
            assert "$expand=assignments" in url
    expected = {p.id for p in sim.tenant(CONTOSO).list_policies("configurationPolicies")}
    assert sizes[:-1] == [25] * (len(sizes) - 1) and len(sizes) >= 2
    assert len(ids) == len(set(ids)) == first["@odata.count"] and set(ids) == expected
    assert "@microsoft.graph.tips" in first
    # $top honoured up to the endpoint maximum; $expand=settings shrinks pages to 2
    assert len(get(sim, http, f"{DM}/configurationPolicies?$top=30").json()["value"]) == 30
    assert len(get(sim, http, f"{DM}/configurationPolicies?$top=5000").json()["value"]) == len(expected)
    shrunk = get(sim, http, f"{DM}/configurationPolicies?$expand=settings&$top=100").json()
    assert len(shrunk["value"]) == 2 and "settings" in shrunk["value"][0] and "@odata.nextLink" in shrunk
    # a tampered skiptoken is refused, not misread
    bad = get(sim, http, f"{DM}/deviceConfigurations?$skiptoken=bm9wZQ%3D%3D")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"


def test_settings_with_definitions(graph_sim: GraphSimulator, http: requests.Session) -> None:
    sim = graph_sim
    policy = sim.tenant(CONTOSO).policy_by_name("POC_WIN_D_CO_SBL_MSZT_HelloAndDeliveryOptimization")
    body = get(sim, http, f"{DM}/configurationPolicies/{policy.id}/settings?$expand=settingDefinitions"
                          "&$top=1000").json()
    assert len(body["value"]) == len(policy.settings) and "@odata.nextLink" not in body
    for setting in body["value"]:
        defs = {d["id"]: d for d in setting["settingDefinitions"]}
        for inst, _ in walk_instances(setting["settingInstance"]):
            definition = defs[inst["settingDefinitionId"]]
            assert definition["displayName"] and definition["categoryId"] and "description" in definition
            if instance_kind(inst) == "choice":
                assert inst["choiceSettingValue"]["value"] in {o["itemId"] for o in definition["options"]}
                assert all(o["displayName"] for o in definition["options"])
    group = body["value"][1]  # the groupSettingInstance lists a child nobody configured
    assert len(group["settingDefinitions"]) > sum(1 for _ in walk_instances(group["settingInstance"]))
    plain = get(sim, http, f"{DM}/configurationPolicies/{policy.id}/settings").json()
    assert "settingDefinitions" not in plain["value"][0]
    # /settings pages at 25 too unless $top says otherwise
    big = next(p for p in sim.tenant(CONTOSO).list_policies("configurationPolicies") if len(p.settings) > 25)
    page = get(sim, http, f"{DM}/configurationPolicies/{big.id}/settings").json()
    rest = get(sim, http, page["@odata.nextLink"]).json()
    assert len(page["value"]) == 25 and len(page["value"]) + len(rest["value"]) == len(big.settings)
    bad = get(sim, http, f"{DM}/configurationPolicies?$expand=relationships")
    assert bad.status_code == 400 and bad.json()["error"]["message"] == (
        "Parsing OData Select and Expand failed: Could not find a property named 'relationships' on type "
        "'microsoft.graph.deviceManagementConfigurationPolicy'.")


def test_other_families_as_graph_serves_them(graph_sim: GraphSimulator, http: requests.Session) -> None:
    sim, tenant = graph_sim, graph_sim.tenant(CONTOSO)
    # deviceConfigurations: inline settings, encrypted OMA value needs ReadWrite
    configs = get(sim, http, f"{DM}/deviceConfigurations?$expand=assignments").json()["value"]
    custom = next(c for c in configs if c["@odata.type"] == "#microsoft.graph.windows10CustomConfiguration")
    secret = next(o for o in custom["omaSettings"] if o["isEncrypted"])
    path = (f"{DM}/deviceConfigurations/{custom['id']}/getOmaSettingPlainTextValue"
            f"(secretReferenceValueId='{secret['secretReferenceValueId']}')")
    denied = get(sim, http, path)
    assert denied.status_code == 403 and "ReadWrite.All" in json.loads(denied.json()["error"]["message"])["Message"]
    v1 = get(sim, http, f"/v1.0/deviceManagement/deviceConfigurations/{custom['id']}").json()
    assert all("isEncrypted" not in o for o in v1["omaSettings"])
    assert get(sim, http, "/v1.0/deviceManagement/configurationPolicies").status_code == 400
    # compliance: scheduled actions only with the nested expand
    expanded = get(sim, http, f"{DM}/deviceCompliancePolicies?$expand=scheduledActionsForRule("
                              "$expand=scheduledActionConfigurations)").json()["value"]
    assert expanded[0]["scheduledActionsForRule"][0]["scheduledActionConfigurations"][0]["actionType"]
    shallow = get(sim, http, f"{DM}/deviceCompliancePolicies?$expand=scheduledActionsForRule").json()["value"]
    assert "scheduledActionConfigurations" not in shallow[0]["scheduledActionsForRule"][0]
    # intents: $expand=assignments is empty like real Graph, /assignments is not
    intents = get(sim, http, f"{DM}/intents?$expand=assignments").json()["value"]
    assert all(i["assignments"] == [] for i in intents)
    assigned = [p for p in tenant.list_policies("intents") if p.assignments]
    for intent in assigned:
        assert get(sim, http, f"{DM}/intents/{intent.id}/assignments").json()["value"] == intent.assignments
    settings = get(sim, http, f"{DM}/intents/{intents[0]['id']}/settings").json()["value"]
    assert all(isinstance(s["valueJson"], str) and "definitionId" in s for s in settings)
    assert any(s["valueJson"] == "null" for s in settings)
    categories = get(sim, http, f"{DM}/templates/{intents[0]['templateId']}/categories"
                                "?$expand=settingDefinitions").json()["value"]
    defined = {d["id"] for c in categories for d in c["settingDefinitions"]}
    assert {s["definitionId"] for s in settings} <= defined
    # administrative templates: definition and presentation expanded, List and Decimal values
    types = set()
    for gp in tenant.list_policies("groupPolicyConfigurations"):
        dvs = get(sim, http, f"{DM}/groupPolicyConfigurations/{gp.id}/definitionValues?$expand=definition").json()
        for dv in dvs["value"]:
            assert dv["definition"]["displayName"] and "presentationValues" not in dv
            pvs = get(sim, http, f"{DM}/groupPolicyConfigurations/{gp.id}/definitionValues/{dv['id']}"
                                 "/presentationValues?$expand=presentation").json()["value"]
            types |= {pv["@odata.type"] for pv in pvs}
            assert all(pv["presentation"]["label"] for pv in pvs)
    assert {"#microsoft.graph.groupPolicyPresentationValueList",
            "#microsoft.graph.groupPolicyPresentationValueDecimal"} <= types
    # app protection: mixed list, typed GET with apps and assignments
    mixed = get(sim, http, "/beta/deviceAppManagement/managedAppPolicies").json()["value"]
    assert {p["@odata.type"] for p in mixed} == {"#microsoft.graph.iosManagedAppProtection",
                                                 "#microsoft.graph.androidManagedAppProtection"}
    for item in mixed:
        kind = item["@odata.type"].rsplit(".", 1)[1]
        full = get(sim, http, f"/beta/deviceAppManagement/{kind}s/{item['id']}?$expand=apps,assignments").json()
        assert full["id"].startswith("T_") and full["apps"] and "assignments" in full
    # an endpoint-security settings-catalog policy: single GET drops assignments (a real trap)
    es = next(p for p in tenant.list_policies("configurationPolicies")
              if p.resource["templateReference"]["templateFamily"].startswith("endpointSecurity") and p.assignments)
    assert get(sim, http, f"{DM}/configurationPolicies('{es.id}')?$expand=assignments").json()["assignments"] == []
    # scripts carry their content only on a single GET
    script = get(sim, http, f"{DM}/deviceManagementScripts").json()["value"][0]
    assert "scriptContent" not in script
    assert get(sim, http, f"{DM}/deviceManagementScripts/{script['id']}").json()["scriptContent"]
    # unknown paths and ids answer with Graph's error shape
    unknown = get(sim, http, f"{DM}/notAThing")
    assert unknown.status_code == 400 and unknown.json()["error"]["message"] == \
        "Resource not found for the segment 'notAThing'."
    missing = get(sim, http, f"{DM}/configurationPolicies/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and json.loads(missing.json()["error"]["message"])["_version"] == 3


def batch(sim: GraphSimulator, session: requests.Session, urls: list[str]) -> requests.Response:
    body = {"requests": [{"id": str(i), "method": "GET", "url": u} for i, u in enumerate(urls)]}
    return session.post(f"{sim.url}/beta/$batch", json=body, verify=str(sim.ca_path), timeout=10)


def test_batch_of_20_and_rejection_of_21(graph_sim: GraphSimulator, http: requests.Session) -> None:
    sim = graph_sim
    policies = sim.tenant(CONTOSO).list_policies("configurationPolicies")[:21]
    urls = [f"/deviceManagement/configurationPolicies/{p.id}/settings?$expand=settingDefinitions&$top=1000"
            for p in policies]
    r = batch(sim, http, urls[:20])
    assert r.status_code == 200
    responses = r.json()["responses"]
    assert sorted(int(x["id"]) for x in responses) == list(range(20)) and {x["status"] for x in responses} == {200}
    by_id = {x["id"]: x for x in responses}
    assert len(by_id["3"]["body"]["value"]) == len(policies[3].settings)
    assert sim.graph_request_count == 20 and sim.request_count == 1
    too_many = batch(sim, http, urls)
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "BadRequest"
    assert "20" in too_many.json()["error"]["message"]
    mixed = batch(sim, http, ["/deviceManagement/nope", "https://graph.microsoft.com/beta/me",
                              "/beta/deviceManagement/intents"]).json()["responses"]
    assert {x["id"]: x["status"] for x in mixed} == {"0": 400, "1": 400, "2": 400}


def test_throttle_429_with_retry_after_then_recovery(graph_sim: GraphSimulator, http: requests.Session) -> None:
    sim = graph_sim
    sim.throttle = (5, 1.0)
    statuses = [get(sim, http, f"{DM}/intents").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    throttled = get(sim, http, f"{DM}/intents")
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    wait = int(throttled.headers["Retry-After"])
    assert wait == 1  # the window is 1 s
    time.sleep(wait + 0.05)
    assert get(sim, http, f"{DM}/intents").status_code == 200
    # inside a batch every item counts, and a throttled item carries Retry-After itself
    sim.reset_throttle()
    items = batch(sim, http, [f"/deviceManagement/intents?x={i}" for i in range(8)]).json()["responses"]
    limited = [x for x in items if x["status"] == 429]
    assert len(limited) == 3 and all(int(x["headers"]["Retry-After"]) >= 1 for x in limited)
    sim.drop_retry_after = True
    assert "Retry-After" not in get(sim, http, f"{DM}/intents").headers


def test_faults_forbidden_and_malformed(graph_sim: GraphSimulator, http: requests.Session) -> None:
    sim = graph_sim
    sim.fail_next(3, 503)
    assert [get(sim, http, f"{DM}/intents").status_code for _ in range(4)] == [503, 503, 503, 200]
    sim.forbidden_paths = {"/deviceManagement/groupPolicyConfigurations"}
    r = get(sim, http, f"{DM}/groupPolicyConfigurations")
    assert r.status_code == 403 and r.json()["error"]["code"] == "Forbidden"
    inner = json.loads(r.json()["error"]["message"])
    assert inner["Message"].startswith("Application is not authorized to perform this operation. Application "
                                       "must have one of the following scopes: DeviceManagementConfiguration"
                                       ".Read.All")
    sim.malformed_paths.add("/beta/deviceManagement/deviceCompliancePolicies")
    broken = get(sim, http, f"{DM}/deviceCompliancePolicies")
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        json.loads(broken.text)
    sim.fault_rate = 1.0
    assert get(sim, http, f"{DM}/intents").status_code in (500, 502, 503)


def test_token_revoked_or_missing_is_401(graph_sim: GraphSimulator) -> None:
    sim, session = graph_sim, requests.Session()
    token = sim.issue_token(CONTOSO)
    ok = get(sim, session, f"{DM}/intents", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    sim.revoke_all_tokens()
    r = get(sim, session, f"{DM}/intents", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert r.json()["error"]["message"] == "Access token has expired or is not yet valid."
    assert "request-id" in r.json()["error"]["innerError"]
    assert get(sim, session, f"{DM}/intents").status_code == 401
    assert get(sim, session, f"{DM}/intents", headers={"Authorization": "Bearer forged"}).status_code == 401
    # a server-side maximum age makes even fresh tokens die mid-sync
    sim.token_max_age = 0.2
    fresh = sim.issue_token(CONTOSO)
    assert get(sim, session, f"{DM}/intents", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    time.sleep(0.25)
    assert get(sim, session, f"{DM}/intents", headers={"Authorization": f"Bearer {fresh}"}).status_code == 401
    assert fresh in sim.issued_tokens()


def test_concurrent_requests_do_not_serialise(graph_sim: GraphSimulator) -> None:
    sim = graph_sim
    sim.latency = 0.2
    token = sim.issue_token(CONTOSO)
    local = threading.local()

    def one(_: int) -> int:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return get(sim, local.s, f"{DM}/intents", headers={"Authorization": f"Bearer {token}"}).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(one, range(32))) == {200}
    elapsed = time.perf_counter() - started
    print(f"32 requests, 16 threads, 0.2 s latency: {elapsed:.2f} s")
    assert elapsed < 32 * 0.2 / 4  # serialised would take 6.4 s; parallel takes ~0.4 s


def test_control_api(graph_sim: GraphSimulator, http: requests.Session) -> None:
    sim, ca = graph_sim, str(graph_sim.ca_path)
    state = requests.get(f"{sim.url}/_sim/state", verify=ca).json()
    assert {t["display_name"] for t in state["tenants"]} == {"Contoso Ltd", "Fabrikam Inc"}
    knobs = requests.post(f"{sim.url}/_sim/knobs", json={"latency": 0.01, "fail_next": [1, 502]}, verify=ca).json()
    assert knobs["latency"] == 0.01 and knobs["pending_failures"] == 1
    assert get(sim, http, f"{DM}/intents").status_code == 502
    victim = sim.tenant(FABRIKAM).list_policies("deviceConfigurations")[0]
    r = requests.post(f"{sim.url}/_sim/tenants/{FABRIKAM}/policies/deviceConfigurations/{victim.id}/delete",
                      verify=ca)
    assert r.status_code == 200 and sim.tenant(FABRIKAM).find_policy(victim.id) is None
    assert requests.post(f"{sim.url}/_sim/knobs/reset", verify=ca).json()["latency"] == 0.0


def test_serve_forever_writes_discovery_files(tmp_path: Path) -> None:
    assert [name for _, name in DEMO_TENANTS[:3]] == ["Contoso Ltd", "Fabrikam Inc", "Northwind Traders"]
    stop, ready = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def on_ready(sim: GraphSimulator) -> None:
        seen["url"] = sim.url
        ready.set()

    thread = threading.Thread(target=serve_forever, kwargs=dict(
        port=0, data_dir=tmp_path, tenants=3, policies=12, stop_event=stop, ready=on_ready, quiet=True))
    thread.start()
    try:
        assert ready.wait(10)
        info = json.loads((tmp_path / "simulator.json").read_text())
        assert info["url"] == seen["url"] and Path(info["ca_path"]) == tmp_path / "simulator-ca.pem"
        assert [(t["tenant_id"], t["display_name"]) for t in info["tenants"]] == DEMO_TENANTS[:3]
        assert (tmp_path / "simulator-ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
        form = {"grant_type": "client_credentials", "client_id": info["client_id"],
                "client_secret": info["client_secret"], "scope": SCOPE[0]}
        token = requests.post(f"{info['url']}/{DEMO_TENANTS[1][0]}/oauth2/v2.0/token", data=form,
                              verify=info["ca_path"]).json()["access_token"]
        state = requests.get(f"{info['url']}/_sim/state", verify=info["ca_path"]).json()
        diffs = [len(t["seeded_differences"]) for t in state["tenants"]]
        assert diffs[0] == 0 and 0 < diffs[1] < diffs[2]
        r = requests.get(f"{info['url']}/beta/deviceManagement/configurationPolicies",
                         headers={"Authorization": f"Bearer {token}"}, verify=info["ca_path"])
        assert r.status_code == 200 and r.json()["value"]
    finally:
        stop.set()
        thread.join(10)
    assert not (tmp_path / "simulator.json").exists()


# --- knobs for what real Graph does (docs/graph-intune.md §7) -------------------------------------


def test_vanished_policies_answer_400_resource_not_found(graph_sim: GraphSimulator, http: requests.Session) -> None:
    sim = graph_sim
    listed = get(sim, http, f"{DM}/configurationPolicies?$top=5").json()["value"]
    sim.vanish_after_list = {"configurationPolicies": 2}
    again = get(sim, http, f"{DM}/configurationPolicies?$top=5").json()["value"]
    assert [p["id"] for p in again] == [p["id"] for p in listed]  # the list still showed them...
    assert sim.vanish_after_list == {"configurationPolicies": 0}
    assert sim.vanished_ids(CONTOSO) == {p["id"] for p in again[:2]}  # ...then they were gone
    for victim in again[:2]:
        for path in (f"{DM}/configurationPolicies/{victim['id']}", f"{DM}/configurationPolicies/{victim['id']}/settings"):
            r = get(sim, http, path)
            assert r.status_code == 400 and r.json()["error"]["code"] == "ResourceNotFound"
            assert json.loads(r.json()["error"]["message"])["_version"] == 3
    items = batch(sim, http, [f"/deviceManagement/configurationPolicies/{again[0]['id']}/settings"]).json()["responses"]
    assert items[0]["status"] == 400 and items[0]["body"]["error"]["code"] == "ResourceNotFound"
    assert get(sim, http, f"{DM}/configurationPolicies/{again[2]['id']}").status_code == 200
    assert get(sim, http, f"{DM}/configurationPolicies/00000000-0000-0000-0000-000000000000").status_code == 404
    # the control API does the same for one policy
    other = sim.tenant(FABRIKAM).list_policies("intents")[0]
    r = requests.post(f"{sim.url}/_sim/tenants/{FABRIKAM}/policies/intents/{other.id}/vanish", verify=str(sim.ca_path))
    assert r.status_code == 200 and other.id in sim.vanished_ids(FABRIKAM)


def test_persistent_failures_on_a_path_and_on_later_pages(graph_sim: GraphSimulator, http: requests.Session) -> None:
    sim = graph_sim
    sim.apply_knobs({"failing_paths": {"/beta/deviceManagement/intents": 503}})
    assert [get(sim, http, f"{DM}/intents").status_code for _ in range(5)] == [503] * 5  # not a burst: it stays
    items = batch(sim, http, ["/deviceManagement/intents", "/deviceManagement/deviceConfigurations"]).json()["responses"]
    assert {x["id"]: x["status"] for x in items} == {"0": 503, "1": 200}  # inside $batch too
    sim.reset_knobs()
    sim.failing_later_pages = {"/deviceManagement/configurationPolicies": 500}
    first = get(sim, http, f"{DM}/configurationPolicies")
    assert first.status_code == 200 and first.json()["@odata.nextLink"]
    r = get(sim, http, first.json()["@odata.nextLink"])
    assert r.status_code == 500 and r.json()["error"]["code"] == "InternalServerError"
    assert get(sim, http, f"{DM}/deviceConfigurations?$top=2").json()["@odata.nextLink"]
    assert get(sim, http, get(sim, http, f"{DM}/deviceConfigurations?$top=2").json()["@odata.nextLink"]).status_code == 200


@pytest.mark.parametrize(
    "path, family",
    [
        ("/deviceManagement/configurationPolicies/x/settings", "deviceConfigV2"),
        ("/deviceManagement/configurationSettings/x", "deviceConfigV2"),
        ("/deviceManagement/deviceConfigurations", "deviceConfiguration"),
        ("/deviceManagement/intents/x/assignments", "deviceIntent"),
        ("/deviceManagement/deviceEnrollmentConfigurations", "enrollment"),
        ("/deviceAppManagement/targetedManagedAppConfigurations/A_1", "managedApplications"),
        ("/deviceManagement/windowsQualityUpdateProfiles", "updates"),
        ("/deviceManagement/deviceShellScripts/x", "devices"),
        ("/groups", None),
    ],
)
def test_service_families_as_the_throttling_docs_group_them(path: str, family: str | None) -> None:
    assert service_family(path) == family


def test_effective_limits_model_another_app_using_the_budget() -> None:
    assert effective_limits(1.0, None)["deviceConfigV2"] == (1000, 20.0)
    assert effective_limits(1.0, None)["devices"] == (2000, 20.0)
    assert effective_limits(0.2, None)["deviceConfigV2"] == (200, 20.0)  # 10 requests/s left for us
    assert effective_limits(0.2, {"devices": (5, 1.0)})["devices"] == (5, 1.0)
    assert set(FAMILY_LIMITS) == set(effective_limits(1.0, None))


def test_family_throttle_counts_every_batch_item_per_family(graph_sim: GraphSimulator, http: requests.Session) -> None:
    sim = graph_sim
    sim.apply_knobs({"family_throttle": True, "family_limits": {"deviceIntent": (3, 5.0)}})
    items = batch(sim, http, [f"/deviceManagement/intents?x={i}" for i in range(5)]
                  + ["/deviceManagement/deviceConfigurations"]).json()["responses"]
    statuses = {x["id"]: x["status"] for x in items}
    assert sorted(statuses[str(i)] for i in range(5)) == [200, 200, 200, 429, 429]
    assert statuses["5"] == 200  # another family has its own window
    limited = [x for x in items if x["status"] == 429]
    assert all(1 <= int(x["headers"]["Retry-After"]) <= 5 for x in limited)
    sim.drop_retry_after = True  # 429 without Retry-After, inside $batch as well
    items = batch(sim, http, ["/deviceManagement/intents"]).json()["responses"]
    assert items[0]["status"] == 429 and "Retry-After" not in items[0]["headers"]
    r = get(sim, http, f"{DM}/intents")
    assert r.status_code == 429 and "Retry-After" not in r.headers
    sim.family_throttle = False
    assert get(sim, http, f"{DM}/intents").status_code == 200


def test_outer_batch_failure(graph_sim: GraphSimulator, http: requests.Session) -> None:
    sim = graph_sim
    sim.fail_next(1, 429, "/$batch")
    sim.fail_next(1, 503)  # a resource call's failure is never taken by the POST itself
    r = batch(sim, http, ["/deviceManagement/intents", "/deviceManagement/deviceConfigurations"])
    assert r.status_code == 429 and r.headers["Retry-After"] == "1" and r.json()["error"]["code"] == "TooManyRequests"
    r = batch(sim, http, ["/deviceManagement/intents", "/deviceManagement/deviceConfigurations"])
    assert r.status_code == 200 and sorted(x["status"] for x in r.json()["responses"]) == [200, 503]


def test_knobs_add_items_real_tenants_hold(graph_sim: GraphSimulator, http: requests.Session) -> None:
    sim = graph_sim
    before = sim.tenant(CONTOSO).policy_count
    sim.apply_knobs({"unsupported_device_configurations": 2, "mixed_app_policies": True})
    configs = get(sim, http, f"{DM}/deviceConfigurations?$top=1000").json()["value"]
    unsupported = [c for c in configs if c["@odata.type"] == "#microsoft.graph.unsupportedDeviceConfiguration"]
    assert len(unsupported) == 2 and all(c["originalEntityTypeName"] and "details" in c for c in unsupported)
    mixed = get(sim, http, "/beta/deviceAppManagement/managedAppPolicies").json()["value"]
    assert {p["@odata.type"].rsplit(".", 1)[1] for p in mixed} == {
        "iosManagedAppProtection", "androidManagedAppProtection", "windowsManagedAppProtection",
        "windowsInformationProtectionPolicy", "mdmWindowsInformationProtectionPolicy", "targetedManagedAppConfiguration"}
    config = next(p for p in mixed if p["@odata.type"].endswith("targetedManagedAppConfiguration"))
    full = get(sim, http, f"/beta/deviceAppManagement/targetedManagedAppConfigurations/{config['id']}"
                          "?$expand=apps,assignments").json()
    assert full["customSettings"] and full["apps"] and full["assignments"]
    typed = get(sim, http, "/beta/deviceAppManagement/targetedManagedAppConfigurations").json()["value"]
    assert [p["id"] for p in typed] == [config["id"]]
    wip = next(p for p in mixed if p["@odata.type"].endswith(".windowsInformationProtectionPolicy"))
    assert sim.tenant(CONTOSO).domain in json.dumps(wip)
    sim.reset_knobs()  # the knob's items leave with it
    assert sim.tenant(CONTOSO).policy_count == before
    assert get(sim, http, "/beta/deviceAppManagement/targetedManagedAppConfigurations").json()["value"] == []
