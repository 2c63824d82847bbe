"""Table-driven tests of the Graph layer's pure rules: the retry decision, the service family of
a URL, the pacer (on a fake clock), and which errors drop a policy or skip a type."""

from __future__ import annotations

import pytest

from tenantpilot.graph import POLICY_TYPES
from tenantpilot.graph.client import cost_of
from tenantpilot.graph.errors import BadResponse, GraphError, NotFound, PermissionDenied, ServerError, Throttled
from tenantpilot.graph.fetch import covering_policies, is_deleted, skip_reason
from tenantpilot.graph.policy_types import get_policy_type
from tenantpilot.graph.retry import CONNECTION, Attempts, RetryPolicy
from tenantpilot.graph.throttle import PUBLISHED_LIMITS, SERVICE_FAMILIES, Pacer, family_of

POLICY = RetryPolicy(max_retries=3, backoff_base=1.0, throttle_backoff_base=10.0)
NO_JITTER = lambda: 1.0  # noqa: E731 - jitter factor 0.5 + 1/2 = 1.0: the delay is the backoff itself


def attempts(retries: int = 0, throttled: int = 0, refreshed: bool = False) -> Attempts:
    return Attempts(retries=retries, throttled=throttled, refreshed=refreshed)


# ---------------------------------------------------------------------------------------
# The retry rule
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome, tried, retry_after, now, deadline, action, delay, reason, note",
    [
        # 2xx: done
        (200, attempts(), None, 0, None, "done", 0.0, "", ""),
        (204, attempts(retries=2), None, 0, None, "done", 0.0, "", ""),
        # 401: one refresh, then fail
        (401, attempts(), None, 0, None, "refresh", 0.0, "auth", ""),
        (401, attempts(refreshed=True), None, 0, None, "fail", 0.0, "", "rejected again after a token refresh"),
        # 429 with Retry-After: that wait
        (429, attempts(), "7", 0, None, "retry", 7.0, "throttle", ""),
        (429, attempts(throttled=2), "7", 0, None, "retry", 7.0, "throttle", ""),
        (429, attempts(), "100000", 0, None, "retry", 300.0, "throttle", ""),  # clamped to max_retry_after
        # 429 without (or with an unusable) Retry-After: min(2**n * 10, 60) (IntuneCD's rule)
        (429, attempts(), None, 0, None, "retry", 10.0, "throttle", ""),
        (429, attempts(throttled=1), "soon", 0, None, "retry", 20.0, "throttle", ""),
        (429, attempts(throttled=2), None, 0, None, "retry", 40.0, "throttle", ""),
        (429, attempts(throttled=3), None, 0, 1e9, "retry", 60.0, "throttle", ""),  # capped
        # 429 without a deadline: bounded like 5xx
        (429, attempts(throttled=3), None, 0, None, "fail", 60.0, "throttle", "gave up after 3 retries"),
        # 429 with a deadline: no count limit while the wait ends before it
        (429, attempts(throttled=50), "5", 100, 106, "retry", 5.0, "throttle", ""),
        (429, attempts(throttled=50, retries=3), "5", 100, 106, "retry", 5.0, "throttle", ""),
        (429, attempts(), "5", 100, 104, "fail", 5.0, "throttle",
         "the next wait (5 s) would pass the sync deadline (4 s left)"),
        (429, attempts(throttled=4), None, 0, 30, "fail", 60.0, "throttle",
         "the next wait (60 s) would pass the sync deadline (30 s left)"),
        # transient 5xx: backoff 2**n * 1, at most 3 retries, Retry-After honoured, never past the deadline
        (500, attempts(), None, 0, None, "retry", 1.0, "server", ""),
        (502, attempts(retries=2), None, 0, None, "retry", 4.0, "server", ""),
        (503, attempts(), "3", 0, None, "retry", 3.0, "server", ""),
        (504, attempts(retries=3), None, 0, None, "fail", 0.0, "server", "gave up after 3 retries"),
        (503, attempts(throttled=5), None, 0, None, "retry", 1.0, "server", ""),  # 429s do not use up 5xx retries
        (500, attempts(), "30", 0, 10, "fail", 30.0, "server", "the next wait (30 s) would pass the sync deadline (10 s left)"),
        # connection errors: like 5xx
        (CONNECTION, attempts(), None, 0, None, "retry", 1.0, "connection", ""),
        (CONNECTION, attempts(retries=1), None, 0, None, "retry", 2.0, "connection", ""),
        (CONNECTION, attempts(retries=3), None, 0, None, "fail", 0.0, "connection", "gave up after 3 retries"),
        # never retried
        (400, attempts(), None, 0, None, "fail", 0.0, "", ""),
        (403, attempts(), "5", 0, None, "fail", 0.0, "", ""),
        (404, attempts(), None, 0, None, "fail", 0.0, "", ""),
        (409, attempts(), None, 0, None, "fail", 0.0, "", ""),
        (501, attempts(), None, 0, None, "fail", 0.0, "", ""),
        (505, attempts(), None, 0, None, "fail", 0.0, "", ""),
    ],
)
def test_retry_decision(outcome, tried, retry_after, now, deadline, action, delay, reason, note):
    d = POLICY.decide(outcome, tried, retry_after=retry_after, now=now, deadline=deadline, rng=NO_JITTER)
    assert (d.action, d.reason, d.note) == (action, reason, note)
    assert d.delay == pytest.approx(delay)


