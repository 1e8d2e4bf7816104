"""What every measurement shares: timing, medians, ratios, the table and results.json.

A measurement runs the plugin and its baseline alternately in the same
process (``interleaved``), so a noisy neighbour on a shared machine slows
both alike, and reports :class:`Figure` objects: one value, its target, and
the plugin's and baseline's medians that it was computed from.
"""

from __future__ import annotations

import json
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
    "einvoice_vs_pdf": ("<=", 2.0),
    "close_einvoices_per_s": ("", 0),
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall-clock seconds of one call, and what it returned."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


@dataclass
class Timings:
    """Seconds of each run, and the last result (for the agreement checks)."""

    seconds: list[float] = field(default_factory=list)
    result: Any = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def interleaved(
    contenders: dict[str, Callable[[], Any]], runs: int, warmup: int = 1
) -> dict[str, Timings]:
    """Run each contender ``warmup`` times untimed, then ``runs`` times, taking turns.

    The order of the turn alternates, so neither side always runs on a cache
    the other one just warmed.
    """
    names = list(contenders)
    out = {name: Timings() for name in names}
    for _ in range(warmup):
        for name in names:
            out[name].result = contenders[name]()
    for run in range(runs):
        for name in names if run % 2 == 0 else names[::-1]:
            seconds, out[name].result = timed(contenders[name])
            out[name].seconds.append(seconds)
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
    header = ("figure", "db", "plugin (median)", "baseline (median)", "value", "target", "met")
    rows = [header, tuple("---" for _ in header)]
    for f in figures:
        met = {True: "yes", False: "**no**", None: ""}[f.met]
        name = f"`{f.key}`: {f.label}" if f.key else f.label
        rows.append((name, f.db, f.plugin, f.baseline, f.shown(), f.target, met))
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
    """
    results: dict[str, Any] = {}
    kept: list[dict[str, Any]] = []
    if merge and path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        measured = {(f.key, f.db) if f.key else f.label for f in figures}
        results = {key: previous[key] for key in TARGETS if key in previous}
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
        else:
            results.setdefault(f.key, {})[f.db] = round(f.value, 3)
    document = {
        **{key: results[key] for key in TARGETS if key in results},
        "targets": {key: f"{op} {bound:g}" for key, (op, bound) in TARGETS.items() if op},
        "meta": meta,
        "details": kept + [{**asdict(f), "target": f.target, "met": f.met} for f in figures],
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
