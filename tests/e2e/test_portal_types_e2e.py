"""Every policy the portal shows, through the real parts (simulator over HTTPS, MSAL, the Huey consumer on
Redis, DuckDB): certificate links of Wi-Fi profiles and the domain-join link of a hybrid Autopilot
profile shown by the linked profile's name, managed-device app configuration as its own family, and
quality update policies; a link Graph refuses is said on its row and in a warning, never dropped."""

from __future__ import annotations

import json

import polars as pl
from realparts import add_and_sync, latest_run, store_of

from graphsim.tenants import build_tenant
from tenantpilot import families as F

TID = "99999999-9999-4999-8999-999999999999"
# a VPN profile whose identityCertificate the simulator does not serve (400, as Graph answers a segment
# it does not know): the profile must still be synced, its link row saying it was not read
VPN = {"@odata.type": "#microsoft.graph.windows10VpnConfiguration", "displayName": "WIN_D_VPN_AlwaysOn",
       "description": "", "roleScopeTagIds": ["0"], "connectionName": "Corp VPN",
       "authenticationMethod": "certificate", "connectionType": "ikEv2",
       "servers": [{"description": "corp", "address": "vpn.example.org", "isDefaultServer": True}]}


def test_links_app_configuration_and_quality_updates_are_synced_and_named(env, consumer, sim):
    tenant = build_tenant(TID, "Portal", n_policies=40, seed=3)
    vpn = tenant.add_policy("deviceConfigurations", VPN)
    sim.add_tenant(tenant)
    sim.reset_counters()
    add_and_sync(env, tenant=TID, name="Portal")
    run = latest_run(env, TID)
    assert run["status"] == "succeeded", run
    warnings = json.loads(run["warnings"] or "[]")
    assert any("WIN_D_VPN_AlwaysOn" in w and "identityCertificate" in w for w in warnings), warnings

    rows = store_of(env).current_settings([TID])
    by_policy = {name: frame for (name,), frame in rows.group_by("policy_name")}

    def value(policy_name: str, key: str) -> tuple[str, str]:
        frame = by_policy[policy_name].filter(pl.col("setting_key") == key)
        assert frame.height == 1, (policy_name, key, by_policy[policy_name]["setting_key"].to_list())
        return frame["value"][0], frame["raw_value"][0]

    # certificate links: named by the trusted-root profile, the raw value keeps its id
    for wifi in ("POC_IOS_D_CO_SBL_MSZT_WiFi", "POC_MAC_D_CO_SBL_MSZT_WiFi"):
        sim_wifi = tenant.policy_by_name(wifi)
        assert sim_wifi is not None
        [root_id] = sim_wifi.links["rootCertificatesForServerValidation"]
        root = tenant.find_policy(root_id)
        assert root is not None
        shown, raw = value(wifi, "rootCertificatesForServerValidation")
        assert shown == root.name and json.loads(raw) == [{"id": root_id, "displayName": root.name}]
        # its unset single links (204 from Graph) give no row and keep the profile
        assert by_policy[wifi].filter(pl.col("setting_key").str.starts_with("identityCertificate")).height == 0
    # the hybrid Autopilot profile names its domain-join profile
    shown, raw = value("POC_WIN_D_CO_Autopilot_Hybrid", "domainJoinConfiguration")
    assert shown == "POC_WIN_D_CO_DomainJoin_Hybrid" and json.loads(raw)["id"]
    assert by_policy["POC_WIN_D_CO_DomainJoin_Hybrid"]["policy_type"].unique().to_list() == [F.DEVICE_CONFIGURATION]
    # a refused link: the profile is there, its row says the link was not read
    shown, _ = value("WIN_D_VPN_AlwaysOn", "identityCertificate")
    assert shown.startswith("not read from Graph (400")
    assert vpn.id in set(by_policy["WIN_D_VPN_AlwaysOn"]["policy_id"])

    # managed-device app configuration is its own family, its key/value pairs readable
    config = by_policy["POC_IOS_D_CO_AppConfig_Outlook"]
    assert config["policy_type"].unique().to_list() == [F.APP_CONFIGURATION]
    assert value("POC_IOS_D_CO_AppConfig_Outlook",
                 "settings[appConfigKey=com.microsoft.outlook.Mail.FocusedInbox]/appConfigKeyValue")[0] == "false"
    # quality update policies, in the Windows update family
    shown, _ = value("POC_WIN_D_CO_QualityUpdates_Hotpatch", "hotpatchEnabled")
    assert shown == "true"
    assert by_policy["POC_WIN_D_CO_QualityUpdates_Hotpatch"]["policy_type"].unique().to_list() == [F.WINDOWS_UPDATE]

    # request count: one GET per link of the profiles that have links, none for the others
    links = [p for _, p, _ in sim.request_log if "/microsoft.graph." in p]
    linking = [p for p in tenant.list_policies("deviceConfigurations")
               if p.resource["@odata.type"].endswith(("EnterpriseWiFiConfiguration", "VpnConfiguration"))]
    per_type = {"iosEnterpriseWiFiConfiguration": 2, "macOSEnterpriseWiFiConfiguration": 3,
                "windows10VpnConfiguration": 1}
    expected = sum(per_type[p.resource["@odata.type"].rsplit(".", 1)[1]] for p in linking) + 1  # + hybrid Autopilot
    assert len(links) == expected, links
    print(f"\nsync of {tenant.policy_count} policies: {len(links)} link GETs of {len(sim.request_log)} Graph calls")


def test_a_link_answering_404_is_no_link_not_a_deleted_profile():
    """Graph may answer an unset link 404 rather than 204: the profile stays, with no link row and no
    warning (a deleted profile would have been dropped); over real HTTPS with MSAL unpatched."""
    from graphsim.server import GraphSimulator
    from tenantpilot.flatten import flatten_policy
    from tenantpilot.graph import GraphClient, TokenProvider, fetch_tenant

    tenant = build_tenant(TID, "Portal", n_policies=40, seed=3)
    wifi = tenant.policy_by_name("POC_IOS_D_CO_SBL_MSZT_WiFi")
    assert wifi is not None
    link = (f"/beta/deviceManagement/deviceConfigurations/{wifi.id}/microsoft.graph.iosEnterpriseWiFiConfiguration/"
            "rootCertificatesForServerValidation")
    with GraphSimulator({TID: tenant}) as sim:
        sim.failing_paths = {link: 404}
        tokens = TokenProvider(TID, sim.client_id, client_secret=sim.client_secret, authority_host=sim.url,
                               verify=str(sim.ca_path))
        with GraphClient(tokens, base_url=sim.url, verify=str(sim.ca_path)) as client:
            result = fetch_tenant(client)
        assert any(path.startswith(link) and status == 404 for _, path, status in sim.request_log)
    assert result.warnings == [] and not result.dropped and not result.partial
    [got] = [p for p in result.policies if p.id == wifi.id]
    assert "rootCertificatesForServerValidation" not in got.raw
    assert not [r for r in flatten_policy(got.raw, got.family) if r["value_type"] in ("link", "unread")]
