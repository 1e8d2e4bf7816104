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
from sqlalchemy import Select, String, and_, func, literal, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import GenericFunction

from ..models import (
    Invoice,
    InvoiceHolder,
    Person,
    Team,
    TeamArchivePeriod,
    TeamMembership,
    Workspace,
)
from ..rules import PricingRules
from ..types import UTCDateTime
from ..validators import holds_refused, suspect_bytes, visible
from .licences import billed_teams, billing_memberships, instant
from .periods import Month
from .quotes import MonthWindow, get_workspace

FORMATS = ("csv", "xlsx")
USER_COLUMNS = ("email", "name", "teams")
TEAM_COLUMNS = ("team", "members")
#: The extra column of a team export that lists each team's members.
MEMBER_LIST_COLUMN = "member_emails"
TEAM_SEPARATOR = "; "
#: The CSV separators offered, by the names a form or the command line may use too:
#: ``;`` is what German spreadsheet programs expect (their decimal comma takes ``,``).
SEPARATORS = {",": ",", "comma": ",", ";": ";", "semicolon": ";"}

#: Rows fetched from the database per round trip.
FETCH_ROWS = 1000
#: CSV text collected before a chunk is handed on.
CSV_CHUNK_CHARS = 16 * 1024
#: Rows handed to the csv writer at once.
CSV_BATCH_ROWS = 256
BOM = "\ufeff"

#: First characters that make a spreadsheet program evaluate a cell (OWASP, ASVS V1.2.10).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\0")

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
            f"{value!r} is not a CSV separator: use , (comma) or ; (semicolon, "
            "for German spreadsheet programs)"
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


def neutralise(text: str) -> str:
    """``text`` made inert for spreadsheets: a leading ``'`` when it could start a formula.

    One function for CSV and XLSX, so both formats protect the same cells.
    """
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


class bytewise(GenericFunction):  # noqa: N801 - named like the SQL functions beside it
    """Code-point order on every database, so SQLite and PostgreSQL sort an export alike.

    SQLite compares text bytewise already; PostgreSQL follows the database's
    locale unless told ``COLLATE "C"``.
    """

    type = String()
    inherit_cache = True


