"""Who may do what: the roles (viewer, analyst, admin), the actions each allows (`can`, `require`), and
the user a sign-in makes of an ID token's claims (`user_from_claims`). The one place this rule lives:
pages check it on the server before they act, and hide or disable a control only as a courtesy.

A role comes from the ID token: an Entra app role (the `roles` claim) or a security group (the `groups`
claim, object ids), mapped to a TenantPilot role by configuration (`Settings.role_claims`; by default the app
roles `TenantPilot.Viewer`, `TenantPilot.Analyst`, `TenantPilot.Admin`). Several mapped claims: the highest
role wins. None: the user is signed in but may do nothing (`User.role is None`).
"""

from __future__ import annotations

import enum
import getpass
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Role(enum.IntEnum):
    """Ordered: each role may do everything the roles below it may."""

    VIEWER = 1
    ANALYST = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


# action -> the least role that may do it
ACTIONS: dict[str, Role] = {
    "read": Role.VIEWER,  # see tenants' settings: Explore, Compare, Changes, Health, Activity
    "export": Role.VIEWER,  # CSV / Parquet / JSON downloads and reports
    "sync": Role.ANALYST,
    "import_baseline": Role.ANALYST,
    "accept_deviation": Role.ANALYST,
    "remove_deviation": Role.ANALYST,
    "manage_tenants": Role.ADMIN,  # add, rename, remove tenants (and the demo tenants)
    "manage_schedules": Role.ADMIN,
    "manage_alerts": Role.ADMIN,
    "manage_groups": Role.ADMIN,  # tenant groups and who is limited to them
    "manage_roles": Role.ADMIN,
}

# the app roles a TenantPilot app registration defines (README, "Sign-in"): claim value -> role
DEFAULT_ROLE_CLAIMS: dict[str, Role] = {
    "TenantPilot.Viewer": Role.VIEWER,
    "TenantPilot.Analyst": Role.ANALYST,
    "TenantPilot.Admin": Role.ADMIN,
}


class Forbidden(PermissionError):
    """The user's role does not allow the action (the message says which role would)."""


@dataclass(frozen=True)
class User:
    """Who acts: a signed-in user (`actor` = their sign-in name), or the operator of an app without sign-in
    on 127.0.0.1 / the command line on the host (`local:` / `cli:` + the OS user)."""

    actor: str  # recorded in the activity log: preferred_username, or local:<os user> / cli:<os user>
    name: str  # shown in the sidebar
    role: Role | None
    oid: str = ""  # Entra object id (stable across renames); "" without sign-in
    claims: frozenset[str] = field(default_factory=frozenset)  # app roles and group ids from the token
    signed_in: bool = False


def can(user: User, action: str) -> bool:
    """Whether the user may do the action (an unknown action is a programming error)."""
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    return user.role is not None and user.role >= ACTIONS[action]


def require(user: User, action: str) -> None:
    """Raise Forbidden unless the user may do the action: called before the action, on the server."""
    if not can(user, action):
        needed = ACTIONS[action].label
        has = user.role.label if user.role is not None else "no role"
        raise Forbidden(f"{user.name} ({has}) may not {action.replace('_', ' ')}: that needs the {needed} role. "
                        "Ask a TenantPilot admin to assign it in Entra ID (app roles of the sign-in app).")


def role_of(claims: Iterable[str], mapping: Mapping[str, Role]) -> Role | None:
    """The highest role any of the claim values maps to (None: no mapped claim)."""
    found = [mapping[c] for c in claims if c in mapping]
    return max(found) if found else None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def user_from_claims(claims: Mapping[str, Any], mapping: Mapping[str, Role]) -> User:
    """The user of a verified ID token's claims (st.user): Entra's `preferred_username` (else `email`, `sub`),
    `name`, `oid`, and the role its `roles` and `groups` claims map to."""
    values = frozenset(_strings(claims.get("roles")) + _strings(claims.get("groups")))
    username = str(claims.get("preferred_username") or claims.get("email") or claims.get("sub") or "")
    return User(actor=username, name=str(claims.get("name") or username), role=role_of(values, mapping),
                oid=str(claims.get("oid") or ""), claims=values, signed_in=True)


def local_operator(prefix: str = "local") -> User:
    """The operator of an unauthenticated app on 127.0.0.1 (prefix `local`) or of the CLI (`cli`): the host's
    user, who can already read the database file, so every action is theirs."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        who = "unknown"
    return User(actor=f"{prefix}:{who}", name=f"{who} (this machine)", role=Role.ADMIN)


# --- tenant groups: which tenants a user sees --------------------------------------------------------
def principals(user: User) -> frozenset[str]:
    """The names a limit can be set on: the user's sign-in name, and `role:` + each app-role value or group id of
    their token (so a whole Entra group or app role can be limited at once)."""
    return frozenset({user.actor} | {f"role:{c}" for c in user.claims})


def visible_tenants(user: User, members: Iterable[tuple[str, str]],
                    limits: Iterable[tuple[str, str]]) -> frozenset[str] | None:
    """The tenant ids the user may see, None meaning every tenant. `members`: (group, tenant) pairs; `limits`:
    (principal, group) pairs. A user none of whose principals is limited sees every tenant; a limited one sees
    the tenants of all the groups any of their principals is limited to (and nothing when those are empty).
    Admins are never limited: they set the groups and the limits."""
    if user.role is Role.ADMIN:
        return None
    mine = principals(user)
    groups = {group for who, group in limits if who in mine}
    if not groups:
        return None
    return frozenset(tenant for group, tenant in members if group in groups)
