"""``python -m bench.stability RUN.json RUN.json …``: do consecutive bench runs agree?

Each argument is a copy of ``bench/results.json`` from one ``make bench`` run.
Prints a Markdown table: every ratio of every run, their median, the largest
deviation from that median (the target is ±10 %), and whether every run met
the target.  Exit status 1 when a ratio with a target deviates more than 10 %
or a target was missed.  The figures without a target (the month close's
invoices per second, the holders' seconds) are absolute throughputs, not
ratios: they are printed for information and move with the machine's load.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from .harness import TARGETS

TOLERANCE = 0.10


def values(document: dict) -> dict[tuple[str, str], float]:
    found = {}
    for key in TARGETS:
        value = document.get(key)
        if isinstance(value, dict):
            found.update({(key, db): v for db, v in value.items()})
        elif value is not None:
            found[(key, "-")] = value
    return found


def met(document: dict, key: str, db: str) -> bool | None:
    for detail in document.get("details", []):
        if detail["key"] == key and detail["db"] == db:
            return detail["met"]
    return None


def main(paths: list[str]) -> int:
    runs = [json.loads(Path(path).read_text(encoding="utf-8")) for path in paths]
    found = [values(run) for run in runs]
    header = ["figure", "db", *(f"run {n}" for n in range(1, len(runs) + 1))]
    header += ["median", "max deviation", "target", "met in every run"]
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    ok = True
    for key, db in found[0]:
        series = [run.get((key, db)) for run in found]
        if None in series:
            continue
        median = statistics.median(series)
        deviation = max(abs(v - median) / median for v in series) if median else 0.0
        every = [met(run, key, db) for run in runs]
        target = runs[0].get("targets", {}).get(key, "")
        stable = deviation <= TOLERANCE
        if target:
            ok &= stable and False not in every
        print(
            f"| `{key}` | {db} | "
            + " | ".join(f"{v:g}" for v in series)
            + f" | {median:g} | {deviation * 100:.1f} %{'' if stable else ' **> 10 %**'} | "
            + f"{target} | {'' if None in every else ('yes' if all(every) else '**no**')} |"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
