"""Changes' reads and widgets: changes per tenant and day (cached a minute), and the accepted deviations
that expired lately (their differences count again)."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import streamlit as st

from tenantpilot.app.escaping import inert_frame
from tenantpilot.app.labels import with_family_labels
from tenantpilot.app.messages import guard
from tenantpilot.app.reads import SnapshotKey, cached, store
from tenantpilot.store import open_store


@cached("count the changes per day", max_entries=32, ttl=60)
def day_counts(key: SnapshotKey, since_minute: str) -> pl.DataFrame:
    """Per tenant and day: policy events and setting changes (SQL over the row ranges)."""
    return open_store().change_counts(datetime.fromisoformat(since_minute))


def show_expired_deviations(tenant_id: str | None = None, days: int = 30) -> None:
    """Changes: accepted deviations that expired in the last `days` days: their differences are open again."""
    from datetime import date, timedelta

    from tenantpilot.analysis import deviations

    with guard("read the deviation register"):
        register = store().deviations([tenant_id] if tenant_id else None)
    today = date.today()
    found = deviations.expired_since(register, today - timedelta(days=days), today)
    if not found.height:
        return
    st.subheader("Accepted deviations that expired")
    st.caption(f"In the last {days} days: these differences from the baseline count again (Compare, alignment).")
    st.dataframe(inert_frame(with_family_labels(found.select(
        "tenant", "baseline", "policy_type", "setting_name", "reason", "owner", "accepted_by", "expires_on"))),
        hide_index=True, placeholder="—", key="chg_expired_devs",
        column_config={"expires_on": "Last valid day", "accepted_by": "Accepted by"})
