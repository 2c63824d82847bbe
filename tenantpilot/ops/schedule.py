"""Sync schedules: the 5-field cron string, its slots (previous, next, missed) and the per-tenant jitter.

Pure: no I/O, no clock (callers pass `now`). The matcher is Huey's own ``huey.crontab`` (strict), so
the consumer's periodic task and this module agree on what a field means:

* fields: minute hour day-of-month month day-of-week; each ``*``, ``n``, ``a-b``, ``a-b/n``,
  ``*/n`` (not for day-of-week) or a comma list of those; day-of-week 0-7 with 0 and 7 = Sunday;
* Huey's rule for the two day fields: day-of-month AND day-of-week must both match (classic cron
  ORs them when both are restricted); ``0 2 1 * 1`` means "the 1st, when it is a Monday".

Times are wall-clock times in `tz` (None: the consumer's local time zone, DST included).

A slot is a minute the cron matches. A tenant's sync for slot S is due at S + its jitter offset
(a deterministic number of seconds in ``[0, window)`` from the tenant id), so tenants due in the same
minute start spread over the window. A slot missed while the consumer was down fires once when it
comes back (`due_slot` returns only the most recent slot not fired yet: never a burst).
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache

from huey import crontab

OFF = "off"
DEFAULT_SCHEDULE = "0 2 * * *"
FIELDS = ("minute", "hour", "day", "month", "day_of_week")
FIELD_LABELS = {"minute": "minute (0-59)", "hour": "hour (0-23)", "day": "day of month (1-31)",
                "month": "month (1-12)", "day_of_week": "day of week (0-7, 0 and 7 = Sunday)"}
SEARCH_DAYS = 366 * 28 + 2  # weekdays repeat on dates every 28 years: 29 February on a Monday appears within this


class ScheduleError(ValueError):
    """A schedule string is not a 5-field cron or `off`; the message names the bad field."""


# probe dates for the day fields: January 2001 has 31 days; 2001-01-07 is a Sunday
_PROBE_DAY = date(2001, 1, 1)
_SUNDAY = date(2001, 1, 7)


@dataclass(frozen=True)
class Cron:
    """A parsed cron: the text, Huey's matcher and the values each field allows."""

    text: str
    matches: Callable[[datetime], bool]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    def day_matches(self, d: date) -> bool:
        return d.month in self.months and d.day in self.days and (d.isoweekday() % 7) in self.weekdays


def _field_values(name: str, matcher: Callable[[datetime], bool]) -> list[int]:
    """The values of one field a single-field Huey crontab accepts (Huey is the truth)."""
    if name == "minute":
        return [m for m in range(60) if matcher(datetime(2001, 1, 1, 0, m))]
    if name == "hour":
        return [h for h in range(24) if matcher(datetime(2001, 1, 1, h, 0))]
    if name == "day":
        return [d for d in range(1, 32) if matcher(datetime(2001, 1, d))]
    if name == "month":
        return [m for m in range(1, 13) if matcher(datetime(2001, m, 1))]
    return [w for w in range(7) if matcher(datetime.combine(_SUNDAY + timedelta(days=w), datetime.min.time()))]


@lru_cache(maxsize=1024)  # a tick or a page parses the same few crons for every tenant
def parse(text: str) -> Cron | None:
    """A schedule string -> Cron, or None for `off`. Raises ScheduleError naming the bad field."""
    raw = " ".join((text or "").split())
    if raw.lower() == OFF:
        return None
    parts = raw.split(" ")
    if len(parts) != 5:
        raise ScheduleError(f"schedule {text!r} has {len(parts) if raw else 0} fields; expected 5 "
                            "(minute hour day-of-month month day-of-week, e.g. '0 2 * * *') or 'off'")
    values: dict[str, list[int]] = {}
    for name, value in zip(FIELDS, parts):
        try:
            single = crontab(**{name: value}, strict=True)
        except ValueError as exc:
            raise ScheduleError(f"schedule {raw!r}: the {FIELD_LABELS[name]} field {value!r} is not valid "
                                f"({exc}); use *, n, a-b, a-b/n, */n or a comma list") from None
        values[name] = _field_values(name, single)
        if not values[name]:
            raise ScheduleError(f"schedule {raw!r}: the {FIELD_LABELS[name]} field {value!r} matches nothing")
    cron = Cron(raw, crontab(*parts, strict=True), tuple(values["minute"]), tuple(values["hour"]),
                frozenset(values["day"]), frozenset(values["month"]), frozenset(values["day_of_week"]))
    if next(allowed_days(cron, _PROBE_DAY, forward=True), None) is None:
        raise ScheduleError(f"schedule {raw!r}: its day of month, month and day of week never fall together")
    return cron


