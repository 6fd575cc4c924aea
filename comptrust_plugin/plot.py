"""`--trust-plot`: a report's scores as a PNG, dense vs every config, with interval whiskers.

A radar from three dimensions up, grouped bars below that (a radar of one or two axes has no
area); each compressed score's whisker is dense + the delta's interval, clipped to 0..100."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .storage import atomic_write_bytes

PLOT_SIZE_INCHES, PLOT_DPI = 8.0, 100  # an 800 x 800 pixel PNG
RADAR_MIN_DIMENSIONS = 3  # fewer axes than this draw no area: bars instead
RADAR_WHISKER_STEP = 0.05  # radians between the whiskers of neighbouring configs on one axis


def _plot_kind(dimensions: int) -> str:
    """"radar" for three or more dimensions, "bars" for fewer (a radar of one or two axes is empty)."""
    return "radar" if dimensions >= RADAR_MIN_DIMENSIONS else "bars"


def _whisker(dense: float, compressed: float | None, interval: dict[str, Any] | None) -> tuple[float, float] | None:
    """Plausible range of the compressed score, dense + the delta's interval, clipped to 0..100; None without one."""
    if compressed is None or not interval:
        return None
    low, high = sorted((dense + interval["low"], dense + interval["high"]))
    return min(max(low, 0.0), 100.0), min(max(high, 0.0), 100.0)


def _plot_series(results: list[dict[str, Any]]) -> dict[str, dict[str, tuple[float, tuple[float, float] | None]]]:
    """Series name -> dimension -> (score, whisker): dense first, then the compressed configs sorted."""
    dense: dict[str, tuple[float, tuple[float, float] | None]] = {}
    configs: dict[str, dict[str, tuple[float, tuple[float, float] | None]]] = {}
    for r in results:
        dense[r["dimension"]] = (r["dense"]["score"], None)
        if r["compressed"] is not None:
            score = r["compressed"]["score"]
            configs.setdefault(r["config"], {})[r["dimension"]] = (
                score, _whisker(r["dense"]["score"], score, r.get("interval"))
            )
    return {"dense": dense, **{name: configs[name] for name in sorted(configs)}}


def _draw_radar(axes: Any, dimensions: list[str], series: dict[str, dict[str, Any]]) -> None:
    """Dense and each config as a closed polygon, with a thin radial whisker where an interval exists."""
    import math

    angles = [2 * math.pi * i / len(dimensions) for i in range(len(dimensions))]
    step = min(RADAR_WHISKER_STEP, math.pi / (2 * len(dimensions) * len(series)))  # configs side by side
    compressed = [name for name in series if name != "dense"]
    for name, scores in series.items():
        values = [scores.get(d, (0.0, None))[0] for d in dimensions]
        (line,) = axes.plot(
            [*angles, angles[0]], [*values, values[0]], label=name, linewidth=2 if name == "dense" else 1.2
        )
        axes.fill([*angles, angles[0]], [*values, values[0]], alpha=0.08)
        if name == "dense":
            continue
        index = compressed.index(name)
        offset = step * (index - (len(compressed) - 1) / 2)
        for angle, d in zip(angles, dimensions):
            whisker = scores.get(d, (0.0, None))[1]
            if whisker is not None:
                axes.plot([angle + offset] * 2, list(whisker), color=line.get_color(), linewidth=1.5,
                          alpha=0.8, marker="o", markersize=2.5)
    axes.set_xticks(angles)
    axes.set_xticklabels([d.replace("_", "\n") for d in dimensions], fontsize=9)
    axes.set_ylim(0, 100)


def _draw_bars(axes: Any, dimensions: list[str], series: dict[str, dict[str, Any]]) -> None:
    """One group per dimension, one bar per series, the score above each bar, whiskers where intervals exist."""
    width = 0.8 / max(len(series), 1)
    for index, (name, scores) in enumerate(series.items()):
        positions = [i - 0.4 + width * (index + 0.5) for i, d in enumerate(dimensions) if d in scores]
        present = [d for d in dimensions if d in scores]
        values = [scores[d][0] for d in present]
        bars = axes.bar(positions, values, width * 0.9, label=name)
        color = bars.patches[0].get_facecolor() if bars.patches else None
        for x, d, value in zip(positions, present, values):
            whisker = scores[d][1]
            top = value
            if whisker is not None:
                axes.plot([x, x], list(whisker), color="black", linewidth=1, marker="_", markersize=8)
                top = max(top, whisker[1])
            axes.annotate(f"{value:.1f}", (x, top), xytext=(0, 3), textcoords="offset points", ha="center",
                          va="bottom", fontsize=8, color=color)
    axes.set_xticks(range(len(dimensions)))
    axes.set_xticklabels([d.replace("_", " ") for d in dimensions], fontsize=9)
    axes.set_xlim(-0.6, max(len(dimensions), 1) - 0.4)
    axes.set_ylim(0, 100)
    axes.set_ylabel("score")


def write_radar_plot(path: Path, report: dict[str, Any]) -> None:
    """Dense and every compressed config over the dimensions (0..100 each), with interval whiskers.

    A radar for three or more dimensions, grouped bars for fewer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    dimensions = sorted({r["dimension"] for r in results})
    series = _plot_series(results)
    figure = plt.figure(figsize=(PLOT_SIZE_INCHES, PLOT_SIZE_INCHES), dpi=PLOT_DPI)
    try:
        title = f"{report['model']['name']}: trust scores, dense vs compressed"
        if _plot_kind(len(dimensions)) == "radar":
            axes = figure.add_subplot(polar=True)
            _draw_radar(axes, dimensions, series)
            axes.set_title(title, pad=24)
            axes.legend(loc="lower right", bbox_to_anchor=(1.1, -0.1), fontsize=8)
        else:
            axes = figure.add_subplot()
            _draw_bars(axes, dimensions, series)
            axes.set_title(title, pad=24)
            axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(len(series), 4), fontsize=8)
            figure.subplots_adjust(bottom=0.18)
        image = io.BytesIO()
        figure.savefig(image, format="png", dpi=PLOT_DPI)  # fixed size: no bbox_inches="tight"
        atomic_write_bytes(path, image.getvalue())  # a killed run never leaves half a PNG
    finally:
        plt.close(figure)
