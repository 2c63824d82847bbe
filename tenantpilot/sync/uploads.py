"""Uploaded export files -> a baseline: what the Tenants page's "Import a baseline" does.

The page hands over (file name, bytes) pairs from st.file_uploader: exported policy JSON files
and .zip archives of an export folder (an IntuneCD backup, an IntuneManagement export). They are
written to a temporary folder, each archive extracted into a folder named after it, and that
folder goes through `import_baseline` like `python -m tenantpilot import PATH --name NAME`.

Archives are extracted defensively:
- an entry with an absolute path (/x, C:\\x) or a `..` part rejects the whole upload
  (UnsafeArchive); nothing is imported;
- the total unpacked size and the number of files are capped (TooLarge), and so is each file:
  at most MAX_FILE_BYTES unpacked, and (above RATIO_FLOOR_BYTES) at most MAX_RATIO times its
  compressed size. All three are checked against the sizes the archive declares before anything
  is unpacked, and again while writing, so a zip bomb (0.9 MB unpacking to one 900 MB file) is
  refused at once with a message naming the file;
- symbolic links, encrypted and corrupt entries are not extracted but listed as skipped;
  macOS metadata (__MACOSX/) is dropped.
"""

from __future__ import annotations

import io
import re
import stat
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path, PurePosixPath

from tenantpilot.flatten.files import MAX_FILE_BYTES, MAX_IMPORT_BYTES
from tenantpilot.store import Store
from tenantpilot.sync.baseline import ImportFailed, ImportResult, NoPolicies, import_baseline

MAX_UNPACKED_BYTES = MAX_IMPORT_BYTES  # what one import may hold in all (flatten/files.py says why)
MAX_FILES = 50_000
# Real exports compress 5-40:1 (the corpus' best: 41:1 for a 0.5 MB Office policy); a file that
# unpacks to more than 200 times its compressed size is not an export. Tiny files are exempt.
MAX_RATIO = 200
RATIO_FLOOR_BYTES = 1024 * 1024
CHUNK = 1024 * 1024
CLI_HINT = "`python -m tenantpilot import PATH --name NAME`"
_DRIVE = re.compile(r"^[A-Za-z]:")


class UploadError(ValueError):
    """The uploads cannot be imported as they are; the message says why and what to do."""


class UnsafeArchive(UploadError):
    """An archive entry would be written outside its folder (absolute path or `..`)."""


class TooLarge(UploadError):
    """The uploads unpack to more than the size or file-count cap."""


