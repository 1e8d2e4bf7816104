"""What every measurement shares: timing, medians, ratios, the table and results.json.

A measurement runs the plugin and its baseline alternately in the same
process (``interleaved``), so a noisy neighbour on a shared machine slows
both alike, and reports :class:`Figure` objects: one value, its target, and
the plugin's and baseline's medians that it was computed from.

A ratio is the median of the per-pair ratios (run *i* of the plugin against
run *i* of its baseline, taken back to back), reported with its spread, the
interquartile range of those ratios relative to their median
(:class:`Ratio`).  ``interleaved`` keeps adding pairs until that spread is
below :data:`SPREAD_GOAL` (or ``max_runs`` is reached), and times each unit
as several calls when one call is too short to measure (:data:`MIN_UNIT`).
docs/benchmarks.md describes this API for new figure modules.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: The figures the issue names, in its order, with their targets.
TARGETS: dict[str, tuple[str, float]] = {
    "licences_vs_sql": ("<=", 1.3),
    "export_vs_flask_admin": (">=", 2.0),
    "export_memory_growth": ("<=", 1.5),
    "list_queries": ("<=", 8),
    "list_vs_flask_admin": ("<=", 1.5),
    "purge_vs_sql": ("<=", 1.5),
    "pdf_vs_wkhtmltopdf": ("<=", 1.2),
    "pdf_vs_naive_pdfkit": ("<=", 0.4),
    "pdf_parallel_speedup": (">=", 1.7),
    "close_invoices_per_s": ("", 0),
    "close_holders_s": ("", 0),
    "einvoice_vs_pdf": ("<=", 2.0),
    "close_einvoices_per_s": ("", 0),
    "dashboard_vs_workspace_list": ("<=", 2.0),
    "worker_pdf_speedup": (">=", 1.7),
}


#: Stop adding pairs once every ratio's relative interquartile range is below this.
SPREAD_GOAL = 0.05
#: A timed unit shorter than this (seconds) repeats the call until it is this long.
MIN_UNIT = 0.25
#: ``interleaved`` runs at most this many times ``runs`` pairs.
MAX_RUNS_FACTOR = 4


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall-clock seconds of one call, and what it returned.

    A full garbage collection comes first, untimed, so that no call pays for
    the garbage of what ran before it (the other side, a preview, a warm-up):
    otherwise whichever side pushes the oldest generation over its threshold
    pays for a collection of the whole process (80 ms in the purge).
    """
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


@dataclass
class Timings:
    """Seconds of each run (per call), and the last result (for the agreement checks)."""

    seconds: list[float] = field(default_factory=list)
    result: Any = None
    #: Calls per timed unit (``seconds`` holds the unit's time divided by it).
    repeat: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass(frozen=True)
class Ratio:
    """The median of per-pair ratios and their quartiles; ``spread`` is (q3 - q1) / median."""

    median: float
    q1: float
    q3: float
    pairs: int

    @classmethod
    def of(cls, numerators: list[float], denominators: list[float]) -> Ratio:
        """Pair run *i* with run *i*: the ratio of each pair, then their median and quartiles."""
        ratios = [n / d for n, d in zip(numerators, denominators, strict=True)]
        if len(ratios) == 1:
            return cls(ratios[0], ratios[0], ratios[0], 1)
        q1, median, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        return cls(median, q1, q3, len(ratios))

    @property
    def spread(self) -> float:
        return (self.q3 - self.q1) / self.median


def ratio(times: dict[str, Timings], numerator: str, denominator: str) -> Ratio:
    """The per-pair ratio of two contenders of one :func:`interleaved` call."""
    return Ratio.of(times[numerator].seconds, times[denominator].seconds)


def interleaved(
    contenders: dict[str, Callable[[], Any]],
    runs: int,
    warmup: int = 1,
    *,
    max_runs: int | None = None,
    min_unit: float | None = None,
    before: Callable[[], Any] | None = None,
) -> dict[str, Timings]:
    """Run each contender ``warmup`` times untimed, then at least ``runs`` times, taking turns.

    The order of the turn alternates, so neither side always runs on a cache
    the other one just warmed.  With two or more contenders, pairs are added
    (up to ``max_runs``, default ``MAX_RUNS_FACTOR * runs``) until the ratio
    of the first contender to each other one has a spread below
    :data:`SPREAD_GOAL`.  A call shorter than ``min_unit`` (default
    :data:`MIN_UNIT`) is timed as a unit of several calls, the same number for
    every contender; ``seconds`` are per call either way.  ``before``, if
    given, runs untimed before every call of every contender (what a view
    finds changed since the one before it).
    """
    names = list(contenders)
    out = {name: Timings() for name in names}
    first: dict[str, float] = {}
    for _ in range(max(warmup, 1)):
        for name in names:
            if before is not None:
                before()
            first[name], out[name].result = timed(contenders[name])
    unit = MIN_UNIT if min_unit is None else min_unit
    repeat = max(1, math.ceil(unit / max(min(first.values()), 1e-6)))
    limit = max(runs, max_runs if max_runs is not None else MAX_RUNS_FACTOR * runs)

    def once(name: str) -> None:
        gc.collect()  # as in timed(): no unit pays for the garbage of the one before
        total = 0.0
        for _ in range(repeat):
            if before is not None:
                before()
            start = time.perf_counter()
            out[name].result = contenders[name]()
            total += time.perf_counter() - start
        out[name].seconds.append(total / repeat)
        out[name].repeat = repeat

    def settled() -> bool:
        return all(ratio(out, names[0], other).spread < SPREAD_GOAL for other in names[1:])

    run = 0
    while run < runs or (run < limit and len(names) > 1 and not settled()):
        for name in names if run % 2 == 0 else names[::-1]:
            once(name)
        run += 1
    return out