@compiles(bytewise)
def _bytewise_default(element: bytewise, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(bytewise, "postgresql")
def _bytewise_postgresql(element: bytewise, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


class formula_safe(GenericFunction):  # noqa: N801 - named like the SQL functions beside it
    """:func:`neutralise` done by the database, from the same :data:`FORMULA_TRIGGERS`.

    Measured at 116,000 rows (issue 7), checking every cell in Python took
    about a third of the CSV export's time.  The first character is compared
    by its code (``ascii()`` on PostgreSQL; on SQLite the first byte, each
    trigger being one byte in UTF-8), because SQLite's text functions stop
    at a NUL.  PostgreSQL text cannot hold a NUL, so that trigger is left out
    there.
    """

    type = String()
    inherit_cache = True


def _formula_safe(first: str, codes: Iterable[str], text: str) -> str:
    """``CASE``: ``'`` + text when ``first`` (the first character's code) is a trigger's."""
    return (
        f"CASE WHEN {first.format(text)} IN ({', '.join(codes)}) "
        f"THEN '''' || {text} ELSE {text} END"
    )


@compiles(formula_safe)
def _formula_safe_sqlite(element: formula_safe, compiler: Any, **kw: Any) -> str:
    codes = (f"X'{ord(trigger):02X}'" for trigger in FORMULA_TRIGGERS)
    text = compiler.process(element.clauses, **kw)
    return _formula_safe("substr(CAST({} AS BLOB), 1, 1)", codes, text)


@compiles(formula_safe, "postgresql")
def _formula_safe_postgresql(element: formula_safe, compiler: Any, **kw: Any) -> str:
    codes = (str(ord(trigger)) for trigger in FORMULA_TRIGGERS if trigger != "\0")
    return _formula_safe("ascii({})", codes, compiler.process(element.clauses, **kw))


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
        cells come neutralised (:class:`formula_safe`): ready for any format.
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
        return _stream(self.session, query)


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
    :class:`~.quotes.UnknownWorkspace` (a ``LookupError``) or ``ValueError``
    for a future month before anything is written.
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


# Queries ------------------------------------------------------------------


def _stream(session: Session, statement: Select) -> Iterator[Any]:
    """Rows of ``statement`` fetched :data:`FETCH_ROWS` at a time (server-side cursor).

    The cursor is closed when the rows run out or the reader stops early (a
    download broken off), not whenever the garbage collector gets to it.
    Core, not the ORM: the rows are plain values, and the ORM's loading
    added a step per row (issue 7).
    """
    options = {"stream_results": True, "yield_per": FETCH_ROWS}
    with session.connection().execute(statement.execution_options(**options)) as result:
        yield from result


def user_pairs_query(window: MonthWindow, workspace_ids: Iterable[int] | None) -> Select:
    """(workspace, person, e-mail, name, team, team name) per billed person and billing team.

    A person with several membership intervals in one team that month is
    listed with that team once.  Raw values: the month close stores these
    rows as the invoice's licence holders (:mod:`.holders`).
    """
    billing = billing_memberships(window.start, window.end, workspace_ids).subquery()
    pairs = select(billing.c.workspace_id, billing.c.person_id, billing.c.team_id).distinct()
    pairs = pairs.subquery()
    return (
        select(
            pairs.c.workspace_id,
            Person.id,
            Person.email,
            Person.name,
            Team.id.label("team_id"),
            Team.name.label("team"),
        )
        .join(pairs, pairs.c.person_id == Person.id)
        .join(Team, Team.id == pairs.c.team_id)
    )


def user_rows_query(window: MonthWindow, workspace_id: int) -> Select:
    """One row per (billed person, team that billed them), by e-mail then team name."""
    pairs = user_pairs_query(window, [workspace_id]).subquery()
    return _ordered_user_rows(
        pairs.c.id, pairs.c.email, pairs.c.name, pairs.c.team, pairs.c.team_id
    )


def stored_user_rows_query(invoice_id: int) -> Select:
    """The same rows as :func:`user_rows_query`, from an invoice's stored licence holders."""
    holder = InvoiceHolder
    return _ordered_user_rows(
        holder.person_id, holder.email, holder.name, holder.team_name, holder.team_id
    ).where(holder.invoice_id == invoice_id)


def _ordered_user_rows(person_id: Any, email: Any, name: Any, team: Any, team_id: Any) -> Select:
    return select(
        person_id.label("id"),
        email.label("email"),
        name.label("name"),
        team.label("team"),
        team_id.label("team_id"),
    ).order_by(bytewise(email), person_id, bytewise(team), team_id)


def user_holders_query(dialect: str, ordered: Select) -> Select:
    """One row per billed person (e-mail, name, teams joined), neutralised, in export order.

    ``ordered`` gives the (person, team) rows in export order
    (:func:`user_rows_query` or :func:`stored_user_rows_query`).  The
    database joins the team names in team-name order, so a person with
    three teams crosses the wire once and no Python groups or checks rows:
    measured at 116,000 holders (issue 7), that per-row work was the slower
    side of the export's target.  PostgreSQL orders inside ``string_agg``;
    SQLite's ``group_concat`` takes the rows in the order of the ordered
    subquery (where each person's rows are adjacent and in team order).
    """
    if dialect == "postgresql":
        pairs = ordered.order_by(None).subquery()
        in_order = aggregate_order_by(
            literal(TEAM_SEPARATOR), bytewise(pairs.c.team), pairs.c.team_id
        )
        teams = func.string_agg(pairs.c.team, in_order)
        groups = (pairs.c.id, pairs.c.email, pairs.c.name)
    else:
        pairs = ordered.subquery()
        teams = func.group_concat(pairs.c.team, TEAM_SEPARATOR)
        # Grouped in the subquery's order, so SQLite sorts neither the groups nor
        # the result again (the name is the same on all of a person's rows).
        groups = (pairs.c.email, pairs.c.id)
    return (
        select(formula_safe(pairs.c.email), formula_safe(pairs.c.name), formula_safe(teams))
        .group_by(*groups)
        .order_by(bytewise(pairs.c.email), pairs.c.id)
    )


def _team_ends(window: MonthWindow, workspace_ids: Iterable[int] | None) -> Any:
    """(workspace, team, name, active end) per billed team, as a subquery.

    The active time ends at the window end, unless an archived period covers
    the window end: then it ends where that period starts.
    """
    end = instant(window.end)
    billed = billed_teams(window.start, window.end, workspace_ids).subquery()
    covering = and_(
        TeamArchivePeriod.team_id == Team.id,
        TeamArchivePeriod.archived_from < end,
        or_(TeamArchivePeriod.unarchived_at.is_(None), TeamArchivePeriod.unarchived_at >= end),
    )
    return (
        select(
            Team.workspace_id,
            Team.id.label("team_id"),
            Team.name.label("name"),
            func.coalesce(TeamArchivePeriod.archived_from, end, type_=UTCDateTime()).label(
                "active_end"
            ),
        )
        .join(billed, billed.c.team_id == Team.id)
        .outerjoin(TeamArchivePeriod, covering)
        .subquery()
    )


def _member_then(ends: Any) -> Any:
    """A membership of the team open just before the end of its active time."""
    return and_(
        TeamMembership.team_id == ends.c.team_id,
        TeamMembership.joined_at < ends.c.active_end,
        or_(TeamMembership.left_at.is_(None), TeamMembership.left_at >= ends.c.active_end),
    )


def team_members_query(window: MonthWindow, workspace_ids: Iterable[int] | None) -> Select:
    """(workspace, team, name, members) per billed team: its members at the end of its
    active time (:func:`_team_ends`).  Raw values, unordered."""
    ends = _team_ends(window, workspace_ids)
    return (
        select(
            ends.c.workspace_id,
            ends.c.team_id,
            ends.c.name,
            func.count(TeamMembership.person_id.distinct()).label("members"),
        )
        .select_from(ends)
        .outerjoin(TeamMembership, _member_then(ends))
        .group_by(ends.c.workspace_id, ends.c.team_id, ends.c.name)
    )


def team_member_lists_query(dialect: str, window: MonthWindow, workspace_id: int) -> Any:
    """(team, e-mails joined by ``; ``) per billed team: the members that
    :func:`team_members_query` counts, in e-mail order, joined by the database."""
    ends = _team_ends(window, [workspace_id])
    people = (
        select(ends.c.team_id, Person.email)
        .select_from(ends)
        .join(TeamMembership, _member_then(ends))
        .join(Person, Person.id == TeamMembership.person_id)
        .distinct()
    )
    if dialect == "postgresql":
        rows = people.subquery()
        emails = func.string_agg(
            rows.c.email, aggregate_order_by(literal(TEAM_SEPARATOR), bytewise(rows.c.email))
        )
    else:
        rows = people.order_by(ends.c.team_id, bytewise(Person.email)).subquery()
        emails = func.group_concat(rows.c.email, TEAM_SEPARATOR)
    return select(rows.c.team_id, emails.label("emails")).group_by(rows.c.team_id).subquery()


def _with_member_lists(query: Select, team_id: Any, lists: Any) -> Select:
    if lists is None:
        return query
    return query.add_columns(formula_safe(func.coalesce(lists.c.emails, ""))).outerjoin(
        lists, lists.c.team_id == team_id
    )


def team_rows_query(window: MonthWindow, workspace_id: int, lists: Any = None) -> Select:
    """One row per billed team: its name (neutralised), member count and, with ``lists``
    (:func:`team_member_lists_query`), its members' e-mails; by name."""
    teams = team_members_query(window, [workspace_id]).subquery()
    query = select(formula_safe(teams.c.name), teams.c.members).order_by(
        bytewise(teams.c.name), teams.c.team_id
    )
    return _with_member_lists(query, teams.c.team_id, lists)


def stored_team_rows_query(invoice_id: int, lists: Any = None) -> Select:
    """The same rows as :func:`team_rows_query`, from an invoice's stored licence holders
    (the member lists, if asked for, from the history, which a close leaves unchanged)."""
    holder = InvoiceHolder
    query = (
        select(formula_safe(holder.team_name), holder.members)
        .where(holder.invoice_id == invoice_id)
        .order_by(bytewise(holder.team_name), holder.team_id, holder.id)
    )
    return _with_member_lists(query, holder.team_id, lists)


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
    if isinstance(out, io.TextIOBase):
        raise TypeError("an XLSX workbook is binary: give a binary stream")
    with tempfile.TemporaryDirectory(prefix="billing-xlsx-", ignore_cleanup_errors=True) as tmp:
        workbook = xlsxwriter.Workbook(
            out, {"constant_memory": True, "in_memory": False, "tmpdir": tmp}
        )
        count = _fill_workbook(workbook, export)
        workbook.close()
    return count
