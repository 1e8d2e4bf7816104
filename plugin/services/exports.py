"""The licence holders billed for a month, as CSV or XLSX, in constant memory.

The help page promises "an export of the licence holders billed on a monthly
basis".  What is billed comes from the same set-based selects as the invoice
(:mod:`.licences`), so the export and the invoice can never disagree, and
because those selects read only the recorded history, a past month exports
the same rows after any later archiving or purge.

Rows are streamed from the database (a server-side cursor on PostgreSQL,
fetched in batches) and written as they arrive: CSV through the standard
``csv`` module in chunks, XLSX through xlsxwriter's constant-memory mode.
Nothing holds all rows at once, whatever the size of the workspace.

Every text cell that a spreadsheet program would read as a formula is
neutralised with a leading ``'`` (OWASP "CSV injection"); in XLSX, text is
always written as a string cell and numbers as number cells, never formulas.
A control or bidirectional character stored before the values were checked
shows as ``<U+XXXX>`` (:func:`~plugin.validators.visible`); a line feed stays.

The core knows nothing about HTTP: :func:`licence_holders` checks the request
and prepares the rows, :func:`csv_chunks` feeds a streamed response, and
:func:`write_export` writes to any file-like object.
"""

from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import IO, Any

import xlsxwriter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..i18n import _
from ..models import (
    Invoice,
    InvoiceHolder,
    Workspace,
)
from ..rules import PricingRules
from ..validators import holds_refused, suspect_bytes, visible
from .export_queries import (
    neutralise,
    stored_team_rows_query,
    stored_user_rows_query,
    stream,
    team_member_lists_query,
    team_rows_query,
    user_holders_query,
    user_rows_query,
)
from .periods import Month
from .quotes import MonthWindow
from .workspace_lookup import get_workspace

FORMATS = ("csv", "xlsx")
USER_COLUMNS = ("email", "name", "teams")
TEAM_COLUMNS = ("team", "members")
#: The extra column of a team export that lists each team's members.
MEMBER_LIST_COLUMN = "member_emails"
#: The CSV separators offered, by the names a form or the command line may use too:
#: ``;`` is what German spreadsheet programs expect (their decimal comma takes ``,``).
SEPARATORS = {",": ",", "comma": ",", ";": ";", "semicolon": ";"}

#: CSV text collected before a chunk is handed on.
CSV_CHUNK_CHARS = 16 * 1024
#: Rows handed to the csv writer at once.
CSV_BATCH_ROWS = 256
BOM = "\ufeff"

XLSX_WIDTHS = {
    "email": 36,
    "name": 28,
    "teams": 48,
    "team": 36,
    "members": 10,
    MEMBER_LIST_COLUMN: 60,
}
SHEET_TITLES = {"user_licences": "User licences", "team_licences": "Team licences"}

Cell = str | int
Row = tuple[Cell, ...]


def parse_separator(value: str) -> str:
    """The CSV separator a form or ``--separator`` asked for: ``,`` or ``;``.

    One check for the admin and the command line; raises ``ValueError`` with
    the choices for anything else.
    """
    separator = SEPARATORS.get(value.strip().lower()) if value.strip() else ","
    if separator is None:
        raise ValueError(
            _(
                "%(value)r is not a CSV separator: use , (comma) or ; (semicolon, for German "
                "spreadsheet programs)",
                value=value,
            )
        )
    return separator


def default_export_month(session: Session, rules: PricingRules, now: datetime) -> Month:
    """The month an export offers first: the last closed month, never the unfinished one.

    The latest month that invoices were issued for (one query), or, before
    any close, the last complete month.
    """
    last_complete = Month.of(now, rules.zoneinfo).previous()
    latest = session.scalar(
        select(func.max(Invoice.period)).where(
            Invoice.kind == "invoice", Invoice.period <= str(last_complete)
        )
    )
    return Month.parse(latest) if latest else last_complete


