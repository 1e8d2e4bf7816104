"""``python -m bench.load`` (``make load``): the back-office under load, and nothing lost.

On a throw-away PostgreSQL server (``tests/postgres.py``) holding the
benchmarks' data set (:mod:`bench.databases`), the back-office
(:func:`bench.app.load_app`) runs under gunicorn on 127.0.0.1.  First the
list pages are timed one request at a time (idle latency, ``--idle-samples``
per page).  Then locust (:mod:`bench.locustfile`) drives ``--users``
simulated back-office users, and 10 s in, three ``flask billing`` commands
start in their own processes: the month close of the previous month
(invoices and PDFs), the purge of ``xl-purge`` and a mailbox change of a
workspace that has mail queued.  The users browse until every command has
ended and at least ``--run-time`` seconds have passed since they started (at
most ``--max-run-time``).  Afterwards the database is checked: invoice
numbers gap-free, one invoice per workspace and month, every mail queued
before the load still queued (or sent) to the same recipient.

The percentiles come from every request's own time (locust's rounds them to
two digits), over the requests started once the commands had started.

The figures go into ``bench/results.json`` under ``"load"``; the rest of the
file (the benchmarks) is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from plugin.einvoice import HybridRenderer
from plugin.models import Invoice, InvoiceSequence, OutboxMail, Workspace
from plugin.services.invoice_pdfs import render_pending
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
#: Seconds the users browse before the write commands start (all of them are on by then).
WRITERS_AFTER = 10
#: CPUs in use while the test itself waits, before the idle requests, above which the
#: machine is called busy: other processes' work is then in the figures.
BUSY_CPUS = 0.2
#: Seconds a writer still running when the users stop is waited for before it is stopped.
WRITER_GRACE = 120
#: Requests per list page under load below which its p95 is flagged as too few to tell:
#: the p95 of 400 samples lies between their 371st and 389th (95 % confidence).
MIN_LOAD_SAMPLES = 400


def percentile(values: list[float], pct: int) -> float:
    """The ``pct``-th percentile (inclusive method, so it stays within the samples)."""
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def percentile_interval(values: list[float], pct: int) -> tuple[float, float]:
    """A 95 % confidence interval of the ``pct``-th percentile, from the samples alone.

    The ranks whose binomial spread (normal approximation) brackets the
    percentile: with ``n`` samples, the true p95 lies between the samples of
    rank ``0.95 n ± 1.96 sqrt(0.05 · 0.95 · n)``.
    """
    ordered, q = sorted(values), pct / 100
    half = 1.96 * math.sqrt(len(ordered) * q * (1 - q))
    low = max(0, math.floor(len(ordered) * q - half) - 1)
    high = min(len(ordered) - 1, math.ceil(len(ordered) * q + half) - 1)
    return ordered[low], ordered[high]


def get(base: str, path: str) -> float:
    """Milliseconds for one GET; anything but 200 is an error."""
    start = time.perf_counter()
    with urllib.request.urlopen(base + path, timeout=60) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
    return (time.perf_counter() - start) * 1000


@contextlib.contextmanager
def gunicorn(env: dict[str, str], workdir: Path, workers: int, threads: int) -> Iterator[str]:
    """The back-office under gunicorn on a free port of 127.0.0.1; yields its base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--threads", str(threads), "--timeout", "60",
        "--access-logfile", str(workdir / "access.log"),
        "--access-logformat", "%(s)s %(M)s %(p)s %(U)s",
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


def busy_cpus(seconds: float) -> float | None:
    """How many CPUs' worth of time the machine spent busy over ``seconds`` (Linux's
    ``/proc/stat``; ``None`` elsewhere), taken while the test's own processes wait."""

    def totals() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as file:
            ticks = [int(value) for value in file.readline().split()[1:]]
        return sum(ticks), ticks[3] + ticks[4]  # idle and iowait

    try:
        total_before, idle_before = totals()
        time.sleep(seconds)
        total_after, idle_after = totals()
    except OSError:
        return None
    elapsed = total_after - total_before
    busy = elapsed - (idle_after - idle_before)
    return busy / elapsed * (os.cpu_count() or 1) if elapsed else 0.0


def idle_latency(base: str, per_page: int, workers: int) -> dict[str, list[float]]:
    """``per_page`` requests of each list page, its variants in turn, one request at a time,
    after every worker has served each variant (templates compiled, caches filled)."""
    for _ in range(2 * workers):
        for url in LISTS.values():
            for page in PAGES:
                get(base, url + page)
    samples: dict[str, list[float]] = {name: [] for name in LISTS}
    for _ in range(math.ceil(per_page / len(PAGES))):
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
        stored = store_rendered(session)
        log(f"  its documents stored as rendered: {stored}")
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


