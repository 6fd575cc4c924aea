"""How tests spread over xdist workers so each worker loads each (model, config) once.

Every test of one compression config carries the same `xdist_group`; with `--dist loadgroup`
(comptrust's default whenever `-n` is used) xdist sends a whole group to one worker, which
loads that config's model once and releases it before its next group. Workers report how often
they loaded each config, and the controller checks the grouping really held.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from .storage import stable_hash

GROUPED_DIST = "loadgroup"
_SAFE_GROUP = re.compile(r"^[A-Za-z0-9_.:+\-]+$")


def group_name(config: str) -> str:
    """The xdist group of every test of one config (one model per run, so the config suffices).

    xdist appends `@<group>` to test ids and splits on the last `@`, so a name must hold no `@`
    (a hub revision does); unsafe names keep a readable stem plus a hash, so none collide.
    """
    if _SAFE_GROUP.match(config):
        return config
    stem = re.sub(r"[^A-Za-z0-9_.:+\-]+", "_", config).strip("_")[-40:]
    return f"{stem}-{stable_hash(config)[:8]}"


def choose_dist(numprocesses: object, dist: str, distload: bool) -> str:
    """The dist mode to use, seen before pytest-xdist fills in its own default ("load").

    When `-n` asks for workers and the user named no mode, comptrust's default is loadgroup;
    a mode the user named is kept (and `dist_note` says what it costs).
    """
    if numprocesses and dist == "no" and not distload:
        return GROUPED_DIST
    return dist


def dist_note(dist: str) -> str | None:
    """One line when the chosen mode cannot keep a config's tests on one worker."""
    if dist in ("no", GROUPED_DIST):
        return None
    return (
        f"comptrust: --dist={dist} spreads one compression config's tests over several workers, so each "
        f"may load (and compress) the same model again; use --dist={GROUPED_DIST} (the default with -n)"
    )


def grouping_problems(loads: Mapping[str, Mapping[str, int]], reloaded: Collection[str] = ()) -> list[str]:
    """Configs that did not load exactly once on exactly one worker.

    `loads` maps worker id -> {config: model loads on that worker}. The dense model is left out:
    every worker that computes dense answers needs it, and its answers are shared through the
    cache under a lock, so several workers loading it is expected, not a grouping failure.
    `reloaded`: configs that load again on purpose (the builds of a config gated over several
    calibration seeds, one model at a time): a problem only when on more than one worker.
    """
    by_config: dict[str, dict[str, int]] = {}
    for worker, counts in loads.items():
        for config, count in counts.items():
            if config != "dense" and count:
                by_config.setdefault(config, {})[worker] = count
    problems = []
    for config, workers in sorted(by_config.items()):
        total = sum(workers.values())
        if total > 1 and (config not in reloaded or len(workers) > 1):
            where = ", ".join(f"{w} x{n}" if n > 1 else w for w, n in sorted(workers.items()))
            problems.append(f"{config} loaded {total} times ({where})")
    return problems


def loads_line(loads: Mapping[str, Mapping[str, int]]) -> str:
    """Which worker loaded which models, e.g. `workers: gw0 loaded dense, mag-50; gw1 loaded rtn-4`."""
    parts = []
    for worker, counts in sorted(loads.items()):
        loaded = [f"{c} x{n}" if n > 1 else c for c, n in sorted(counts.items()) if n]
        parts.append(f"{worker} loaded {', '.join(loaded)}" if loaded else f"{worker} loaded no model")
    return "workers: " + "; ".join(parts)


def grouping_message(problems: list[str], dist: str) -> str | None:
    """The one summary line saying the grouping did not take effect (None when it did)."""
    if not problems:
        return None
    return (
        f"comptrust: grouping did not take effect under --dist={dist}: {'; '.join(problems)}; "
        f"run with --dist={GROUPED_DIST} (the default with -n) so each worker loads a config once"
    )