@dataclass(frozen=True)
class LicenceExport:
    """What one workspace is billed for one month, ready to be written.

    Creating it checks everything that can be wrong with the request; the
    rows are only read from the database when :meth:`rows` is iterated, so a
    streamed response or a file writer pulls them as it goes.
    """

    workspace_id: int
    workspace_key: str
    variant: str
    window: MonthWindow
    session: Session = field(repr=False, compare=False)
    #: The month's invoice, when it has stored licence holders: the export reads those.
    invoice_id: int | None = None

    #: A team export lists each team's members (their e-mails) in one more column.
    with_members: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        if self.variant == "user_licences":
            return USER_COLUMNS
        return (*TEAM_COLUMNS, MEMBER_LIST_COLUMN) if self.with_members else TEAM_COLUMNS

    def filename(self, fmt: str) -> str:
        """A download name such as ``acme-2026-10-user-licences.csv``."""
        return f"{self.workspace_key}-{self.window.month}-{self.variant.replace('_', '-')}.{fmt}"

    def rows(self) -> Iterator[Row]:
        """The rows, streamed from the database in batches, in their final order.

        An invoiced month reads the licence holders stored when its invoice
        was issued; any other month computes them from the history.  Text
        cells come neutralised (:class:`~.export_queries.formula_safe`): ready for any format.
        """
        dialect = self.session.get_bind().dialect.name
        if self.variant == "user_licences":
            ordered = (
                user_rows_query(self.window, self.workspace_id)
                if self.invoice_id is None
                else stored_user_rows_query(self.invoice_id)
            )
            query = user_holders_query(dialect, ordered)
        else:
            lists = (
                team_member_lists_query(dialect, self.window, self.workspace_id)
                if self.with_members
                else None
            )
            query = (
                team_rows_query(self.window, self.workspace_id, lists)
                if self.invoice_id is None
                else stored_team_rows_query(self.invoice_id, lists)
            )
        return stream(self.session, query)


def licence_holders(
    session: Session,
    rules: PricingRules,
    workspace_key: str,
    month: Month,
    now: datetime,
    *,
    with_members: bool = False,
) -> LicenceExport:
    """Prepare the export of ``workspace_key``'s licence holders for ``month``.

    The current month is exported as far as it has gone (up to ``now``).
    ``with_members``: a team export lists each team's members too.  Raises
    :class:`~.workspace_lookup.UnknownWorkspace` (a ``LookupError``) or
    ``ValueError`` for a future month before anything is written.
    """
    workspace = get_workspace(session, workspace_key)
    window = MonthWindow.at(month, rules, now)
    invoiced = _invoiced(session, [workspace.id], window)
    return _export_of(session, rules, workspace, window, invoiced, with_members)


def licence_holders_of(
    session: Session,
    rules: PricingRules,
    workspace_ids: Iterable[int],
    month: Month,
    now: datetime,
    *,
    with_members: bool = False,
) -> list[LicenceExport]:
    """The exports of several workspaces for ``month`` (workspaces loaded in one query)."""
    window = MonthWindow.at(month, rules, now)
    ids = list(workspace_ids)
    workspaces = session.scalars(
        select(Workspace).where(Workspace.id.in_(ids)).order_by(Workspace.key)
    )
    invoiced = _invoiced(session, ids, window)
    return [
        _export_of(session, rules, workspace, window, invoiced, with_members)
        for workspace in workspaces
    ]


def _invoiced(
    session: Session, workspace_ids: list[int], window: MonthWindow
) -> dict[int, tuple[int, str]]:
    """(invoice id, variant) of the workspaces invoiced for the window's month with stored
    licence holders: one query.

    Only the current invoice counts: after a credit note the month is computed
    from the (corrected) history until the next close issues its new invoice,
    whose holders it then reads.  Invoices issued before the holders were
    stored (migration 0010) have none; their month is computed from the
    history, as it was then.
    """
    if not window.complete:
        return {}
    stored = select(InvoiceHolder.id).where(InvoiceHolder.invoice_id == Invoice.id).exists()
    rows = session.execute(
        select(Invoice.workspace_id, Invoice.id, Invoice.variant).where(
            Invoice.workspace_id.in_(workspace_ids),
            Invoice.period == str(window.month),
            Invoice.kind == "invoice",
            Invoice.credited_by_id.is_(None),
            stored,
        )
    )
    return {row.workspace_id: (row.id, row.variant) for row in rows}