def check(condition: bool, message: str) -> None:
    """Plugin and baseline must agree: a benchmark of wrong answers is worthless."""
    if not condition:
        raise AssertionError(f"plugin and baseline disagree: {message}")


def seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms"


@dataclass
class Figure:
    """One line of the table; ``key`` is the results.json name (None: detail only)."""

    label: str
    db: str
    value: float
    key: str | None = None
    plugin: str = ""
    baseline: str = ""
    unit: str = "×"
    #: The ratio's relative interquartile range over ``pairs`` per-pair ratios (None: no ratio).
    spread: float | None = None
    pairs: int = 0

    @classmethod
    def of_ratio(cls, label: str, db: str, found: Ratio, **fields: Any) -> Figure:
        """A ratio figure: the median per-pair ratio, with its spread."""
        return cls(label, db, found.median, spread=found.spread, pairs=found.pairs, **fields)

    @property
    def target(self) -> str:
        if self.key is None or not TARGETS[self.key][0]:
            return ""
        op, bound = TARGETS[self.key]
        return f"{op} {bound:g}"

    @property
    def met(self) -> bool | None:
        if self.key is None or not TARGETS[self.key][0]:
            return None
        op, bound = TARGETS[self.key]
        return self.value <= bound if op == "<=" else self.value >= bound

    def shown(self) -> str:
        if self.unit == "×":
            return f"{self.value:.2f}×"
        if self.unit == "s":
            return seconds(self.value)
        return f"{self.value:,.4g} {self.unit}"


def table(figures: Iterable[Figure]) -> str:
    """The figures as a Markdown table (what the README shows)."""
    header = (
        "figure", "db", "plugin (median)", "baseline (median)", "value", "spread (IQR)",
        "target", "met",
    )  # fmt: skip
    rows = [header, tuple("---" for _ in header)]
    for f in figures:
        met = {True: "yes", False: "**no**", None: ""}[f.met]
        name = f"`{f.key}`: {f.label}" if f.key else f.label
        spread = "" if f.spread is None else f"{f.spread * 100:.1f} % ({f.pairs} pairs)"
        rows.append((name, f.db, f.plugin, f.baseline, f.shown(), spread, f.target, met))
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as info:
        mem_kib = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
    wkhtmltopdf = subprocess.run(
        ["wkhtmltopdf", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "wkhtmltopdf": wkhtmltopdf,
    }


def write_results(
    path: Path, figures: list[Figure], meta: dict[str, Any], *, merge: bool = False
) -> None:
    """results.json: each issue key with one value per database (or one value).

    ``merge``: keep the figures of the previous file that this run did not measure.
    What other commands write into the same file (``make load``) always stays.
    """
    previous = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    results: dict[str, Any] = {}
    spreads: dict[str, Any] = {}
    kept: list[dict[str, Any]] = []
    if merge and previous:
        measured = {(f.key, f.db) if f.key else f.label for f in figures}
        results = {key: previous[key] for key in TARGETS if key in previous}
        spreads = dict(previous.get("spreads", {}))
        kept = [
            d for d in previous.get("details", ())
            if ((d["key"], d["db"]) if d.get("key") else d["label"]) not in measured
        ]
        meta = {**previous.get("meta", {}), "last_partial_run": meta}
    for f in figures:
        if f.key is None:
            continue
        if f.db == "-":
            results[f.key] = round(f.value, 3)
            if f.spread is not None:
                spreads[f.key] = round(f.spread, 4)
        else:
            results.setdefault(f.key, {})[f.db] = round(f.value, 3)
            if f.spread is not None:
                spreads.setdefault(f.key, {})[f.db] = round(f.spread, 4)
    document = {
        **{key: results[key] for key in TARGETS if key in results},
        "targets": {key: f"{op} {bound:g}" for key, (op, bound) in TARGETS.items() if op},
        "spreads": {key: spreads[key] for key in TARGETS if key in spreads},
        "meta": meta,
        "details": kept + [{**asdict(f), "target": f.target, "met": f.met} for f in figures],
        **{key: value for key, value in previous.items() if key == "load"},
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