def validate(text: str) -> str:
    """The normalised schedule text (`off` or the 5 fields, single-spaced); ScheduleError otherwise."""
    cron = parse(text)
    return OFF if cron is None else cron.text


def _aware(naive: datetime, tz: tzinfo | None) -> datetime:
    return naive.astimezone() if tz is None else naive.replace(tzinfo=tz)


def _wall(moment: datetime, tz: tzinfo | None) -> datetime:
    """`moment` as naive wall-clock time in `tz` (None: local)."""
    return (moment.astimezone() if tz is None else moment.astimezone(tz)).replace(tzinfo=None)


SEARCH_YEARS = SEARCH_DAYS // 365 + 1


def allowed_days(cron: Cron, start: date, forward: bool) -> Iterator[date]:
    """The days the cron's day fields allow, from `start` (included) onwards or backwards, within
    SEARCH_YEARS: computed from the allowed months and days of each year (at most 29 x 12 x 31
    candidates, 29 for `0 0 29 2 1`), never walked day by day."""
    months, days = sorted(cron.months, reverse=not forward), sorted(cron.days, reverse=not forward)
    step = 1 if forward else -1
    for year in range(start.year, start.year + step * SEARCH_YEARS, step):
        if not 1 <= year <= 9999:
            return
        for month in months:
            if (year, month) < (start.year, start.month) if forward else (year, month) > (start.year, start.month):
                continue
            last = calendar.monthrange(year, month)[1]
            for day in days:
                if day > last:
                    continue
                candidate = date(year, month, day)
                if (candidate < start) if forward else (candidate > start):
                    continue
                if (candidate.isoweekday() % 7) in cron.weekdays:
                    yield candidate


def previous_slot(cron: Cron, now: datetime, tz: tzinfo | None = None) -> datetime | None:
    """The latest slot at or before `now` (aware, in `tz`); None if there is none in the search span."""
    wall = _wall(now, tz).replace(second=0, microsecond=0)
    for day in allowed_days(cron, wall.date(), forward=False):
        for hour in reversed(cron.hours):
            for minute in reversed(cron.minutes):
                candidate = datetime(day.year, day.month, day.day, hour, minute)
                if candidate <= wall:
                    return _aware(candidate, tz)
    return None


def next_slot(cron: Cron, now: datetime, tz: tzinfo | None = None) -> datetime | None:
    """The first slot strictly after `now` (aware, in `tz`); None if there is none in the search span."""
    wall = _wall(now, tz)
    for day in allowed_days(cron, wall.date(), forward=True):
        for hour in cron.hours:
            for minute in cron.minutes:
                candidate = datetime(day.year, day.month, day.day, hour, minute)
                if candidate > wall:
                    return _aware(candidate, tz)
    return None


