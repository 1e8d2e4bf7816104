"""wkhtmltopdf's PDF as PDF/A-3b, with Ghostscript, checked afterwards.

wkhtmltopdf writes no PDF/A.  Ghostscript's pdfwrite converts it: every font
embedded, colours in sRGB, and the sRGB ICC profile as the output intent.
Ghostscript exits 0 even when it could not read the profile (it then prints a
warning and writes a PDF without output intent), so the result is opened
with pypdf and checked for the markers a PDF/A-3 file needs; the XMP that
factur-x writes later would claim PDF/A whatever the container is.
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from ..processes import DEFAULT_RENDER_NICE, ProcessTimeout, Running, stderr_text
from ..validators import InvalidValue, niceness

PDFA_DEFAULTS: dict[str, Any] = {
    # Path of the Ghostscript binary.  ``None``: ``gs`` on the PATH.
    "BILLING_GHOSTSCRIPT": None,
    # The sRGB ICC profile of the output intent (Debian: package libgs-common).
    "BILLING_ICC_PROFILE": "/usr/share/color/icc/ghostscript/srgb.icc",
    # Seconds one conversion may take before Ghostscript is killed.
    "BILLING_PDFA_TIMEOUT": 30,
    # Niceness of Ghostscript, as of wkhtmltopdf (plugin.pdf).
    "BILLING_RENDER_NICE": DEFAULT_RENDER_NICE,
}

#: Reproducible output: Ghostscript otherwise writes the time of the run into the
#: document id and the XMP; the info dictionary keeps the pinned creation date.
_REPRODUCIBLE = {"SOURCE_DATE_EPOCH": "0", "TZ": "UTC"}


class PdfaError(Exception):
    """The conversion failed or its result is not PDF/A-3: the message says which."""


class PdfaConfigError(RuntimeError):
    """No Ghostscript or no colour profile: fix the installation or the config."""


def _definition_file() -> str:
    return str(resources.files("plugin.einvoice") / "pdfa_def.ps")


@dataclass(frozen=True)
class PdfaConverter:
    ghostscript: str
    icc_profile: str
    timeout: float = PDFA_DEFAULTS["BILLING_PDFA_TIMEOUT"]
    nice: int = DEFAULT_RENDER_NICE

    def __post_init__(self) -> None:
        if not os.access(self.ghostscript, os.X_OK) or os.path.isdir(self.ghostscript):
            raise PdfaConfigError(
                f"BILLING_GHOSTSCRIPT: {self.ghostscript!r} is not an executable file"
            )
        if not os.path.isabs(self.icc_profile) or not os.path.isfile(self.icc_profile):
            raise PdfaConfigError(
                f"BILLING_ICC_PROFILE: {self.icc_profile!r} is not an absolute path to a file "
                "(Debian: apt-get install libgs-common)"
            )
        if not self.timeout > 0:
            raise PdfaConfigError(f"BILLING_PDFA_TIMEOUT must be positive, not {self.timeout!r}")
        try:
            niceness(self.nice)
        except InvalidValue as exc:
            raise PdfaConfigError(f"BILLING_RENDER_NICE {exc}") from None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PdfaConverter:
        settings = {**PDFA_DEFAULTS, **{k: config[k] for k in PDFA_DEFAULTS if k in config}}
        path = settings["BILLING_GHOSTSCRIPT"] or shutil.which("gs")
        if not path:
            raise PdfaConfigError(
                "Ghostscript is not installed (apt-get install ghostscript) "
                "or set BILLING_GHOSTSCRIPT to its path"
            )
        return cls(str(path), str(settings["BILLING_ICC_PROFILE"]),
                   float(settings["BILLING_PDFA_TIMEOUT"]), settings["BILLING_RENDER_NICE"])

    def command(self, source: str = "-", target: str = "-") -> list[str]:
        """The Ghostscript command line; ``-`` reads the PDF from stdin, writes it to stdout."""
        definition = _definition_file()
        return [
            self.ghostscript,
            "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER",
            # No scan of the system's fonts: wkhtmltopdf embeds every font it uses.
            "-dNOPLATFONTS",
            # The PDF interpreter of Ghostscript 10.00 rewrites the fonts' ToUnicode
            # maps wrongly (pdftotext reads "€" as "¬"); the previous one keeps them.
            "-dNEWPDF=false",
            f"--permit-file-read={self.icc_profile}",
            f"--permit-file-read={definition}",
            "-sDEVICE=pdfwrite",
            "-dPDFA=3",
            "-dPDFACompatibilityPolicy=1",
            "-sColorConversionStrategy=RGB",
            "-sProcessColorModel=DeviceRGB",
            "-dEmbedAllFonts=true",
            # wkhtmltopdf's fonts are embedded already; re-subsetting them costs time.
            "-dSubsetFonts=false",
            f"-sBillingICCProfile={self.icc_profile}",
            f"-sOutputFile={target}",
            definition,
            source,
        ]

    def start(self) -> Conversion:
        """Start Ghostscript now: it takes some 150 ms to start up, time in which the page
        can be rendered.  The PDF goes in through :meth:`Conversion.finish`."""
        try:
            return Conversion(
                self, Running(self.command("-", "-"), _REPRODUCIBLE, nice=self.nice)
            )
        except OSError as exc:
            raise PdfaError(f"Ghostscript could not be started: {exc}") from None

    def convert(self, pdf: bytes) -> bytes:
        """``pdf`` as PDF/A-3b; :class:`PdfaError` if Ghostscript fails or the result is not."""
        return self.start().finish(pdf)


@dataclass
class Conversion:
    """One Ghostscript run, started and waiting for its PDF."""

    converter: PdfaConverter
    running: Running

    def finish(self, pdf: bytes) -> bytes:
        try:
            done = self.running.finish(pdf, timeout=self.converter.timeout)
        except ProcessTimeout as exc:
            raise PdfaError(
                f"Ghostscript did not finish within {self.converter.timeout:g} s and was "
                f"killed; stderr: {stderr_text(exc.stderr)}"
            ) from None
        output = done.stdout
        messages = stderr_text(done.stderr)
        if done.returncode != 0 or not output.startswith(b"%PDF-"):
            raise PdfaError(f"Ghostscript exited with status {done.returncode}: {messages}")
        missing = missing_pdfa_markers(output, attachment=False)
        if missing:
            raise PdfaError(f"Ghostscript wrote no PDF/A-3 ({', '.join(missing)}): {messages}")
        return output

    def abandon(self) -> None:
        self.running.abandon()


class WarmStarts:
    """Ghostscript started ahead: each conversion takes a process that has already
    started up (some 150 ms, more than a wkhtmltopdf render of one page) and starts
    the next one, so that in a run of many invoices no conversion waits for it.

    At most ``spares`` processes wait at a time, each blocked reading its stdin;
    :meth:`close` (or garbage collection) ends them.  Thread-safe.
    """

    def __init__(self, converter: PdfaConverter, spares: int = 1) -> None:
        self.converter = converter
        self.spares = spares
        self._lock = threading.Lock()
        self._waiting: list[Running] = []
        self._finalizer = weakref.finalize(self, _abandon_all, self._waiting)

    def take(self) -> Conversion:
        """A conversion whose Ghostscript has started (a fresh one if none is waiting)."""
        with self._lock:
            waiting = self._waiting.pop() if self._waiting else None
        if waiting is None or waiting.process.poll() is not None:
            if waiting is not None:
                waiting.abandon()
            conversion = self.converter.start()
        else:
            conversion = Conversion(self.converter, waiting)
        self._start_spare()
        return conversion

    def _start_spare(self) -> None:
        with self._lock:
            if len(self._waiting) >= self.spares:
                return
        try:
            spare = self.converter.start().running
        except PdfaError:
            return  # the next take() reports it
        with self._lock:
            if len(self._waiting) < self.spares:
                self._waiting.append(spare)
                return
        spare.abandon()

    def close(self) -> None:
        self._finalizer()


def _abandon_all(waiting: list[Running]) -> None:
    while waiting:
        waiting.pop().abandon()


@dataclass(frozen=True)
class PdfaMarkers:
    """What a reader finds in a PDF: enough to tell a PDF/A-3 e-invoice from a plain PDF."""

    pdfaid_part: str | None
    pdfaid_conformance: str | None
    output_intent: bool
    af_files: tuple[str, ...]


def pdfa_markers(pdf: bytes) -> PdfaMarkers:
    """The PDF/A-3 markers of ``pdf``: XMP ``pdfaid``, the sRGB output intent, ``/AF`` files."""
    try:
        reader = PdfReader(io.BytesIO(pdf))
        catalog = reader.trailer["/Root"]
        metadata = reader.xmp_metadata
    except (PdfReadError, KeyError, ValueError) as exc:
        raise PdfaError(f"not a readable PDF: {exc}") from None
    part = conformance = None
    if metadata is not None:
        part = _xmp_value(metadata, "part")
        conformance = _xmp_value(metadata, "conformance")
    intents = catalog.get("/OutputIntents")
    has_intent = bool(intents) and any(
        _is_srgb_intent(intent.get_object()) for intent in intents.get_object()
    )
    files = tuple(
        str(spec.get_object().get("/F")) for spec in (catalog.get("/AF") or ())
    )
    return PdfaMarkers(part, conformance, has_intent, files)


def _is_srgb_intent(intent: Any) -> bool:
    """A PDF/A output intent whose profile is an RGB ICC profile (``acsp`` at byte 36)."""
    if intent.get("/S") != "/GTS_PDFA1" or intent.get("/DestOutputProfile") is None:
        return False
    profile = intent["/DestOutputProfile"].get_object().get_data()
    return profile[36:40] == b"acsp" and profile[16:20] == b"RGB "


def _xmp_value(metadata: Any, name: str) -> str | None:
    """``pdfaid:name`` as element or attribute (Ghostscript and factur-x write it differently)."""
    namespace = "http://www.aiim.org/pdfa/ns/id/"
    for description in metadata.rdf_root.getElementsByTagNameNS(
        "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "Description"
    ):
        if description.hasAttributeNS(namespace, name):
            return description.getAttributeNS(namespace, name)
        for node in description.getElementsByTagNameNS(namespace, name):
            return "".join(child.data for child in node.childNodes if child.nodeType == 3)
    return None


def missing_pdfa_markers(pdf: bytes, *, attachment: bool = True) -> list[str]:
    """What ``pdf`` lacks to be a PDF/A-3 (with ``attachment``: a Factur-X) file; empty if none."""
    markers = pdfa_markers(pdf)
    missing = []
    if markers.pdfaid_part != "3":
        missing.append(f"XMP pdfaid:part is {markers.pdfaid_part!r}, not '3'")
    if not markers.output_intent:
        missing.append("no PDF/A output intent with an sRGB ICC profile")
    if attachment and "factur-x.xml" not in markers.af_files:
        missing.append("no factur-x.xml in /AF")
    return missing