def store_rendered(session: Session) -> int:
    """Give every pending invoice a stored PDF, as a month after its close; returns how many.

    On the first of a month last month's PDFs were rendered long ago: only
    the close of the month just ended renders under the load.  The first
    pending invoice is rendered for real (``close-month``'s renderer), and
    its stored documents are copied to the others; nothing in the load opens
    them.  Their mail, due now, stays queued: no worker or SMTP server runs.
    """
    summary = render_pending(session, HybridRenderer.from_config({}), tz=RULES.zoneinfo, limit=1)
    if summary.rendered != 1:
        raise RuntimeError(f"rendering one invoice before the load failed: {summary.failures}")
    rendered = (
        select(
            Invoice.pdf, Invoice.pdf_sha256, Invoice.einvoice_xml,
            Invoice.einvoice_sha256, Invoice.einvoice_status,
        )
        .where(Invoice.pdf_sha256.is_not(None))
        .limit(1)
    )  # fmt: skip
    source = session.execute(rendered).one()._asdict()
    result = session.execute(update(Invoice).where(Invoice.pdf_sha256.is_(None)).values(**source))
    session.commit()
    return result.rowcount + 1


def browse_and_write(
    base: str,
    env: dict[str, str],
    workdir: Path,
    args: argparse.Namespace,
    month: Month,
    mailbox_key: str,
) -> tuple[dict[str, Any], float, float]:
    """The users browse; :data:`WRITERS_AFTER` seconds in, the writers start.

    The users go on until every writer has ended and ``--run-time`` seconds
    have passed since the writers started, or ``--max-run-time`` seconds at
    most.  A writer still running then is waited for, without users, for
    :data:`WRITER_GRACE` seconds, then stopped (SIGTERM; what it left undone
    shows in the checks).  Returns each writer's exit status, seconds and
    whether it ended while the users browsed, and the measured window (epoch
    seconds, as the samples).  Whatever happens, no process is left running.
    """
    locust, locust_output = run_locust(
        base, env, workdir, args.users, WRITERS_AFTER + args.max_run_time + 60
    )
    writers: dict[str, Any] = {}
    try:
        time.sleep(WRITERS_AFTER)
        writers = start_writers(env, workdir, month, mailbox_key)
        start = time.time()
        done: dict[str, Any] = {}
        while True:
            collect_writers(writers, workdir, done)
            now = time.time()
            if now >= start + args.max_run_time or (
                len(done) == len(writers) and now >= start + args.run_time
            ):
                break
            if locust.poll() is not None:
                raise RuntimeError(f"locust stopped under the load; see {workdir / 'locust.log'}")
            time.sleep(0.2)
        end = time.time()
        locust.send_signal(signal.SIGTERM)
        locust.wait(timeout=120)
        if len(done) < len(writers):
            log("  users stopped; waiting for " + ", ".join(sorted(set(writers) - set(done))))
        while len(done) < len(writers) and time.time() < end + WRITER_GRACE:
            time.sleep(1)
            collect_writers(writers, workdir, done)
    finally:
        stopped = stop_all([locust] + [process for process, _, _ in writers.values()])
        locust_output.close()
    collect_writers(writers, workdir, done)
    for name, writer in done.items():
        writer["within_load"] = writer.pop("ended") <= end
        writer["stopped"] = writers[name][0].pid in stopped
        if writer["stopped"]:
            log(f"  {name} stopped after {writer['seconds']} s, {WRITER_GRACE} s after the users")
    return {name: done[name] for name in writers}, start, end


