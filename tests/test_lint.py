"""The code base (notebooks included) passes ruff with the rules in pyproject.toml (ruff is in the test extra)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "qtheory", "tests", "paper_repro", "benchmarks", "notebooks",
                        "conftest.py", "--output-format", "concise"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
