"""`python -m tenantpilot …`: scripting, automation and tests. Errors are one line, exit 1/2.

What reaches the screen is inert: every text written to standard output or error passes
`outbound.terminal` (no escape sequence can clear the screen, set the window title or fake coloured
text; bidi and invisible characters are shown as [U+XXXX]). JSON on standard output is ASCII (its
escapes keep every character, losslessly); CSV and `--output` files keep text as it is.

Why one module of ~600 lines: it is the one argparse tree and its commands, each a short function that reads
its arguments, calls the package once or twice and prints; the logic lives in the package.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tenantpilot import outbound
from tenantpilot.config import ConfigError, private_files, settings
from tenantpilot.ops.health import status_line
from tenantpilot.tenants import Known, TenantNameError, known_from_rows, resolve, tenant_key, valid_tenant_id

if TYPE_CHECKING:
    from tenantpilot.store import Store


def _store():
    from tenantpilot.store import open_store

    return open_store()


def _known(store) -> list[Known]:
    return known_from_rows(store.tenants().iter_rows(named=True))


def _json(value: Any, output: str | None) -> bytes:
    """A JSON report: UTF-8 in a file; ASCII with \\u escapes on standard output (inert, lossless)."""
    return (json.dumps(value, indent=2, ensure_ascii=not output, default=str) + "\n").encode("utf-8")


def _ascii(json_text: str) -> str:
    """JSON from polars as ASCII (\\u escapes): the same values, inert on a screen."""
    return json.dumps(json.loads(json_text), separators=(",", ":"))


def _emit(data: bytes, output: str | None, what: str, *, screen: bool = False) -> None:
    """A report to `output` (saying what was written there), or to standard output: as text through
    the screen rule when `screen` (a text report), else as bytes (CSV, ASCII JSON)."""
    if output:
        Path(output).write_bytes(data)
        print(f"wrote {what} to {output}")
    elif screen:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def _resolve(store, name: str) -> Known:
    """The tenant a name (id, domain or display name) means; TenantNameError (exit 2) otherwise."""
    return resolve(name, _known(store))


def _actor() -> str:
    """Who the command line acts as: cli:<os user> (tenantpilot/access.py)."""
    from tenantpilot.access import local_operator

    return local_operator("cli").actor


def _did(store: Store, action: str, tenant_ids: list[str | None], detail: str = "") -> None:
    """Who did what, in the Activity log."""
    store.record_activity(_actor(), action, tenant_ids, detail)


def cmd_tenants(args) -> int:
    store = _store()
    if args.action == "add":
        if not valid_tenant_id(args.tenant_id):
            print(f"error: {args.tenant_id!r} is not a tenant id (a GUID) or a domain", file=sys.stderr)
            return 2
        key = tenant_key(args.tenant_id)
        added = store.add_tenant(key, args.name or key)
        if added.outcome == "alias":
            owner = next(k for k in _known(store) if k.tenant_id == added.tenant_id)
            print(f"{key} is a domain of {owner.label}, which exists already; nothing added")
        else:
            print(f"{added.outcome} {key}")
            _did(store, f"tenant {added.outcome}", [added.tenant_id], args.name or key)
    elif args.action == "remove":
        tenant = _resolve(store, args.tenant_id)
        store.remove_tenant(tenant.tenant_id)
        _did(store, "tenant removed", [tenant.tenant_id], tenant.label)
        print(f"removed {tenant.label} and its data")
    else:
        from tenantpilot.ops.health import with_causes

        frame = with_causes(store, store.tenants())
        if args.json:
            print(_ascii(frame.write_json()))
        else:
            now = datetime.now(timezone.utc)
            for row in frame.iter_rows(named=True):
                print(f"{row['display_name'][:30]:30} {row['tenant_id']:38} {row['kind']:8} {status_line(row, now)}")
    return 0


def _format_progress(run: dict, prog: dict | None) -> str:
    if prog and run["status"] == "running":
        from tenantpilot.ops.progress import waiting_text

        total = f"/{prog['total']}" if prog.get("total") else ""
        waiting = waiting_text(prog)
        return f"run {run['run_id']}: running — {waiting or prog['phase']} {prog.get('done', 0)}{total}"
    return f"run {run['run_id']}: {run['status']}"


def cmd_sync(args) -> int:
    from tenantpilot.ops import queue

    store = _store()
    if args.all:
        tenants = store.tenants()
        ids = tenants.filter(tenants["kind"] != "baseline")["tenant_id"].to_list()
    elif args.tenant_id:
        ids = [_resolve(store, args.tenant_id).tenant_id]
        kind = (store.get_tenant(ids[0]) or {}).get("kind")
        if kind == "baseline":
            print(f"error: {_resolve(store, args.tenant_id).label} is a baseline (imported from files), not a "
                  "tenant: it is never synced from Graph. Import its files again to update it "
                  "(`python -m tenantpilot import FOLDER --name NAME`).", file=sys.stderr)
            return 2
    else:
        print("error: name a tenant, or pass --all", file=sys.stderr)
        return 2
    exit_code = 0
    for tenant_id in ids:
        queued = queue.enqueue_sync(tenant_id, store)
        note = "queued" if queued.created else "already queued or running"
        if queued.created:
            _did(store, "sync", [tenant_id], f"run {queued.run_id}")
        print(f"tenant {tenant_id}: run {queued.run_id} {note}", flush=True)
        if not args.wait:
            continue
        last_line = ""
        deadline = time.monotonic() + args.timeout
        while True:
            run = store.get_run(queued.run_id)
            line = _format_progress(run, queue.run_progress(queued.run_id))
            if line != last_line:
                print(line, flush=True)
                last_line = line
            if run["status"] not in ("queued", "running"):
                break
            if time.monotonic() > deadline:
                print(f"error: run {queued.run_id} did not finish within {args.timeout:.0f}s; is "
                      "`huey_consumer huey_worker.huey` running?", file=sys.stderr)
                return 1
            queue.repair(store=store)
            time.sleep(0.5)
        for warning in json.loads(run["warnings"] or "[]"):
            print(f"warning: {warning}")
        if run["status"] == "failed":
            print(f"error: {run['error']}", file=sys.stderr)
            exit_code = 1
        else:
            print(f"run {run['run_id']}: {run['status']} — {run['policy_count']} policies, "
                  f"{run['setting_count']} settings, {run['request_count']} requests, {run['duration_s']:.1f}s")
            reused = _reuse_line(run)
            if reused:
                print(f"  {reused}")
    return exit_code


def cmd_runs(args) -> int:
    store = _store()
    tenant_id = _resolve(store, args.tenant_id).tenant_id if args.tenant_id else None
    frame = store.runs(tenant_id, limit=args.limit)
    if args.json:
        print(_ascii(frame.write_json()))
        return 0
    if not frame.height:
        whose = f"for {_resolve(store, args.tenant_id).label}" if args.tenant_id else "yet"
        print(f"no sync runs {whose}: start one with `python -m tenantpilot sync TENANT`")
        return 0
    for r in frame.iter_rows(named=True):
        dur = f"{r['duration_s']:.1f}s" if r["duration_s"] is not None else "-"
        name = str(r["display_name"] or r["tenant_id"])[:30]
        print(f"{r['run_id']:>5} {name:30} {r['status']:9} {dur:>8} {r['policy_count'] or 0:>5} pol "
              f"{r['setting_count'] or 0:>7} set {r['request_count'] or 0:>6} req  {r['error'] or ''}")
        reused = _reuse_line(r)
        if reused:
            print(f"{'':>6}{reused}")
    return 0


def _reuse_line(run: dict[str, Any]) -> str | None:
    """The Sync page's sentence for a run that left policies unread (tenantpilot/app/labels.py reuse_line)."""
    from tenantpilot.app.labels import reuse_line

    return reuse_line(run, settings().full_read_days)