class NothingImported(UploadError):
    """No policy could be read from the uploads; `skipped` lists every file with its reason."""

    def __init__(self, message: str, skipped: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.skipped = skipped


def member_parts(name: str) -> tuple[str, ...] | None:
    """The path parts of an archive entry name, or None when the entry is unsafe.

    Backslashes count as separators (archives made on Windows); empty and `.` parts are dropped.
    Unsafe: absolute (`/x`, `\\x`, `C:x`) or any `..` part."""
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or _DRIVE.match(normalised):
        return None
    parts = tuple(p for p in normalised.split("/") if p not in ("", "."))
    if ".." in parts:
        return None
    return parts


def upload_name(name: str) -> str:
    """A safe file name for an uploaded file: its last path part, never empty, hidden or `..`."""
    base = PurePosixPath(name.replace("\\", "/")).name.strip()
    if base in ("", ".", "..") or base.startswith("."):
        base = "upload" + (base if base not in (".", "..") else "")
    return base


def _unique(folder: Path, name: str) -> Path:
    target = folder / name
    stem, suffix, n = Path(name).stem, Path(name).suffix, 2
    while target.exists():
        target = folder / f"{stem} ({n}){suffix}"
        n += 1
    return target


def _mb(size: float) -> str:
    return f"{size / 1024:,.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:,.1f} MB"


class _Budget:
    def __init__(self, max_bytes: int, max_files: int, max_file_bytes: int = MAX_FILE_BYTES) -> None:
        self.max_bytes, self.max_files, self.max_file_bytes = max_bytes, max_files, max_file_bytes
        self.bytes = 0
        self.files = 0

    def check_file(self, shown: str, size: int, compressed: int | None = None) -> None:
        """One file's unpacked size against the per-file cap and its compression ratio."""
        if size > self.max_file_bytes:
            raise TooLarge(
                f"{shown} unpacks to {_mb(size)}" + (f" from {_mb(compressed)}" if compressed is not None else "")
                + f", more than the {_mb(self.max_file_bytes)} one file of an import may be, so nothing was imported. "
                f"Split the export, or import the folder on the server with {CLI_HINT}.")
        if compressed is not None and size > RATIO_FLOOR_BYTES and size > MAX_RATIO * max(compressed, 1):
            raise TooLarge(
                f"{shown} unpacks to {_mb(size)} from {_mb(compressed)} ({size / max(compressed, 1):,.0f}:1), more "
                f"than the {MAX_RATIO}:1 of any real export (a zip bomb?), so nothing was imported.")

    def too_large(self) -> TooLarge:
        return TooLarge(
            f"The uploads unpack to more than {self.max_bytes / 1024 / 1024:,.0f} MB or {self.max_files:,} files, "
            f"the limit of an import in the app. Upload a smaller part of the export, or import the folder "
            f"on the server with {CLI_HINT}.")

    def check(self, add_bytes: int = 0, add_files: int = 0) -> None:
        if self.bytes + add_bytes > self.max_bytes or self.files + add_files > self.max_files:
            raise self.too_large()

    def take(self, add_bytes: int = 0, add_files: int = 0) -> None:
        self.check(add_bytes, add_files)
        self.bytes += add_bytes
        self.files += add_files


def _extract(label: str, data: bytes, target: Path, budget: _Budget) -> list[tuple[str, str]]:
    """Extract one archive into `target`; returns (path, reason) of the entries left out."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        return [(label, f"not a readable zip archive ({exc})")]
    skipped: list[tuple[str, str]] = []
    with archive:
        entries = archive.infolist()
        plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
        for info in entries:  # check every entry before writing any
            parts = member_parts(info.filename)
            if parts is None:
                raise UnsafeArchive(
                    f"{label} was rejected: its entry {info.filename!r} points outside the archive (an absolute "
                    f"path or '..'), so nothing was imported. Zip the export folder again (e.g. right-click the "
                    f"folder > Compress) and upload that archive.")
            if not parts or info.is_dir() or parts[0] == "__MACOSX":
                continue
            budget.check_file(f"{label}/{'/'.join(parts)}", info.file_size, info.compress_size)
            plan.append((info, parts))
        budget.check(sum(i.file_size for i, _ in plan), len(plan))
        root = target.resolve()
        for info, parts in plan:
            shown = f"{label}/{'/'.join(parts)}"
            if stat.S_ISLNK(info.external_attr >> 16):
                skipped.append((shown, "symbolic link in the archive: not followed"))
                continue
            if info.flag_bits & 0x1:
                skipped.append((shown, "encrypted (password-protected) entry: zip the export without a password"))
                continue
            dest = target.joinpath(*parts)
            if not dest.resolve().is_relative_to(root):  # belt and braces after member_parts
                raise UnsafeArchive(f"{label} was rejected: its entry {info.filename!r} points outside the archive, "
                                    "so nothing was imported.")
            budget.take(add_files=1)
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with archive.open(info) as src, open(dest, "wb") as out:
                    while chunk := src.read(CHUNK):
                        written += len(chunk)
                        budget.check_file(shown, written, info.compress_size)  # sizes the archive declared may lie
                        budget.take(add_bytes=len(chunk))
                        out.write(chunk)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
                dest.unlink(missing_ok=True)
                skipped.append((shown, f"corrupt or unsupported archive entry ({exc})"))
            except OSError as exc:
                dest.unlink(missing_ok=True)
                skipped.append((shown, f"could not be written: {exc.strerror or exc}"))
    return skipped


def write_uploads(uploads: Iterable[tuple[str, bytes]], folder: Path, *, max_bytes: int = MAX_UNPACKED_BYTES,
                  max_files: int = MAX_FILES, max_file_bytes: int = MAX_FILE_BYTES) -> list[tuple[str, str]]:
    """Write uploaded files into `folder`: .zip archives extracted into a folder named after the
    archive, every other file as it is (load_export later says which are not policies).

    Returns (path, reason) for archive entries that were left out. Raises UnsafeArchive or
    TooLarge (after which `folder` may hold part of the uploads: use a temporary folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    budget = _Budget(max_bytes, max_files, max_file_bytes)
    skipped: list[tuple[str, str]] = []
    for name, data in uploads:
        safe = upload_name(name)
        if safe.lower().endswith(".zip"):
            target = _unique(folder, safe)
            target.mkdir()
            skipped += _extract(target.name, data, target, budget)
        else:
            budget.check_file(safe, len(data))
            budget.take(len(data), 1)
            _unique(folder, safe).write_bytes(data)
    return skipped


def import_uploads(store: Store, uploads: Iterable[tuple[str, bytes]], name: str, *,
                   max_bytes: int = MAX_UNPACKED_BYTES, max_files: int = MAX_FILES) -> ImportResult:
    """Import uploaded export files (JSON and .zip) as baseline `name` (re-import replaces it).

    `skipped` of the result lists archive entries left out and files that could not be read.
    Raises UploadError (UnsafeArchive, TooLarge, NothingImported, or the import breaking off, whose
    run then ends `failed` naming the file) with a message for the user; the previous import of
    `name` then stays as it was."""
    uploads = [(n, d) for n, d in uploads]
    name = name.strip()
    if not name:
        raise UploadError("Enter a name for the baseline: it is how it appears in Compare.")
    if not uploads:
        raise UploadError("Choose the export's .json files or a .zip archive of the export folder first.")
    label = upload_name(uploads[0][0]) if len(uploads) == 1 else f"{len(uploads)} uploaded files"
    with tempfile.TemporaryDirectory(prefix="tenantpilot-upload-") as tmp:
        root = Path(tmp) / label  # named after the upload: the run's source is "import:<label>"
        left_out = write_uploads(uploads, root, max_bytes=max_bytes, max_files=max_files)
        try:
            result = import_baseline(store, root, name, work_dir=Path(tmp))
        except NoPolicies as exc:
            skipped = left_out + exc.skipped
            raise NothingImported(
                f"No policy could be read from {label}: the uploads hold no exported Intune policy JSON "
                f"({len(skipped):,} file(s) left out, listed below). Upload the .json files of an "
                "IntuneManagement, IntuneCD, portal or Graph export, or a .zip of the export folder.",
                skipped) from None
        except ImportFailed as exc:
            raise UploadError(f"{exc}. Nothing of this upload was imported.") from exc
    return replace(result, skipped=left_out + result.skipped)
