"""Names of what ids point to: Entra groups, users, directory roles and apps, and Intune assignment filters, read from Graph.

Assignments and conditional-access policies carry only ids. Each id is one GET, every kind together 20 to a
`$batch` (v1.0), with the least-privileged application permission Graph's docs name for it (DIRECTORY_KINDS;
docs/graph-intune.md §7 for groups):

* group: `GET /groups/{id}?$select=id,displayName` — GroupMember.Read.All (or Group.Read.All)
* user: `GET /users/{id}?$select=id,displayName` — User.Read.All (user-get)
* role: `GET /roleManagement/directory/roleDefinitions/{id}?$select=id,displayName` — RoleManagement.Read.Directory
  (unifiedroledefinition-get); conditional access names built-in roles by their template id, which is the
  id of the built-in role definition
* app: `GET /servicePrincipals(appId='{appId}')?$select=appId,displayName` — Application.Read.All
  (serviceprincipal-get: a service principal is addressed by its appId); conditional access names apps by appId

`directoryObjects/getByIds` would take 1,000 ids in one call but needs Directory.Read.All for every kind
(directoryobject-getbyids), so a tenant granting only the narrow permissions would get no name at all.
Without a kind's permission Graph answers 403: that is one warning naming the permission, and the rows
keep showing ids. An object deleted since it was referenced answers 404 and keeps its id.
Filter names come from the list `GET /deviceManagement/assignmentFilters` (beta), which the Intune read
permission the sync already has covers; named locations come with the conditional-access read itself.

The sync caches every kind per tenant (store: `directory_names`), so a name is read once, not every sync,
and again once it is NAMES_MAX_AGE old: a group renamed in Entra shows its new name within that time. When the
re-read fails, the rows show the id (with the one warning), never a name that could not be confirmed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote

from .client import BatchRequest, GraphClient
from .errors import GraphError, PermissionDenied

FILTERS_PATH = "/deviceManagement/assignmentFilters"
GROUP, FILTER, USER, ROLE, APP, LOCATION = "group", "filter", "user", "directoryRole", "app", "location"
KINDS: tuple[str, ...] = (GROUP, FILTER, USER, ROLE, APP, LOCATION)
NAMES_MAX_AGE = timedelta(days=7)  # a cached name older than this is read again


@dataclass(frozen=True)
class DirectoryKind:
    """How ids of one directory kind are named: the GET per id, its permission, what the rows show without it."""

    path: str  # with {id}; answers an object with displayName
    permission: str
    what: str  # plural noun for the warning
    shown_in: str  # where the ids stay when names cannot be read


DIRECTORY_KINDS: dict[str, DirectoryKind] = {
    GROUP: DirectoryKind("/groups/{id}?$select=id,displayName", "GroupMember.Read.All or Group.Read.All",
                         "Group names", "Assignments and conditional-access policies show group ids"),
    USER: DirectoryKind("/users/{id}?$select=id,displayName", "User.Read.All",
                        "User names", "Conditional-access policies show user ids"),
    ROLE: DirectoryKind("/roleManagement/directory/roleDefinitions/{id}?$select=id,displayName",
                        "RoleManagement.Read.Directory", "Directory role names",
                        "Conditional-access policies show role ids"),
    APP: DirectoryKind("/servicePrincipals(appId='{id}')?$select=appId,displayName", "Application.Read.All",
                       "App names", "Conditional-access policies show app ids"),
}
GROUP_PERMISSIONS = DIRECTORY_KINDS[GROUP].permission


@dataclass
class DirectoryNames:
    """Names found by id, per kind (KINDS), and why some could not be read."""

    names: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    warnings: list[str] = field(default_factory=list)


def _read_names(client: GraphClient, wanted: Mapping[str, list[str]], out: DirectoryNames) -> None:
    """Every id of every kind in one `$batch` run (20 to a POST, whatever their kind); one warning per kind
    Graph refused."""
    asks = [(kind, i) for kind, ids in wanted.items() for i in ids]
    answers = client.batch([BatchRequest(DIRECTORY_KINDS[kind].path.format(id=quote(i, safe="")), follow_next=False)
                            for kind, i in asks], api_version="v1.0")
    denied: dict[str, int] = {}
    for (kind, object_id), resp in zip(asks, answers):
        if resp.status == 403:
            denied[kind] = denied.get(kind, 0) + 1
        elif resp.ok:
            name = (resp.json() or {}).get("displayName")
            if name:
                out.names[kind][object_id] = str(name)
        elif resp.status != 404:  # 404: deleted since it was referenced; its id stays
            resp.raise_for_status()
    for kind, n in denied.items():
        spec = DIRECTORY_KINDS[kind]
        first = spec.path.split("?")[0].split("/{")[0].split("(")[0]
        out.warnings.append(f"{spec.what} not read: Graph denied {first} ({n} of {len(wanted[kind])}, 403); "
                            f"the app needs {spec.permission}. {spec.shown_in}.")


def fetch_names(client: GraphClient, group_ids: Iterable[str] = (), *, filters: bool = True,
                ids: Mapping[str, Iterable[str]] | None = None) -> DirectoryNames:
    """Display names of `group_ids` and of `ids` per directory kind (USER, ROLE, APP, GROUP), and (with
    `filters`) of every assignment filter of the tenant."""
    out = DirectoryNames()
    wanted: dict[str, set[str]] = {k: set() for k in DIRECTORY_KINDS}
    wanted[GROUP].update(g for g in group_ids if g)
    for kind, found in (ids or {}).items():
        wanted[kind].update(i for i in found if i)
    if any(wanted.values()):
        _read_names(client, {kind: sorted(ids) for kind, ids in wanted.items() if ids}, out)
    if filters:
        try:
            for item in client.get_all(FILTERS_PATH):
                if item.get("id") and item.get("displayName"):
                    out.names[FILTER][str(item["id"])] = str(item["displayName"])
        except PermissionDenied as exc:
            out.warnings.append(f"Assignment filter names not read (403: {exc}); assignments show filter ids.")
        except GraphError as exc:
            if exc.status != 404:
                raise
    return out