def cmd_export(args) -> int:
    from tenantpilot.analysis import export
    from tenantpilot.analysis.explore import export_columns

    store = _store()
    tenant = _resolve(store, args.tenant)
    frame = store.current_settings([tenant.tenant_id])
    if frame.height == 0:
        print(f"error: tenant {tenant.label} has no synced snapshot", file=sys.stderr)
        return 1
    path = Path(args.output or f"{tenant.tenant_id.replace(':', '-')}-settings.{args.format}")
    export.write(export_columns(frame), path, args.format)
    print(f"wrote {frame.height} rows to {path}")
    return 0


def cmd_compare(args) -> int:
    from tenantpilot.analysis import compare, export
    from tenantpilot.analysis.explore import with_family_labels

    store = _store()
    tenants = list(dict.fromkeys(_resolve(store, name).tenant_id for name in args.tenants))
    baseline = _resolve(store, args.baseline).tenant_id if args.baseline else None
    compared = list(dict.fromkeys([*([baseline] if baseline else []), *tenants]))
    if len(compared) < 2:
        print("error: compare needs two tenants, or a tenant and --baseline", file=sys.stderr)
        return 2
    frame = store.current_settings(compared)
    empty = [t for t in compared if t not in set(frame["tenant_id"].unique().to_list())]
    if empty:
        known = {k.tenant_id: k.label for k in _known(store)}
        print(f"error: no synced snapshot for {', '.join(known.get(t, t) for t in empty)}", file=sys.stderr)
        return 1
    accepted = _accepted(store, baseline) if baseline else None
    matrix, scores = compare.report(frame, compared, baseline, only_differences=args.only_differences,
                                    unconfigured=args.show_not_configured, accepted=accepted)
    shown = with_family_labels(matrix)
    if args.format == "json":
        report = {"baseline": baseline, "tenants": compared,
                  "alignment": scores.to_dicts() if scores is not None else None,
                  "settings": shown.to_dicts()}
        data = _json(report, args.output)
    else:
        data = export.to_csv_bytes(shown)
    _emit(data, args.output, f"{shown.height} settings")
    if scores is not None and (args.output or args.format == "csv"):
        for r in scores.iter_rows(named=True):
            score = "—" if r["score"] is None else f"{r['score']:.1%}"
            counts = ", ".join(f"{r[k]} {compare.SCORE_WORDS[k]}" for k in ("differing", "missing", "extra", "accepted"))
            print(f"alignment {r['tenant']}: {score} ({r['matched']} of {r['baseline_settings']} baseline settings; "
                  f"{counts})",
                  file=sys.stderr if not args.output else sys.stdout)
    return 0


