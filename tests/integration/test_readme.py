"""The README's quickstart runs as written, on the embedded default (SQLite)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ONLY_BACKENDS = ("sqlite",)
README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart() -> str:
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the README has no quickstart code block"
    return match.group(1)


def test_the_quickstart_runs_and_shows_its_plan(tmp_path: Path) -> None:
    """The quickstart code runs in a fresh directory and prints the planned batches."""
    script = tmp_path / "quickstart.py"
    script.write_text(quickstart())
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "PlannedBatch(operation='update', table='users', rows=1" in out
    assert "PlannedBatch(operation='delete', table='users', rows=1" in out
    assert "PlannedBatch(operation='delete', table='user_tags', rows=2" in out
    assert (tmp_path / "app.db").exists()
