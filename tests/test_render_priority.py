"""Background work yields the CPU: renderers and batch commands run niced.

The niceness is read where the scheduler reads it, from ``/proc/<pid>/stat``
of the running wkhtmltopdf or Ghostscript process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from plugin.einvoice.pdfa import PdfaConfigError, PdfaConverter
from plugin.pdf import PdfConfigError, PdfRenderer
from tests.conftest import REPOSITORY, RULES_PATH
from tests.test_pdfs import add_invoice, cli, sample_document, stored

pytestmark = pytest.mark.skipif(
    not (shutil.which("wkhtmltopdf") and shutil.which("gs") and Path("/proc/self/stat").exists()),
    reason="wkhtmltopdf, Ghostscript and Linux's /proc are needed",
)


def stat(pid: int) -> tuple[str, int, int] | None:
    """(command name, parent pid, niceness) of a running process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, int(fields[1]), int(fields[16])


def descendants_named(root: int, name: str) -> dict[int, int]:
    """pid -> niceness of the running processes called ``name`` below ``root``."""
    processes = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := stat(int(entry.name))) is not None:
            processes[int(entry.name)] = info
    found = {}
    for pid, (command, _, nice) in processes.items():
        ancestor = pid
        while ancestor in processes and ancestor != root:
            ancestor = processes[ancestor][1]
        if command == name and ancestor == root:
            found[pid] = nice
    return found


def watch(root: int, name: str, busy: threading.Event | subprocess.Popen) -> dict[int, int]:
    """Every ``name`` process seen below ``root`` while ``busy`` runs, with its niceness."""
    seen: dict[int, int] = {}

    def running() -> bool:
        if isinstance(busy, subprocess.Popen):
            return busy.poll() is None
        return not busy.is_set()

    while running():
        seen.update(descendants_named(root, name))
        time.sleep(0.002)
    return seen


def own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def render_watched(renderer: PdfRenderer, documents: int = 3) -> tuple[list, dict[int, int]]:
    done = threading.Event()
    outcomes: list = []

    def render() -> None:
        try:
            outcomes.extend(renderer.render_many([sample_document(n) for n in range(documents)]))
        finally:
            done.set()

    thread = threading.Thread(target=render)
    thread.start()
    seen = watch(os.getpid(), "wkhtmltopdf", done)
    thread.join()
    return outcomes, seen


@pytest.mark.parametrize(("config", "expected"), [({}, 10), ({"BILLING_RENDER_NICE": 4}, 4)])
def test_wkhtmltopdf_runs_at_the_render_niceness(config, expected):
    outcomes, seen = render_watched(PdfRenderer.from_config(config, workers=1))
    assert all(isinstance(pdf, bytes) and pdf.startswith(b"%PDF-") for pdf in outcomes)
    assert seen, "no wkhtmltopdf process was seen running"
    assert set(seen.values()) == {max(expected, own_niceness())}


def started(pid: int, name: str) -> tuple[str, int, int]:
    """The process's stat once it runs ``name`` (``nice`` execs it)."""
    deadline = time.monotonic() + 10
    while (info := stat(pid)) is not None and info[0] != name and time.monotonic() < deadline:
        time.sleep(0.005)
    assert info is not None, f"process {pid} ended before it ran {name}"
    assert info[0] == name, info
    return info


def test_ghostscript_waits_at_the_render_niceness():
    """A Ghostscript started ahead (it waits for its PDF on stdin) is niced already."""
    conversion = PdfaConverter.from_config({"BILLING_RENDER_NICE": 7}).start()
    try:
        _, parent, nice = started(conversion.running.process.pid, "gs")
        assert parent == os.getpid()
        assert nice == max(7, own_niceness())
    finally:
        conversion.abandon()


def test_a_renderer_stays_in_the_callers_session_in_a_group_of_its_own():
    """In a session of its own, Linux's autogroup scheduler gave the renderer as much
    CPU as the whole back-office's session, its niceness counting only inside its
    session; in its own process group, a timeout still kills it with its children."""
    conversion = PdfaConverter.from_config({}).start()
    pid = conversion.running.process.pid
    try:
        started(pid, "gs")
        text = Path(f"/proc/{pid}/stat").read_text()
        group, session = (int(field) for field in text[text.rindex(")") + 2 :].split()[2:4])
        assert (group, session) == (pid, os.getsid(0))
        autogroup = Path("/proc/self/autogroup")
        if autogroup.exists():
            assert Path(f"/proc/{pid}/autogroup").read_text() == autogroup.read_text()
    finally:
        conversion.abandon()


def test_zero_leaves_the_renderers_at_the_callers_priority():
    conversion = PdfaConverter.from_config({"BILLING_RENDER_NICE": 0}).start()
    try:
        assert started(conversion.running.process.pid, "gs")[2] == own_niceness()
    finally:
        conversion.abandon()


@pytest.mark.parametrize("value", [-5, 20, "10", 2.5, True, None])
def test_a_bad_render_niceness_is_refused_by_name(value):
    refused = "BILLING_RENDER_NICE must be a niceness from 0 to 19"
    with pytest.raises(PdfConfigError, match=refused):
        PdfRenderer.from_config({"BILLING_RENDER_NICE": value})
    with pytest.raises(PdfaConfigError, match=refused):
        PdfaConverter.from_config({"BILLING_RENDER_NICE": value})


def test_render_pending_with_a_bad_niceness_renders_nothing(app):
    add_invoice(app, 1)
    app.config["BILLING_RENDER_NICE"] = 25
    result = cli(app, "render-pending")
    assert result.exit_code == 1
    assert "BILLING_RENDER_NICE must be a niceness from 0 to 19, not 25" in result.output
    invoice = stored(app, "2026-00001")
    assert (invoice.pdf_sha256, invoice.pdf_attempts) == (None, 0)


def flask_billing(database_url: str, config: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DEMO_DATABASE_URL": database_url, "BILLING_RULES_PATH": str(RULES_PATH)}
    return subprocess.Popen(
        [
            sys.executable, "-m", "flask",
            "--app", f"examples.backoffice:create_app({config})",
            "billing", *args,
        ],  # fmt: skip
        cwd=REPOSITORY,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_close_month_lowers_its_own_priority(demo_cli, database_url):
    """The command's process is nicer, and so is every renderer it starts
    (here the renderers add nothing of their own)."""
    close = flask_billing(
        database_url,
        '{"BILLING_BATCH_NICE": 6, "BILLING_RENDER_NICE": 0, "BILLING_PDF_WORKERS": 1}',
        "close-month", "2026-10",
    )  # fmt: skip
    seen = watch(close.pid, "wkhtmltopdf", close)
    output = close.communicate()[0]
    assert close.returncode == 0, output
    assert "Invoice PDFs rendered: 4, failed: 0." in output
    assert seen, "no wkhtmltopdf process was seen running"
    assert set(seen.values()) == {max(6, own_niceness())}


def test_a_bad_batch_niceness_stops_the_command_before_it_changes_anything(app, demo_cli):
    app.config["BILLING_BATCH_NICE"] = -1
    result = demo_cli("close-month", "2026-10")
    assert result.exit_code == 1
    assert "BILLING_BATCH_NICE must be a niceness from 0 to 19, not -1" in result.output
    listed = demo_cli("invoices", "--json")
    assert (listed.exit_code, listed.output.strip()) == (0, "[]")
