"""The licence-holder exports' queries: who is billed for a month, neutralised by the database.

The same set-based selects as the invoice (:mod:`.licences`), so the export
and the invoice can never disagree.  Text cells that a spreadsheet would read
as a formula are neutralised in SQL (:class:`formula_safe`, the same rule as
:func:`neutralise`), and names are ordered bytewise on both databases.
Rows are streamed with a server-side cursor (:func:`stream`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import String, and_, func, literal, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import Over
from sqlalchemy.sql.functions import FunctionElement, GenericFunction

from ..models import (
    InvoiceHolder,
    Person,
    Team,
    TeamArchivePeriod,
    TeamMembership,
)
from ..types import AnySelect, UTCDateTime
from .licences import billed_teams, billing_memberships, instant
from .quotes import MonthWindow

TEAM_SEPARATOR = "; "
#: Rows fetched from the database per round trip.
FETCH_ROWS = 1000

#: First characters that make a spreadsheet program evaluate a cell (OWASP, ASVS V1.2.10).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\0")


def neutralise(text: str) -> str:
    """``text`` made inert for spreadsheets: a leading ``'`` when it could start a formula.

    One function for CSV and XLSX, so both formats protect the same cells.
    """
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


class bytewise(GenericFunction[Any]):
    """Code-point order on every database, so SQLite and PostgreSQL sort an export alike.

    SQLite compares text bytewise already; PostgreSQL follows the database's
    locale unless told ``COLLATE "C"``.
    """

    type = String()
    inherit_cache = True


@compiles(bytewise)
def _bytewise_default(element: bytewise, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(bytewise, "postgresql")
def _bytewise_postgresql(element: bytewise, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


class formula_safe(GenericFunction[Any]):
    """:func:`neutralise` done by the database, from the same :data:`FORMULA_TRIGGERS`.

    Measured at 116,000 rows (``make bench``), checking every cell in Python took
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



def stream(session: Session, statement: AnySelect) -> Iterator[Any]:
    """Rows of ``statement`` fetched :data:`FETCH_ROWS` at a time (server-side cursor).

    The cursor is closed when the rows run out or the reader stops early (a
    download broken off), not whenever the garbage collector gets to it.
    Core, not the ORM: the rows are plain values, and the ORM's loading
    added a step per row (``make bench``).
    """
    options = {"stream_results": True, "yield_per": FETCH_ROWS}
    with session.connection().execute(statement.execution_options(**options)) as result:
        yield from result


def user_pairs_query(window: MonthWindow, workspace_ids: Iterable[int] | None) -> AnySelect:
    """(workspace, person, e-mail, name, team, team name) per billed person and billing team.

    A person with several membership intervals in one team that month is
    listed with that team once.  Raw values: the month close stores these
    rows as the invoice's licence holders (:mod:`.holders`).
    """
    billing = billing_memberships(window.start, window.end, workspace_ids).subquery()
    pairs = (
        select(billing.c.workspace_id, billing.c.person_id, billing.c.team_id)
        .distinct()
        .subquery()
    )
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


def user_rows_query(window: MonthWindow, workspace_id: int) -> AnySelect:
    """One row per (billed person, team that billed them), by e-mail then team name."""
    pairs = user_pairs_query(window, [workspace_id]).subquery()
    return _ordered_user_rows(
        pairs.c.id, pairs.c.email, pairs.c.name, pairs.c.team, pairs.c.team_id
    )


def stored_user_rows_query(invoice_id: int) -> AnySelect:
    """The same rows as :func:`user_rows_query`, from an invoice's stored licence holders."""
    holder = InvoiceHolder
    return _ordered_user_rows(
        holder.person_id, holder.email, holder.name, holder.team_name, holder.team_id
    ).where(holder.invoice_id == invoice_id)


def _ordered_user_rows(person_id: Any, email: Any, name: Any, team: Any, team_id: Any) -> AnySelect:
    return select(
        person_id.label("id"),
        email.label("email"),
        name.label("name"),
        team.label("team"),
        team_id.label("team_id"),
    ).order_by(bytewise(email), person_id, bytewise(team), team_id)


