"""``python -m bench.load`` (``make load``): the back-office under load, and nothing lost.

On a throw-away PostgreSQL server (``tests/postgres.py``) holding the
benchmarks' data set (:mod:`bench.databases`), the back-office
(:func:`bench.app.load_app`) runs under gunicorn on 127.0.0.1.  First the
list pages are timed one request at a time (idle latency).  Then locust
(:mod:`bench.locustfile`) drives ``--users`` simulated back-office users for
``--run-time`` seconds, and while they browse, three ``flask billing``
commands run in their own processes: the month close of the previous month
(invoices and PDFs), the purge of ``xl-purge`` and a mailbox change of a
workspace that has mail queued.  Afterwards the database is checked: invoice
numbers gap-free, one invoice per workspace and month, every mail queued
before the load still queued (or sent) to the same recipient.

The figures go into ``bench/results.json`` under ``"load"``; the rest of the
file (the benchmarks) is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from plugin.models import Invoice, InvoiceSequence, OutboxMail, Workspace
from plugin.services.invoicing import close_month
from plugin.services.periods import Month
from tests.postgres import free_port, postgres_server

from .app import LIST_PAGES
from .databases import RULES, SCALES, PostgresData, data_now
from .harness import log
from .workspaces import PURGE_KEY

RESULTS = Path(__file__).resolve().parent / "results.json"
REPOSITORY = RESULTS.parent.parent
APP = "bench.app:load_app()"
#: Targets: errors (failed requests, 5xx included) and list p95 under load / idle p95.
MAX_ERRORS = 0
MAX_SLOWDOWN = 3.0
#: The list pages (by the name locust reports them under) and the page variants users
#: open, timed the same way when idle.
LISTS = {f"list {name}": url for name, (url, _, _) in LIST_PAGES.items()}
PAGES = ("", "?page=1", "?page=2")
NEW_MAILBOX = "invoices-load@example.com"
#: gunicorn's own advice ("How many workers?" in its design notes): (2 x cores) + 1
#: workers to start with; docs/operations.md gives it to operators.
RECOMMENDED_WORKERS = 2 * (os.cpu_count() or 1) + 1


def percentile(values: list[float], pct: int) -> float:
    """The ``pct``-th percentile (inclusive method, so it stays within the samples)."""
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def get(base: str, path: str) -> float:
    """Milliseconds for one GET; anything but 200 is an error."""
    start = time.perf_counter()
    with urllib.request.urlopen(base + path, timeout=60) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
    return (time.perf_counter() - start) * 1000


@contextlib.contextmanager
def gunicorn(env: dict[str, str], workdir: Path, workers: int) -> Iterator[str]:
    """The back-office under gunicorn on a free port of 127.0.0.1; yields its base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--threads", "2", "--timeout", "60",
        # Longer than a user's think time: no keep-alive connection closes under a request.
        "--keep-alive", "30",
        "--access-logfile", str(workdir / "access.log"),
        "--access-logformat", "%(s)s %(M)s %(U)s",
        "--error-logfile", str(workdir / "gunicorn.log"),
        APP,
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=REPOSITORY)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                get(base, "/admin/")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"gunicorn did not start; see {workdir / 'gunicorn.log'}"
                    ) from None
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def idle_latency(base: str, rounds: int, workers: int) -> dict[str, list[float]]:
    """Each list page variant, one request at a time, after every worker has served it."""
    for _ in range(2 * workers):
        for url in LISTS.values():
            get(base, url)
    samples: dict[str, list[float]] = {name: [] for name in LISTS}
    for _ in range(rounds):
        for name, url in LISTS.items():
            for page in PAGES:
                samples[name].append(get(base, url + page))
    return samples