@pytest.mark.parametrize("jitter, factor", [(0.0, 0.5), (0.5, 0.75), (0.999, 0.9995)])
def test_retry_decision_jitter_scales_the_backoff_only(jitter, factor):
    no_header = POLICY.decide(429, attempts(throttled=1), now=0, deadline=None, rng=lambda: jitter)
    header = POLICY.decide(429, attempts(throttled=1), retry_after="20", now=0, deadline=None, rng=lambda: jitter)
    assert no_header.delay == pytest.approx(20.0 * factor)
    assert header.delay == 20.0


@pytest.mark.parametrize(
    "decisions, retries, throttled, refreshed, waited",
    [
        ([(429, "4"), (429, "4")], 0, 2, False, 8.0),
        ([(500, None), (429, "3"), (401, None)], 1, 1, True, 4.0),
        ([(200, None)], 0, 0, False, 0.0),
    ],
)
def test_attempts_book_what_was_decided(decisions, retries, throttled, refreshed, waited):
    tried = Attempts()
    for status, retry_after in decisions:
        tried.count(POLICY.decide(status, tried, retry_after=retry_after, now=0, deadline=1e9, rng=NO_JITTER))
    assert (tried.retries, tried.throttled, tried.refreshed, tried.waited_s) == (retries, throttled, refreshed, waited)


# ---------------------------------------------------------------------------------------
# Service families
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, family",
    [
        ("/deviceManagement/configurationPolicies", "deviceConfigV2"),
        ("/deviceManagement/configurationPolicies/abc/settings?$expand=settingDefinitions&$top=1000", "deviceConfigV2"),
        ("https://graph.microsoft.com/beta/deviceManagement/configurationPolicies?$skiptoken=x", "deviceConfigV2"),
        ("/deviceManagement/configurationPolicies('abc')/settings", "deviceConfigV2"),
        ("/deviceManagement/compliancePolicies/x/settings", "deviceConfigV2"),
        ("/deviceManagement/configurationSettings/device_vendor_msft_x", "deviceConfigV2"),
        ("/beta/deviceManagement/deviceConfigurations?$expand=assignments", "deviceConfig"),
        ("/deviceManagement/deviceCompliancePolicies", "deviceConfig"),
        ("/deviceManagement/groupPolicyConfigurations/x/definitionValues/y/presentationValues", "deviceConfig"),
        ("/deviceManagement/intents/x/settings", "deviceIntent"),
        ("/deviceManagement/templates/x/categories?$expand=settingDefinitions", "deviceIntent"),
        ("/deviceManagement/deviceEnrollmentConfigurations", "deviceEnrollment"),
        ("/deviceManagement/windowsAutopilotDeploymentProfiles", "deviceEnrollment"),
        ("/deviceAppManagement/managedAppPolicies", "managedApplications"),
        ("/deviceAppManagement/iosManagedAppProtections/T_1?$expand=apps,assignments", "managedApplications"),
        ("/deviceAppManagement/targetedManagedAppConfigurations/A_1", "managedApplications"),
        ("/deviceManagement/windowsFeatureUpdateProfiles", "updates"),
        ("/deviceManagement/windowsDriverUpdateProfiles", "updates"),
        ("/deviceManagement/deviceManagementScripts/x?$expand=assignments", "devices"),
        ("https://graph.microsoft.com/v1.0/deviceManagement/deviceShellScripts", "devices"),
        ("/DEVICEMANAGEMENT/CONFIGURATIONPOLICIES", "deviceConfigV2"),
        ("/deviceManagement/roleScopeTags", "rbac"),  # filed with roles (throttling-intune-rbac.md) [guess]
        ("/deviceManagement/roleDefinitions/x/roleAssignments", "rbac"),
        ("/deviceManagement/notificationMessageTemplates", "notifications"),
        ("/deviceManagement/deviceCategories", "deviceEnrollment"),
        ("/identity/conditionalAccess/policies", None),  # Entra, not Intune
        ("/groups/x", None),
        ("/$batch", None),
        ("https://graph.microsoft.com/beta/$batch", None),
        ("/", None),
    ],
)
def test_family_of(url, family):
    assert family_of(url) == family


