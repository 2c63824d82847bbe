"""Roles (tenantpilot/access.py): which role may do what, the role an ID token's claims give, and that each page
checks the role on the server when it acts, not only by disabling the control. AppTest will not click a disabled
control, so a page is shown to an admin (control enabled) and the click arrives from a session whose user is
now the tested role: what a crafted session (or a role removed mid-session) does. Two server-side checks stand
in the way: Streamlit 1.67 drops a value sent for a widget it renders disabled (session_state.py, "Enforce
`disabled` server-side"), and the page's own `signin.permitted` before it acts (shown apart below, on a control
that is not disabled). Each test asserts what matters: the database did not change."""

from __future__ import annotations

import pytest
from apptest import APP, CONTOSO, NAMES
from streamlit.testing.v1 import AppTest

from tenantpilot import access
from tenantpilot.access import Role
from tenantpilot.config import ConfigError, load_settings

AUTH = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "c00kie-" * 6,
        "client_id": "0f4f6f1e-3c39-4a0b-8e43-3d9ad2b1f001", "client_secret": "TOP~secret.value",
        "server_metadata_url": "https://login.example/t/v2.0/.well-known/openid-configuration"}
VIEWER_MAY = {"read", "export"}
ANALYST_MAY = VIEWER_MAY | {"sync", "import_baseline", "accept_deviation", "remove_deviation"}


@pytest.mark.parametrize("action", sorted(access.ACTIONS))
@pytest.mark.parametrize(("role", "allowed"), [(Role.VIEWER, VIEWER_MAY), (Role.ANALYST, ANALYST_MAY),
                                               (Role.ADMIN, set(access.ACTIONS)), (None, set())])
def test_who_may_do_what(action, role, allowed):
    user = access.User(actor="u@x", name="U", role=role)
    assert access.can(user, action) == (action in allowed)
    if action not in allowed:
        with pytest.raises(access.Forbidden, match=ACTIONS_LABEL.get(action, action.replace("_", " "))):
            access.require(user, action)


ACTIONS_LABEL: dict[str, str] = {}


def test_an_unknown_action_is_an_error_not_a_refusal():
    with pytest.raises(KeyError):
        access.can(access.User(actor="a", name="a", role=Role.ADMIN), "delete_everything")


@pytest.mark.parametrize(("claims", "env", "role"), [
    ({"roles": ["TenantPilot.Viewer"]}, {}, Role.VIEWER),
    ({"roles": ["TenantPilot.Viewer", "TenantPilot.Admin"]}, {}, Role.ADMIN),
    ({"roles": "TenantPilot.Analyst"}, {}, Role.ANALYST),
    ({"groups": ["6f1c0d2e-0000-4000-8000-000000000001"]}, {}, None),
    ({"groups": ["6f1c0d2e-0000-4000-8000-000000000001"]},
     {"TENANTPILOT_ROLES_ANALYST": "6f1c0d2e-0000-4000-8000-000000000001"}, Role.ANALYST),
    ({"roles": ["Helpdesk"], "groups": ["g1"]}, {"TENANTPILOT_ROLES_VIEWER": "Helpdesk", "TENANTPILOT_ROLES_ADMIN": "g1"},
     Role.ADMIN),
    ({"roles": ["tenantpilot.admin"]}, {}, None),  # app-role values are case-sensitive in the token
    ({}, {}, None),
    ({"roles": [{"x": 1}, 7]}, {}, None),  # not strings: ignored
])
def test_the_role_an_id_token_gives(claims, env, role):
    cfg = load_settings(env, dotenv=False)
    user = access.user_from_claims({"preferred_username": "ann@contoso.example", "name": "Ann", **claims},
                                   dict(cfg.role_claims))
    assert user.role == role and user.actor == "ann@contoso.example" and user.signed_in


def test_a_role_mapping_with_spaces_is_refused():
    with pytest.raises(ConfigError, match="TENANTPILOT_ROLES_VIEWER"):
        load_settings({"TENANTPILOT_ROLES_VIEWER": "Tenant Pilot"}, dotenv=False)


def claims(role: str) -> dict:
    return {"is_logged_in": True, "preferred_username": f"{role}@contoso.example", "name": f"{role} user",
            "roles": [f"TenantPilot.{role}"]}


