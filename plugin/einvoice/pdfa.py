"""wkhtmltopdf's PDF as PDF/A-3b, with Ghostscript, checked afterwards.

wkhtmltopdf writes no PDF/A.  Ghostscript's pdfwrite converts it: every font
embedded, colours in sRGB, and the sRGB ICC profile as the output intent.
Ghostscript exits 0 even when it could not read the profile (it then prints a
warning and writes a PDF without output intent), so the result is opened
with pypdf and checked for the markers a PDF/A-3 file needs; the XMP that
factur-x writes later would claim PDF/A whatever the container is.

It stays one module (about 520 lines): the conversion, its check and the pool
of long-running Ghostscript servers share the same command line and the same
private directories.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol, cast

from pypdf import PdfReader
from pypdf.errors import PdfReadError
from pypdf.generic import DictionaryObject

from ..config import PDFA_DEFAULTS
from ..processes import DEFAULT_RENDER_NICE, ProcessExited, ProcessTimeout, Running, stderr_text
from ..validators import InvalidValue, niceness

#: A long-running Ghostscript is replaced after this many documents: its memory grows
#: by some 150 kB per document (measured with Ghostscript 10.00), so it stays below
#: some 60 MB; starting a new one costs less than two conversions.
SERVER_JOBS = 200

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
    long_running: bool = PDFA_DEFAULTS["BILLING_PDFA_LONG_RUNNING"]

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
        if not isinstance(self.long_running, bool):
            raise PdfaConfigError(
                f"BILLING_PDFA_LONG_RUNNING must be True or False, not {self.long_running!r}"
            )

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
                   float(settings["BILLING_PDFA_TIMEOUT"]), settings["BILLING_RENDER_NICE"],
                   settings["BILLING_PDFA_LONG_RUNNING"])

    def command(self, source: str = "-", target: str = "-") -> list[str]:
        """The Ghostscript command line; ``-`` reads the PDF from stdin, writes it to stdout."""
        definition = _definition_file()
        return [
            self.ghostscript,
            "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER",
            *self._options(),
            f"-sOutputFile={target}",
            definition,
            source,
        ]

    def server_command(self, directory: str) -> list[str]:
        """The command of a long-running Ghostscript (:class:`GhostscriptServer`): the same
        options, no file to run, PostScript read line by line from stdin without a prompt,
        and files read and written only in its own ``directory`` (still ``-dSAFER``)."""
        return [
            self.ghostscript,
            "-q", "-dNOPAUSE", "-dNOPROMPT", "-dSAFER",
            f"--permit-file-read={directory}/",
            f"--permit-file-write={directory}/",
            *self._options(),
            f"-sOutputFile={os.path.join(directory, _IDLE)}",
        ]

    def _options(self) -> list[str]:
        definition = _definition_file()
        return [
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
        ]

    def take(self) -> Conversion:
        """A conversion of its own (the same as :meth:`start`; see :class:`Converts`)."""
        return self.start()

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
        messages = stderr_text(done.stderr)
        if done.returncode != 0 or not done.stdout.startswith(b"%PDF-"):
            raise PdfaError(f"Ghostscript exited with status {done.returncode}: {messages}")
        return _checked_pdfa(pdf, done.stdout, messages)

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


def _checked_pdfa(source: bytes, output: bytes, messages: str) -> bytes:
    """Ghostscript's ``output``, if it is a PDF/A-3 with every page of ``source``.

    Ghostscript exits 0 when it wrote no output intent, and when it could not
    read the input at all (a PDF/A-3 without pages), so both are checked here.
    """
    markers = pdfa_markers(output)
    missing = _missing(markers, attachment=False)
    if missing:
        raise PdfaError(f"Ghostscript wrote no PDF/A-3 ({', '.join(missing)}): {messages}")
    expected, written = _pages(source), markers.pages
    if written != expected:
        raise PdfaError(f"Ghostscript wrote {written} of {expected} page(s): {messages}")
    return output


def _pages(pdf: bytes) -> int:
    try:
        return len(PdfReader(io.BytesIO(pdf)).pages)
    except (PdfReadError, KeyError, ValueError) as exc:
        raise PdfaError(f"not a readable PDF: {exc}") from None


#: Names in a :class:`GhostscriptServer`'s directory (its output between jobs, each
#: job's input and output), and how its answers start.
_IDLE, _SOURCE, _TARGET = "idle.pdf", "in.pdf", "out.pdf"
_ANSWER = b"%%billing-job "


def _ps_string(text: str) -> str:
    """``text`` (a path) as a PostScript string literal, whatever characters it holds."""
    escaped = "".join(
        chr(byte) if 32 <= byte < 127 and byte not in b"()\\" else f"\\{byte:03o}"
        for byte in os.fsencode(text)
    )
    return f"({escaped})"


class GhostscriptServer:
    """One Ghostscript that converts document after document: it starts up (some 50 ms
    of CPU, more than the conversion of one page) only once.

    It runs :meth:`PdfaConverter.server_command`, which reads PostScript from
    stdin line by line.  Each job is one line: inside ``save`` ... ``restore``
    (nothing a document defines outlives its job) it points pdfwrite at a new
    output file in the server's private directory, runs the PDF/A definition
    and the page, and ``restore`` puts the idle output file back, which closes
    the job's file; then a line ``%%billing-job TOKEN N done`` (or ``failed``)
    on stdout says it is complete (the token is the server's secret, so no
    message can pass for it).  Ghostscript's messages come on the same stream
    (stderr is merged), so they are the job's messages.

    Not thread-safe: one job at a time (:class:`GhostscriptPool` hands out one
    server per conversion).  A job Ghostscript fails or that times out ends the
    server; one whose output fails the PDF/A-3 checks leaves it usable.
    """

    def __init__(self, converter: PdfaConverter) -> None:
        self.converter = converter
        self.directory = tempfile.mkdtemp(prefix="billing-gs-")
        self.jobs = 0
        self._answer = _ANSWER + secrets.token_hex(8).encode("ascii")
        try:
            self.running = Running(converter.server_command(self.directory), _REPRODUCIBLE,
                                   merge_stderr=True, nice=converter.nice)
        except OSError as exc:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise PdfaError(f"Ghostscript could not be started: {exc}") from None
        self._finalizer = weakref.finalize(self, _end_server, self.running, self.directory)

    @property
    def alive(self) -> bool:
        return self.running.process.poll() is None

    def convert(self, pdf: bytes) -> bytes:
        """``pdf`` as PDF/A-3b; :class:`PdfaError` (and the server ended) if that fails."""
        self.jobs += 1
        source = os.path.join(self.directory, _SOURCE)
        target = os.path.join(self.directory, _TARGET)
        with open(source, "wb") as file:
            file.write(pdf)
        line = (
            f"/billing-job save def "
            f"{{ << /OutputFile {_ps_string(target)} >> setpagedevice "
            f"{_ps_string(_definition_file())} run {_ps_string(source)} run }} stopped "
            f"{{ clear /failed }} {{ clear /done }} ifelse cleardictstack billing-job restore "
            f"({self._answer.decode()} {self.jobs} ) print = flush\n"
        )
        try:
            before, answer = self.running.request(
                line.encode("ascii"), self._answer, timeout=self.converter.timeout
            )
        except ProcessTimeout as exc:
            self.close()
            raise PdfaError(
                f"Ghostscript did not finish within {self.converter.timeout:g} s and was "
                f"killed; output: {stderr_text(exc.stderr)}"
            ) from None
        except ProcessExited as exc:
            self.close()
            raise PdfaError(f"Ghostscript ended unexpectedly: {stderr_text(exc.output)}") from None
        messages = stderr_text(before)
        try:
            with open(target, "rb") as file:
                output = file.read()
        except FileNotFoundError:
            output = b""
        # Invoices are confidential: no copy stays on disk between jobs.
        for path in (source, target):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if answer != self._answer + f" {self.jobs} done".encode() or not output.startswith(
            b"%PDF-"
        ):
            self.close()
            raise PdfaError(f"Ghostscript could not convert the PDF: {messages}")
        return _checked_pdfa(pdf, output, messages)

    def close(self) -> None:
        """End Ghostscript and remove its directory (garbage collection does it too)."""
        self._finalizer()


def _end_server(running: Running, directory: str) -> None:
    running.abandon()
    shutil.rmtree(directory, ignore_errors=True)


class GhostscriptPool:
    """Long-running Ghostscript servers, one for each conversion under way, started
    on first use and kept for the next; thread-safe.  :meth:`close` (or garbage
    collection) ends them.

    A server that failed is ended, not reused; one that converted
    :data:`SERVER_JOBS` documents is replaced.
    """

    def __init__(self, converter: PdfaConverter, jobs_per_server: int = SERVER_JOBS) -> None:
        self.converter = converter
        self.jobs_per_server = jobs_per_server
        self._lock = threading.Lock()
        self._idle: list[GhostscriptServer] = []
        self._finalizer = weakref.finalize(self, _close_all, self._idle)

    def take(self) -> PooledConversion:
        """A conversion that runs on a server of the pool (see :class:`Converts`)."""
        return PooledConversion(self)

    def convert(self, pdf: bytes) -> bytes:
        """``pdf`` as PDF/A-3b, on an idle server or a new one."""
        with self._lock:
            server = self._idle.pop() if self._idle else None
        if server is None or not server.alive:
            if server is not None:
                server.close()
            server = GhostscriptServer(self.converter)
        try:
            output = server.convert(pdf)
        except PdfaError:
            server.close()  # whatever failed, the next document gets a fresh one
            raise
        if server.jobs >= self.jobs_per_server:
            server.close()
        else:
            with self._lock:
                self._idle.append(server)
        return output

    def close(self) -> None:
        self._finalizer()


@dataclass(frozen=True)
class PooledConversion:
    pool: GhostscriptPool

    def finish(self, pdf: bytes) -> bytes:
        return self.pool.convert(pdf)

    def abandon(self) -> None:
        """Nothing to end: the server is only taken while it converts."""


def _close_all(servers: list[GhostscriptServer]) -> None:
    while servers:
        servers.pop().close()


class Converts(Protocol):
    """Where a conversion comes from: :class:`PdfaConverter` (a fresh Ghostscript),
    :class:`WarmStarts` (one started ahead) or :class:`GhostscriptPool` (a long-running one).

    ``take()`` returns an object with ``finish(pdf) -> bytes`` and ``abandon()``.
    """

    def take(self) -> Conversion | PooledConversion: ...


@dataclass(frozen=True)
class PdfaMarkers:
    """What a reader finds in a PDF: enough to tell a PDF/A-3 e-invoice from a plain PDF."""

    pdfaid_part: str | None
    pdfaid_conformance: str | None
    output_intent: bool
    af_files: tuple[str, ...]
    pages: int = 0


def pdfa_markers(pdf: bytes) -> PdfaMarkers:
    """The PDF/A-3 markers of ``pdf``: XMP ``pdfaid``, the sRGB output intent, ``/AF`` files."""
    try:
        reader = PdfReader(io.BytesIO(pdf))
        catalog = cast(DictionaryObject, reader.trailer["/Root"])
        metadata = reader.xmp_metadata
        pages = len(reader.pages)
    except (PdfReadError, KeyError, ValueError) as exc:
        raise PdfaError(f"not a readable PDF: {exc}") from None
    part = conformance = None
    if metadata is not None:
        part = _xmp_value(metadata, "part")
        conformance = _xmp_value(metadata, "conformance")
    intents = catalog.get("/OutputIntents")
    has_intent = bool(
        intents and any(_is_srgb_intent(intent.get_object()) for intent in intents.get_object())
    )
    files = tuple(
        str(spec.get_object().get("/F")) for spec in (catalog.get("/AF") or ())
    )
    return PdfaMarkers(part, conformance, has_intent, files, pages)


def _is_srgb_intent(intent: Any) -> bool:
    """A PDF/A output intent whose profile is an RGB ICC profile (``acsp`` at byte 36)."""
    if intent.get("/S") != "/GTS_PDFA1" or intent.get("/DestOutputProfile") is None:
        return False
    profile = intent["/DestOutputProfile"].get_object().get_data()
    return bool(profile[36:40] == b"acsp" and profile[16:20] == b"RGB ")


def _xmp_value(metadata: Any, name: str) -> str | None:
    """``pdfaid:name`` as element or attribute (Ghostscript and factur-x write it differently)."""
    namespace = "http://www.aiim.org/pdfa/ns/id/"
    for description in metadata.rdf_root.getElementsByTagNameNS(
        "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "Description"
    ):
        if description.hasAttributeNS(namespace, name):
            return str(description.getAttributeNS(namespace, name))
        for node in description.getElementsByTagNameNS(namespace, name):
            return "".join(child.data for child in node.childNodes if child.nodeType == 3)
    return None


def missing_pdfa_markers(pdf: bytes, *, attachment: bool = True) -> list[str]:
    """What ``pdf`` lacks to be a PDF/A-3 (with ``attachment``: a Factur-X) file; empty if none."""
    return _missing(pdfa_markers(pdf), attachment=attachment)


def _missing(markers: PdfaMarkers, *, attachment: bool) -> list[str]:
    missing = []
    if markers.pdfaid_part != "3":
        missing.append(f"XMP pdfaid:part is {markers.pdfaid_part!r}, not '3'")
    if not markers.output_intent:
        missing.append("no PDF/A output intent with an sRGB ICC profile")
    if attachment and "factur-x.xml" not in markers.af_files:
        missing.append("no factur-x.xml in /AF")
    return missing