def test_every_policy_type_and_follow_up_is_paced_under_a_family():
    for ptype in POLICY_TYPES:
        if not ptype.list_path.startswith(("/deviceManagement", "/deviceAppManagement")):
            continue  # Entra's conditional access (/identity): not one of Intune's throttle families
        assert family_of(ptype.list_path) is not None, ptype.key
        for follow in ptype.follow_ups:
            for template in [follow.path_template, *(r.path_template for r in follow.routes)]:
                if template:
                    assert family_of(template.format(id="x", parent_id="y")) is not None, template


def test_published_limits_table():
    assert {f.name: f.limit for f in SERVICE_FAMILIES} == {
        "deviceConfigV2": 1000, "deviceConfig": 1000, "deviceIntent": 1000, "deviceEnrollment": 1000,
        "managedApplications": 1000, "updates": 1000, "devices": 2000,
        # issue 19's types: includes/throttling-intune-rbac.md, -notifications.md, -remote-assistance.md,
        # -android-for-work.md ("Any": 1000 requests per 20 seconds per app per tenant)
        "rbac": 1000, "notifications": 1000, "remoteAssistance": 1000, "androidForWork": 1000,
    }
    assert {w for _, w in PUBLISHED_LIMITS.values()} == {20.0}
    assert all(f.source.startswith("microsoft-graph-docs-contrib includes/throttling-intune-") for f in SERVICE_FAMILIES)


def test_cost_of_counts_each_request_under_its_family():
    urls = ["/deviceManagement/configurationPolicies/a/settings"] * 3 + ["/deviceManagement/intents/b/settings",
                                                                          "/groups/x"]
    assert cost_of(urls) == {"deviceConfigV2": 3, "deviceIntent": 1}


# ---------------------------------------------------------------------------------------
# The pacer, on a fake clock
# ---------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_pacer_admits_the_limit_per_window_counting_from_the_answer():
    clock = Clock()
    pacer = Pacer({"f": (10, 20.0)}, clock=clock)
    for _ in range(10):
        assert pacer.reserve({"f": 1}) == 0
    assert pacer.reserve({"f": 1}) > 0  # in flight count: the 11th waits
    clock.t += 2
    pacer.release({"f": 10})  # answered at t+2: they count until t+22
    clock.t += 19.5
    wait = pacer.reserve({"f": 1})
    assert wait == pytest.approx(0.5)
    clock.t += wait
    assert pacer.reserve({"f": 10}) == 0
    assert pacer.reserve({"other": 500}) == 0  # families not in the table are not paced


def test_pacer_lets_a_batch_bigger_than_the_allowance_go_alone():
    clock = Clock()
    pacer = Pacer({"f": (10, 20.0)}, clock=clock)
    assert pacer.reserve({"f": 20}) == 0  # nothing else in the window: never deadlock
    assert pacer.reserve({"f": 1}) > 0


def test_pacer_reserves_all_families_of_a_batch_or_none():
    clock = Clock()
    pacer = Pacer({"a": (5, 20.0), "b": (5, 20.0)}, clock=clock)
    assert pacer.reserve({"b": 5}) == 0
    assert pacer.reserve({"a": 3, "b": 1}) > 0
    assert pacer.snapshot()["a"]["in_flight"] == 0  # nothing of the refused batch was counted
    assert pacer.reserve({"a": 3}) == 0


@pytest.mark.parametrize(
    "events, allowed",
    [
        ([], 1000),
        (["429"], 500),
        (["429", "429"], 500),  # one burst of 429s is one decrease
        (["429", "gap", "429"], 250),
        (["429", "gap", "429", "gap", "429", "gap", "429", "gap", "429", "gap", "429", "gap", "429"], 15),
        (["429", "ok*50"], 550),  # a run of successes as long as a tenth of the allowance adds 5 %
        (["429", "ok*49"], 500),
        (["429", "ok*50", "ok*55", "ok*60"], 650),
        (["ok*5000"], 1000),  # never above the published limit
    ],
)
def test_pacer_aimd(events, allowed):
    clock = Clock()
    pacer = Pacer({"f": (1000, 20.0)}, clock=clock)
    for event in events:
        if event == "429":
            pacer.throttled(["f"])
        elif event == "gap":
            clock.t += 2.5
        else:
            pacer.succeeded("f", int(event.split("*")[1]))
    assert pacer.snapshot()["f"]["allowed"] == allowed


def test_pacer_never_allows_less_than_one_request():
    clock = Clock()
    pacer = Pacer({"f": (10, 20.0)}, clock=clock)
    for _ in range(20):
        pacer.throttled(["f"])
        clock.t += 3
    assert pacer.snapshot()["f"]["allowed"] == 1


