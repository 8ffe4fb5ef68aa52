"""Each system in a process of its own, its runs interleaved with the others'.

`ApartSystem` stands in for a system in the harness: it starts `apart_runner.py` once, under
the harness's own Python or, for a system that needs another (DotORM: 3.12+), the venv
`ensure_python()` finds or makes (`.venv-bench312` at the repository root, from a Python
3.12+ on this machine and the `bench-dotorm` dependency group of pyproject.toml), and asks it
for one timed run at a time. The runner interleaves those runs round by round and seeds and
checks the tables itself. Apart, every system gets the same treatment as DotORM, which
cannot share the harness's Python, and no system's libraries and objects are in another's
heap when it collects garbage. A reason a system cannot start becomes "n/a" in the report.
Called by `runner.py`.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.backends import Backend
from benchmarks.systems import SystemEntry
from benchmarks.systems.base import System
from benchmarks.timing import Stopwatch

__all__ = ["ApartSystem", "Unavailable", "ensure_python"]

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-bench312"
GROUP = "bench-dotorm"
REPLY_SECONDS = 600.0
"""How long one answer of the other process may take (its slowest run is seconds)."""


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


def _python_path() -> str:
    """The repository root, then the caller's own PYTHONPATH: run with
    `PYTHONPATH=<another checkout>/src`, every system's process imports that checkout's
    mapper (an A/B of two versions under one harness), not the installed one."""
    inherited = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(ROOT), inherited] if inherited else [str(ROOT)])


class ApartSystem(System):
    """A system whose runs happen in its own process, one request per run."""

    def __init__(self, backend: Backend, entry: SystemEntry, python: str | None) -> None:
        super().__init__(backend)
        self._entry = entry
        self._python = python
        self._process: asyncio.subprocess.Process | None = None
        self._versions: dict[str, str] = {}
        self._requests = 0
        self.name = entry.name  # type: ignore[misc]  # described again by the process
        self.label = entry.label  # type: ignore[misc]

    @property
    def statements(self) -> Callable[[], int]:
        return lambda: 0  # the other process counts its own

    def versions_apart(self) -> dict[str, str]:
        return self._versions

    async def open(self) -> None:
        interpreter = sys.executable if self._entry.python is None else ensure_python(self._python)
        self._process = await asyncio.create_subprocess_exec(
            interpreter,
            "-m",
            "benchmarks.apart_runner",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": _python_path()},
            limit=1 << 24,  # one answer per line, whatever its length
        )
        try:
            described = await self._ask(
                {
                    "command": "describe",
                    "backend": self.backend.name,
                    "locator": self.backend.locator(),
                    "system": self._entry.name,
                }
            )
        except BaseException:
            await self.close()  # the runner closes only systems that opened
            raise
        for field in ("name", "label", "note", "floor", "counting", "unsupported"):
            setattr(self, field, described[field])
        self._versions = described["versions"]

    async def close(self) -> None:
        process, self._process = self._process, None
        if process is None or process.stdin is None:
            return
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        """The answer to one request, or `Unavailable` (and no process) if there is none.

        Requests carry a number that the answer repeats, and any answer that is late,
        missing, unreadable or for another request ends the process, so a figure can never
        belong to another run.
        """
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise Unavailable(f"the {self._entry.label} process is not running")
        self._requests += 1
        number = self._requests
        try:
            process.stdin.write(json.dumps({**message, "number": number}).encode() + b"\n")
            await process.stdin.drain()
            line = await asyncio.wait_for(process.stdout.readline(), REPLY_SECONDS)
            reply: dict[str, Any] = json.loads(line) if line else {}
        except (OSError, TimeoutError, ValueError) as error:
            await self._abandon()
            raise Unavailable(
                f"the {self._entry.label} process did not answer: {error!r}"
            ) from error
        if reply.get("number") != number:
            code = await self._abandon()
            raise Unavailable(
                f"the {self._entry.label} process gave no answer to request {number} "
                f"(got {line[:200]!r}; exit {code})"
            )
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    async def _abandon(self) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.returncode is None:
            process.kill()
        return await process.wait()

    async def _run(self, op: str, watch: Stopwatch, **arguments: int) -> None:
        request = {"command": "run", "op": op, "arguments": arguments}
        reply = await self._ask({**request, "trace_memory": watch.trace_memory})
        watch.record(reply["seconds"], reply["queries"], reply["peak_bytes"])

    # One request per operation; the other process runs the system's own method.

    async def insert(self, watch: Stopwatch, n: int) -> None:
        await self._run("insert", watch, n=n)

    async def load(self, watch: Stopwatch, n: int) -> None:
        await self._run("load", watch, n=n)

    async def load_with_role(self, watch: Stopwatch, n: int) -> None:
        await self._run("load_with_role", watch, n=n)

    async def update(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        await self._run("update", watch, loaded=loaded, changed=changed)

    async def update_shown(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        await self._run("update_shown", watch, loaded=loaded, changed=changed)

    async def flush_shown(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        await self._run("flush_shown", watch, loaded=loaded, changed=changed)

    async def delete(self, watch: Stopwatch, n: int) -> None:
        await self._run("delete", watch, n=n)

    async def mixed(self, watch: Stopwatch, load: int, change: int, remove: int, add: int) -> None:
        await self._run("mixed", watch, load=load, change=change, remove=remove, add=add)

    async def stream(self, watch: Stopwatch, n: int) -> None:
        await self._run("stream", watch, n=n)
