"""Tenant keys: parsing what people type, the stored key, aliases, baseline ids, and naming a tenant.

A tenant is named by its GUID, one of its domains (contoso.onmicrosoft.com) or its display name.
The stored key is trimmed and lower-cased (GUIDs and domains are case-insensitive), so
Contoso.onmicrosoft.com and contoso.onmicrosoft.com are one tenant. A tenant first added by a
domain keeps that domain as an alias once its GUID is known (see ``Store.resolve_tenant_guid``).
Pure: no I/O; the store and the CLI call these.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

GUID_RE = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$")
DOMAIN_RE = re.compile(r"^([a-z0-9-]+\.)+[a-z]{2,}$")
BASELINE_PREFIX = "baseline:"


def tenant_key(value: str) -> str:
    """How a tenant id or domain is stored: trimmed and lower-cased."""
    return value.strip().lower()


def is_guid(value: str) -> bool:
    return bool(GUID_RE.match(tenant_key(value)))


def valid_tenant_id(value: str) -> bool:
    """A tenant is added by its GUID or one of its domains."""
    key = tenant_key(value)
    return bool(GUID_RE.match(key) or DOMAIN_RE.match(key))


def baseline_id(name: str) -> str:
    """The key of an imported baseline: ``baseline:<slug of its name>``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "baseline"
    return f"{BASELINE_PREFIX}{slug}"


def is_baseline(tenant_id: str) -> bool:
    return tenant_id.startswith(BASELINE_PREFIX)


def tenant_id_from_token(access_token: str) -> str | None:
    """The tenant GUID in an access token's `tid` claim (Entra tokens for Graph are JWTs; see
    Microsoft's "Access token claims reference"). None for an opaque or malformed token. The
    token is not verified: we received it from the authority ourselves; only the claim is read."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error):
        return None
    tid = claims.get("tid") if isinstance(claims, dict) else None
    return tenant_key(tid) if isinstance(tid, str) and GUID_RE.match(tenant_key(tid)) else None


class TenantNameError(LookupError):
    """A name matches no tenant, or more than one; ``str()`` lists the closest tenants."""

    def __init__(self, message: str, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.suggestions = suggestions


@dataclass(frozen=True)
class Known:
    """One tenant as names can reach it: its key, display name and aliases (other domains)."""

    tenant_id: str
    display_name: str
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.display_name} ({self.tenant_id})" if self.display_name != self.tenant_id else self.tenant_id


def resolve(name: str, known: Iterable[Known]) -> Known:
    """The one tenant `name` means: an exact id or alias first, else a display name (case-insensitive).

    Raises TenantNameError when nothing or more than one tenant matches, naming the closest."""
    wanted = tenant_key(name)
    candidates = list(known)
    by_key = [k for k in candidates if wanted == k.tenant_id or wanted in k.aliases]
    if len(by_key) == 1:
        return by_key[0]
    by_name = [k for k in candidates if wanted == tenant_key(k.display_name)]
    if len(by_name) == 1:
        return by_name[0]
    if by_name:
        shown = ", ".join(k.label for k in by_name)
        raise TenantNameError(f"{name!r} names {len(by_name)} tenants: {shown}; name one by its id",
                              tuple(k.tenant_id for k in by_name))
    close = closest(name, candidates)
    hint = f"; closest: {', '.join(k.label for k in close)}" if close else ""
    raise TenantNameError(f"Unknown tenant {name!r}{hint}", tuple(k.tenant_id for k in close))


def closest(name: str, known: Iterable[Known], limit: int = 3) -> list[Known]:
    """Up to `limit` tenants whose id, alias or display name is nearest to `name`."""
    wanted = tenant_key(name)
    spellings: dict[str, Known] = {}
    for k in known:
        for spelling in (k.tenant_id, tenant_key(k.display_name), *k.aliases):
            spellings.setdefault(spelling, k)
    found: list[Known] = []
    for match in difflib.get_close_matches(wanted, list(spellings), n=limit * 3, cutoff=0.5):
        if spellings[match] not in found:
            found.append(spellings[match])
    return found[:limit]


def known_from_rows(rows: Iterable[Mapping[str, object]]) -> list[Known]:
    """Known tenants from rows with tenant_id, display_name and (optionally) aliases."""
    out = []
    for row in rows:
        aliases = row.get("aliases") or ()
        out.append(Known(str(row["tenant_id"]), str(row["display_name"]),
                         tuple(str(a) for a in aliases) if isinstance(aliases, (list, tuple)) else ()))
    return out