# ---------------------------------------------------------------------------------------
# Which errors drop one policy, which skip a type
# ---------------------------------------------------------------------------------------

U = "https://g/beta/deviceManagement/x"


@pytest.mark.parametrize(
    "err, deleted",
    [
        (GraphError("gone", status=400, code="ResourceNotFound", url=U), True),
        (NotFound("gone", status=404, code="ResourceNotFound", url=U), True),
        (GraphError("nope", status=404, url=U), True),
        (GraphError("bad", status=400, code="BadRequest", url=U), False),
        (PermissionDenied("no", status=403, url=U), False),
        (ServerError("down", status=503, url=U), False),
        (BadResponse("junk", status=200, url=U), False),
    ],
)
def test_is_deleted(err, deleted):
    assert is_deleted(err) is deleted


@pytest.mark.parametrize(
    "err, on_list, reason",
    [
        (PermissionDenied("no", status=403, url=U), True, "forbidden"),
        (PermissionDenied("no", status=403, url=U), False, "forbidden"),
        (GraphError("segment", status=400, code="BadRequest", url=U), True, "unavailable"),
        (NotFound("no such collection", status=404, url=U), True, "unavailable"),
        (GraphError("segment", status=400, code="BadRequest", url=U), False, "failed"),
        (ServerError("down", status=503, url=U), True, "failed"),
        (Throttled("slow", status=429, url=U), True, "failed"),
        (BadResponse("malformed", status=200, url=U), True, "failed"),
        (GraphError("conflict", status=409, url=U), True, "failed"),
        (GraphError("no status"), True, "failed"),
    ],
)
def test_skip_reason(err, on_list, reason):
    assert skip_reason(err, on_list=on_list) == reason


@pytest.mark.parametrize(
    "odata_type, protection, configuration",
    [
        ("#microsoft.graph.iosManagedAppProtection", True, True),
        ("#microsoft.graph.windowsInformationProtectionPolicy", True, True),
        ("#microsoft.graph.targetedManagedAppConfiguration", False, True),
        ("#MICROSOFT.GRAPH.TARGETEDMANAGEDAPPCONFIGURATION", False, True),
        (None, True, True),
    ],
)
def test_app_configuration_is_not_app_protection(odata_type, protection, configuration):
    item = {"id": "x"} if odata_type is None else {"id": "x", "@odata.type": odata_type}
    assert get_policy_type("managedAppPolicies").keeps(item) is protection
    assert get_policy_type("targetedManagedAppConfigurations").keeps(item) is configuration
    assert get_policy_type("targetedManagedAppConfigurations").family == "appConfiguration"
    assert get_policy_type("managedAppPolicies").follow_ups[0].url_for(
        {"id": "x", "@odata.type": "#microsoft.graph.targetedManagedAppConfiguration"}) is None


# ---------------------------------------------------------------------------------------
# Which policies' expanded settings to fetch for the definitions a cache lacks
# ---------------------------------------------------------------------------------------

A, B, C, D = (("configurationPolicies", x) for x in "abcd")
Z = ("compliancePolicies", "z")


@pytest.mark.parametrize(
    "needs, chosen",
    [
        ({}, []),
        ({A: set()}, []),  # nothing missing: nothing to fetch
        ({A: {"d1"}}, [A]),
        ({A: {"d1"}, B: {"d1"}}, [A]),  # the same definition twice: one policy is enough
        ({A: {"d1"}, B: {"d1", "d2"}}, [B]),
        ({A: {"d1", "d2"}, B: {"d2", "d3"}, C: {"d3", "d4"}}, [A, C]),
        ({A: {"d1"}, B: {"d2"}, C: {"d1", "d2", "d3"}, D: {"d4"}}, [C, D]),
        ({A: {"d1"}, Z: {"c1"}}, [Z, A]),  # both collections; ties go to the smallest key
        ({A: ["d1", "d2"], B: ("d2",)}, [A]),  # any iterable of ids
    ],
)
def test_covering_policies(needs, chosen):
    assert covering_policies(needs) == chosen
    missing = set().union(*map(set, needs.values())) if needs else set()
    covered = set().union(*(set(needs[k]) for k in chosen)) if chosen else set()
    assert covered == missing


def test_covering_policies_of_repeated_templates_is_small():
    # 600 policies made from 40 templates of 10 definitions each: 40 policies cover them all
    needs = {("configurationPolicies", f"p{i:03d}"): {f"t{i % 40}-d{j}" for j in range(10)} for i in range(600)}
    chosen = covering_policies(needs)
    assert len(chosen) == 40
    assert set().union(*(needs[k] for k in chosen)) == set().union(*needs.values())