def signed_in(role: str, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = claims(role)
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception
    return at


def shown_disabled(role: str, page: str, label: str) -> bool:
    return button(signed_in(role, page), label).disabled


def acting_as(role: str, page: str) -> AppTest:
    """The page as an admin sees it; the next run (the click) comes from `role`'s session."""
    at = signed_in("Admin", page)
    at.user = claims(role)
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


@pytest.mark.parametrize(("role", "allowed"), [("Viewer", False), ("Analyst", False), ("Admin", True)])
def test_adding_a_tenant_is_checked_on_the_server(db, role, allowed):
    assert shown_disabled(role, "tenants", "Add tenant") == (not allowed)
    at = acting_as(role, "tenants")
    at.text_input(key="new_tenant_id").input("contoso.onmicrosoft.com")
    at.text_input(key="new_tenant_name").input("Contoso")
    button(at, "Add tenant").click().run()
    assert not at.exception
    assert (db.tenants().height == 1) == allowed


@pytest.mark.parametrize(("role", "allowed"), [("Viewer", False), ("Analyst", False), ("Admin", True)])
def test_removing_a_tenant_is_checked_on_the_server(filled, role, allowed):
    at = acting_as(role, "tenants")
    at.selectbox(key="remove_tenant").set_value(CONTOSO).run()
    at.checkbox(key="remove_confirm").check()
    at.user = claims("Admin")
    at.run()  # the confirmation, as an admin; the click below as `role`
    at.user = claims(role)
    button(at, "Remove tenant").click().run()
    assert not at.exception
    assert (CONTOSO not in filled.tenants()["tenant_id"].to_list()) == allowed


@pytest.mark.parametrize(("role", "allowed"), [("Viewer", False), ("Analyst", False), ("Admin", True)])
def test_setting_a_schedule_is_checked_on_the_server(filled, role, allowed):
    assert shown_disabled(role, "tenants", "Set schedule") == (not allowed)
    at = acting_as(role, "tenants")
    at.selectbox(key="schedule_tenant").set_value(CONTOSO)
    at.text_input(key="schedule_cron").input("30 1 * * 1-5")
    button(at, "Set schedule").click().run()
    assert not at.exception
    mine = filled.tenant_schedules().filter(filled.tenant_schedules()["tenant_id"] == CONTOSO)
    assert (mine["schedule"].to_list() == ["30 1 * * 1-5"]) == allowed


@pytest.mark.parametrize(("role", "allowed"), [("Viewer", False), ("Analyst", True), ("Admin", True)])
def test_syncing_is_checked_on_the_server(filled, role, allowed):
    assert shown_disabled(role, "sync", "Sync now") == (not allowed)
    at = acting_as(role, "sync")
    at.multiselect(key="sync_tenants").set_value([CONTOSO])
    button(at, "Sync now").click().run()
    assert not at.exception
    queued = filled.runs(CONTOSO, statuses=["queued", "running"], limit=5).height
    assert (queued == 1) == allowed


def test_a_viewer_still_reads_and_exports(filled):
    at = signed_in("Viewer", "explore")
    shown = " ".join(str(d.value) for d in at.dataframe)
    assert NAMES[CONTOSO] in shown
    assert all(not b.disabled for b in at.get("download_button"))


def _acts() -> None:
    import streamlit as st

    from tenantpilot import access
    from tenantpilot.app import signin

    role = access.Role[st.session_state.get("role", "VIEWER")] if st.session_state.get("role") != "NONE" else None
    user = access.User(actor="x@contoso.example", name="X", role=role)
    if st.button("Act") and signin.permitted(user, "accept_deviation"):  # an enabled control, checked on acting
        st.success("done")


@pytest.mark.parametrize(("role", "allowed"), [("NONE", False), ("VIEWER", False), ("ANALYST", True), ("ADMIN", True)])
def test_permitted_refuses_on_the_server_with_the_role_needed(role, allowed):
    at = AppTest.from_function(_acts)
    at.session_state["role"] = role
    at.run()
    at.button[0].click().run()
    assert bool(at.success) == allowed
    errors = [e.value for e in at.error]
    assert bool(errors) == (not allowed)
    if errors:
        assert "may not accept deviation" in errors[0] and "analyst role" in errors[0]
