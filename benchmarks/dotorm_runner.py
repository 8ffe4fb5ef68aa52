"""Entry point of the DotORM process: runs the DotORM system on request, one run at a time.

DotORM needs Python 3.12+, so `dotorm_bridge.ApartSystem` starts this module in its own venv
(`python -m benchmarks.dotorm_runner --serve --backend postgres`) and sends it one JSON line
per request on stdin: `describe` (open the system, say what it is), then `run` (one timed
run of an operation, with its arguments) as often as the harness's rounds need. Each answer
is one JSON line on stdout, repeating the request's number; a failed request answers with
its error. The harness seeds and checks the tables; this process only times its own runs,
as the harness times the others.
Imports only the stdlib parts of the suite plus dotorm and asyncpg.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any, TextIO

from benchmarks.backends import BACKENDS
from benchmarks.runner import timed_run, versions
from benchmarks.systems import SYSTEMS
from benchmarks.systems.base import System

__all__ = ["main"]


async def _answer(system: System, request: dict[str, Any], opened: bool) -> dict[str, Any]:
    if request["command"] == "describe":
        if not opened:
            await system.open()
        return {
            "name": system.name,
            "label": system.label,
            "note": system.note,
            "floor": system.floor,
            "counting": system.counting,
            "unsupported": system.unsupported,
            "versions": versions(),
        }
    if request["command"] == "run":
        watch = await timed_run(
            system, request["op"], request["arguments"], request["trace_memory"]
        )
        return {"seconds": watch.seconds, "queries": watch.queries, "peak_bytes": watch.peak_bytes}
    raise ValueError(f"unknown request {request['command']!r}")


async def serve(backend_name: str, replies: TextIO) -> None:
    """Answer requests from stdin until it closes."""
    entry = next(e for e in SYSTEMS[backend_name] if e.name == "dotorm")
    system = entry.load()(BACKENDS[backend_name]())
    opened = False
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            request = json.loads(line)
            try:
                answer = await _answer(system, request, opened)
                opened = opened or request["command"] == "describe"
            except Exception as error:
                answer = {"error": f"{type(error).__name__}: {error}"}
            replies.write(json.dumps({**answer, "number": request.get("number")}) + "\n")
            replies.flush()
    finally:
        if opened:
            await system.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", action="store_true", required=True)
    parser.add_argument("--backend", default="postgres")
    args = parser.parse_args()
    # Only answers go to the harness: anything else written to stdout, by Python or by C
    # code of a library, goes to stderr.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    asyncio.run(serve(args.backend, replies))


if __name__ == "__main__":
    main()
