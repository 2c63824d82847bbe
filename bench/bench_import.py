"""Import benchmark: peak memory (RSS) of refusing a zip bomb and of importing large exports.
Prints figures; asserts nothing. Each import runs in a fresh child process, so its peak RSS
(ru_maxrss) is the import's own.

    .venv/bin/python bench/bench_import.py [--export-mb 200] [--big-file-mb 100] [--before main]

1. the zip bomb: 0.9 MB of zip holding one 900 MB file (made with zipfile at level 9, as any tool
   would), uploaded through tenantpilot.sync.uploads.import_uploads: refused before unpacking.
2. an export folder of --export-mb MB: the Graph simulator's policies as IntuneManagement writes
   them, one JSON file per policy, settings catalog with inline settingDefinitions (2a), and the
   same without definitions, as IntuneCD writes them (2b: about 20 times the rows per MB).
3. one file of --big-file-mb MB: a raw Graph list response (configurationPolicies, value: [...]).

Peak memory is reported as RSS and as (peak - the child's RSS before importing) / largest file,
the multiple of the largest file an import holds. `--before REF` also runs 2 with the code of a
git ref (git archive into a temporary folder), to compare with what was there before.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


# --- inputs -------------------------------------------------------------------------------------
def bomb(path: Path, size_mb: int = 900) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("export/policies.json", "w", force_zip64=True) as entry:
            chunk = b" " * MB
            for _ in range(size_mb):
                entry.write(chunk)
    return path


def exported(policy, catalog) -> dict:
    """A simulated policy as an export file holds it: the resource with its navigation properties
    (settings with their inline settingDefinitions when `catalog` is given)."""
    doc = dict(policy.resource)
    if policy.settings:
        doc["settings"] = [dict(s, settingDefinitions=catalog.definitions_for(s["settingInstance"]))
                           if catalog is not None and "settingInstance" in s else s for s in policy.settings]
    for attr, key in (("definition_values", "definitionValues"), ("scheduled_actions", "scheduledActionsForRule"),
                      ("apps", "apps")):
        if getattr(policy, attr):
            doc[key] = getattr(policy, attr)
    doc["assignments"] = policy.assignments
    return doc


def policies(target_mb: float, definitions: bool = True):
    """(collection, exported policy) from simulated tenants until about target_mb of JSON."""
    from graphsim.catalog import load_catalog
    from graphsim.tenants import build_tenant

    catalog = load_catalog() if definitions else None
    total, seed = 0, 0
    while total < target_mb * MB:
        seed += 1
        tenant = build_tenant(f"{seed:08d}-0000-4000-8000-000000000000", f"Bench {seed}", n_policies=400, seed=seed)
        for policy in tenant.all_policies():
            doc = exported(policy, catalog)
            total += len(json.dumps(doc))
            yield policy.collection, doc
            if total >= target_mb * MB:
                return


def export_folder(folder: Path, target_mb: float, definitions: bool = True) -> Path:
    for i, (collection, doc) in enumerate(policies(target_mb, definitions)):
        (folder / collection).mkdir(parents=True, exist_ok=True)
        (folder / collection / f"{i:06d}.json").write_text(json.dumps(doc, indent=2))
    return folder


def big_file(folder: Path, target_mb: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    docs = [doc for collection, doc in policies(target_mb * 1.6) if collection == "configurationPolicies"]
    body = {"@odata.context": "https://graph.microsoft.com/beta/$metadata#deviceManagement/configurationPolicies",
            "value": docs}
    (folder / "configurationPolicies.json").write_text(json.dumps(body))
    return folder


# --- the child: one import, its peak RSS -------------------------------------------------------------
def child(kind: str, path: str) -> None:
    import psutil

    from tenantpilot.store import Store

    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    store = Store(work / "bench.duckdb")
    store.add_tenant("warm-up", "warm-up")  # DuckDB loaded before the baseline is taken
    before = psutil.Process().memory_info().rss
    started = time.perf_counter()
    outcome: dict = {}
    if kind == "upload":
        from tenantpilot.sync import uploads

        data = Path(path).read_bytes()
        before = psutil.Process().memory_info().rss  # the upload's bytes are in memory, as in the app
        try:
            uploads.import_uploads(store, [(Path(path).name, data)], "Bomb")
            outcome["result"] = "imported"
        except uploads.UploadError as exc:
            outcome["result"] = f"refused: {exc}"
    else:
        from tenantpilot.sync.baseline import import_baseline

        result = import_baseline(store, Path(path), "Bench")
        outcome.update(result=f"{result.policies:,} policies, {result.settings:,} settings",
                       skipped=len(result.skipped))
    outcome.update(seconds=time.perf_counter() - started, before=before,
                   peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                   code=str(Path(sys.modules["tenantpilot"].__file__).parent.parent))
    print(json.dumps(outcome))


def measure(kind: str, path: Path, pythonpath: str | None = None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    run = subprocess.run([sys.executable, __file__, "--child", kind, str(path)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if run.returncode:
        return {"result": f"failed (exit {run.returncode}): {run.stderr.strip().splitlines()[-1:]}", "peak": 0,
                "before": 0, "seconds": 0.0}
    return json.loads(run.stdout.strip().splitlines()[-1])


def files_of(path: Path) -> tuple[int, int]:
    sizes = [p.stat().st_size for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path.stat().st_size]
    return sum(sizes), max(sizes)


def report(label: str, path: Path, figures: dict) -> None:
    total, largest = files_of(path)
    held = (figures["peak"] - figures["before"]) / largest if figures["peak"] else float("nan")
    print(f"{label}\n  input {total / MB:,.1f} MB, largest file {largest / MB:,.1f} MB; {figures['result'][:160]}")
    print(f"  peak RSS {figures['peak'] / MB:,.0f} MB (child before import {figures['before'] / MB:,.0f} MB; "
          f"import held {held:,.1f} x the largest file); {figures['seconds']:.1f} s"
          + (f"; code {figures['code']}" if "code" in figures else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export-mb", type=float, default=200)
    parser.add_argument("--big-file-mb", type=float, default=100)
    parser.add_argument("--before", help="also measure the export folder with the code of this git ref")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-import-inputs-"))
    zip_path = bomb(work / "bomb.zip")
    with zipfile.ZipFile(zip_path) as archive:
        entry = archive.infolist()[0]
    print(f"zip bomb: {zip_path.stat().st_size / MB:.2f} MB file, one entry of {entry.file_size / MB:,.0f} MB "
          f"({entry.file_size / entry.compress_size:,.0f}:1)")
    report("1. upload of the zip bomb (import_uploads)", zip_path, measure("upload", zip_path))
    snapshot = None
    if args.before:
        snapshot = work / "before"
        snapshot.mkdir()
        archive = subprocess.run(["git", "archive", args.before, "tenantpilot"], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(snapshot)], input=archive, check=True)
    for label, definitions in (("2a", True), ("2b", False)):
        folder = export_folder(work / f"export-{label}", args.export_mb, definitions)
        shape = "with inline definitions" if definitions else "without definitions"
        report(f"{label}. export folder of {args.export_mb:g} MB {shape} (import_baseline)", folder,
               measure("folder", folder))
        if snapshot is not None:
            report(f"    the same with the code of {args.before}", folder, measure("folder", folder, str(snapshot)))
    single = big_file(work / "single", args.big_file_mb)
    report(f"3. one Graph list response of ~{args.big_file_mb:g} MB (import_baseline)", single,
           measure("folder", single))
    print(f"(inputs in {work}; delete them when done)")


if __name__ == "__main__":
    main()
