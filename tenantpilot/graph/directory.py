"""Names of what assignments point to: Entra groups and Intune assignment filters, read from Graph.

Assignments carry only ids. Group names come from `GET /groups/{id}?$select=id,displayName`, 20 to a
`$batch` (v1.0); they need the application permission `GroupMember.Read.All` or `Group.Read.All`
(docs/graph-intune.md §7). Without it Graph answers 403: that is a warning naming the permission, and
the assignments keep showing ids. A group deleted since it was assigned answers 404 and keeps its id.
Filter names come from the list `GET /deviceManagement/assignmentFilters` (beta), which the Intune
read permission the sync already has covers.

The sync caches both per tenant (store: `directory_names`), so a name is read once, not every sync.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from .client import BatchRequest, GraphClient
from .errors import GraphError, PermissionDenied

GROUP_PATH = "/groups/{id}?$select=id,displayName"
FILTERS_PATH = "/deviceManagement/assignmentFilters"
GROUP_PERMISSIONS = "GroupMember.Read.All or Group.Read.All"
GROUP, FILTER = "group", "filter"


@dataclass
class DirectoryNames:
    """Names found by id, per kind (GROUP, FILTER), and why some could not be read."""

    names: dict[str, dict[str, str]] = field(default_factory=lambda: {GROUP: {}, FILTER: {}})
    warnings: list[str] = field(default_factory=list)


def fetch_names(client: GraphClient, group_ids: Iterable[str], *, filters: bool = True) -> DirectoryNames:
    """Display names of `group_ids` and (with `filters`) of every assignment filter of the tenant."""
    out = DirectoryNames()
    ids = sorted({g for g in group_ids if g})
    if ids:
        answers = client.batch([BatchRequest(GROUP_PATH.format(id=quote(g, safe="")), follow_next=False)
                                for g in ids], api_version="v1.0")
        denied = 0
        for group_id, resp in zip(ids, answers):
            if resp.status == 403:
                denied += 1
            elif resp.ok:
                name = (resp.json() or {}).get("displayName")
                if name:
                    out.names[GROUP][group_id] = str(name)
            elif resp.status != 404:  # 404: deleted since it was assigned; its id stays
                resp.raise_for_status()
        if denied:
            out.warnings.append(f"Group names not read: Graph denied /groups ({denied} of {len(ids)} groups, 403); "
                                f"the app needs {GROUP_PERMISSIONS}. Assignments show group ids.")
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
