"""Redis between fetching consumers and the writer: who fetches, run tokens, the parts in bounded chunks, the ready list.

Why Redis and not a shared folder: a fetching consumer needs Redis anyway (it takes its work from Huey on
Redis), so parts through Redis add no second thing to set up, open in a firewall or keep mounted, and no
file permissions across machines. Each value is at most CHUNK_BYTES (Redis's own limit is 512 MB), every
key expires (PARTS_TTL_S: a run nobody writes leaves nothing behind), and a run's parts are read back
only under the random token the writer gave that run when it handed it out, so a fetcher can only hand
over the run it was given. Keys (under `<queue>:handoff:`): `fetchers` (hash: host:pid -> capacity
heartbeat), `token:<run>`, `blob:<run>:<token>:<file>:<n>`, `ready` and `writing` (lists of handed-over
runs: a run moves from ready to writing while the writer writes it, so a writer killed meanwhile finds it
again when it starts).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import redis

from tenantpilot.config import QUEUE_NAME, Settings

CHUNK_BYTES = 4 * 1024 * 1024
PARTS_TTL_S = 3600  # parts (and the run's lease while it waits for the writer) live this long
MAX_ITEM_BYTES = 256 * 1024  # one entry of the ready list (names and sizes of a run's files; a failure cause)
PREFIX = f"{QUEUE_NAME}:handoff"
FETCHERS, READY, WRITING = f"{PREFIX}:fetchers", f"{PREFIX}:ready", f"{PREFIX}:writing"


class RelayError(ValueError):
    """What Redis holds for a handed-over run is not what a fetcher writes (oversized, missing, malformed)."""


def client(cfg: Settings) -> redis.Redis:
    """One client (a thread-safe connection pool) per Redis URL and process."""
    if not cfg.redis_url:
        raise RuntimeError("fetching consumers need REDIS_URL")  # config refuses TENANTPILOT_ROLE=fetch without it
    return _client(cfg.redis_url)


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _token_key(run_id: int) -> str:
    return f"{PREFIX}:token:{run_id}"


def _blob_key(run_id: int, token: str, name: str, n: int) -> str:
    return f"{PREFIX}:blob:{run_id}:{token}:{name}:{n}"


# --- who fetches -------------------------------------------------------------------------------------
def beat_fetcher(r: redis.Redis, who: str, workers: int, busy: int) -> None:
    r.hset(FETCHERS, who, json.dumps({"ts": time.time(), "workers": workers, "busy": busy}))


def forget_fetcher(r: redis.Redis, who: str) -> None:
    r.hdel(FETCHERS, who)


def fetchers(r: redis.Redis, stale_after_s: float, now: float | None = None) -> dict[str, dict[str, int]]:
    """The fetching consumers whose heartbeat is fresh: {host:pid: {workers, busy}} (dead ones are dropped)."""
    now = time.time() if now is None else now
    alive: dict[str, dict[str, int]] = {}
    for who, raw in r.hgetall(FETCHERS).items():
        try:
            beat = json.loads(raw)
            fresh = now - float(beat["ts"]) <= stale_after_s
            found = {"workers": int(beat["workers"]), "busy": int(beat["busy"])}
        except (ValueError, KeyError, TypeError):
            fresh = False
        if fresh:
            alive[who.decode(errors="replace") if isinstance(who, bytes) else str(who)] = found
        else:
            r.hdel(FETCHERS, who)
    return alive


def free_fetch_workers(r: redis.Redis, stale_after_s: float, now: float | None = None) -> int:
    """Idle workers of the fetching consumers whose heartbeat is fresh."""
    return sum(max(0, f["workers"] - f["busy"]) for f in fetchers(r, stale_after_s, now).values())


# --- a run's token -------------------------------------------------------------------------------------
def new_token(r: redis.Redis, run_id: int, ttl_s: float) -> str:
    token = secrets.token_hex(16)
    r.set(_token_key(run_id), token, ex=max(1, int(ttl_s)))
    return token


def token_of(r: redis.Redis, run_id: int) -> str | None:
    raw = r.get(_token_key(run_id))
    return raw.decode() if isinstance(raw, bytes) else None


# --- files, in chunks --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Blob:
    name: str
    size: int
    chunks: int


def upload(r: redis.Redis, run_id: int, token: str, directory: Path, names: Iterable[str]) -> list[Blob]:
    """Put each file of `directory` into Redis in chunks of at most CHUNK_BYTES, each expiring."""
    blobs: list[Blob] = []
    for name in names:
        path = directory / name
        size, n = path.stat().st_size, 0
        with path.open("rb") as fh:
            pipe = r.pipeline(transaction=False)
            while chunk := fh.read(CHUNK_BYTES):
                pipe.set(_blob_key(run_id, token, name, n), chunk, ex=PARTS_TTL_S)
                n += 1
            pipe.execute()
        blobs.append(Blob(name, size, n))
    return blobs


def download(r: redis.Redis, run_id: int, token: str, blobs: Sequence[Blob], directory: Path,
             max_bytes: int) -> None:
    """Write the run's files into `directory`; RelayError when they declare or hold more than `max_bytes`
    in all, a chunk is larger than CHUNK_BYTES, or one is missing (expired) or not of the declared size."""
    declared = sum(b.size for b in blobs)
    if declared > max_bytes:
        raise RelayError(f"the parts hold {declared / 1e6:.1f} MB, more than TENANTPILOT_HANDOFF_MAX_MB "
                         f"({max_bytes / 1e6:.0f} MB)")
    for blob in blobs:
        if blob.chunks > blob.size // CHUNK_BYTES + 1:
            raise RelayError(f"{blob.name} declares more chunks than its size needs")
        written = 0
        with (directory / blob.name).open("wb") as fh:
            for n in range(blob.chunks):
                key = _blob_key(run_id, token, blob.name, n)
                length = r.strlen(key)
                if not length:
                    raise RelayError(f"{blob.name} is incomplete in Redis (expired or never written)")
                if length > CHUNK_BYTES or written + length > blob.size:
                    raise RelayError(f"{blob.name} holds more than it declares")
                chunk = r.get(key)
                if not isinstance(chunk, bytes) or len(chunk) != length:
                    raise RelayError(f"{blob.name} changed while it was read")
                fh.write(chunk)
                written += length
        if written != blob.size:
            raise RelayError(f"{blob.name} holds {written} bytes, not the {blob.size} it declares")


def drop(r: redis.Redis, run_id: int, token: str) -> None:
    """Remove a run's files and token (the writer wrote or refused them)."""
    keys = list(r.scan_iter(match=f"{PREFIX}:blob:{run_id}:{token}:*", count=500))
    if keys:
        r.delete(*keys)
    r.delete(_token_key(run_id))


