"""tenantpilot.ops.schedule: parsing, previous/next slot, missed slots (fire once), jitter, per-tenant plans."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tenantpilot.ops import schedule
from tenantpilot.ops.schedule import ScheduleError

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, tz=UTC) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz)


@pytest.mark.parametrize("text, normalised", [
    ("0 2 * * *", "0 2 * * *"),
    ("  */15   *  * * 1-5 ", "*/15 * * * 1-5"),
    ("off", "off"),
    ("OFF", "off"),
    ("0 0 29 2 1", "0 0 29 2 1"),  # rare, but it happens (2016, 2044)
    ("5,35 8-18/2 1 1,7 0", "5,35 8-18/2 1 1,7 0"),
])
def test_valid_schedules(text, normalised):
    assert schedule.validate(text) == normalised


@pytest.mark.parametrize("text, names", [
    ("61 * * * *", "minute"),
    ("* 24 * * *", "hour"),
    ("* * 0 * *", "day of month"),
    ("* * * 13 *", "month"),
    ("* * * * 8", "day of week"),
    ("* * * * */2", "day of week"),  # Huey refuses */n on weekdays
    ("x * * * *", "minute"),
    ("0 2 * *", "4 fields"),
    ("0 2 * * * *", "6 fields"),
    ("", "0 fields"),
    ("daily", "1 fields"),
    ("0 0 31 2 *", "never fall together"),
])
def test_invalid_schedules_name_the_field(text, names):
    with pytest.raises(ScheduleError) as exc:
        schedule.parse(text)
    assert names in str(exc.value)


@pytest.mark.parametrize("cron, now, previous, following", [
    ("0 2 * * *", "2026-12-02 10:30", "2026-12-02 02:00", "2026-12-03 02:00"),
    ("0 2 * * *", "2026-12-02 02:00", "2026-12-02 02:00", "2026-12-03 02:00"),  # a slot is its own previous
    ("0 2 * * *", "2026-12-02 01:59:59", "2026-12-01 02:00", "2026-12-02 02:00"),
    ("* * * * *", "2026-12-02 10:30:42", "2026-12-02 10:30", "2026-12-02 10:31"),
    ("*/15 * * * *", "2026-12-02 10:44", "2026-12-02 10:30", "2026-12-02 10:45"),
    ("0 9 * * 1", "2026-12-02 10:00", "2026-11-30 09:00", "2026-12-07 09:00"),  # 2 Dec 2026 is a Wednesday
    ("0 9 * * 0", "2026-12-02 10:00", "2026-11-29 09:00", "2026-12-06 09:00"),  # 0 = Sunday
    ("0 9 * * 7", "2026-12-02 10:00", "2026-11-29 09:00", "2026-12-06 09:00"),  # 7 = Sunday too
    ("0 0 1 1 *", "2026-12-02 10:00", "2026-01-01 00:00", "2027-01-01 00:00"),
    ("0 0 29 2 1", "2026-12-02 10:00", "2016-02-29 00:00", "2044-02-29 00:00"),
    ("30 0 1 * 1", "2026-12-02 10:00", "2026-06-01 00:30", "2027-02-01 00:30"),  # Huey: day AND weekday
])
def test_previous_and_next_slot(cron, now, previous, following):
    parsed = schedule.parse(cron)
    assert schedule.previous_slot(parsed, at(now), UTC) == at(previous)
    assert schedule.next_slot(parsed, at(now), UTC) == at(following)


def test_slots_are_wall_clock_times_of_the_zone():
    """02:30 Berlin on the day clocks go forward is an instant; 02:00 daily stays 02:00 local in summer."""
    daily = schedule.parse("0 2 * * *")
    summer = schedule.previous_slot(daily, at("2026-07-01 12:00"), BERLIN)
    assert summer == datetime(2026, 7, 1, 2, 0, tzinfo=BERLIN) and summer.utcoffset() == timedelta(hours=2)
    winter = schedule.previous_slot(daily, at("2026-12-01 12:00"), BERLIN)
    assert winter is not None and winter.astimezone(UTC) == at("2026-12-01 01:00")


# (cron, now, after = last slot fired / schedule set, offset s) -> (slot fired or None, delay s)
@pytest.mark.parametrize("cron, now, after, offset, slot, delay", [
    # the 02:00 slot fired already: nothing until tomorrow
    ("0 2 * * *", "2026-12-02 10:30", "2026-12-02 02:00", 0, None, None),
    # consumer down for 3 days: the slots of 30 Nov, 1 and 2 Dec fire ONCE, as the latest one, now
    ("0 2 * * *", "2026-12-02 10:30", "2026-11-29 02:00", 0, "2026-12-02 02:00", 0.0),
    ("0 2 * * *", "2026-12-02 10:30", "2026-11-29 02:00", 120, "2026-12-02 02:00", 0.0),
    # the next slot starts before the next tick: queued now, delayed to slot + offset
    ("0 2 * * *", "2026-12-02 01:59:30", "2026-12-01 02:00", 0, "2026-12-02 02:00", 30.0),
    ("0 2 * * *", "2026-12-02 02:00:10", "2026-12-01 02:00", 45, "2026-12-02 02:00", 35.0),
    # its offset puts the start beyond this tick: the next tick fires it
    ("0 2 * * *", "2026-12-02 02:00:10", "2026-12-01 02:00", 200, None, None),
    # every minute, offset 0: the coming minute
    ("* * * * *", "2026-12-02 10:30:20", "2026-12-02 10:30", 0, "2026-12-02 10:31", 40.0),
    # added (or schedule set) after today's slot: the slot before it is not a missed one
    ("0 2 * * *", "2026-12-02 10:30", "2026-12-02 09:00", 0, None, None),
    # never fired and no anchor at all: the latest slot
    ("0 2 * * *", "2026-12-02 10:30", None, 0, "2026-12-02 02:00", 0.0),
])
def test_due_slot_fires_at_most_once(cron, now, after, offset, slot, delay):
    due = schedule.due_slot(schedule.parse(cron), at(now), at(after) if after else None, offset, tz=UTC)
    if slot is None:
        assert due is None
    else:
        assert due is not None and due.slot == at(slot) and due.delay_s == pytest.approx(delay)


def test_a_consumer_ticking_every_minute_fires_each_slot_once():
    """Simulated ticks over two days of a daily cron: one fire per slot, each at slot + offset."""
    cron, offset = schedule.parse("0 2 * * *"), 150
    after: datetime | None = at("2026-11-30 12:00")
    fired: list[tuple[datetime, datetime]] = []
    now = at("2026-11-30 12:00:17")
    while now < at("2026-12-02 12:00"):
        due = schedule.due_slot(cron, now, after, offset, tz=UTC)
        if due is not None:
            fired.append((due.slot, now + timedelta(seconds=due.delay_s)))
            after = due.slot
        now += timedelta(seconds=60)
    assert [s for s, _ in fired] == [at("2026-12-01 02:00"), at("2026-12-02 02:00")]
    assert all(start == slot + timedelta(seconds=offset) for slot, start in fired)


@pytest.mark.parametrize("window", [300, 60, 7])
def test_jitter_is_stable_and_spreads_tenants(window):
    ids = [f"{i:08d}-1111-4111-8111-111111111111" for i in range(50)]
    offsets = [schedule.jitter_offset(t, window) for t in ids]
    assert offsets == [schedule.jitter_offset(t, window) for t in ids]  # deterministic
    assert all(0 <= o < window for o in offsets)
    assert len(set(offsets)) >= min(window, 50) * 0.6  # not all in the same second
    assert schedule.jitter_offset(ids[0].upper(), window) == offsets[0]  # the tenant key, not its spelling


def test_no_jitter_window_means_at_the_slot():
    assert schedule.jitter_offset("anything", 0) == 0


@pytest.mark.parametrize("added, set_at, last, expected", [
    ("2026-11-01 10:00", None, None, "2026-11-01 10:00"),
    ("2026-11-01 10:00", None, "2026-12-01 02:00", "2026-12-01 02:00"),
    ("2026-11-01 10:00", "2026-12-01 09:00", "2026-12-01 02:00", "2026-12-01 09:00"),
    ("2026-11-01 10:00", "2026-11-15 09:00", "2026-12-01 02:00", "2026-12-01 02:00"),
    ("2026-11-01 10:00", "2026-11-15 09:00", None, "2026-11-15 09:00"),
])
def test_fired_after(added, set_at, last, expected):
    def conv(v):
        return at(v) if v else None
    assert schedule.fired_after(conv(added), conv(set_at), conv(last)) == at(expected)


def _row(tid: str, kind: str = "tenant", own: str | None = None, last: str | None = None) -> dict:
    return {"tenant_id": tid, "display_name": tid.title(), "kind": kind, "added_at": at("2026-11-01 00:00"),
            "schedule": own, "schedule_set_at": at("2026-11-01 00:00") if own else None,
            "last_slot": at(last) if last else None}


def test_plan_own_schedule_wins_and_baselines_never_run():
    rows = [_row("contoso"), _row("fabrikam", own="*/5 * * * *"), _row("northwind", own="off"),
            _row("baseline:cis", kind="baseline"), _row("demo", kind="demo", last="2026-12-02 02:00")]
    plans = {p.tenant_id: p for p in schedule.plan(rows, "0 2 * * *", 0, at("2026-12-02 10:31:30"), tz=UTC)}
    assert (plans["contoso"].source, plans["contoso"].schedule) == ("global", "0 2 * * *")
    assert plans["contoso"].due is not None and plans["contoso"].due.slot == at("2026-12-02 02:00")
    assert plans["fabrikam"].source == "tenant" and plans["fabrikam"].due is not None
    assert plans["fabrikam"].due.slot == at("2026-12-02 10:30")  # its missed slots collapse to the latest
    assert plans["northwind"].schedule == "off" and plans["northwind"].due is None
    assert plans["northwind"].next_run is None
    assert plans["baseline:cis"].source == "baseline" and plans["baseline:cis"].due is None
    assert plans["demo"].due is None and plans["demo"].next_run == at("2026-12-03 02:00")


def test_plan_global_off_leaves_only_own_schedules():
    rows = [_row("contoso"), _row("fabrikam", own="0 3 * * *")]
    plans = {p.tenant_id: p for p in schedule.plan(rows, "off", 0, at("2026-12-02 10:00"), tz=UTC)}
    assert plans["contoso"].due is None and plans["contoso"].next_run is None
    assert plans["fabrikam"].due is not None and plans["fabrikam"].next_run == at("2026-12-02 10:00")


@pytest.mark.parametrize("now, after, offset, expected", [
    ("2026-12-02 10:00", "2026-12-02 02:00", 0, "2026-12-03 02:00"),
    ("2026-12-02 10:00", "2026-12-02 02:00", 90, "2026-12-03 02:01:30"),
    ("2026-12-02 02:00:30", "2026-12-01 02:00", 90, "2026-12-02 02:01:30"),  # today's, not started yet
])
def test_next_run(now, after, offset, expected):
    assert schedule.next_run(schedule.parse("0 2 * * *"), at(now), at(after), offset, tz=UTC) == at(expected)


def test_plan_never_runs_a_stored_schedule_that_does_not_parse():
    plans = schedule.plan([_row("contoso", own="0 99 * * *")], "* * * * *", 0, at("2026-12-02 10:00"), tz=UTC)
    assert plans[0].due is None and plans[0].next_run is None and "not a valid schedule" in plans[0].schedule