def cmd_changes(args) -> int:
    from tenantpilot.analysis import export, history

    store = _store()
    tenants = [_resolve(store, args.tenant).tenant_id] if args.tenant else None
    try:
        since = history.parse_since(args.since)
        found = history.changes_since(store, since, tenants)
    except history.SinceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "text":
        data = history.report_text(found, since).encode("utf-8")
    else:
        import polars as pl

        rows = history.report_rows(found)
        frame = pl.DataFrame([{k: None if v is None else str(v) for k, v in r.items()} for r in rows],
                             schema={c: pl.String for c in history.REPORT_COLUMNS})
        data = (_json({"since": args.since, "changes": rows}, args.output) if args.format == "json"
                else export.to_csv_bytes(frame))
    _emit(data, args.output, f"{sum(t.count for t in found)} changes of {len(found)} tenants",
          screen=args.format == "text")
    return 0


def cmd_report(args) -> int:
    from tenantpilot import report
    from tenantpilot.analysis import history

    store = _store()
    tenants = [_resolve(store, name).tenant_id for name in args.tenants]
    baseline = _resolve(store, args.baseline).tenant_id
    try:
        data = report.gather(store, tenants, baseline, history.parse_since(args.since))
    except (history.SinceError, report.ReportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    output = args.output or f"tenantpilot-report.{args.format}"
    _emit(report.render(data, args.format), output, f"the {args.format} report of {len(data.tenants)} tenant(s)")
    return 0


def _accepted(store, baseline: str):
    from datetime import date

    from tenantpilot.analysis import deviations

    return deviations.accepted_keys(store.deviations(), date.today(), baseline)


def cmd_deviations(args) -> int:
    from datetime import date

    from tenantpilot.analysis import compare, deviations, export

    store = _store()
    if args.action == "add":
        tenant = _resolve(store, args.tenant)
        baseline = _resolve(store, args.baseline)
        found = compare.cells(store.current_settings([tenant.tenant_id, baseline.tenant_id]))
        try:
            key, name = deviations.resolve_setting(found, args.setting, policy_type=args.policy_type,
                                                   scope=args.scope)
            known = store.tenants()["tenant_id"].to_list()
            new = deviations.validate(tenant_id=tenant.tenant_id, baseline_id=baseline.tenant_id, key=key,
                                      setting_name=name, reason=args.reason, owner=args.owner,
                                      expires_on=args.expires, today=date.today(), tenants=known, baselines=known)
        except deviations.DeviationError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        dev_id = store.add_deviation(new, accepted_by=_actor())
        _did(store, "deviation accepted", [tenant.tenant_id], f"deviation {dev_id}: {name} until {new.expires_on}")
        print(f"deviation {dev_id}: {tenant.label} may differ from {baseline.label} on {name} "
              f"({'/'.join(key)}) until {new.expires_on.isoformat()}")
        return 0
    if args.action == "remove":
        if not store.remove_deviation(args.deviation_id):
            print(f"error: no open deviation {args.deviation_id} (see `deviations list`)", file=sys.stderr)
            return 2
        _did(store, "deviation removed", [None], f"deviation {args.deviation_id}")
        print(f"removed deviation {args.deviation_id}; the difference counts again")
        return 0
    tenant_ids = [_resolve(store, args.tenant).tenant_id] if args.tenant else None
    register = deviations.with_state(store.deviations(tenant_ids), date.today())
    if args.format == "json":
        print(_ascii(register.write_json()))
    elif args.format == "csv":
        sys.stdout.buffer.write(export.to_csv_bytes(register))
        sys.stdout.flush()
    else:
        for r in register.iter_rows(named=True):
            print(f"{r['deviation_id']:>5} {str(r['tenant'])[:24]:24} {str(r['baseline'])[:20]:20} "
                  f"{str(r['setting_name'])[:40]:40} {r['state']:8} until {r['expires_on']}  {r['owner']}: {r['reason']}"
                  f"  (accepted by {r['accepted_by'] or 'not recorded'})")
    return 0


def cmd_health(args) -> int:
    from tenantpilot.ops.health import health_report

    report = health_report(settings(), _store())
    print(json.dumps(report, indent=2, default=str))
    return 0 if report["healthy"] else 1


def cmd_simulate(args) -> int:
    from graphsim.__main__ import serve_forever

    cfg = settings()
    serve_forever(port=args.port or cfg.sim_port, data_dir=cfg.data_dir, tenants=args.tenants,
                  policies=args.policies, latency=args.latency)
    return 0


def cmd_import(args) -> int:
    from tenantpilot.sync.baseline import import_baseline

    store = _store()
    result = import_baseline(store, Path(args.path), args.name)
    if result.policies:
        _did(store, "baseline imported", [result.tenant_id], f"{result.policies} policies, {result.settings} settings")
    for file, reason in result.skipped:
        print(f"skipped {file}: {reason}")
    print(f"baseline {result.tenant_id!r}: {result.policies} policies, {result.settings} settings "
          f"(run {result.run_id}); {len(result.skipped)} files skipped")
    return 0 if result.policies else 1


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "—"


def cmd_schedule(args) -> int:
    from tenantpilot.ops import schedule

    store = _store()
    cfg = settings()
    if args.action == "set":
        tenant = _resolve(store, args.tenant_id)
        if (store.get_tenant(tenant.tenant_id) or {}).get("kind") == "baseline":
            print(f"error: {tenant.label} is a baseline (an import): baselines are never scheduled", file=sys.stderr)
            return 2
        if args.schedule.strip().lower() == "default":
            store.set_tenant_schedule(tenant.tenant_id, None)
            _did(store, "schedule", [tenant.tenant_id], "default")
            print(f"{tenant.label}: follows TENANTPILOT_SYNC_SCHEDULE ({cfg.sync_schedule})")
            return 0
        try:
            text = schedule.validate(args.schedule)
        except schedule.ScheduleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        store.set_tenant_schedule(tenant.tenant_id, text)
        _did(store, "schedule", [tenant.tenant_id], text)
        print(f"{tenant.label}: schedule {text}")
        return 0
    rows = schedule.overview(list(store.schedules_with_groups().iter_rows(named=True)), cfg.sync_schedule,
                             cfg.schedule_jitter_s, datetime.now().astimezone())
    if args.json:
        print(json.dumps(rows, indent=2, default=lambda v: v.isoformat()))
        return 0
    for row in rows:
        ran = (f"run {row['last_scheduled_run_id']} {row['last_scheduled_status']} {_when(row['last_scheduled_at'])}"
               if row["last_scheduled_run_id"] is not None else "none yet")
        print(f"{row['display_name'][:30]:30} {row['described']:45} next: {_when(row['next_run']):25} "
              f"last scheduled: {ran}")
    return 0


def cmd_alerts(args) -> int:
    """`alerts channels`: the configured channels (names and endpoint kinds, never a URL) and who names which; with
    --group or --tenant, set their channel names (none: the group carries none, the tenant follows its groups)."""
    from tenantpilot.ops import channels

    store, cfg = _store(), settings()
    if args.group is None and args.tenant is None:
        for name in [n for n in channels.names(cfg) if n != channels.OFF]:
            kinds = [channels.split(t)[1] for t in channels.targets(cfg, [name])]
            print(f"channel {name}: {', '.join(kinds) or 'no endpoint configured'}")
        labels = {r["tenant_id"]: r["display_name"] for r in store.tenants().iter_rows(named=True)}
        for row in store.alert_channel_settings().iter_rows(named=True):
            owner = labels.get(row["owner"], row["owner"]) if row["kind"] == "tenant" else row["owner"]
            print(f"{row['kind']} {owner}: {', '.join(row['channels'])}")
        return 0
    try:
        wanted = [channels.check_name(n) for n in args.names]
    except channels.ChannelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if missing := channels.unknown(cfg, wanted):
        print(f"error: alert channel(s) {', '.join(missing)} not configured; configured: "
              f"{', '.join(channels.names(cfg))} ({channels.PREFIX}<NAME>_TEAMS and its siblings)", file=sys.stderr)
        return 2
    if args.group is not None:
        if args.group not in set(store.group_members()["group_name"].to_list()):  # groups live on the Tenants page
            print(f"error: no tenant group {args.group!r} (groups are made on the Tenants page)", file=sys.stderr)
            return 2
        store.set_alert_channels(group_name=args.group, channels=wanted)
        found = store.group_members()
        members = [t for g, t in found.iter_rows() if g == args.group]
        _did(store, "alert channels", members or [None], f"Group {args.group}: {', '.join(wanted) or 'none'}")
        print(f"group {args.group}: {', '.join(wanted) or 'no channel'}")
        return 0
    tenant = _resolve(store, args.tenant)
    store.set_alert_channels(tenant_id=tenant.tenant_id, channels=wanted)
    _did(store, "alert channels", [tenant.tenant_id], f"Tenant {tenant.label}: {', '.join(wanted) or 'none'}")
    print(f"{tenant.label}: {', '.join(wanted) or 'follows its groups (or default)'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False everywhere: `--al` must not silently mean `--all` (it queued every tenant)
    p = argparse.ArgumentParser(prog="python -m tenantpilot", description=__doc__, allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True)


    t = sub.add_parser("tenants", allow_abbrev=False, help="add, list or remove tenants")
    t_sub = t.add_subparsers(dest="action", required=True)
    a = t_sub.add_parser("add", allow_abbrev=False)
    a.add_argument("tenant_id", help="tenant GUID or domain")
    a.add_argument("--name", help="display name")
    r = t_sub.add_parser("remove", allow_abbrev=False)
    r.add_argument("tenant_id", help="tenant id, domain or display name")
    ls = t_sub.add_parser("list", allow_abbrev=False)
    ls.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_tenants)

    s = sub.add_parser("sync", allow_abbrev=False, help="queue a sync of a tenant (or --all tenants)")
    s.add_argument("tenant_id", nargs="?", help="tenant id, domain or display name")
    s.add_argument("--all", action="store_true", help="every tenant (baselines are imports, not synced)")
    s.add_argument("--wait", action="store_true", help="follow progress; exit 1 on failure")
    s.add_argument("--timeout", type=float, default=1800)
    s.set_defaults(func=cmd_sync)

    ru = sub.add_parser("runs", allow_abbrev=False, help="sync history")
    ru.add_argument("tenant_id", nargs="?", help="tenant id, domain or display name")
    ru.add_argument("--limit", type=int, default=50)
    ru.add_argument("--json", action="store_true")
    ru.set_defaults(func=cmd_runs)

    e = sub.add_parser("export", allow_abbrev=False, help="export a tenant's current settings")
    e.add_argument("--tenant", required=True, help="tenant id, domain or display name")
    e.add_argument("--format", choices=("csv", "parquet"), default="csv")
    e.add_argument("--output")
    e.set_defaults(func=cmd_export)

    c = sub.add_parser("compare", allow_abbrev=False,
                       help="compare tenants (and a baseline): the Compare page's rows, statuses and alignment")
    c.add_argument("tenants", nargs="+", metavar="TENANT", help="tenant id, domain or display name")
    c.add_argument("--baseline", metavar="NAME", help="a tenant or imported baseline to align against")
    c.add_argument("--only-differences", action="store_true", help="leave out settings that are the same everywhere")
    c.add_argument("--show-not-configured", action="store_true",
                   help="show 'Not configured' apart from not present (the page's toggle)")
    c.add_argument("--format", choices=("csv", "json"), default="csv")
    c.add_argument("--output", metavar="PATH", help="write here instead of standard output")
    c.set_defaults(func=cmd_compare)

    ch = sub.add_parser("changes", allow_abbrev=False,
                        help="what changed since a point in time: policy events, setting changes, types not synced")
    ch.add_argument("--since", required=True, help="7d, 12h, 2026-11-01, 2026-11-01T08:00 or run:N")
    ch.add_argument("--tenant", metavar="TENANT", help="one tenant (id, domain or display name); default: all")
    ch.add_argument("--format", choices=("text", "csv", "json"), default="text")
    ch.add_argument("--output", metavar="PATH", help="write here instead of standard output")
    ch.set_defaults(func=cmd_changes)

    rp = sub.add_parser("report", allow_abbrev=False,
                        help="a customer report against a baseline: Excel workbook or printable PDF")
    rp.add_argument("tenants", nargs="+", metavar="TENANT", help="tenant id, domain or display name")
    rp.add_argument("--baseline", required=True, metavar="NAME", help="the baseline (or tenant) to align against")
    rp.add_argument("--since", default="7d", help="changes since: 7d, 2026-11-01, run:N (default 7d)")
    rp.add_argument("--format", choices=("xlsx", "pdf"), default="xlsx")
    rp.add_argument("--output", metavar="PATH", help="default: tenantpilot-report.FORMAT")
    rp.set_defaults(func=cmd_report)

    d = sub.add_parser("deviations", allow_abbrev=False,
                       help="the register of accepted deviations from a baseline (add, list, remove)")
    d_sub = d.add_subparsers(dest="action", required=True)
    da = d_sub.add_parser("add", allow_abbrev=False, help="accept a tenant's difference from a baseline until a date")
    da.add_argument("tenant", metavar="TENANT", help="tenant id, domain or display name")
    da.add_argument("--baseline", required=True, metavar="NAME", help="the baseline (or tenant) it differs from")
    da.add_argument("--setting", required=True, metavar="KEY",
                    help="the setting_key (or setting_name) as `compare --format csv` shows it")
    da.add_argument("--policy-type", metavar="TYPE", help="when the key exists in several policy types")
    da.add_argument("--scope", metavar="SCOPE", help="when the key exists for several profiles / platforms")
    da.add_argument("--reason", required=True)
    da.add_argument("--owner", required=True)
    da.add_argument("--expires", required=True, metavar="YYYY-MM-DD", help="last day it is accepted")
    dl = d_sub.add_parser("list", allow_abbrev=False)
    dl.add_argument("--tenant", metavar="TENANT")
    dl.add_argument("--format", choices=("text", "csv", "json"), default="text")
    dr = d_sub.add_parser("remove", allow_abbrev=False)
    dr.add_argument("deviation_id", type=int, metavar="ID")
    d.set_defaults(func=cmd_deviations)
    sc = sub.add_parser("schedule", allow_abbrev=False, help="show or set when tenants sync on their own")
    sc_sub = sc.add_subparsers(dest="action", required=True)
    sc_set = sc_sub.add_parser("set", allow_abbrev=False,
                               help='a tenant\'s own schedule: "CRON" (5 fields, local time), off, or default')
    sc_set.add_argument("tenant_id", help="tenant id, domain or display name")
    sc_set.add_argument("schedule", help='e.g. "0 2 * * *"; off; default (follow TENANTPILOT_SYNC_SCHEDULE)')
    sc_show = sc_sub.add_parser("show", allow_abbrev=False, help="each tenant's schedule, next and last run")
    sc_show.add_argument("--json", action="store_true")
    sc.set_defaults(func=cmd_schedule)

    al = sub.add_parser("alerts", allow_abbrev=False, help="alert channels of tenant groups and tenants")
    al_sub = al.add_subparsers(dest="action", required=True)
    al_ch = al_sub.add_parser("channels", allow_abbrev=False,
                              help="list the channels and who names them; with --group/--tenant, set their names")
    al_for = al_ch.add_mutually_exclusive_group()
    al_for.add_argument("--group", help="a tenant group's name")
    al_for.add_argument("--tenant", help="tenant id, domain or display name")
    al_ch.add_argument("names", nargs="*", help="channel names (default, a TENANTPILOT_ALERT_CHANNEL_<NAME>, or "
                                                "off: no alert); none: clear")
    al.set_defaults(func=cmd_alerts)

    h = sub.add_parser("health", allow_abbrev=False, help="queue, database and consumer health as JSON")
    h.set_defaults(func=cmd_health)

    sim = sub.add_parser("simulate", allow_abbrev=False, help="run the local Graph simulator with demo tenants")
    sim.add_argument("--port", type=int)
    sim.add_argument("--tenants", type=int, default=3)
    sim.add_argument("--policies", type=int, default=40)
    sim.add_argument("--latency", type=float, default=0.0)
    sim.set_defaults(func=cmd_simulate)

    im = sub.add_parser("import", allow_abbrev=False, help="import exported JSON as a read-only baseline")
    im.add_argument("path")
    im.add_argument("--name", required=True)
    im.set_defaults(func=cmd_import)
    return p


def main(argv: list[str] | None = None) -> int:
    private_files()  # the database, queue and simulator files it may create: 0600, folders 0700
    screen = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = outbound.Screen(sys.stdout), outbound.Screen(sys.stderr)
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = screen


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings()
        return args.func(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except TenantNameError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
        from tenantpilot.logs import redact

        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 1