# --- the ready list -----------------------------------------------------------------------------------
def hand_over(r: redis.Redis, item: dict[str, Any]) -> None:
    r.rpush(READY, json.dumps(item, separators=(",", ":")))


def next_ready(r: redis.Redis, timeout_s: float) -> bytes | None:
    """The next handed-over run, moved to `writing` until `done` (None after `timeout_s`)."""
    raw = r.blmove(READY, WRITING, max(1, round(timeout_s)), "LEFT", "RIGHT")
    return raw if isinstance(raw, bytes) else None


def done(r: redis.Redis, raw: bytes) -> None:
    r.lrem(WRITING, 1, raw)  # type: ignore[arg-type]  # redis-py sends bytes as they are


def resume_writing(r: redis.Redis) -> int:
    """At the writer's start: runs it was writing when it stopped go back to the front of `ready`."""
    moved = 0
    while r.lmove(WRITING, READY, "RIGHT", "LEFT") is not None:
        moved += 1
    return moved


def parse_item(raw: bytes) -> dict[str, Any]:
    """One entry of the ready list: {run_id, token, outcome: parts|failed, blobs | error, requests}."""
    if len(raw) > MAX_ITEM_BYTES:
        raise RelayError(f"an entry of {len(raw):,} bytes is larger than a handed-over run's")
    try:
        item = json.loads(raw)
    except ValueError:
        raise RelayError("an entry is not JSON") from None
    if (not isinstance(item, dict) or not isinstance(item.get("run_id"), int) or isinstance(item["run_id"], bool)
            or not isinstance(item.get("token"), str) or item.get("outcome") not in ("parts", "failed")):
        raise RelayError("an entry is not a handed-over run")
    if item["outcome"] == "parts":
        blobs = item.get("blobs")
        if not isinstance(blobs, list) or not all(
                isinstance(b, dict) and set(b) == {"name", "size", "chunks"} and isinstance(b["name"], str)
                and all(isinstance(b[k], int) and not isinstance(b[k], bool) and b[k] >= 0 for k in ("size", "chunks"))
                for b in blobs):
            raise RelayError("an entry lists its files in another shape")
        item["blobs"] = [Blob(b["name"], b["size"], b["chunks"]) for b in blobs]
        if len({b.name for b in item["blobs"]}) != len(item["blobs"]):
            raise RelayError("an entry lists a file twice")
    return item
