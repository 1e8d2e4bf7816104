"""10. ``flask billing worker``: invoice PDFs per second with two worker processes against
one, on this machine's cores.

Two real worker processes run on a copy of the data set for the whole
measurement, so neither start-up nor the validator's first compilation is
timed.  A run makes ``worker_batch`` invoices of the last three months' closes pending again
(one commit) and waits until every one is rendered and stored, reading the
workers' logs (one line per PDF).  For the one-worker runs the second process
is paused (SIGSTOP while it is idle, holding no job) and resumed afterwards.
The pairs alternate which side goes first; the ratio is the median of the
per-pair ratios (:mod:`bench.harness`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from plugin.models import Invoice, OutboxMail
from plugin.services.invoicing import close_month
from plugin.services.periods import Month

from .databases import REPOSITORY, RULES, RULES_PATH, Scale
from .harness import Figure, Ratio, check, log, seconds

#: What makes a rendered invoice pending again (and the invoices the run does not use done).
PENDING = {
    "pdf": None, "pdf_sha256": None, "pdf_error": None, "pdf_attempts": 0,
    "einvoice_xml": None, "einvoice_sha256": None, "einvoice_status": None,
    "einvoice_failures": None, "pdf_claim_token": None, "pdf_claimed_until": None,
    "pdf_next_attempt_at": None,
}  # fmt: skip
TIMEOUT = 600


#: The line a worker logs for each PDF it stored.
RENDERED = re.compile(rb" pdf \S+ rendered in ")


class Worker:
    def __init__(self, url: str, log_file: Path) -> None:
        self.log_file = log_file
        #: How much of the log :meth:`rendered` has counted, and the PDFs found in it.
        self._counted = 0
        self._rendered = 0
        config = {"BILLING_WORKER_POLL_SECONDS": 0.05, "BILLING_WORKER_LISTEN": False}
        env = {**os.environ, "DEMO_MODE": "1", "DEMO_DATABASE_URL": url,
               "BILLING_RULES_PATH": str(RULES_PATH)}
        command = [sys.executable, "-m", "flask", "--app",
                   f"examples.backoffice:create_app({config!r})", "billing", "worker"]
        with open(log_file, "wb") as out:
            self.process = subprocess.Popen(
                command, cwd=REPOSITORY, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def text(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def rendered(self) -> int:
        """The PDFs the worker logged so far.

        Only the complete lines written since the last call are read: the bench
        polls this every few milliseconds while the workers run, and its own CPU
        time is taken from them (rereading the whole log cost 1 to 2 % of a core).
        """
        with open(self.log_file, "rb") as log:
            log.seek(self._counted)
            new = log.read()
        complete = new.rfind(b"\n") + 1
        self._rendered += len(RENDERED.findall(new, 0, complete))
        self._counted += complete
        return self._rendered

    def stop(self) -> int:
        self.process.send_signal(signal.SIGCONT)
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=TIMEOUT)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def run(data, scale: Scale, now: datetime, runs: int) -> list[Figure]:
    url = data.copy()
    engine = create_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":
        # The paused worker may be stopped in the middle of a poll's read: in SQLite's
        # rollback-journal mode its read lock would block every commit of the other worker
        # (and the batch's own) until the busy timeout. In WAL mode readers block no writer.
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode = WAL")
    with Session(engine) as session:
        # The last three months, oldest first: enough invoices for a batch of a few seconds.
        last = Month.of(now, RULES.zoneinfo).previous()
        for month in (last.previous().previous(), last.previous(), last):
            close_month(session, RULES, month, now, actor="bench")
            session.commit()
        batch = select(Invoice.id).order_by(Invoice.id).limit(scale.worker_batch)
        ids = list(session.scalars(batch))
        check(len(ids) == scale.worker_batch, "not enough invoices for the worker batch")
        # Nothing is the workers' business until a run makes the batch pending: every
        # invoice counts as rendered, and there is no mail.
        session.execute(delete(OutboxMail))
        session.execute(update(Invoice).values(pdf_sha256="bench"))
        session.commit()
    folder = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    pair = [Worker(url, folder / f"worker-{n}.log") for n in range(2)]
    load_before = _load()
    try:
        for worker in pair:
            _wait(lambda w=worker: "started" in w.text(), "a worker to start", pair)
        _batch(engine, ids, pair)  # warm-up: both compile the validator, start Ghostscript
        one, two = [], []
        for turn in range(max(runs, 3)):
            for workers in ((1, 2) if turn % 2 == 0 else (2, 1)):
                took = _timed(engine, ids, pair, workers)
                (one if workers == 1 else two).append(took)
                log(f"  {len(ids)} PDFs with {workers} worker(s): {took:.2f} s, load {_load()}")
    finally:
        codes = [worker.stop() for worker in pair]
        engine.dispose()
        data.drop(url)
    check(codes == [0, 0], f"the workers exited with {codes}")
    found = Ratio.of(one, two)
    n = len(ids)
    median_one, median_two = sorted(one)[len(one) // 2], sorted(two)[len(two) // 2]
    return [
        Figure.of_ratio(
            f"{n} e-invoice PDFs, 2 worker processes vs 1 ({os.cpu_count()} cores; "
            f"load {load_before} before, {_load()} after)",
            "-",
            found,
            key="worker_pdf_speedup",
            plugin=f"{n / median_two:.2f} PDFs/s ({seconds(median_two)})",
            baseline=f"{n / median_one:.2f} PDFs/s ({seconds(median_one)})",
        )
    ]


def _timed(engine, ids: list[int], pair: list[Worker], workers: int) -> float:
    paused = pair[workers:]
    for worker in paused:
        worker.process.send_signal(signal.SIGSTOP)
    try:
        return _batch(engine, ids, pair[:workers])
    finally:
        for worker in paused:
            worker.process.send_signal(signal.SIGCONT)


def _batch(engine, ids: list[int], working: list[Worker]) -> float:
    """Make the batch pending in one commit; seconds until the workers logged every PDF."""
    before = sum(worker.rendered() for worker in working)
    with engine.begin() as connection:
        connection.execute(update(Invoice).where(Invoice.id.in_(ids)).values(PENDING))
        start = time.perf_counter()
    _wait(lambda: sum(w.rendered() for w in working) - before >= len(ids), "the batch", working)
    elapsed = time.perf_counter() - start
    with engine.connect() as connection:
        missing = connection.scalar(
            select(Invoice.id).where(Invoice.id.in_(ids), Invoice.pdf_sha256.is_(None))
        )
    check(missing is None, "a PDF of the batch is not stored")
    check(sum(w.rendered() for w in working) - before == len(ids), "a PDF was rendered twice")
    return elapsed


def _wait(condition, what: str, workers: list[Worker]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        for worker in workers:
            check(worker.process.poll() is None, f"a worker exited:\n{worker.text()}")
        check(time.monotonic() < deadline, f"gave up waiting for {what}")
        time.sleep(0.02)
