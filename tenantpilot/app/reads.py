"""Reads: what pages read, and the one way a read is cached. The configuration, the store, the tenants,
the snapshot key that identifies the current data, which data is carried forward, and `cached`, the
decorator every cached read of the pages goes through.

Every DuckDB open goes through `open_store` and is closed before the function returns, so no page
holds a connection between reruns. A cached read is keyed by what it reads from (the snapshot key,
or a narrower key that changes only when its tenants sync), so a new sync reloads it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

import polars as pl
import streamlit as st

from tenantpilot.app.messages import explain, fail, guard
from tenantpilot.config import ConfigError, Settings, settings
from tenantpilot.store import Store, open_store

P = ParamSpec("P")
R = TypeVar("R")
SnapshotKey = tuple[str, tuple[tuple[str, int], ...]]  # (database path, snapshot token)


def cached(doing: str, *, max_entries: int, frames: bool = False, spinner: bool | str = False,
           ttl: float | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A read cached by its arguments and shown as an error with what to do when it fails (guard(doing)).

    frames=True keeps the result as a resource: the same immutable Polars frame handed to every rerun.
    st.cache_data (the default) would pickle it into the cache and out again on every call (~0.6 s per
    1,000,000 rows), which small results (counts, choices) do not mind."""
    def decorate(read: Callable[P, R]) -> Callable[P, R]:
        keep = (st.cache_resource(max_entries=max_entries, show_spinner=spinner, ttl=ttl) if frames
                else st.cache_data(max_entries=max_entries, show_spinner=spinner, ttl=ttl))
        kept = keep(read)

        @functools.wraps(read)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            with guard(doing):
                return kept(*args, **kwargs)
        return guarded
    return decorate


# --- configuration, store, tenants -------------------------------------------------------------
def config() -> Settings:
    try:
        return settings()
    except ConfigError as exc:
        fail(explain(exc, "read the configuration"))


def store() -> Store:
    return open_store(config())


def visible() -> frozenset[str] | None:
    """The tenant ids this session's user may see (tenantpilot.access.visible_tenants; None: every tenant).
    Every page reads tenants through `tenants()` and data through `snapshot_key()`, both narrowed by this."""
    from tenantpilot import access
    from tenantpilot.app import signin

    user = signin.current_user(config())
    if user.role is access.Role.ADMIN:
        return None
    with guard("read the tenant groups"):
        s = store()
        with s.reading():
            return access.visible_tenants(user, s.group_members().rows(), s.access_limits().rows())


def scope() -> tuple[str, ...]:
    """The tenant ids a filter must keep when the user chose none (empty: the user may see every tenant).
    A user limited to groups without tenants sees nothing: the page says so and stops."""
    seen = visible()
    if seen is None:
        return ()
    if not seen:
        st.info("Your account is limited to tenant groups that hold no tenant yet. Ask a TenantPilot admin.",
                icon=":material/lock:")
        st.stop()
    return tuple(sorted(seen))


def tenants() -> pl.DataFrame:
    """The tenants this user may see."""
    with guard("list the tenants"):
        frame = store().tenants()
    seen = visible()
    return frame if seen is None else frame.filter(pl.col("tenant_id").is_in(list(seen)))


# --- the current snapshot ----------------------------------------------------------------------
def snapshot_key() -> SnapshotKey:
    """(database path, snapshot token): identifies the current snapshot for caches."""
    cfg = config()
    with guard("read the current snapshot"):
        token = open_store(cfg).snapshot_token()
    seen = visible()
    return str(cfg.db_path), token if seen is None else tuple(pair for pair in token if pair[0] in seen)


def chosen_key(key: SnapshotKey, tenant_ids: Sequence[str]) -> SnapshotKey:
    """The snapshot key narrowed to these tenants' current runs: a cache key that changes only when one of
    them syncs, and small (hashing 1,000 (tenant, run) pairs costs a cached call about 12 ms)."""
    wanted = set(tenant_ids)
    return key[0], tuple(pair for pair in key[1] if pair[0] in wanted)


def token_digest(token: tuple[tuple[str, int], ...]) -> str:
    """A short cache key that changes with the snapshot token (when any tenant's current run does)."""
    return hashlib.blake2b(repr(token).encode(), digest_size=16).hexdigest()


@cached("read which data is current", max_entries=8)
def _carried(db_path: str, token: str) -> pl.DataFrame:
    """Keyed by token_digest: hashing the token's pairs themselves costs every call ~12 ms at 1,000 tenants."""
    return open_store().current_carried()


def carried(key: SnapshotKey, tenant_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """The policy types of these tenants (all: None) whose rows on screen are not current
    (messages.show_carried says which and why)."""
    frame = _carried(key[0], token_digest(key[1]))
    ids = list(tenant_ids) if tenant_ids is not None else [t for t, _run in key[1]]  # the key holds what the user sees
    return frame.filter(pl.col("tenant_id").is_in(ids))