def prepare(url: str, month: Month, now: Any) -> tuple[dict[int, tuple[str, str]], str, list[str]]:
    """Close the month before ``month`` (its mail stays queued: no SMTP server runs).

    Returns the queued mails (id: status, recipient), the key of a workspace with
    invoice mail queued (its mailbox changes under load), and the keys users browse.
    """
    engine = create_engine(url, poolclass=NullPool)
    with Session(engine) as session:
        summary = close_month(session, RULES, month.previous(), now, actor="load")
        session.commit()
        log(f"  closed {month.previous()} before the load: {len(summary.issued)} invoices")
        queued = {
            mail_id: (status, recipient)
            for mail_id, status, recipient in session.execute(
                select(OutboxMail.id, OutboxMail.status, OutboxMail.recipient)
            )
        }
        mailbox_key = session.scalar(
            select(Workspace.key)
            .join(OutboxMail, OutboxMail.workspace_id == Workspace.id)
            .where(OutboxMail.status == "queued", OutboxMail.kind == "invoice")
            .order_by(Workspace.key)
            .limit(1)
        )
        keys = list(
            session.scalars(
                select(Workspace.key).where(~Workspace.key.like("xl-%")).order_by(Workspace.key)
            )
        )
    engine.dispose()
    if not queued or mailbox_key is None:
        raise RuntimeError("the close before the load queued no invoice mail")
    return queued, mailbox_key, keys


def start_writers(env: dict[str, str], workdir: Path, month: Month, mailbox_key: str) -> dict:
    """The three commands that write while users browse, each in its own process."""
    flask = [sys.executable, "-m", "flask", "--app", APP, "billing"]
    commands = {
        "close-month": [*flask, "close-month", str(month)],
        "purge-inactive": [*flask, "purge-inactive", PURGE_KEY, "--yes"],
        "set-mailbox": [*flask, "set-mailbox", mailbox_key, NEW_MAILBOX],
    }
    writers = {}
    for name, command in commands.items():
        output = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 (closed in wait_writers)
        process = subprocess.Popen(
            command, env=env, cwd=REPOSITORY, stdout=output, stderr=subprocess.STDOUT
        )
        writers[name] = (process, output, time.monotonic())
    return writers


def wait_writers(writers: dict, workdir: Path, load_end: float) -> dict[str, Any]:
    """Each writer's exit status and seconds, and whether it ended while the users browsed."""
    done: dict[str, Any] = {}
    while len(done) < len(writers):
        for name, (process, output, started) in writers.items():
            if name in done or process.poll() is None:
                continue
            ended = time.monotonic()
            output.close()
            done[name] = {
                "exit_status": process.returncode,
                "seconds": round(ended - started, 1),
                "within_load": ended <= load_end,
            }
            if process.returncode != 0:
                log(f"  {name} failed:\n" + (workdir / f"{name}.log").read_text()[-2000:])
        time.sleep(0.2)
    return {name: done[name] for name in writers}