def user_holders_query(dialect: str, ordered: AnySelect) -> AnySelect:
    """One row per billed person (e-mail, name, teams joined), neutralised, in export order.

    ``ordered`` gives the (person, team) rows in export order
    (:func:`user_rows_query` or :func:`stored_user_rows_query`).  The
    database joins the team names in team-name order, so a person with
    three teams crosses the wire once and no Python groups or checks rows:
    measured at 116,000 holders (``make bench``), that per-row work was the slower
    side of the export's target.
    """
    if dialect == "postgresql":
        return _user_holders_postgresql(ordered)
    pairs = ordered.subquery()
    # group_concat takes the rows in the order of the ordered subquery, where each
    # person's rows are adjacent and in team order (the name is the same on all of them).
    teams = func.group_concat(pairs.c.team, TEAM_SEPARATOR)
    return (
        select(formula_safe(pairs.c.email), formula_safe(pairs.c.name), formula_safe(teams))
        .group_by(pairs.c.email, pairs.c.id)
        .order_by(bytewise(pairs.c.email), pairs.c.id)
    )


def _user_holders_postgresql(ordered: AnySelect) -> AnySelect:
    """:func:`user_holders_query` on PostgreSQL: ``string_agg`` over a window, one sort.

    A person's window holds their rows in team order, the whole partition as
    its frame, so ``string_agg`` joins all their teams in that order and the
    first row of each window is kept.  One sort of the (person, team) rows,
    in export order, feeds the windows and the result.  ``string_agg(… ORDER
    BY …)`` with ``GROUP BY`` instead sorted each person's rows apart, then
    all people again by e-mail: measured at 11,534 holders (``EXPLAIN ANALYZE``),
    that grouping and the sort after it were 18 of the query's 70 ms, the
    windows 11.
    """
    pairs = ordered.order_by(None).subquery()
    person = (bytewise(pairs.c.email), pairs.c.id)
    in_team_order = (bytewise(pairs.c.team), pairs.c.team_id)

    def over_person(function: FunctionElement[Any]) -> Over[Any]:
        return function.over(partition_by=person, order_by=in_team_order, rows=(None, None))

    people = select(
        pairs.c.id,
        pairs.c.email,
        pairs.c.name,
        over_person(func.string_agg(pairs.c.team, literal(TEAM_SEPARATOR))).label("teams"),
        over_person(func.row_number()).label("place"),
    ).subquery()
    return (
        select(
            formula_safe(people.c.email),
            formula_safe(people.c.name),
            formula_safe(people.c.teams),
        )
        .where(people.c.place == 1)
        .order_by(bytewise(people.c.email), people.c.id)
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


def team_members_query(window: MonthWindow, workspace_ids: Iterable[int] | None) -> AnySelect:
    """(workspace, team, name, members) per billed team: its members at the end of its
    active time (:func:`_team_ends`).  A membership counts when it was open just
    before that instant.  Raw values, unordered."""
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
    """(team, e-mails joined by ``; ``) per billed team, as a subquery: the members that
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


def _with_member_lists(query: AnySelect, team_id: Any, lists: Any) -> AnySelect:
    if lists is None:
        return query
    return query.add_columns(formula_safe(func.coalesce(lists.c.emails, ""))).outerjoin(
        lists, lists.c.team_id == team_id
    )


def team_rows_query(window: MonthWindow, workspace_id: int, lists: Any = None) -> AnySelect:
    """One row per billed team: its name (neutralised), member count and, with ``lists``
    (:func:`team_member_lists_query`), its members' e-mails; by name."""
    teams = team_members_query(window, [workspace_id]).subquery()
    query = select(formula_safe(teams.c.name), teams.c.members).order_by(
        bytewise(teams.c.name), teams.c.team_id
    )
    return _with_member_lists(query, teams.c.team_id, lists)


def stored_team_rows_query(invoice_id: int, lists: Any = None) -> AnySelect:
    """The same rows as :func:`team_rows_query`, from an invoice's stored licence holders
    (the member lists, if asked for, from the history, which a close leaves unchanged)."""
    holder = InvoiceHolder
    query = (
        select(formula_safe(holder.team_name), holder.members)
        .where(holder.invoice_id == invoice_id)
        .order_by(bytewise(holder.team_name), holder.team_id, holder.id)
    )
    return _with_member_lists(query, holder.team_id, lists)


