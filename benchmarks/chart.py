"""The chart of ratios: each system's time over the hand-written layer's, per scenario (the
median of the per-round ratios, `ratios.py`).

Reads every `<backend>.json` in the results directory, so one PNG shows all backends that
have figures (one panel each). Needs matplotlib (the `bench` dependency group). Called by
`__main__.py`; `python -m benchmarks.chart [DIR]` redraws it from the JSON alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from benchmarks.ratios import FLOOR, ratio

TIMES = FuncFormatter(lambda value, _: f"{value:g}x")

__all__ = ["draw"]


def _ratios(
    figures: dict[str, Any],
) -> tuple[list[str], dict[tuple[str, str], list[float | None]]]:
    """The scenario keys, and each system's ratios by (name, label)."""
    keys = [s["key"] for s in figures["scenarios"]]
    series: dict[tuple[str, str], list[float | None]] = {}
    for system in figures["systems"]:
        if system["name"] == FLOOR:
            continue
        values: list[float | None] = []
        for key in keys:
            row = figures["results"][key]
            found = ratio(row.get(system["name"], {"na": ""}), row.get(FLOOR))
            values.append(None if found is None else found[0])
        series[system["name"], system["label"]] = values
    return keys, series


def draw(directory: Path) -> Path | None:
    """Write `ratios.png` from the JSON figures in `directory`; None if there are none."""
    backends = [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
    backends = [b for b in backends if "results" in b and "systems" in b]
    if not backends:
        return None
    backends.sort(key=lambda b: b["backend"] != "postgres")
    # One colour per system in every panel (a backend's raw driver shares the raw colour).
    names = dict.fromkeys(s["name"] for b in backends for s in b["systems"] if s["name"] != FLOOR)
    colours = {name: f"C{index % 10}" for index, name in enumerate(names)}
    widths = [max(4, len(b["scenarios"])) for b in backends]
    figure, axes = pyplot.subplots(
        1,
        len(backends),
        figsize=(sum(widths) * 1.25 + 2, 6),
        gridspec_kw={"width_ratios": widths},
        squeeze=False,
    )
    for axis, figures in zip(axes[0], backends, strict=True):
        keys, series = _ratios(figures)
        width = 0.8 / max(1, len(series))
        drawn = False
        for index, ((name, label), values) in enumerate(series.items()):
            xs = [i + (index - (len(series) - 1) / 2) * width for i in range(len(keys))]
            present = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
            if present:
                axis.bar(
                    [x for x, _ in present],
                    [v for _, v in present],
                    width,
                    label=label,
                    color=colours[name],
                )
                drawn = True
        axis.axhline(1.0, color="black", linewidth=1, linestyle="--")
        axis.set_yscale("log")
        axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.yaxis.set_major_formatter(TIMES)
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.set_xticks(range(len(keys)), keys, rotation=40, ha="right")
        mode = "quick" if figures["quick"] else "full"
        axis.set_title(f"{figures['title']} ({mode} run)")
        axis.set_ylabel("time / hand-written, per round (log scale; dashed line = 1)")
        axis.grid(axis="y", which="both", alpha=0.3)
        if drawn:
            axis.legend(fontsize="small")
    figure.tight_layout()
    path = directory / "ratios.png"
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


if __name__ == "__main__":
    print(draw(Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results")))
