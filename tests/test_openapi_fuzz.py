"""Schemathesis against the live server's /openapi.json: no 5xx, and every response matches its schema.

Admin routes are fuzzed without a token: they must refuse (401) in the documented error shape, and
nothing is changed. The run is bounded (a few examples per operation).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LiveServer  # the fixture `server` is the session's shared server (tests/conftest.py)

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 15
TIME_LIMIT_S = 300


def test_openapi_fuzz(server: LiveServer, tmp_path: Path) -> None:
    corpus_before = sorted(p.name for p in server.workspace.corpus_dir.iterdir())
    cli = Path(sys.executable).parent / "schemathesis"
    cmd = [str(cli) if cli.exists() else "schemathesis", "run", f"{server.url}/openapi.json",
           "--checks", "not_a_server_error,response_schema_conformance",
           "--max-examples", str(MAX_EXAMPLES), "--phases", "examples,coverage,fuzzing",
           "--workers", "1", "--seed", "20260101", "--request-timeout", "60", "--no-shrink",
           "--suppress-health-check", "all", "--warnings", "off",
           "--report", "junit", "--report-dir", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIME_LIMIT_S, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-12000:]
    assert "Traceback" not in output
    assert sorted(p.name for p in server.workspace.corpus_dir.iterdir()) == corpus_before
