"""``python -m bench [--scale small|large]``: run every measurement, print the table,
write ``bench/results.json``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import close, dashboard, einvoices, export, licences, lists, pdfs, purge, worker
from .databases import SCALES, backends, data_now
from .harness import Figure, log, machine, table, write_results

RESULTS = Path(__file__).resolve().parent / "results.json"
#: Measurements per database, in the issue's order; the PDFs need only one database.
PER_DATABASE = {
    "licences": licences,
    "export": export,
    "lists": lists,
    "purge": purge,
    "dashboard": dashboard,
}
EXTRA = ("pdfs", "close", "einvoice", "einvoice_close", "worker")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="large")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement")
    parser.add_argument(
        "--heavy-runs", type=int, default=3, help="runs of purge and month close (fresh copies)"
    )
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument(
        "--only", help="comma-separated: " + ", ".join([*PER_DATABASE, *EXTRA])
    )
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else {*PER_DATABASE, *EXTRA}
    scale, now, started = SCALES[args.scale], data_now(), time.time()
    figures: list[Figure] = []
    with backends(args.scale, set(args.db.split(","))) as databases:
        for name, module in PER_DATABASE.items():
            for data in databases if name in only else ():
                log(f"{name} on {data.name}")
                runs = args.heavy_runs if name == "purge" else args.runs
                figures += module.run(data, scale, now, runs)
        if "pdfs" in only:
            log("pdfs")
            figures += pdfs.run(databases[0], scale, now, args.runs)
        for data in databases if "close" in only else ():
            log(f"close on {data.name}")
            figures += close.run(data, scale, now, args.heavy_runs)
        if "einvoice" in only:
            log("einvoice")
            figures += einvoices.run(databases[0], scale, now, args.runs)
        for data in databases if "einvoice_close" in only else ():
            log(f"einvoice_close on {data.name}")
            figures += einvoices.run_close(data, scale, now, args.heavy_runs)
        if "worker" in only:
            log(f"worker on {databases[0].name}")
            figures += worker.run(databases[0], scale, now, args.runs)
    meta = {
        "scale": args.scale,
        "data_now": now.isoformat(),
        "runs": args.runs,
        "heavy_runs": args.heavy_runs,
        "seconds": round(time.time() - started),
        "machine": machine(),
    }
    if figures:
        # With --only, the figures not measured now keep their last values.
        write_results(RESULTS, figures, meta, merge=bool(args.only))
    print()
    print(table(figures))
    print()
    missed = [f for f in figures if f.met is False]
    log(
        f"{len(figures)} figures in {meta['seconds']} s, {len(missed)} target(s) missed; "
        f"written to {RESULTS}"
    )


if __name__ == "__main__":
    main()
