"""Entry point of the DotORM process: runs the DotORM system on PostgreSQL, writes JSON.

DotORM needs Python 3.12+, so `dotorm_bridge.py` starts this module in its own venv
(`python -m benchmarks.dotorm_runner --output FILE ...`) and merges what it writes into the
main run's figures. Imports only the stdlib parts of the suite plus dotorm and asyncpg.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from benchmarks.runner import Settings, run_backend
from benchmarks.systems import SYSTEMS

__all__ = ["main"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--backend", default="postgres")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--scenario", action="append", dest="scenarios")
    args = parser.parse_args()
    entries = [e for e in SYSTEMS[args.backend] if e.name == "dotorm"]
    settings = Settings(args.quick, args.repeats, args.scenarios)
    figures = asyncio.run(run_backend(args.backend, entries, settings))
    args.output.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
