"""The CLI as a process: what a user's shell sees (exit codes, one-line errors)."""

from __future__ import annotations

import subprocess
import sys


def test_cli_prints_one_line_not_a_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "AZURE_AD_CLIENT_ID": "nope", "AZURE_AD_CLIENT_SECRET": "x"}
    result = subprocess.run([sys.executable, "-m", "tenantpilot", "tenants", "list"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "AZURE_AD_CLIENT_ID" in result.stderr
    assert "Traceback" not in result.stderr