def _export_of(
    session: Session,
    rules: PricingRules,
    workspace: Workspace,
    window: MonthWindow,
    invoiced: dict[int, tuple[int, str]],
    with_members: bool = False,
) -> LicenceExport:
    if workspace.id in invoiced:
        invoice_id, variant = invoiced[workspace.id]
        return LicenceExport(
            workspace.id, workspace.key, variant, window, session, invoice_id, with_members
        )
    variant = rules.variant_of(workspace)[0]
    return LicenceExport(
        workspace.id, workspace.key, variant, window, session, with_members=with_members
    )


def write_exports_zip(
    exports: Iterable[LicenceExport], fmt: str, out: IO[bytes], *, separator: str = ","
) -> int:
    """Several exports as one ZIP archive, a file per workspace; return the rows in all."""
    rows = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for export in exports:
            with archive.open(export.filename(fmt), "w", force_zip64=True) as entry:
                rows += write_export(export, fmt, entry, separator=separator)
    return rows


def export_licence_holders(
    session: Session,
    rules: PricingRules,
    workspace_key: str,
    month: Month,
    now: datetime,
    fmt: str,
    out: IO[Any],
) -> int:
    """Write ``workspace_key``'s licence holders for ``month`` to ``out``; return the row count.

    ``fmt`` is ``csv`` (``out`` binary, or text opened with ``newline=""``)
    or ``xlsx`` (``out`` binary).
    """
    return write_export(licence_holders(session, rules, workspace_key, month, now), fmt, out)


def write_export(export: LicenceExport, fmt: str, out: IO[Any], *, separator: str = ",") -> int:
    """Write ``export`` in ``fmt`` to ``out``; return the number of rows (header excluded).

    ``separator`` separates a CSV's cells (:func:`parse_separator`).
    """
    if fmt == "csv":
        return write_csv(export, out, separator=separator)
    if fmt == "xlsx":
        return write_xlsx(export, out)
    raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")


# CSV ----------------------------------------------------------------------


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


class CsvText:
    """The CSV document as text chunks of about :data:`CSV_CHUNK_CHARS`, BOM first.

    The BOM is what makes spreadsheet programs read the file as UTF-8 (and
    show umlauts) when it is opened by double-click.  The rows come from the
    database ready to write (cells neutralised), so they go to the writer as
    they are, in batches (one C call each): no Python runs per row or cell.
    Only a batch whose text holds a refused character (:func:`_plain`) is
    written again, its cells made visible.  ``rows`` counts the rows written so far.
    """

    def __init__(self, columns: Iterable[str], rows: Iterable[Row], separator: str = ",") -> None:
        self.header = [neutralise(column) for column in columns]
        self._source = iter(rows)
        self.separator = parse_separator(separator)
        self.rows = 0

    def __iter__(self) -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self.separator)
        buffer.write(BOM)
        writer.writerow(self.header)
        chunk, size = [_drain(buffer)], 0
        while batch := list(islice(self._source, CSV_BATCH_ROWS)):
            writer.writerows(batch)
            text = _drain(buffer)
            if not _plain(text, len(batch)):
                writer.writerows(visible_rows(batch))
                text = _drain(buffer)
            chunk.append(text)
            size += len(text)
            self.rows += len(batch)
            if size >= CSV_CHUNK_CHARS:
                yield "".join(chunk)
                chunk, size = [], 0
        yield "".join(chunk)


