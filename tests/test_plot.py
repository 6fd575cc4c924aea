"""The trust plot: grouped bars below three dimensions, a radar from three, interval whiskers on both."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from comptrust_plugin import plot as plot_module
from comptrust_plugin.plot import PLOT_DPI, PLOT_SIZE_INCHES, _plot_kind, _whisker, write_radar_plot

SIDE = int(PLOT_SIZE_INCHES * PLOT_DPI)


def _row(dimension: str, config: str, dense: float, compressed: float | None,
         interval: tuple[float, float] | None = None) -> dict[str, Any]:
    return {
        "dimension": dimension, "config": config, "dense": {"score": dense},
        "compressed": None if compressed is None else {"score": compressed},
        "delta": None if compressed is None else compressed - dense,
        "interval": None if interval is None else {"low": interval[0], "high": interval[1], "level": 0.95},
    }


def _report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": {"name": "tiny"}, "results": rows}


def _compressed(dimensions: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i, d in enumerate(dimensions):
        rows.append(_row(d, "rtn-8", 80.0 - i, 78.0 - i, (-6.0, 2.0)))
        rows.append(_row(d, "nf4", 80.0 - i, 60.0 - i, (-28.0, -12.0)))
    return rows


def _dense_only(dimensions: list[str]) -> list[dict[str, Any]]:
    return [_row(d, "dense", 70.0 + i, None) for i, d in enumerate(dimensions)]


def _write(tmp_path: Path, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """Write the plot, returning its path and which layouts were drawn."""
    drawn: list[str] = []
    for kind in ("bars", "radar"):
        original = getattr(plot_module, f"_draw_{kind}")

        def spy(*args: Any, _kind: str = kind, _original: Any = original) -> None:
            drawn.append(_kind)
            _original(*args)

        monkeypatch.setattr(plot_module, f"_draw_{kind}", spy)
    path = tmp_path / "plot.png"
    write_radar_plot(path, _report(rows))
    return path, drawn


def _assert_readable_png(path: Path, colored_share: float) -> None:
    """An 800 x 800 PNG with at least this share of its pixels in colour (axes, grid and text alone have none)."""
    import matplotlib.image

    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (SIDE, SIDE)
    pixels = matplotlib.image.imread(str(path))[..., :3]
    colored = (pixels.max(axis=-1) - pixels.min(axis=-1)) > 0.2
    assert colored.sum() > colored_share * SIDE * SIDE


def test_plot_kind_by_dimension_count() -> None:
    assert [_plot_kind(n) for n in range(6)] == ["bars", "bars", "bars", "radar", "radar", "radar"]


def test_whisker_is_dense_plus_the_delta_interval_clipped() -> None:
    assert _whisker(80.0, 70.0, {"low": -15.0, "high": -5.0}) == (65.0, 75.0)
    assert _whisker(80.0, 70.0, {"low": -15.0, "high": -5.0}) == (70.0 + (-15.0 + 10.0), 70.0 + (-5.0 + 10.0))
    assert _whisker(95.0, 99.0, {"low": -1.0, "high": 12.5}) == (94.0, 100.0)
    assert _whisker(4.0, 1.0, {"low": -9.0, "high": 2.0}) == (0.0, 6.0)
    assert _whisker(50.0, 50.0, {"low": 0.0, "high": 0.0}) == (50.0, 50.0)


def test_no_whisker_without_interval_or_compressed_score() -> None:
    assert _whisker(80.0, 70.0, None) is None
    assert _whisker(80.0, None, None) is None
    assert _whisker(80.0, None, {"low": -1.0, "high": 1.0}) is None


@pytest.mark.parametrize("dimensions", [["machine_ethics"], ["machine_ethics", "toxicity"]])
@pytest.mark.parametrize("rows", [_compressed, _dense_only])
def test_one_or_two_dimensions_draw_bars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dimensions: list[str], rows: Any
) -> None:
    path, drawn = _write(tmp_path, rows(dimensions), monkeypatch)
    assert drawn == ["bars"]
    _assert_readable_png(path, 0.1)


@pytest.mark.parametrize("rows", [_compressed, _dense_only])
def test_three_dimensions_draw_the_radar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: Any) -> None:
    path, drawn = _write(tmp_path, rows(["fairness", "machine_ethics", "toxicity"]), monkeypatch)
    assert drawn == ["radar"]
    _assert_readable_png(path, 0.003)


def test_bars_and_radar_draw_whiskers_only_where_intervals_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [_row("a", "rtn-8", 80.0, 70.0, (-15.0, -5.0)), _row("b", "rtn-8", 60.0, 61.0)]
    series = plot_module._plot_series(rows)
    assert list(series) == ["dense", "rtn-8"] and series["rtn-8"] == {"a": (70.0, (65.0, 75.0)), "b": (61.0, None)}
    for kind, dimensions in (("bars", ["a", "b"]), ("radar", ["a", "b", "c"])):
        figure = plt.figure()
        try:
            axes = figure.add_subplot(polar=kind == "radar")
            getattr(plot_module, f"_draw_{kind}")(axes, dimensions, series)
            whiskers = [line for line in axes.get_lines() if len(line.get_ydata()) == 2]
            assert [list(line.get_ydata()) for line in whiskers] == [[65.0, 75.0]]
        finally:
            plt.close(figure)


def test_configs_follow_dense_in_sorted_order() -> None:
    rows = [_row("a", "rtn-8", 80.0, 70.0), _row("a", "awq-4", 80.0, 75.0), _row("a", "gptq-4", 80.0, 60.0)]
    assert list(plot_module._plot_series(rows)) == ["dense", "awq-4", "gptq-4", "rtn-8"]


@pytest.mark.parametrize("dimensions", [["machine_ethics"], ["fairness", "machine_ethics", "toxicity"]])
def test_missing_parent_directories_are_created(tmp_path: Path, dimensions: list[str]) -> None:
    path = tmp_path / "new" / "deeper" / "plot.png"
    write_radar_plot(path, _report(_compressed(dimensions)))
    assert struct.unpack(">II", path.read_bytes()[16:24]) == (SIDE, SIDE)
    assert [p.name for p in path.parent.iterdir()] == ["plot.png"]  # no temporary file left behind