def jitter_offset(tenant_id: str, window_s: int) -> int:
    """Seconds after a slot this tenant's sync starts: the same for a tenant every time, spread
    evenly over ``[0, window_s)`` across tenants (0 when the window is 0)."""
    if window_s <= 0:
        return 0
    digest = hashlib.sha256(tenant_id.strip().lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") % int(window_s)


@dataclass(frozen=True)
class Due:
    slot: datetime  # the slot this sync is for (recorded as the tenant's last fired slot)
    delay_s: float  # seconds from `now` until it should start (slot + offset - now, at least 0)


def due_slot(cron: Cron, now: datetime, after: datetime | None, offset_s: int, *,
             horizon_s: float = 60.0, tz: tzinfo | None = None) -> Due | None:
    """The slot to fire on this tick, or None.

    The candidate is the most recent slot whose start (slot + `offset_s`) falls before the next tick
    (`now` + `horizon_s`); it fires when it is later than `after` (the last slot fired for the tenant,
    or the moment its schedule took effect). Slots missed while nothing ticked collapse into that one
    candidate, so a consumer back after a long stop fires once, not once per missed slot."""
    slot = previous_slot(cron, now + timedelta(seconds=horizon_s - offset_s), tz)
    if slot is None or (after is not None and slot <= after):
        return None
    start = slot + timedelta(seconds=offset_s)
    return Due(slot, max(0.0, (start - now).total_seconds()))


def next_run(cron: Cron, now: datetime, after: datetime | None, offset_s: int,
             tz: tzinfo | None = None) -> datetime | None:
    """When the tenant's next scheduled sync starts (slot + offset): the pending slot not fired yet,
    or the next one."""
    pending = due_slot(cron, now, after, offset_s, horizon_s=0.0, tz=tz)
    if pending is not None:
        return now + timedelta(seconds=pending.delay_s)
    # the next slot whose start is still ahead
    probe = now - timedelta(seconds=offset_s)
    slot = next_slot(cron, probe, tz)
    while slot is not None and after is not None and slot <= after:
        slot = next_slot(cron, slot, tz)
    return slot + timedelta(seconds=offset_s) if slot is not None else None


def fired_after(added_at: datetime | None, set_at: datetime | None, last_slot: datetime | None) -> datetime | None:
    """The moment after which a tenant's slots count: its last fired slot, or when its own schedule was
    set if that is later; before it ever fired, when it was added (a new tenant does not "miss" the
    slots before it existed)."""
    if last_slot is None and set_at is None:
        return added_at
    return max(t for t in (last_slot, set_at) if t is not None)


@dataclass(frozen=True)
class TenantPlan:
    """One tenant's schedule as the periodic task, `schedule show` and the Tenants page see it."""

    tenant_id: str
    display_name: str
    schedule: str  # the cron text, or "off"
    source: str  # tenant (its own) | group <name> (its tenant group's) | global (TENANTPILOT_SYNC_SCHEDULE) | baseline
    offset_s: int
    due: Due | None  # fire on this tick
    next_run: datetime | None  # when its next scheduled sync starts (None: off)

    @property
    def described(self) -> str:
        what = {"tenant": "own schedule", "global": "TENANTPILOT_SYNC_SCHEDULE",
                "baseline": "baselines are imports, never synced"}.get(self.source, self.source)  # group <name>
        return f"{self.schedule} ({what})"


def plan(rows: list[dict] | tuple[dict, ...], global_schedule: str, jitter_s: int, now: datetime, *,
         horizon_s: float = 60.0, tz: tzinfo | None = None) -> list[TenantPlan]:
    """Each tenant's effective schedule, whether it is due on this tick, and its next run.

    `rows`: Store.tenant_schedules() rows (tenant_id, display_name, kind, added_at, schedule,
    schedule_set_at, last_slot). A tenant's own schedule wins over `global_schedule`; baselines are
    never scheduled."""
    default = parse(global_schedule)
    out: list[TenantPlan] = []
    for row in rows:
        own = row.get("schedule")
        if row.get("kind") == "baseline":
            text, source, cron = OFF, "baseline", None
        elif own:
            try:
                cron = parse(own)
                text = OFF if cron is None else cron.text
            except ScheduleError:  # not written through validate(): never run it, show it as it is
                cron, text = None, f"{own} (not a valid schedule: set it again)"
            source = row.get("schedule_source") or "tenant"  # "group <name>": its tenant group's schedule
        else:
            cron, source = default, "global"
            text = OFF if cron is None else cron.text
        offset = jitter_offset(str(row["tenant_id"]), jitter_s)
        due = nxt = None
        if cron is not None:
            after = fired_after(row.get("added_at"), row.get("schedule_set_at"), row.get("last_slot"))
            due = due_slot(cron, now, after, offset, horizon_s=horizon_s, tz=tz)
            nxt = next_run(cron, now, after, offset, tz=tz)
        out.append(TenantPlan(str(row["tenant_id"]), str(row.get("display_name") or row["tenant_id"]), text,
                              source, offset, due, nxt))
    return out


def overview(rows: list[dict], global_schedule: str, jitter_s: int, now: datetime,
             tz: tzinfo | None = None) -> list[dict]:
    """What `schedule show` and the Tenants page list per tenant: its schedule (and where it comes
    from), the next scheduled start and its last scheduled run (Store.tenant_schedules() rows)."""
    by_id = {str(r["tenant_id"]): r for r in rows}
    out = []
    for p in plan(rows, global_schedule, jitter_s, now, horizon_s=0.0, tz=tz):
        row = by_id[p.tenant_id]
        out.append({"tenant_id": p.tenant_id, "display_name": p.display_name, "schedule": p.schedule,
                    "source": p.source, "described": p.described, "jitter_s": p.offset_s, "next_run": p.next_run,
                    "last_scheduled_run_id": row.get("last_scheduled_run_id"),
                    "last_scheduled_status": row.get("last_scheduled_status"),
                    "last_scheduled_at": row.get("last_scheduled_at")})
    return out