def stop_all(processes: list[subprocess.Popen]) -> set[int]:
    """Terminate those still running (then kill them after 30 s); returns their pids."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return {process.pid for process in running}


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
        output = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 (closed in collect_writers)
        process = subprocess.Popen(
            command, env=env, cwd=REPOSITORY, stdout=output, stderr=subprocess.STDOUT
        )
        writers[name] = (process, output, time.time())
    return writers


def collect_writers(writers: dict, workdir: Path, done: dict[str, Any]) -> None:
    """Add the writers that have ended to ``done``: exit status, seconds, when."""
    for name, (process, output, started) in writers.items():
        if name in done or process.poll() is None:
            continue
        ended = time.time()
        output.close()
        done[name] = {
            "exit_status": process.returncode,
            "seconds": round(ended - started, 1),
            "ended": ended,
        }
        if process.returncode != 0:
            log(f"  {name} failed:\n" + (workdir / f"{name}.log").read_text()[-2000:])


def run_locust(base: str, env: dict[str, str], workdir: Path, users: int, seconds: int):
    """locust, headless, for ``seconds`` at most (the caller stops it earlier with SIGTERM)."""
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
    process = subprocess.Popen(
        command,
        env={**env, "LOAD_SAMPLES": str(workdir / "samples.tsv")},
        cwd=REPOSITORY,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    return process, output


def read_samples(workdir: Path) -> list[tuple[float, str, float, bool]]:
    """Every request locust made: start (epoch seconds), name, milliseconds, failed."""
    samples = []
    with open(workdir / "samples.tsv", encoding="utf-8") as file:
        for line in file:
            start, name, ms, failed = line.rstrip("\n").split("\t")
            samples.append((float(start), name, float(ms), failed == "1"))
    return samples


def request_stats(
    samples: list[tuple[float, str, float, bool]], start: float, end: float
) -> dict[str, dict[str, Any]]:
    """Per request name (and ``"all"``), over the requests started in [start, end]:
    count, failures, rate, p50/p95/p99 in ms (and the p95's 95 % interval)."""
    by_name: dict[str, list[tuple[float, bool]]] = {"all": []}
    for at, name, ms, failed in samples:
        if start <= at <= end:
            by_name.setdefault(name, []).append((ms, failed))
            by_name["all"].append((ms, failed))
    stats = {}
    for name, rows in sorted(by_name.items()):
        times = [ms for ms, _ in rows]
        if len(times) < 2:
            continue
        stats[name] = {
            "requests": len(rows),
            "failures": sum(failed for _, failed in rows),
            "rps": round(len(rows) / (end - start), 2),
            "p50_ms": round(percentile(times, 50), 1),
            "p95_ms": round(percentile(times, 95), 1),
            "p99_ms": round(percentile(times, 99), 1),
            "p95_interval_ms": [round(value, 1) for value in percentile_interval(times, 95)],
        }
    return stats


def locust_failures(workdir: Path) -> int:
    """Failed requests as locust counts them over its whole run (ramp-up included)."""
    with open(workdir / "locust_stats.csv", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            if row["Name"] == "Aggregated":
                return int(row["Failure Count"])
    return 0


def server_log(workdir: Path) -> tuple[int, list[float]]:
    """From gunicorn's access log: responses with a 5xx status, and each worker's share of
    the requests, largest first (an even spread is 1 / workers each)."""
    five_xx, by_worker = 0, Counter[str]()
    with open(workdir / "access.log", encoding="utf-8") as file:
        for line in file:
            status, _, worker, _ = line.split(" ", 3)
            five_xx += status[:1] == "5"
            by_worker[worker] += 1
    total = sum(by_worker.values())
    return five_xx, [round(count / total, 2) for _, count in by_worker.most_common()]


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
        pdfs_pending = session.scalar(
            select(func.count()).where(Invoice.period == str(month), Invoice.pdf_sha256.is_(None))
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
        "pdfs_left_pending": pdfs_pending,
        "queued_mails_checked": len(queued),
        "queued_mails_lost_or_changed": len(lost_mail),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="large")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument(
        "--run-time",
        type=int,
        default=240,
        help="seconds of load at least, from the writers' start (default 240)",
    )
    parser.add_argument(
        "--max-run-time",
        type=int,
        default=600,
        help="seconds of load at most, however long the writers take (default 600)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=RECOMMENDED_WORKERS,
        help="gunicorn workers (default: gunicorn's 2 x CPUs + 1)",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads per worker (default 2)")
    parser.add_argument(
        "--idle-samples", type=int, default=300, help="idle requests per list page (default 300)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not update results.json")
    args = parser.parse_args()
    args.max_run_time = max(args.max_run_time, args.run_time)
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
        with gunicorn(env, workdir, args.workers, args.threads) as base:
            log(f"gunicorn on {base}: idle latency, {args.idle_samples} requests per list page")
            others = busy_cpus(5.0)
            loads = {"before_idle": os.getloadavg()[0]}
            idle = idle_latency(base, args.idle_samples, args.workers)
            loads["before_load"] = os.getloadavg()[0]
            log(
                f"locust: {args.users} users; writers start after {WRITERS_AFTER} s; load for "
                f"{args.run_time} s at least, until the writers end, {args.max_run_time} s at most"
            )
            writers, start, end = browse_and_write(base, env, workdir, args, month, mailbox_key)
            loads["after_load"] = os.getloadavg()[0]
            log("writers done: " + ", ".join(f"{n} {w['seconds']} s" for n, w in writers.items()))
        checks = lost_nothing(data.url, month, now, queued)
    samples = read_samples(workdir)
    writes_end = start + max(w["seconds"] for w in writers.values())
    report = summarise(
        args,
        idle,
        load=request_stats(samples, start, end),
        writing=request_stats(samples, start, min(writes_end, end)),
        errors=max(sum(failed for *_, failed in samples), locust_failures(workdir)),
        server=server_log(workdir),
        window=(start, end, writes_end),
        writers=writers,
        checks=checks,
    )
    report["seconds"] = round(time.time() - started)
    # The test's own processes: the users' requests, gunicorn, PostgreSQL, the writers.
    report["load_average_1min"] = {name: round(value, 1) for name, value in loads.items()}
    report["busy_cpus_before"] = None if others is None else round(others, 2)
    print_report(report)
    if not args.no_write:
        document = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
        document["load"] = report
        RESULTS.write_text(
            json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        log(f'written to {RESULTS} ("load")')
    log(f"logs in {workdir}")
    sys.exit(0 if report["met"] else 1)


def summarise(
    args: argparse.Namespace,
    idle: dict[str, list[float]],
    *,
    load: dict[str, dict[str, Any]],
    writing: dict[str, dict[str, Any]],
    errors: int,
    server: tuple[int, list[float]],
    window: tuple[float, float, float],
    writers: dict[str, Any],
    checks: dict[str, Any],
) -> dict[str, Any]:
    start, end, writes_end = window
    five_xx, worker_shares = server
    total = load["all"]
    lists = {}
    for name, samples in idle.items():
        loaded, during = load.get(name), writing.get(name)
        idle_p95 = percentile(samples, 95)
        idle_low, idle_high = percentile_interval(samples, 95)
        page: dict[str, Any] = {
            "idle_requests": len(samples),
            "idle_p50_ms": round(percentile(samples, 50), 1),
            "idle_p95_ms": round(idle_p95, 1),
            "idle_p95_interval_ms": [round(idle_low, 1), round(idle_high, 1)],
            "load_requests": loaded["requests"] if loaded else 0,
            "load_p50_ms": loaded["p50_ms"] if loaded else None,
            "load_p95_ms": loaded["p95_ms"] if loaded else None,
            "load_p95_interval_ms": loaded["p95_interval_ms"] if loaded else None,
            "slowdown_p95": round(loaded["p95_ms"] / idle_p95, 2) if loaded else None,
            "slowdown_p95_interval": [
                round(loaded["p95_interval_ms"][0] / idle_high, 2),
                round(loaded["p95_interval_ms"][1] / idle_low, 2),
            ] if loaded else None,
            "writing_requests": during["requests"] if during else 0,
            "writing_p95_ms": during["p95_ms"] if during else None,
            "writing_slowdown_p95": round(during["p95_ms"] / idle_p95, 2) if during else None,
        }  # fmt: skip
        lists[name] = page
    worst = max((page["slowdown_p95"] or math.inf) for page in lists.values())
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
        "run_time_s": round(end - start),
        "writing_s": round(min(writes_end, end) - start),
        "gunicorn_workers": args.workers,
        "gunicorn_threads": args.threads,
        "requests": total["requests"],
        "requests_per_s": round(total["rps"], 1),
        "p50_ms": total["p50_ms"],
        "p95_ms": total["p95_ms"],
        "p99_ms": total["p99_ms"],
        "errors": errors,
        "server_5xx": five_xx,
        "worker_shares": worker_shares,
        "by_request": {name: s for name, s in load.items() if name != "all"},
        "list_pages": lists,
        "list_slowdown_p95_worst": worst,
        "enough_samples": all(page["load_requests"] >= MIN_LOAD_SAMPLES for page in lists.values()),
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
        f"{report['users']} users, {report['run_time_s']} s of load "
        f"({report['writing_s']} s of it writing), scale {report['scale']}, "
        f"gunicorn {report['gunicorn_workers']} x {report['gunicorn_threads']}: "
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
    print(
        "| list page | idle n | idle p50 ms | idle p95 ms | load n | load p95 ms "
        "| slowdown (≤ 3) [95 % interval] | while writing: n, p95 ms, slowdown |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, page in report["list_pages"].items():
        low, high = page["slowdown_p95_interval"] or (math.nan, math.nan)
        print(
            f"| {name} | {page['idle_requests']} | {page['idle_p50_ms']:g} | "
            f"{page['idle_p95_ms']:g} | {page['load_requests']} | {page['load_p95_ms']} | "
            f"{page['slowdown_p95']}× [{low:g}–{high:g}] | {page['writing_requests']}, "
            f"{page['writing_p95_ms']}, {page['writing_slowdown_p95']}× |"
        )
    loads = report["load_average_1min"]
    print(
        "load average (1 min): "
        + ", ".join(f"{value:g} {name.replace('_', ' ')}" for name, value in loads.items())
    )
    others = report["busy_cpus_before"]
    if others is not None:
        print(f"CPUs in use by other processes before the idle requests: {others:g}")
        if others > BUSY_CPUS:
            print("the machine was busy: other processes' work is in these figures")
    if not report["enough_samples"]:
        print(f"too few samples: fewer than {MIN_LOAD_SAMPLES} requests of a list page under load")
    print("requests per gunicorn worker (shares):", report["worker_shares"])
    print("writers:", json.dumps(report["writers"]))
    print("checks:", json.dumps(report["checks"]))
    print("targets met:", "yes" if report["met"] else "NO")


if __name__ == "__main__":
    main()
