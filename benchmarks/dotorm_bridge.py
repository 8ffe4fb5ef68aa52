"""Running a system that needs another Python (DotORM: 3.12+) and merging its figures.

`ensure_python()` finds or makes the venv (`.venv-bench312` at the repository root, from a
Python 3.12+ interpreter on this machine and the `bench-dotorm` dependency group of
pyproject.toml); `run_apart()` runs `dotorm_runner.py` there and returns its figures, or the
reason it could not, which the report shows as "n/a". Called by `__main__.py`.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from benchmarks.runner import Settings, unavailable
from benchmarks.systems import SystemEntry

__all__ = ["ensure_python", "merge", "run_apart"]

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-bench312"
GROUP = "bench-dotorm"


class Unavailable(Exception):
    """Why a system that runs apart could not run."""


def _interpreters() -> list[str]:
    found = [os.environ.get("MAPPER_BENCH_PYTHON312", "")]
    found += [shutil.which(f"python3.{minor}") or "" for minor in (12, 13, 14)]
    found += sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.1[2-9]*/bin/python3")))
    return [f for f in dict.fromkeys(found) if f]


def _works(python: str, code: str) -> bool:
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _requirements() -> list[str]:
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    return [r for r in groups[GROUP] if isinstance(r, str)]


def ensure_python(explicit: str | None = None) -> str:
    """A Python 3.12+ with dotorm installed; raises `Unavailable` saying why there is none."""
    if explicit:
        return explicit
    python = VENV / "bin" / "python"
    if python.exists() and _works(str(python), "import dotorm, asyncpg"):
        return str(python)
    candidates = _interpreters()
    base = next(
        (c for c in candidates if _works(c, "import sys; sys.exit(sys.version_info < (3, 12))")),
        None,
    )
    if base is None:
        raise Unavailable(f"no Python 3.12+ found (tried {', '.join(candidates) or 'none'})")
    steps = (
        [base, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "--quiet", *_requirements()],
    )
    for step in steps:
        print(f"[dotorm] {' '.join(step)}", file=sys.stderr, flush=True)
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise Unavailable(f"`{' '.join(step[:4])} ...` failed: {' / '.join(tail)}")
    return str(python)


def run_apart(
    entry: SystemEntry, backend: str, settings: Settings, python: str | None
) -> dict[str, Any]:
    """The figures of `entry` on `backend`, from its own process (raises `Unavailable`)."""
    interpreter = ensure_python(python)
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "figures.json"
        command = [interpreter, "-m", "benchmarks.dotorm_runner", "--output", str(output)]
        command += ["--backend", backend, "--repeats", str(settings.repeats)]
        if settings.quick:
            command.append("--quick")
        for key in settings.only or ():
            command += ["--scenario", key]
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        try:
            done = subprocess.run(command, cwd=ROOT, env=environment, check=False)
        except OSError as error:
            raise Unavailable(f"cannot run {interpreter}: {error}") from error
        if done.returncode != 0 or not output.exists():
            raise Unavailable(f"the {entry.label} process failed (exit {done.returncode})")
        figures: dict[str, Any] = json.loads(output.read_text())
        return figures


def merge(
    figures: dict[str, Any], entry: SystemEntry, apart: dict[str, Any] | None, reason: str
) -> None:
    """Put a system run apart into `figures` (or "n/a" with `reason` if it did not run)."""
    described = None
    if apart is not None:
        described = next((s for s in apart["systems"] if s["name"] == entry.name), None)
        for package, version in apart["versions"].items():
            key = package if package == entry.name else f"{package} ({entry.name} process)"
            figures["versions"].setdefault(key, version)
    figures["systems"].append(described or unavailable(entry.name, entry.label))
    for key, by_system in figures["results"].items():
        if apart is not None and entry.name in apart["results"].get(key, {}):
            by_system[entry.name] = apart["results"][key][entry.name]
        else:
            by_system[entry.name] = {"na": reason or "did not run"}
