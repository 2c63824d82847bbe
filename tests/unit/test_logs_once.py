"""Each JSON log event is written once (issue 18, row 16): the consumer's worker threads all configure
logging as they start, at the same moment; every handler must be added once. A real process, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import logging, sys, threading
from pathlib import Path
from tenantpilot import logs
log_dir = Path(sys.argv[1])
barrier = threading.Barrier(int(sys.argv[2]))
def start():
    barrier.wait()
    logs.configure(log_dir, stderr=False)
threads = [threading.Thread(target=start) for _ in range(barrier.parties)]
for t in threads: t.start()
for t in threads: t.join()
logs.log(logging.getLogger("tenantpilot.test"), logging.ERROR, "written once", n=1)
"""


@pytest.mark.parametrize("threads", [2, 8, 32])
def test_each_event_is_written_once(tmp_path: Path, threads: int) -> None:
    for attempt in range(5):  # a race: several fresh processes, each must write the event once
        log_dir = tmp_path / f"logs-{attempt}"
        subprocess.run([sys.executable, "-c", SCRIPT, str(log_dir), str(threads)], check=True, timeout=60)
        for name in ("worker-combined.log", "worker-error.log"):
            lines = (log_dir / name).read_text().splitlines()
            assert [json.loads(line)["event"] for line in lines] == ["written once"], (name, lines)
