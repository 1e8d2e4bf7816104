"""The long-running Ghostscript (PDF/A-3 conversion of document after document), the
renderer that starts wkhtmltopdf and returns while it renders, and the hybrid renderer
in both Ghostscript modes.  Real wkhtmltopdf, Ghostscript and poppler-utils; no database.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest

from plugin.einvoice import (
    GhostscriptPool,
    GhostscriptServer,
    HybridOutcome,
    HybridRenderer,
    PdfaConfigError,
    PdfaConverter,
    PdfaError,
    WarmStarts,
    extract_xml,
    missing_pdfa_markers,
    pdfa_markers,
)
from plugin.pdf import PdfRenderer, PdfRenderError
from tests.einvoice_samples import invoice
from tests.helpers import sample_document

ICC = "/usr/share/color/icc/ghostscript/srgb.icc"
pytestmark = pytest.mark.skipif(
    not (shutil.which("gs") and shutil.which("wkhtmltopdf") and shutil.which("pdftotext")
         and shutil.which("pdffonts")),
    reason="Ghostscript, wkhtmltopdf and poppler-utils are needed",
)

#: Pages with different words and glyphs (umlauts, €, bold), so that a conversion
#: that kept anything of the previous document would show it.
PAGES = {
    "first": "<h1>Rechnung 2026-000042</h1><p>Müller &amp; Söhne GmbH, 1.234,56 €</p>",
    "second": "<p>Invoice 2026-000043</p><p><b>Oceanic Oy</b>, Helsinki: EUR 99.00</p>",
}


@pytest.fixture(scope="module")
def converter() -> PdfaConverter:
    return PdfaConverter(shutil.which("gs") or "gs", ICC)


@pytest.fixture(scope="module")
def pages() -> dict[str, bytes]:
    renderer = PdfRenderer(shutil.which("wkhtmltopdf") or "wkhtmltopdf")
    return {name: renderer.render_html(f"<html><body>{body}</body></html>")
            for name, body in PAGES.items()}


def words(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "words.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    return " ".join(text.split())


def fonts_embedded(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    output = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True,
                            text=True).stdout
    return [line.split()[-5] for line in output.splitlines()[2:]]


def gone(server: GhostscriptServer) -> bool:
    return server.running.process.returncode is not None and not os.path.exists(
        server.directory
    )


# The long-running Ghostscript ---------------------------------------------------


def test_one_ghostscript_converts_document_after_document(converter, pages, tmp_path):
    """Each output is a PDF/A-3 of its own input only: nothing of the previous job."""
    server = GhostscriptServer(converter)
    try:
        outputs = [server.convert(pages[name]) for name in ("first", "second", "first")]
    finally:
        server.close()
    assert server.jobs == 3
    for name, pdf in zip(("first", "second", "first"), outputs, strict=True):
        assert not missing_pdfa_markers(pdf, attachment=False)
        assert pdfa_markers(pdf).pages == 1
        assert set(fonts_embedded(pdf, tmp_path)) == {"yes"}
        assert words(pdf, tmp_path) == words(pages[name], tmp_path)
    assert "1.234,56 €" in words(outputs[0], tmp_path)
    assert "Müller" not in words(outputs[1], tmp_path)
    assert gone(server)


def test_a_document_ghostscript_cannot_read_fails_clearly_and_the_next_converts(
    converter, pages
):
    server = GhostscriptServer(converter)
    try:
        with pytest.raises(PdfaError, match="not a readable PDF|page"):
            server.convert(b"%PDF-1.4 this is no PDF")
        assert not missing_pdfa_markers(server.convert(pages["first"]), attachment=False)
    finally:
        server.close()


def test_a_conversion_over_its_time_limit_kills_ghostscript(pages):
    slow = PdfaConverter(shutil.which("gs") or "gs", ICC, timeout=0.001)
    server = GhostscriptServer(slow)
    with pytest.raises(PdfaError, match="did not finish within 0.001 s and was killed"):
        server.convert(pages["first"])
    assert gone(server)


def test_a_directory_with_postscript_special_characters_works(converter, pages, tmp_path,
                                                              monkeypatch):
    """The paths go into PostScript strings: parentheses, backslashes, umlauts escaped."""
    odd = tmp_path / "a (b) \\ c ü"
    odd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(odd))
    server = GhostscriptServer(converter)
    try:
        assert server.directory.startswith(str(odd))
        assert not missing_pdfa_markers(server.convert(pages["first"]), attachment=False)
    finally:
        server.close()
    assert list(odd.iterdir()) == []


def test_the_pool_replaces_dead_and_worn_servers_and_ends_them(converter, pages, tmp_path):
    pool = GhostscriptPool(converter, jobs_per_server=2)
    first = pool.convert(pages["first"])
    (server,) = pool._idle
    server.running.process.kill()  # a server that died is not used
    server.running.process.wait()
    assert words(pool.convert(pages["first"]), tmp_path) == words(first, tmp_path)
    (replacement,) = pool._idle
    assert replacement is not server
    assert replacement.jobs == 1
    pool.convert(pages["second"])  # its second job: it is ended, not kept
    assert pool._idle == []
    assert gone(replacement)
    pool.convert(pages["second"])
    (last,) = pool._idle
    pool.close()
    assert pool._idle == []
    assert gone(last)


def test_converter_mode_must_be_a_boolean():
    with pytest.raises(PdfaConfigError, match="BILLING_PDFA_LONG_RUNNING"):
        PdfaConverter.from_config({"BILLING_PDFA_LONG_RUNNING": "no"})
    assert PdfaConverter.from_config({}).long_running is True


# wkhtmltopdf started, then finished --------------------------------------------


def test_a_started_render_gives_the_bytes_of_a_whole_render():
    renderer = PdfRenderer(shutil.which("wkhtmltopdf") or "wkhtmltopdf")
    document = sample_document(3)
    rendering = renderer.start(document)
    assert rendering.running.process.stdin is None  # wkhtmltopdf has the whole page
    assert rendering.finish() == renderer.render(document)


def test_an_abandoned_render_kills_wkhtmltopdf():
    renderer = PdfRenderer(shutil.which("wkhtmltopdf") or "wkhtmltopdf")
    rendering = renderer.start_html(f"<html><body>{PAGES['first']}</body></html>")
    rendering.abandon()
    assert rendering.running.process.returncode is not None


def test_a_render_that_takes_no_input_times_out(tmp_path):
    """A program that never reads its page: the page is bigger than a pipe holds."""
    script = tmp_path / "stuck.sh"
    script.write_text("#!/bin/sh\nsleep 30\n")
    script.chmod(0o755)
    renderer = PdfRenderer(str(script), timeout=0.5)
    with pytest.raises(PdfRenderError, match="did not finish within 0.5 s"):
        renderer.start_html("<p>" + "x" * 2_000_000 + "</p>")


# The hybrid renderer in both modes -----------------------------------------------


@pytest.mark.parametrize("long_running", [True, False])
def test_the_hybrid_renderer_makes_the_same_document_in_both_modes(long_running, tmp_path):
    document = hybrid_document()
    config = {"BILLING_PDFA_LONG_RUNNING": long_running}
    with HybridRenderer.from_config(config, workers=1) as renderer:
        kind = GhostscriptPool if long_running else WarmStarts
        assert isinstance(renderer.ghostscript, kind)
        outcomes = [renderer.render_or_error(document) for _ in range(2)]
    plain = PdfRenderer.from_config({}, workers=1).render(
        {k: v for k, v in document.items() if k != "einvoice"}
    )
    for outcome in outcomes:
        assert isinstance(outcome, HybridOutcome)
        assert outcome.validation.ok
        assert not missing_pdfa_markers(outcome.pdf)
        assert extract_xml(outcome.pdf) == outcome.xml
        assert words(outcome.pdf, tmp_path) == words(plain, tmp_path)
        assert set(fonts_embedded(outcome.pdf, tmp_path)) == {"yes"}


def test_an_invalid_einvoice_gets_no_pdf_and_its_wkhtmltopdf_is_ended():
    document = hybrid_document()
    document["einvoice"] = dataclasses.replace(document["einvoice"], net=Decimal(1))
    with HybridRenderer.from_config({}, workers=1) as renderer:
        outcome = renderer.render_or_error(document)
        assert isinstance(outcome, HybridOutcome)
        assert outcome.pdf is None
        assert "BR-CO-10" in outcome.validation.summary()
        assert children("wkhtmltopdf") == []


def hybrid_document() -> dict:
    """A small invoice's template document carrying the sample e-invoice."""
    return {**sample_document(1), "einvoice": invoice()}


def children(name: str) -> list[int]:
    """This process's child processes running ``name`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                fields = stat.read().rsplit(")", 1)
        except OSError:
            continue
        command = fields[0].split("(", 1)[1]
        parent = int(fields[1].split()[1])
        if parent == os.getpid() and command == name:
            found.append(int(entry))
    return found
