"""Writing the figures of one backend: a markdown report and the raw JSON.

The markdown has a summary (median time and ratio to the hand-written layer per scenario
and system), one table per scenario with the spread, statement counts and peak memory, the
"n/a" reasons, and how each system does the work. Called by `__main__.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.ratios import FLOOR, ratio

__all__ = ["markdown", "write"]


def _time(seconds: float) -> str:
    milliseconds = seconds * 1000
    if milliseconds >= 1000:
        return f"{seconds:.2f} s"
    if milliseconds >= 100:
        return f"{milliseconds:.0f} ms"
    if milliseconds >= 10:
        return f"{milliseconds:.1f} ms"
    return f"{milliseconds:.2f} ms"


def _bytes(count: int | None, held: int | None = None) -> str:
    if count is None:
        return "—"
    if not held:
        return f"{count / 2**20:.1f} MiB"
    return f"{count / 2**20:.1f} MiB ({count / held:,.0f} B/entity)"


def _ratio(figures: dict[str, Any], floor: dict[str, Any] | None) -> str:
    found = ratio(figures, floor)
    return "—" if found is None else f"{found[0]:.2f}x"


def _ratio_spread(figures: dict[str, Any], floor: dict[str, Any] | None) -> str:
    found = ratio(figures, floor)
    return "—" if found is None else f"{found[1]:.2f}x - {found[2]:.2f}x"


def _cell(figures: dict[str, Any], floor: dict[str, Any] | None) -> str:
    if "na" in figures:
        return "n/a"
    return f"{_time(figures['median'])} ({_ratio(figures, floor)})"


def markdown(figures: dict[str, Any], command: str) -> str:
    systems = figures["systems"]
    labels = {s["name"]: s["label"] for s in systems}
    results = figures["results"]
    mode = "quick run" if figures["quick"] else "full run"
    versions = ", ".join(f"{k} {v}" for k, v in figures["versions"].items())
    lines = [
        f"# Benchmarks on {figures['title']}",
        "",
        f"{mode.capitalize()}: each figure is the median of {figures['repeats']} measured "
        "run(s) after one warm-up run (fewer for the biggest scenarios: each section says how "
        "many), on one machine. Each system runs in a process of its own (DotORM's under "
        "Python 3.12), so no system's objects are in another's heap, and "
        "their runs are interleaved, one run of each per round in a rotating order, so drift "
        "in the machine's speed shifts them alike. "
        "Ratios are to the hand-written layer "
        "(raw driver plus the same attrs entities built by hand): the practical floor for "
        "anything returning objects; "
        "2.00x takes twice its time. Each ratio is the median of the per-round ratios (a "
        "system's time over the floor's in the same round), so the moments of two runs are "
        "not compared. Raw driver figures are the floor with no objects at all.",
        "",
        f"Versions: {versions}.",
        "",
        f"Regenerate: `{command}`. Raw figures: `{figures['backend']}.json`.",
        "",
        "## Summary: median time (ratio to hand-written)",
        "",
        "| scenario | " + " | ".join(labels[s["name"]] for s in systems) + " |",
        "|---|" + "---:|" * len(systems),
    ]
    for scenario in figures["scenarios"]:
        row = results[scenario["key"]]
        floor = row.get(FLOOR)
        cells = [_cell(row[s["name"]], floor) for s in systems]
        lines.append(f"| {scenario['title']} | " + " | ".join(cells) + " |")
    unavailable: list[tuple[str, str, str]] = []
    for scenario in figures["scenarios"]:
        row = results[scenario["key"]]
        floor = row.get(FLOOR)
        arguments = ", ".join(f"{k}={v:,}" for k, v in scenario["arguments"].items())
        lines += [
            "",
            f"## {scenario['title']}",
            "",
            f"Timed: {scenario['timed']}. Arguments: {arguments}; "
            f"{scenario['repeats']} measured run(s).",
            "",
            "| system | median | min - max | IQR | ratio | ratio IQR | statements | peak memory |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for system in systems:
            cell = row[system["name"]]
            if "na" in cell:
                lines.append(f"| {system['label']} | n/a | | | | | | |")
                number = scenario["title"].split(".", 1)[0]
                unavailable.append((system["label"], number, cell["na"]))
                continue
            queries = "—" if cell["queries"] is None else f"{cell['queries']:,}"
            lines.append(
                f"| {system['label']} | {_time(cell['median'])} "
                f"| {_time(cell['min'])} - {_time(cell['max'])} "
                f"| {_time(cell['q1'])} - {_time(cell['q3'])} | {_ratio(cell, floor)} "
                f"| {_ratio_spread(cell, floor)} "
                f"| {queries} | {_bytes(cell['peak_bytes'], scenario.get('held'))} |"
            )
    lines += ["", "## n/a", ""]
    lines += [f"- {text}" for text in _grouped(unavailable)] or ["- none"]
    lines += ["", "## How each system does the work", ""]
    lines += [f"- **{s['label']}**: {s['note']}" for s in systems if s["note"]]
    lines += [
        "",
        "## Reading the figures",
        "",
        "- *statements*: data statements of the timed region (SELECT, INSERT, UPDATE, DELETE, "
        "COPY); BEGIN / COMMIT / ROLLBACK and the pool's connection reset are not counted. An "
        "executemany counts one statement per parameter set (the server runs each), a "
        "multi-row INSERT or an array-bound statement counts one. mapper counts through "
        "`db.on_statement`, SQLAlchemy through a `before_cursor_execute` listener, the others "
        "by wrapping the driver's connection methods (`benchmarks/counting.py`).",
        "- *peak memory*: the tracemalloc peak above what was allocated when the timed region "
        "began, in one extra run (tracemalloc slows that run, so it is not timed); it counts "
        "Python allocations only. Where the run ends up holding entities (loads, inserts), it "
        "is also shown per entity: the entity, the identity map's entry and snapshot, and the "
        "driver's rows still alive at the peak.",
        "- *IQR*: first to third quartile of the measured runs; with one run every column "
        "shows the same figure.",
        "- *ratio*, *ratio IQR*: the median and the quartiles of the system's time divided by "
        "the hand-written layer's in the same round. A target inside the ratio IQR is at the "
        "edge: this pass cannot tell whether it is met.",
    ]
    return "\n".join(lines) + "\n"


def _grouped(entries: list[tuple[str, str, str]]) -> list[str]:
    """One line per (system, reason), naming the scenarios it covers."""
    by_reason: dict[tuple[str, str], list[str]] = {}
    for label, scenario, reason in entries:
        by_reason.setdefault((label, reason), []).append(scenario)
    return [
        f"{label} (scenarios {', '.join(scenarios)}): {reason}"
        for (label, reason), scenarios in by_reason.items()
    ]


def write(figures: dict[str, Any], directory: Path, command: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    report = directory / f"{figures['backend']}.md"
    raw = directory / f"{figures['backend']}.json"
    report.write_text(markdown(figures, command))
    raw.write_text(json.dumps(figures, indent=1) + "\n")
    return report, raw
