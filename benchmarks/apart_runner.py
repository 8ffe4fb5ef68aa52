"""Entry point of a system's own process: runs one system on request, one run at a time.

`apart.ApartSystem` starts this module (`python -m benchmarks.apart_runner`), under the
harness's Python or, for DotORM, a Python 3.12 venv, and sends it one JSON line per request
on stdin: `describe` (which backend, where its database is, which system: open it and say
what it is), then `run` (one timed run of an operation, with its arguments) as often as the
harness's rounds need. Each answer is one JSON line on stdout, repeating the request's
number; a failed request answers with its error. The harness seeds and checks the tables;
this process only times its own runs. Imports only the stdlib parts of the suite plus the
system's own libraries.
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


async def _describe(request: dict[str, Any]) -> tuple[System, dict[str, Any]]:
    backend_name = request["backend"]
    entry = next(e for e in SYSTEMS[backend_name] if e.name == request["system"])
    system = entry.load()(BACKENDS[backend_name].located(request["locator"]))
    await system.open()
    return system, {
        "name": system.name,
        "label": system.label,
        "note": system.note,
        "floor": system.floor,
        "counting": system.counting,
        "unsupported": system.unsupported,
        "versions": versions(),
    }


async def _run(system: System | None, request: dict[str, Any]) -> dict[str, Any]:
    if system is None:
        raise RuntimeError("run before describe")
    watch = await timed_run(system, request["op"], request["arguments"], request["trace_memory"])
    return {"seconds": watch.seconds, "queries": watch.queries, "peak_bytes": watch.peak_bytes}


async def serve(replies: TextIO) -> None:
    """Answer requests from stdin until it closes."""
    system: System | None = None
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            request = json.loads(line)
            try:
                if request["command"] == "describe":
                    system, answer = await _describe(request)
                else:
                    answer = await _run(system, request)
            except Exception as error:
                answer = {"error": f"{type(error).__name__}: {error}"}
            replies.write(json.dumps({**answer, "number": request.get("number")}) + "\n")
            replies.flush()
    finally:
        if system is not None:
            await system.close()


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    # Only answers go to the harness: anything else written to stdout, by Python or by C
    # code of a library, goes to stderr.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    asyncio.run(serve(replies))


if __name__ == "__main__":
    main()
