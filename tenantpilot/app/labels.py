"""Labels: how pages name things: policy families, tenants (with a kind marker), durations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import polars as pl

from tenantpilot import families
from tenantpilot.app.escaping import reveal

KIND_MARK = {"baseline": "◆ ", "demo": ""}
KIND_SUFFIX = {"baseline": " (baseline)", "demo": " (demo)"}


def family_label(policy_type: str) -> str:
    return families.label(policy_type)


def with_family_labels(frame: pl.DataFrame, column: str = "policy_type") -> pl.DataFrame:
    """For display only: the policy_type column as the families' labels (filters keep the raw ids)."""
    from tenantpilot.analysis.explore import with_family_labels as labelled

    return labelled(frame, column)


def labelled_csv(frame: pl.DataFrame) -> bytes:
    """A download's CSV: the frame with the families' labels in its policy_type column."""
    from tenantpilot.analysis.export import to_csv_bytes

    return to_csv_bytes(with_family_labels(frame))


def tenant_label(row: dict[str, Any]) -> str:
    kind = row.get("kind") or "tenant"
    return f"{KIND_MARK.get(kind, '')}{reveal(row['display_name'])}{KIND_SUFFIX.get(kind, '')}"


def tenant_labels(frame: pl.DataFrame) -> dict[str, str]:
    """tenant_id -> label with a kind marker ("◆ Name (baseline)"), unique."""
    from tenantpilot.analysis.explore import unique_labels

    return unique_labels({r["tenant_id"]: tenant_label(r) for r in frame.iter_rows(named=True)})


def format_with(labels: dict[str, str]) -> Callable[[str], str]:
    return lambda key: labels.get(key, key)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def cause(error: str | None, tenant_id: str | None) -> str | None:
    """A run's error as a table cell beside its tenant: without the leading "Tenant <id>: " the sign-in
    errors carry (graph/auth.py), so the cause is what a narrow cell shows first. Other text is kept whole."""
    if not error or not tenant_id:
        return error
    prefix = f"Tenant {tenant_id}: "
    return error[len(prefix):] if error.lower().startswith(prefix.lower()) else error


def cause_expr(error: str = "error", tenant_id: str = "tenant_id") -> pl.Expr:
    """`cause` for a frame's column (same rule, row by row)."""
    return pl.struct(error, tenant_id).map_elements(lambda r: cause(r[error], r[tenant_id]), return_dtype=pl.String)


def _utc(moment: datetime | None, missing: str) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if moment is not None else missing


REUSE_HELP = ("Policies the Intune audit log shows unchanged since the previous sync: their rows were kept, not read "
              "again. Every tenant is read in full every {days} days; the run's card says since when and the last "
              "full read.")


def reuse_cell(run: Mapping[str, Any]) -> str | None:
    """reuse_line's figure for a narrow table cell (the column's help, REUSE_HELP, says the rest)."""
    reused = run.get("reused_policies") or 0
    return f"{reused:,} of {run.get('policy_count') or 0:,} unchanged" if reused else None


def reuse_line(run: Mapping[str, Any], full_read_days: int) -> str | None:
    """The one sentence for a run that left policies unread by the reuse rule (tenantpilot/sync/reuse.py), for
    the Sync page and the CLI; None for a full read. A per-run figure: it claims nothing per setting."""
    reused = run.get("reused_policies") or 0
    if not reused:
        return None
    since, last = run.get("reused_since"), run.get("full_read_at")
    return (f"{reused:,} of {run.get('policy_count') or 0:,} policies unchanged in the audit log since "
            f"{_utc(since, '?')}, not re-read; read in full every {full_read_days} days (last {_utc(last, 'never')})")