def run_locust(base: str, env: dict[str, str], workdir: Path, users: int, seconds: int):
    command = [
        sys.executable, "-m", "locust",
        "-f", str(Path(__file__).with_name("locustfile.py")),
        "--headless", "--only-summary",
        "--users", str(users), "--spawn-rate", str(max(1, users // 5)),
        "--run-time", f"{seconds}s", "--stop-timeout", "30",
        "--host", base,
        "--csv", str(workdir / "locust"),
    ]  # fmt: skip
    output = open(workdir / "locust.log", "wb")  # noqa: SIM115 (closed in the caller)
    return subprocess.Popen(
        command, env=env, cwd=REPOSITORY, stdout=output, stderr=subprocess.STDOUT
    ), output


def locust_stats(workdir: Path) -> dict[str, dict[str, float]]:
    """Per request name (and "Aggregated"): count, failures, rps, p50/p95/p99 in ms."""
    stats = {}
    with open(workdir / "locust_stats.csv", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            stats[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": float(row["Requests/s"]),
                "p50_ms": float(row["50%"]),
                "p95_ms": float(row["95%"]),
                "p99_ms": float(row["99%"]),
            }
    return stats


def server_errors(workdir: Path) -> int:
    """Responses with a 5xx status, from gunicorn's access log."""
    with open(workdir / "access.log", encoding="utf-8") as file:
        return sum(1 for line in file if line[:1] == "5")


def lost_nothing(
    url: str, month: Month, now: Any, queued: dict[int, tuple[str, str]]
) -> dict[str, Any]:
    """The checks after the load; each value is what was found (empty / 0 means fine)."""
    engine = create_engine(url, poolclass=NullPool)
    with Session(engine) as session:
        gaps = []
        for year, last in session.execute(select(InvoiceSequence.year, InvoiceSequence.last_seq)):
            seqs = sorted(session.scalars(select(Invoice.seq).where(Invoice.year == year)))
            if seqs != list(range(1, last + 1)):
                gaps.append(f"{year}: {len(seqs)} numbers, last {last}")
        duplicates = session.scalar(
            select(func.count()).select_from(
                select(Invoice.workspace_id, Invoice.period)
                .where(Invoice.kind == "invoice")
                .group_by(Invoice.workspace_id, Invoice.period)
                .having(func.count() > 1)
                .subquery()
            )
        )
        issued = session.scalar(
            select(func.count()).where(Invoice.period == str(month), Invoice.kind == "invoice")
        )
        again = close_month(session, RULES, month, now, actor="load-check")
        session.rollback()
        after = {
            mail_id: (status, recipient)
            for mail_id, status, recipient in session.execute(
                select(OutboxMail.id, OutboxMail.status, OutboxMail.recipient).where(
                    OutboxMail.id.in_(list(queued))
                )
            )
        }
    engine.dispose()
    lost_mail = [
        mail_id
        for mail_id, (_, recipient) in queued.items()
        if mail_id not in after
        or after[mail_id][0] not in ("queued", "sent")
        or after[mail_id][1] != recipient
    ]
    return {
        "invoices_of_month": issued,
        "number_gaps": gaps,
        "duplicate_invoices": duplicates,
        "left_to_issue_by_a_second_close": len(again.issued),
        "queued_mails_checked": len(queued),
        "queued_mails_lost_or_changed": len(lost_mail),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="large")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--run-time", type=int, help="seconds of load (default: by scale)")
    parser.add_argument(
        "--workers",
        type=int,
        default=RECOMMENDED_WORKERS,
        help="gunicorn workers, 2 threads each (default: gunicorn's 2 x CPUs + 1)",
    )
    parser.add_argument("--idle-rounds", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="do not update results.json")
    args = parser.parse_args()
    run_time = args.run_time or {"small": 60, "large": 180}[args.scale]
    scale, now, started = SCALES[args.scale], data_now(), time.time()
    month = Month.of(now, RULES.zoneinfo).previous()
    workdir = Path(tempfile.mkdtemp(prefix="billing-load-"))
    with postgres_server() as server_url:
        log("PostgreSQL: throw-away server started")
        data = PostgresData(server_url, scale, now)
        queued, mailbox_key, keys = prepare(data.url, month, now)
        env = {
            **os.environ,
            "LOAD_DATABASE_URL": data.url,
            "LOAD_SECRET_KEY": secrets.token_hex(16),
            "LOAD_KEYS": ",".join(keys),
            "LOAD_MONTH": str(month),
            "LOAD_LISTS": json.dumps(LISTS),
            "LOAD_PAGES": json.dumps(PAGES),
        }
        with gunicorn(env, workdir, args.workers) as base:
            log(f"gunicorn on {base}: idle latency of the list pages")
            idle = idle_latency(base, args.idle_rounds, args.workers)
            log(f"locust: {args.users} users for {run_time} s; writers start after 10 s")
            locust, locust_output = run_locust(base, env, workdir, args.users, run_time)
            load_end = time.monotonic() + run_time
            time.sleep(10)
            writers = wait_writers(
                start_writers(env, workdir, month, mailbox_key), workdir, load_end
            )
            log("writers done: " + ", ".join(f"{n} {w['seconds']} s" for n, w in writers.items()))
            locust.wait(timeout=run_time + 120)
            locust_output.close()
        checks = lost_nothing(data.url, month, now, queued)
    stats = locust_stats(workdir)
    report = summarise(args, run_time, idle, stats, server_errors(workdir), writers, checks)
    report["seconds"] = round(time.time() - started)
    print_report(report)
    if not args.no_write:
        document = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
        document["load"] = report
        RESULTS.write_text(
            json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        log(f'written to {RESULTS} ("load"); logs in {workdir}')
    sys.exit(0 if report["met"] else 1)


def summarise(args, run_time, idle, stats, five_xx, writers, checks) -> dict[str, Any]:
    total = stats["Aggregated"]
    lists = {}
    for name, samples in idle.items():
        loaded = stats.get(name, {})
        idle_p95 = percentile(samples, 95)
        lists[name] = {
            "idle_p50_ms": round(percentile(samples, 50), 1),
            "idle_p95_ms": round(idle_p95, 1),
            "load_p95_ms": loaded.get("p95_ms"),
            "slowdown_p95": round(loaded["p95_ms"] / idle_p95, 2) if loaded else None,
        }
    errors = total["failures"]
    worst = max((page["slowdown_p95"] or 0) for page in lists.values())
    writes_ok = all(w["exit_status"] == 0 for w in writers.values())
    nothing_lost = (
        not checks["number_gaps"]
        and checks["duplicate_invoices"] == 0
        and checks["left_to_issue_by_a_second_close"] == 0
        and checks["invoices_of_month"] > 0
        and checks["queued_mails_lost_or_changed"] == 0
    )
    return {
        "scale": args.scale,
        "users": args.users,
        "run_time_s": run_time,
        "gunicorn_workers": args.workers,
        "requests": total["requests"],
        "requests_per_s": round(total["rps"], 1),
        "p50_ms": total["p50_ms"],
        "p95_ms": total["p95_ms"],
        "p99_ms": total["p99_ms"],
        "errors": errors,
        "server_5xx": five_xx,
        "by_request": {name: s for name, s in stats.items() if name != "Aggregated"},
        "list_pages": lists,
        "list_slowdown_p95_worst": worst,
        "writers": writers,
        "checks": checks,
        "targets": {"errors": f"<= {MAX_ERRORS}", "list_slowdown_p95": f"<= {MAX_SLOWDOWN:g}"},
        "met": errors <= MAX_ERRORS
        and five_xx == 0
        and worst <= MAX_SLOWDOWN
        and writes_ok
        and nothing_lost,
    }


def print_report(report: dict[str, Any]) -> None:
    print()
    print(
        f"{report['users']} users, {report['run_time_s']} s, scale {report['scale']}: "
        f"{report['requests']:,} requests, {report['requests_per_s']} req/s, "
        f"p50 {report['p50_ms']:g} ms, p95 {report['p95_ms']:g} ms, p99 {report['p99_ms']:g} ms, "
        f"{report['errors']} errors, {report['server_5xx']} 5xx"
    )
    print("| request | requests | failures | p50 ms | p95 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, s in report["by_request"].items():
        print(
            f"| {name} | {s['requests']} | {s['failures']} | {s['p50_ms']:g} | "
            f"{s['p95_ms']:g} | {s['p99_ms']:g} |"
        )
    print("| list page | idle p50 ms | idle p95 ms | load p95 ms | slowdown (≤ 3) |")
    print("| --- | --- | --- | --- | --- |")
    for name, page in report["list_pages"].items():
        print(
            f"| {name} | {page['idle_p50_ms']:g} | {page['idle_p95_ms']:g} | "
            f"{page['load_p95_ms']:g} | {page['slowdown_p95']:.2f}× |"
        )
    print("writers:", json.dumps(report["writers"]))
    print("checks:", json.dumps(report["checks"]))
    print("targets met:", "yes" if report["met"] else "NO")


if __name__ == "__main__":
    main()
