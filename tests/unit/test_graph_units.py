"""Table-driven tests of the Graph layer's pure parts (no network)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from tenantpilot.graph import (
    FAMILIES,
    POLICY_TYPES,
    AuthError,
    BadResponse,
    GraphClient,
    GraphError,
    NotFound,
    PermissionDenied,
    ServerError,
    Throttled,
    TokenProvider,
    types_by_family,
)
from tenantpilot.graph.auth import certificate_thumbprint
from tenantpilot.graph.client import (
    add_query,
    backoff_delay,
    build_query,
    chunked,
    connection_reason,
    parse_retry_after,
    redact_headers,
    retry_delay,
    same_origin,
)
from tenantpilot.graph.errors import (
    error_from_response,
    parse_graph_error,
    parse_missing_permissions,
    preferred_permission,
)
from tenantpilot.graph.policy_types import get_policy_type

# Real-shaped bodies (docs/graph-intune.md §4).
INTUNE_403 = {
    "error": {
        "code": "Forbidden",
        "message": json.dumps(
            {
                "_version": 3,
                "Message": "Application is not authorized to perform this operation. Application must have one of "
                "the following scopes: DeviceManagementConfiguration.Read.All, "
                "DeviceManagementConfiguration.ReadWrite.All - Activity ID: 0f1e2d3c-0000-4000-8000-000000000000 "
                "- Url: https://fef.amsua0402.manage.microsoft.com/DeviceConfiguration/StatelessDeviceConfigurationFEService/deviceManagement/groupPolicyConfigurations?api-version=5023-05-04",
                "CustomApiErrorPhrase": "",
                "RetryAfter": None,
                "ErrorSourceService": "",
                "HttpHeaders": "{}",
            },
            indent=2,
        ).replace("\n", "\r\n"),
        "innerError": {"date": "2024-01-01T00:00:00", "request-id": "x", "client-request-id": "y"},
    }
}
GRAPH_401 = {
    "error": {
        "code": "InvalidAuthenticationToken",
        "message": "Access token has expired or is not yet valid.",
        "innerError": {},
    }
}
GRAPH_400 = {
    "error": {
        "code": "BadRequest",
        "message": "Parsing OData Select and Expand failed: Could not find a property named 'relationships' on type "
        "'microsoft.graph.deviceManagementConfigurationPolicy'.",
    }
}


# ---------------------------------------------------------------------------------------
# Retry-After and backoff
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("10", 10.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("0", 0.0),
        (7, 7.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date():
    now = time.time()
    when = datetime.fromtimestamp(now, timezone.utc) + timedelta(seconds=30)
    got = parse_retry_after(format_datetime(when, usegmt=True), now=now)
    assert got is not None and 28 <= got <= 31
    past = datetime.fromtimestamp(now, timezone.utc) - timedelta(seconds=30)
    assert parse_retry_after(format_datetime(past, usegmt=True), now=now) == 0.0


@pytest.mark.parametrize(
    "attempt, base, jitter, expected",
    [
        (0, 1.0, 1.0, 1.0),
        (0, 1.0, 0.0, 0.5),
        (1, 1.0, 1.0, 2.0),
        (3, 1.0, 1.0, 8.0),
        (5, 1.0, 1.0, 32.0),
        (6, 1.0, 1.0, 60.0),  # capped
        (20, 1.0, 1.0, 60.0),
        (2, 10.0, 1.0, 40.0),
        (3, 10.0, 0.0, 30.0),  # min(80, 60) * 0.5
        (4, 0.001, 1.0, 0.016),
    ],
)
def test_backoff_delay(attempt, base, jitter, expected):
    # rng returns [0, 1); jitter factor is 0.5 + rng/2
    got = backoff_delay(attempt, base, rng=lambda: jitter)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    "header, attempt, expected",
    [
        ("4", 0, 4.0),  # Retry-After wins over backoff
        ("4", 5, 4.0),
        ("0", 3, 0.0),
        (None, 0, 1.0),  # absent → backoff 2**0 * base
        (None, 2, 4.0),
        ("bogus", 1, 2.0),  # malformed → backoff
        ("100000", 0, 300.0),  # clamped to max_retry_after
    ],
)
def test_retry_delay(header, attempt, expected):
    assert retry_delay(header, attempt, 1.0, rng=lambda: 1.0) == pytest.approx(expected)


# ---------------------------------------------------------------------------------------
# URLs, packing, headers
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, expected",
    [
        (None, ""),
        ({}, ""),
        ({"$expand": "assignments"}, "$expand=assignments"),
        ([("$expand", "settingDefinitions"), ("$top", "1000")], "$expand=settingDefinitions&$top=1000"),
        (
            {"$expand": "scheduledActionsForRule($expand=scheduledActionConfigurations)"},
            "$expand=scheduledActionsForRule($expand=scheduledActionConfigurations)",
        ),
        ({"$filter": "displayName eq 'A & B'"}, "$filter=displayName%20eq%20'A%20%26%20B'"),
        ({"$top": 5, "$count": True, "skip": None}, "$top=5&$count=true"),
    ],
)
def test_build_query(params, expected):
    assert build_query(params) == expected


@pytest.mark.parametrize(
    "url, params, expected",
    [
        ("/a", None, "/a"),
        ("/a", {"$top": "1"}, "/a?$top=1"),
        ("/a?$expand=x", {"$top": "1"}, "/a?$expand=x&$top=1"),
    ],
)
def test_add_query(url, params, expected):
    assert add_query(url, params) == expected


@pytest.mark.parametrize(
    "n, sizes",
    [(0, []), (1, [1]), (19, [19]), (20, [20]), (21, [20, 1]), (45, [20, 20, 5]), (100, [20] * 5)],
)
def test_chunked_packs_twenty(n, sizes):
    chunks = chunked(list(range(n)))
    assert [len(c) for c in chunks] == sizes
    assert [x for c in chunks for x in c] == list(range(n))  # order kept


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("https://graph.microsoft.com/beta/x", "https://graph.microsoft.com", True),
        ("https://GRAPH.microsoft.com:443/beta/x", "https://graph.microsoft.com", True),
        ("https://127.0.0.1:8443/beta/x?$skiptoken=1", "https://127.0.0.1:8443", True),
        ("https://127.0.0.1:8444/beta/x", "https://127.0.0.1:8443", False),
        ("http://graph.microsoft.com/beta/x", "https://graph.microsoft.com", False),
        ("https://evil.example/beta/x", "https://graph.microsoft.com", False),
    ],
)
def test_same_origin(a, b, same):
    assert same_origin(a, b) is same


@pytest.mark.parametrize(
    "text, reason",
    [
        (
            "HTTPSConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /x (Caused by "
            "NewConnectionError(\"HTTPSConnection(host='127.0.0.1', port=1): Failed to establish a new connection: "
            "[Errno 111] Connection refused\"))",
            "Connection refused",
        ),
        ("HTTPSConnectionPool(host='nope.invalid', port=443): ... [Errno -2] Name or service not known')", "Name or service not known"),
        ("HTTPSConnectionPool(host='x', port=443): Read timed out. (read timeout=60)", "Read timed out"),
        ("something else entirely", "something else entirely"),
    ],
)
def test_connection_reason(text, reason):
    import requests

    assert connection_reason(requests.exceptions.ConnectionError(text)) == reason


def test_redact_headers():
    h = {"Authorization": "Bearer eyJ.secret", "Accept": "application/json", "cookie": "c"}
    out = redact_headers(h)
    assert out == {"Authorization": "<redacted>", "Accept": "application/json", "cookie": "<redacted>"}
    assert "eyJ" not in repr(out)


class _NoTokens:
    tenant_id = "contoso.onmicrosoft.com"

    def get_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> str:  # pragma: no cover
        raise AssertionError("no network in unit tests")


def test_client_urls_keep_next_links_whole():
    c = GraphClient(_NoTokens(), base_url="https://127.0.0.1:8443/")
    assert c.url_for("/deviceManagement/intents") == "https://127.0.0.1:8443/beta/deviceManagement/intents"
    assert c.url_for("deviceManagement/intents", {"$top": "5"}, "v1.0") == (
        "https://127.0.0.1:8443/v1.0/deviceManagement/intents?$top=5"
    )
    nxt = "https://127.0.0.1:8443/beta/deviceManagement/configurationPolicies?$expand=assignments&$skiptoken=%5Bcosmosdb%5D%3Aabc%2B%3D"
    assert c.url_for(nxt) == nxt  # used verbatim, not rebuilt
    assert c.relative_url(nxt) == "/deviceManagement/configurationPolicies?$expand=assignments&$skiptoken=%5Bcosmosdb%5D%3Aabc%2B%3D"
    assert c.relative_url("https://127.0.0.1:8443/v1.0/x") is None
    with pytest.raises(BadResponse, match="another host"):
        c.url_for("https://evil.example/beta/x")
    c.close()


def test_next_link_guards():
    c = GraphClient(_NoTokens(), base_url="https://graph.microsoft.com")
    here = "https://graph.microsoft.com/beta/x"
    assert c._next_link({}, here, {here}) is None
    assert c._next_link({"@odata.nextLink": here + "?$skiptoken=2"}, here, {here}) == here + "?$skiptoken=2"
    with pytest.raises(BadResponse, match="another host"):
        c._next_link({"@odata.nextLink": "https://elsewhere.example/beta/x"}, here, {here})
    with pytest.raises(BadResponse, match="paging loop"):
        c._next_link({"@odata.nextLink": here}, here, {here})
    with pytest.raises(BadResponse, match="unusable"):
        c._next_link({"@odata.nextLink": 42}, here, {here})
    c.close()


# ---------------------------------------------------------------------------------------
# Error bodies
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, code, message_start",
    [
        (INTUNE_403, "Forbidden", "Application is not authorized to perform this operation."),
        (json.dumps(INTUNE_403), "Forbidden", "Application is not authorized"),
        (GRAPH_401, "InvalidAuthenticationToken", "Access token has expired"),
        (GRAPH_400, "BadRequest", "Parsing OData Select and Expand failed"),
        ({"error": {"code": "X", "message": "{not json"}}, "X", "{not json"),
        ({"error": "invalid_client", "error_description": "AADSTS7000215: bad"}, "invalid_client", "AADSTS7000215"),
        ("<html>Service Unavailable</html>", None, "<html>Service Unavailable"),
        ("", None, None),
        ({"value": []}, None, None),
        ([1, 2], None, None),
    ],
)
def test_parse_graph_error(body, code, message_start):
    got_code, got_message = parse_graph_error(body)
    assert got_code == code
    if message_start is None:
        assert got_message is None
    else:
        assert got_message.startswith(message_start)


@pytest.mark.parametrize(
    "message, scopes",
    [
        (
            "Application must have one of the following scopes: DeviceManagementConfiguration.Read.All, "
            "DeviceManagementConfiguration.ReadWrite.All - Activity ID: abc - Url: https://x",
            ("DeviceManagementConfiguration.Read.All", "DeviceManagementConfiguration.ReadWrite.All"),
        ),
        (
            "Application must have one of the following scopes: DeviceManagementApps.Read.All, "
            "DeviceManagementApps.ReadWrite.All - Operation ID (for customer support): 0000 - Activity ID: 1",
            ("DeviceManagementApps.Read.All", "DeviceManagementApps.ReadWrite.All"),
        ),
        (
            "Application must have one of the following scopes: DeviceManagementApps.Read.All",
            ("DeviceManagementApps.Read.All",),
        ),
        (
            "application must have ONE OF THE FOLLOWING SCOPES: DeviceManagementServiceConfig.ReadWrite.All, "
            "DeviceManagementServiceConfig.Read.All.",
            ("DeviceManagementServiceConfig.ReadWrite.All", "DeviceManagementServiceConfig.Read.All"),
        ),
        ("Forbidden", ()),
        (None, ()),
    ],
)
def test_parse_missing_permissions(message, scopes):
    assert parse_missing_permissions(message) == scopes


@pytest.mark.parametrize(
    "scopes, preferred",
    [
        (("A.ReadWrite.All", "A.Read.All"), "A.Read.All"),
        (("A.ReadWrite.All",), "A.ReadWrite.All"),
        ((), None),
    ],
)
def test_preferred_permission(scopes, preferred):
    assert preferred_permission(scopes) == preferred


@pytest.mark.parametrize(
    "status, body, cls",
    [
        (400, GRAPH_400, GraphError),
        (401, GRAPH_401, AuthError),
        (403, INTUNE_403, PermissionDenied),
        (404, {"error": {"code": "ResourceNotFound", "message": "nope"}}, NotFound),
        (409, {"error": {"code": "Conflict", "message": "c"}}, GraphError),
        (429, {"error": {"code": "TooManyRequests", "message": "slow down"}}, Throttled),
        (500, "oops", ServerError),
        (503, {}, ServerError),
    ],
)
def test_error_from_response(status, body, cls):
    url = "https://graph.microsoft.com/beta/deviceManagement/x"
    err = error_from_response(status, body, url=url)
    assert type(err) is cls
    assert err.status == status and err.url == url
    assert url in str(err)


def test_permission_denied_carries_scopes_and_readable_message():
    err = error_from_response(403, INTUNE_403, url="https://g/beta/deviceManagement/groupPolicyConfigurations")
    assert isinstance(err, PermissionDenied)
    assert err.code == "Forbidden"
    assert err.missing_permissions == (
        "DeviceManagementConfiguration.Read.All",
        "DeviceManagementConfiguration.ReadWrite.All",
    )
    assert "DeviceManagementConfiguration.Read.All" in str(err)
    assert "_version" not in str(err) and "\\r\\n" not in str(err)


def test_bad_request_keeps_graph_code_and_message():
    err = error_from_response(400, GRAPH_400, url="https://g/beta/x")
    assert err.code == "BadRequest"
    assert "Could not find a property named 'relationships'" in str(err)


# ---------------------------------------------------------------------------------------
# Token provider: MSAL error dicts → AuthError (no network: only the translation)
# ---------------------------------------------------------------------------------------

SECRET = "s3cr3t~VALUE.that-must-never-leak"


@pytest.mark.parametrize(
    "result, expected",
    [
        (
            {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
                "in the request is the client secret value. Trace ID: 1 Correlation ID: 2 Timestamp: 3",
                "error_codes": [7000215],
            },
            "Tenant contoso.onmicrosoft.com: sign-in failed (AADSTS7000215: invalid client secret)",
        ),
        (
            {
                "error": "unauthorized_client",
                "error_description": "AADSTS700016: Application with identifier 'x' was not found in the directory.",
                "error_codes": [700016],
            },
            "Tenant contoso.onmicrosoft.com: sign-in failed (AADSTS700016: application not found in the tenant "
            "(wrong client id, or the app is not consented there))",
        ),
        (
            {"error": "invalid_request", "error_description": "AADSTS123456: Something odd happened. Trace ID: 9"},
            "Tenant contoso.onmicrosoft.com: sign-in failed (AADSTS123456: something odd happened)",
        ),
        (
            {"error": "invalid_client", "error_description": f"secret {SECRET} was wrong"},
            "Tenant contoso.onmicrosoft.com: sign-in failed (invalid_client: secret *** was wrong)",
        ),
        ({"error": "temporarily_unavailable"}, "Tenant contoso.onmicrosoft.com: sign-in failed (temporarily_unavailable)"),
    ],
)
def test_auth_error_from_msal_dict(result, expected):
    tp = TokenProvider("contoso.onmicrosoft.com", "client-id", client_secret=SECRET, authority_host="https://127.0.0.1:1")
    err = tp._auth_error(result)
    assert isinstance(err, AuthError) and isinstance(err, GraphError)
    assert str(err) == expected
    assert SECRET not in str(err) and SECRET not in repr(err) and SECRET not in repr(tp)
    assert err.tenant == "contoso.onmicrosoft.com"


def test_token_provider_validates_arguments():
    with pytest.raises(ValueError):
        TokenProvider("t", "c")  # no credential
    with pytest.raises(ValueError):
        TokenProvider("t", "c", client_secret="x", certificate_path="/x.pem")
    tp = TokenProvider("t", "c", client_secret="x", authority_host="login.example.net/", graph_url="https://graph.microsoft.us")
    assert tp.authority == "https://login.example.net/t"
    assert tp.scope == "https://graph.microsoft.us/.default"


def test_certificate_thumbprint_matches_cryptography(tmp_path):
    trustme = pytest.importorskip("trustme")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = trustme.CA().issue_cert("tenantpilot.test")
    pem = cert.private_key_and_cert_chain_pem.bytes()
    expected = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes()).fingerprint(hashes.SHA1()).hex().upper()
    assert certificate_thumbprint(pem) == expected
    assert len(expected) == 40


# ---------------------------------------------------------------------------------------
# The policy-type table
# ---------------------------------------------------------------------------------------


def test_families_are_exactly_the_contract():
    assert set(FAMILIES) == {
        "settingsCatalog",
        "complianceV2",
        "deviceConfiguration",
        "compliance",
        "endpointSecurityIntent",
        "adminTemplate",
        "appProtection",
        "appConfiguration",  # managed-app configuration: listed by managedAppPolicies, read on its own
        "windowsUpdate",
        "autopilot",
        "enrollment",
        "script",
        # issue 19's first slice: objects matched by name (families.py scope "name")
        "healthScript",  # remediations and custom compliance scripts
        "mobileApp",
        "assignmentFilter",
        "scopeTag",
        "conditionalAccess",  # policies and named locations (Entra, v1.0)
        # its second slice
        "customAttribute",  # macOS custom attribute shell scripts
        "role",  # Intune role definitions with their role assignments
        "deviceCategory",
        "notificationTemplate",  # compliance notification templates with their localized messages
        "reusableSetting",
        "connector",  # Apple VPP and ADE tokens (with enrollment profiles), partner connections, APNs, Google Play
        "tenantSettings",  # deviceManagement/settings
    }
    keys = [t.key for t in POLICY_TYPES]
    assert len(keys) == len(set(keys))
    for t in POLICY_TYPES:
        assert t.list_path.startswith("/")
        for f in t.follow_ups:
            assert f.key is not None or not f.pages  # paging follow-ups need a key to merge under
    with pytest.raises(ValueError):
        types_by_family("nope")
    assert {t.key for t in types_by_family("windowsUpdate")} == {
        "windowsFeatureUpdateProfiles",
        "windowsDriverUpdateProfiles",
        "windowsQualityUpdateProfiles",
        "windowsQualityUpdatePolicies",  # beside the profiles in Graph's beta metadata
    }
    assert {t.key for t in types_by_family("appConfiguration")} == {
        "targetedManagedAppConfigurations", "mobileAppConfigurations"}


@pytest.mark.parametrize(
    "key, list_url, follow_urls",
    [
        (
            "configurationPolicies",
            "/deviceManagement/configurationPolicies?$expand=assignments",
            ["/deviceManagement/configurationPolicies/P1/settings?$expand=settingDefinitions&$top=1000"],
        ),
        (
            "compliancePolicies",
            "/deviceManagement/compliancePolicies?$expand=assignments",
            ["/deviceManagement/compliancePolicies/P1/settings?$expand=settingDefinitions&$top=1000"],
        ),
        ("deviceConfigurations", "/deviceManagement/deviceConfigurations?$expand=assignments", []),
        (
            "deviceCompliancePolicies",
            "/deviceManagement/deviceCompliancePolicies?$expand=assignments,scheduledActionsForRule($expand=scheduledActionConfigurations)",
            [],
        ),
        (
            "intents",
            "/deviceManagement/intents",
            ["/deviceManagement/intents/P1/settings", "/deviceManagement/intents/P1/assignments"],
        ),
        (
            "groupPolicyConfigurations",
            "/deviceManagement/groupPolicyConfigurations?$expand=assignments",
            ["/deviceManagement/groupPolicyConfigurations/P1/definitionValues?$expand=definition"],
        ),
        (
            "windowsAutopilotDeploymentProfiles",
            "/deviceManagement/windowsAutopilotDeploymentProfiles?$expand=assignments",
            [],
        ),
        ("deviceEnrollmentConfigurations", "/deviceManagement/deviceEnrollmentConfigurations?$expand=assignments", []),
        (
            "deviceShellScripts",
            "/deviceManagement/deviceShellScripts",
            ["/deviceManagement/deviceShellScripts/P1?$expand=assignments"],
        ),
        ("mobileAppConfigurations", "/deviceAppManagement/mobileAppConfigurations?$expand=assignments", []),
        ("windowsQualityUpdatePolicies", "/deviceManagement/windowsQualityUpdatePolicies?$expand=assignments", []),
    ],
)
def test_request_plan(key, list_url, follow_urls):
    t = get_policy_type(key)
    assert t.list_url == list_url
    # an item without an @odata.type gets no link calls (links are routed by type)
    assert [u for f in t.follow_ups if (u := f.url_for({"id": "P1"})) is not None] == follow_urls


_SELECT = "?$select=id,displayName"
_DCS = "/deviceManagement/deviceConfigurations/P1/microsoft.graph."


@pytest.mark.parametrize(
    "key, odata_type, urls",
    [
        ("deviceConfigurations", "iosEnterpriseWiFiConfiguration",
         {"rootCertificatesForServerValidation": _DCS + "iosEnterpriseWiFiConfiguration/rootCertificatesForServerValidation" + _SELECT,
          "identityCertificateForClientAuthentication":
              _DCS + "iosEnterpriseWiFiConfiguration/identityCertificateForClientAuthentication" + _SELECT}),
        ("deviceConfigurations", "windows10VpnConfiguration",
         {"identityCertificate": _DCS + "windows10VpnConfiguration/identityCertificate" + _SELECT}),
        ("deviceConfigurations", "androidWorkProfilePkcsCertificateProfile",
         {"rootCertificate": _DCS + "androidWorkProfilePkcsCertificateProfile/rootCertificate" + _SELECT}),
        ("deviceConfigurations", "windowsWifiEnterpriseEAPConfiguration",
         {"rootCertificatesForServerValidation":
              _DCS + "windowsWifiEnterpriseEAPConfiguration/rootCertificatesForServerValidation" + _SELECT,
          "identityCertificateForClientAuthentication":
              _DCS + "windowsWifiEnterpriseEAPConfiguration/identityCertificateForClientAuthentication" + _SELECT,
          "rootCertificateForClientValidation":
              _DCS + "windowsWifiEnterpriseEAPConfiguration/rootCertificateForClientValidation" + _SELECT}),
        ("deviceConfigurations", "windows10GeneralConfiguration", {}),  # no links: no extra request
        ("deviceConfigurations", "iosTrustedRootCertificate", {}),
        ("windowsAutopilotDeploymentProfiles", "activeDirectoryWindowsAutopilotDeploymentProfile",
         {"domainJoinConfiguration": "/deviceManagement/windowsAutopilotDeploymentProfiles/P1/microsoft.graph."
                                     "activeDirectoryWindowsAutopilotDeploymentProfile/domainJoinConfiguration" + _SELECT}),
        ("windowsAutopilotDeploymentProfiles", "azureADWindowsAutopilotDeploymentProfile", {}),
    ],
)
def test_links_are_one_get_per_navigation_of_the_types_that_have_it(key, odata_type, urls):
    t = get_policy_type(key)
    item = {"id": "P1", "@odata.type": f"#microsoft.graph.{odata_type}"}
    got = {f.key: u for f in t.follow_ups if (u := f.url_for(item)) is not None}
    assert got == urls
    assert all(f.optional for f in t.follow_ups)  # an unset link (204/404) is not a deleted policy


def test_admin_template_presentation_values_are_nested_per_definition_value():
    t = get_policy_type("groupPolicyConfigurations")
    dv = t.follow_ups[0]
    assert dv.key == "definitionValues" and len(dv.nested) == 1
    pv = dv.nested[0]
    assert pv.key == "presentationValues"
    assert pv.url_for({"id": "DV9"}, parent_id="P1") == (
        "/deviceManagement/groupPolicyConfigurations/P1/definitionValues/DV9/presentationValues?$expand=presentation"
    )


@pytest.mark.parametrize(
    "odata_type, url",
    [
        ("#microsoft.graph.iosManagedAppProtection", "/deviceAppManagement/iosManagedAppProtections/T_1?$expand=apps,assignments"),
        ("#microsoft.graph.androidManagedAppProtection", "/deviceAppManagement/androidManagedAppProtections/T_1?$expand=apps,assignments"),
        ("#microsoft.graph.windowsManagedAppProtection", "/deviceAppManagement/windowsManagedAppProtections/T_1?$expand=apps,assignments"),
        ("#microsoft.graph.mdmWindowsInformationProtectionPolicy", "/deviceAppManagement/mdmWindowsInformationProtectionPolicies/T_1?$expand=assignments"),
        ("#microsoft.graph.someFutureProtection", None),  # no typed collection → no call
        (None, None),
    ],
)
def test_app_protection_typed_get_by_odata_type(odata_type, url):
    f = get_policy_type("managedAppPolicies").follow_ups[0]
    item = {"id": "T_1"}
    if odata_type:
        item["@odata.type"] = odata_type
    assert f.url_for(item) == url


def test_ids_are_url_quoted():
    f = get_policy_type("intents").follow_ups[0]
    assert f.url_for({"id": "a/b c"}) == "/deviceManagement/intents/a%2Fb%20c/settings"