def _plain(written: str, rows: int) -> bool:
    """Whether the CSV text of ``rows`` rows holds no refused character but its line ends.

    Checked on the text, in C, rather than cell by cell: every row ends in
    one CR LF, so a line feed more than ``rows`` is one inside a cell.  The
    quick look (:func:`~plugin.validators.suspect_bytes`) settles almost
    every batch; one with a byte it cannot tell (``–``, ``€``) is searched.
    """
    if suspect_bytes(written) == b"\r\n" * rows:
        return True
    return written.count("\n") == rows and not holds_refused(written.replace("\r\n", ""))


def visible_rows(rows: Iterable[Row]) -> list[Row]:
    """``rows`` with each text cell's refused characters shown (:func:`~plugin.validators.visible`).

    For rows stored before the values were checked: an export shows
    ``<U+202E>`` instead of carrying the character.  It runs after the cells
    were neutralised, and an escape starts with ``<``, so no formula appears.
    """
    return [
        tuple(visible(cell) if isinstance(cell, str) else cell for cell in row) for row in rows
    ]


def csv_chunks(export: LicenceExport, separator: str = ",") -> Iterator[bytes]:
    """The export as UTF-8 CSV byte chunks (with BOM): the body of a streamed response."""
    for text in CsvText(export.columns, export.rows(), separator):
        yield text.encode("utf-8")


def write_csv(export: LicenceExport, out: IO[Any], *, separator: str = ",") -> int:
    """Write the export as CSV to a binary stream (UTF-8) or a text stream; return the rows."""
    document = CsvText(export.columns, export.rows(), separator)
    text_stream = isinstance(out, io.TextIOBase)
    for text in document:
        out.write(text if text_stream else text.encode("utf-8"))
    return document.rows


# XLSX ---------------------------------------------------------------------


def _xlsx_row(sheet: Any, row_number: int, row: Iterable[Cell], style: Any = None) -> None:
    """Text as string cells (neutralised already), numbers as number cells: never a formula.

    A refused character in a text cell shows as ``<U+XXXX>`` (:func:`visible_rows`).
    """
    for column, cell in enumerate(row):
        if isinstance(cell, str):
            sheet.write_string(row_number, column, visible(cell), style)
        else:
            sheet.write_number(row_number, column, cell, style)


def _xlsx_sheet(workbook: Any, export: LicenceExport) -> Any:
    sheet = workbook.add_worksheet(SHEET_TITLES[export.variant])
    for column, name in enumerate(export.columns):
        sheet.set_column(column, column, XLSX_WIDTHS[name])
    sheet.freeze_panes(1, 0)
    header = [neutralise(column) for column in export.columns]
    _xlsx_row(sheet, 0, header, workbook.add_format({"bold": True}))
    return sheet


def _fill_workbook(workbook: Any, export: LicenceExport) -> int:
    workbook.set_properties(
        {
            "title": f"{SHEET_TITLES[export.variant]} {export.workspace_key} {export.window.month}",
            "created": export.window.end,
        }
    )
    sheet = _xlsx_sheet(workbook, export)
    count = 0
    for count, row in enumerate(export.rows(), start=1):
        _xlsx_row(sheet, count, row)
    return count


def write_xlsx(export: LicenceExport, out: IO[bytes]) -> int:
    """Write the export as an XLSX workbook to a binary stream; return the rows.

    Constant-memory mode writes each row to a temporary file as it comes, so
    rows must arrive in order (they do).  The workbook reaches ``out`` only
    once every row is in: a failure halfway writes nothing there, and the
    temporary files go with their directory.  The document's creation date
    is the window end, which makes the same month's file byte-identical.
    """
    # For callers without a type checker, who may pass a text stream.
    if isinstance(out, io.TextIOBase):  # type: ignore[unreachable]
        raise TypeError("an XLSX workbook is binary: give a binary stream")
    with tempfile.TemporaryDirectory(prefix="billing-xlsx-", ignore_cleanup_errors=True) as tmp:
        workbook = xlsxwriter.Workbook(
            out, {"constant_memory": True, "in_memory": False, "tmpdir": tmp}
        )
        count = _fill_workbook(workbook, export)
        workbook.close()
    return count

