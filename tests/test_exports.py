"""Licence-holder exports: hand-computed rows, both formats, hostile text, history, memory.

Everything runs on SQLite and PostgreSQL (the shared fixtures), writes real
CSV and XLSX bytes and reads them back: the CSV with the ``csv`` module, the
XLSX with openpyxl.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import pty
import select
import subprocess
import sys
import tracemalloc
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import String, cast, insert, literal, true, update
from sqlalchemy import select as sql_select

from plugin.models import (
    Person,
    Team,
    TeamArchivePeriod,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
)
from plugin.services.export_queries import FORMULA_TRIGGERS, formula_safe, neutralise
from plugin.services.exports import (
    FORMATS,
    csv_chunks,
    export_licence_holders,
    licence_holders,
)
from plugin.services.importer import import_file
from plugin.services.licences import instant
from plugin.services.periods import Month
from tests.conftest import REPOSITORY, RULES_PATH

BERLIN = ZoneInfo("Europe/Berlin")
#: After November 2026: October and November are complete months, December is in progress.
NOW = datetime(2026, 12, 15, 12, tzinfo=UTC)

ACME_OCTOBER = [
    ["email", "name", "teams"],
    ["anna@mueller-soehne.example", "Anna Schäfer", "Kundendienst; Vertrieb"],
    ["chris@consulting.example", "Chris Olsen", "Vertrieb"],
    ["dora@mueller-soehne.example", "Dora Weiß", "Kundendienst"],
    ["emil@mueller-soehne.example", "Emil Brandt", "Altprojekte"],
]
NORDWIND_OCTOBER = [["team", "members"], ["Disposition", "2"], ["Fuhrpark", "1"]]


@pytest.fixture
def rules(app):
    return app.extensions["billing"].rules(app)


def export_bytes(session, rules, key: str, month: str, fmt: str = "csv") -> bytes:
    out = io.BytesIO()
    export_licence_holders(session, rules, key, Month.parse(month), NOW, fmt, out)
    return out.getvalue()


@pytest.fixture
def export(demo_cli, session, rules):
    """Export on the demo data: ``export(key, month, fmt="csv")`` gives the bytes."""

    def export(key: str, month: str, fmt: str = "csv") -> bytes:
        return export_bytes(session, rules, key, month, fmt)

    return export


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def xlsx_cells(data: bytes | Path) -> list[list[openpyxl.cell.Cell]]:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    sheet = openpyxl.load_workbook(source).active
    return [list(row) for row in sheet.iter_rows()]


def xlsx_rows(data: bytes | Path) -> list[list[object]]:
    return [[cell.value for cell in row] for row in xlsx_cells(data)]


# What is exported ---------------------------------------------------------


def test_user_licences_list_each_billed_member_once_with_the_teams_that_billed_them(export):
    # Bob left on 30 September; Emil's team was archived on the 15th, so he
    # still counts for October; Frank and Gerda are in no team.
    assert csv_rows(export("acme", "2026-10")) == ACME_OCTOBER


def test_a_team_archived_last_month_bills_its_members_no_more(export):
    assert csv_rows(export("acme", "2026-11")) == ACME_OCTOBER[:4]


def test_a_contract_decides_the_variant_and_teams_are_sorted_by_name(export):
    # globex was created after the cut-over but its contract says user licences;
    # Mo left at the end of 2025.
    assert csv_rows(export("globex", "2026-10")) == [
        ["email", "name", "teams"],
        ["karl@globex.example", "Karl Jansen", "Research & Development"],
        ["lena@globex.example", "Lena Fischer", "Operations; Research & Development"],
    ]


def test_team_licences_list_each_billed_team_with_its_members(export):
    assert csv_rows(export("nordwind", "2026-10")) == NORDWIND_OCTOBER
    assert csv_rows(export("initech", "2026-10")) == [["team", "members"], ["Platform", "2"]]


def test_a_team_archived_mid_month_is_billed_that_month_and_not_the_next(export):
    # fleet (Fuhrpark) is archived on 10 November; finance (Finanzen) was
    # created on 3 November.
    november = [["team", "members"], ["Disposition", "2"], ["Finanzen", "1"], ["Fuhrpark", "1"]]
    assert csv_rows(export("nordwind", "2026-11")) == november
    assert csv_rows(export("nordwind", "2026-12")) == [november[0], *november[1:3]]


def member(email: str, joined: str, left: str | None = None) -> str:
    end = f", left: {left}" if left else ""
    return f"          - {{email: {email}, joined: {joined}{end}}}\n"


def team(
    key: str,
    name: str,
    members: str = "",
    created: str = "2024-01-01",
    archived: tuple[str, str | None] | None = None,
) -> str:
    text = f"      - key: {key}\n        name: {name}\n        created: {created}\n"
    if archived:
        start, end = archived
        until = f", to: {end}" if end else ""
        text += f"        archived:\n          - {{from: {start}{until}}}\n"
    return text + (f"        members:\n{members}" if members else "")


def load(session, key: str, created: str, teams: str) -> None:
    text = f"workspaces:\n  - key: {key}\n    name: {key}\n    created: {created}\n    teams:\n"
    import_file(session, text + teams, source="t.yaml", tz=BERLIN, actor="test")
    session.commit()


def export_rows(session, rules, key: str, month: str) -> list[list[str]]:
    return csv_rows(export_bytes(session, rules, key, month))


def test_members_are_counted_at_the_end_of_the_teams_active_time(session, rules):
    load(
        session,
        "w",
        "2024-01-01",
        # Archived on 15 March: x and z were members then, y had left, v
        # joined the archived team, u's membership has no length.
        team(
            "a",
            "Team A",
            member("x@w.example", "2024-01-01")
            + member("y@w.example", "2024-01-01", "2026-03-10")
            + member("z@w.example", "2026-03-05", "2026-03-20")
            + member("u@w.example", "2026-03-15", "2026-03-15")
            + member("v@w.example", "2026-03-15"),
            archived=("2026-03-15", None),
        )
        # Archived 5–20 March, active at the month's end: p left while it was
        # archived, r joined on the last day.
        + team(
            "b",
            "Team B",
            member("p@w.example", "2024-01-01", "2026-03-10")
            + member("q@w.example", "2024-01-01")
            + member("r@w.example", "2026-03-31"),
            archived=("2026-03-05", "2026-03-20"),
        )
        # Archived all month, or from its first instant: not billed.
        + team("c", "Team C", member("x@w.example", "2024-01-01"), archived=("2026-02-01", None))
        + team("d", "Team D", member("x@w.example", "2024-01-01"), archived=("2026-03-01", None))
        # Created on the last day, nobody in it: billed, with no members.
        + team("e", "Team E", created="2026-03-31")
        # Archived from the next month's first instant: active to the end.
        + team("f", "Team F", member("s@w.example", "2024-01-01"), archived=("2026-04-01", None)),
    )
    assert export_rows(session, rules, "w", "2026-03") == [
        ["team", "members"],
        ["Team A", "2"],
        ["Team B", "2"],
        ["Team E", "0"],
        ["Team F", "1"],
    ]


def test_a_member_is_listed_with_each_active_team_once(session, rules):
    load(
        session,
        "u",
        "2022-01-01",
        # Two intervals in Zeta that month; Alpha archived all month; Beta
        # joined on the last day.  y is only in the archived team.
        team(
            "t1",
            "Zeta",
            member("x@u.example", "2026-03-01", "2026-03-10") + member("x@u.example", "2026-03-20"),
        )
        + team(
            "t2",
            "Alpha",
            member("x@u.example", "2024-01-01") + member("y@u.example", "2024-01-01"),
            archived=("2026-02-01", None),
        )
        + team("t3", "Beta", member("x@u.example", "2026-03-31")),
    )
    assert export_rows(session, rules, "u", "2026-03") == [
        ["email", "name", "teams"],
        ["x@u.example", "", "Beta; Zeta"],
    ]


def test_each_cell_lists_teams_in_code_point_order_and_same_named_teams_both(session, rules):
    """Capitals before small letters before umlauts, as the invoice's holders are sorted;
    two teams of one name are two licences' reasons, so both appear."""
    load(
        session,
        "u",
        "2022-01-01",
        team(
            "t1", "beta", member("x@u.example", "2024-01-01") + member("a@u.example", "2024-01-01")
        )
        + team("t2", "Ärger", member("x@u.example", "2024-01-01"))
        + team("t3", "Zeta", member("x@u.example", "2024-01-01"))
        + team("t4", "beta", member("x@u.example", "2024-01-01")),
    )
    assert export_rows(session, rules, "u", "2026-03") == [
        ["email", "name", "teams"],
        ["a@u.example", "", "beta"],
        ["x@u.example", "", "Zeta; beta; beta; Ärger"],
    ]


# Formats ------------------------------------------------------------------


def test_csv_is_utf8_with_a_bom_so_umlauts_survive(export):
    data = export("acme", "2026-10")
    assert data.startswith(codecs.BOM_UTF8 + b"email,name,teams\r\n")
    assert "Dora Weiß".encode() in data
    assert "Anna Schäfer" in data.decode("utf-8-sig")


def test_csv_chunks_stream_the_same_document(demo_cli, session, rules):
    prepared = licence_holders(session, rules, "acme", Month(2026, 10), NOW)
    assert csv_rows(b"".join(csv_chunks(prepared))) == ACME_OCTOBER


def test_csv_goes_to_a_text_stream_too(demo_cli, session, rules):
    out = io.StringIO(newline="")
    count = export_licence_holders(session, rules, "acme", Month(2026, 10), NOW, "csv", out)
    assert count == 4
    assert out.getvalue().startswith("\ufeffemail,name,teams\r\n")
    assert list(csv.reader(io.StringIO(out.getvalue()[1:], newline=""))) == ACME_OCTOBER


def test_xlsx_holds_the_same_rows_with_numbers_as_numbers(export):
    assert xlsx_rows(export("acme", "2026-10", "xlsx")) == ACME_OCTOBER
    teams = xlsx_cells(export("nordwind", "2026-10", "xlsx"))
    assert [[cell.value for cell in row] for row in teams] == [
        ["team", "members"],
        ["Disposition", 2],
        ["Fuhrpark", 1],
    ]
    assert {cell.data_type for row in teams[1:] for cell in row} == {"s", "n"}


def test_an_unknown_workspace_or_a_future_month_is_refused_before_writing(demo_cli, session, rules):
    out = io.BytesIO()
    with pytest.raises(LookupError, match="no workspace with the key 'nope'"):
        export_licence_holders(session, rules, "nope", Month(2026, 10), NOW, "csv", out)
    with pytest.raises(ValueError, match="2027-01 is in the future"):
        export_licence_holders(session, rules, "acme", Month(2027, 1), NOW, "xlsx", out)
    assert out.getvalue() == b""


def test_an_unknown_format_is_refused(demo_cli, session, rules):
    with pytest.raises(ValueError, match="unknown export format 'pdf'"):
        export_licence_holders(session, rules, "acme", Month(2026, 10), NOW, "pdf", io.BytesIO())


def test_xlsx_refuses_a_text_stream(demo_cli, session, rules):
    with pytest.raises(TypeError, match="binary"):
        export_licence_holders(session, rules, "acme", Month(2026, 10), NOW, "xlsx", io.StringIO())


# Formula injection --------------------------------------------------------

HOSTILE = {
    "anna@mueller-soehne.example": "=cmd|' /C calc'!A0",
    "chris@consulting.example": "+1",
    "dora@mueller-soehne.example": "-2",
    "emil@mueller-soehne.example": "@x",
}
HOSTILE_TEAMS = {"sales": "\tTab", "support": "\rCR", "legacy": '=HYPERLINK("http://x")'}


@pytest.mark.parametrize("trigger", FORMULA_TRIGGERS)
def test_every_formula_trigger_is_neutralised(trigger):
    assert neutralise(f"{trigger}SUM(A1)") == f"'{trigger}SUM(A1)"


HARMLESS = ["Anna", "", "a=b", "'quoted", "Ünal", " =1"]


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_text_is_left_alone(text):
    assert neutralise(text) == text


def test_the_database_neutralises_exactly_like_neutralise(session):
    """The rows are neutralised in SQL (formula_safe); it must agree with neutralise."""
    texts = [*(f"{trigger}SUM(A1)" for trigger in FORMULA_TRIGGERS), *HARMLESS, "\0"]
    if session.get_bind().dialect.name == "postgresql":
        texts = [text for text in texts if "\0" not in text]  # PostgreSQL text holds no NUL
    found = [session.scalar(sql_select(formula_safe(literal(text)))) for text in texts]
    assert found == [neutralise(text) for text in texts]
    assert session.scalar(sql_select(formula_safe(literal(None, String())))) is None


@pytest.fixture
def hostile(export, session):
    """The demo data with people and teams renamed to formulas."""
    for email, name in HOSTILE.items():
        session.execute(update(Person).where(Person.email == email).values(name=name))
    for key, name in HOSTILE_TEAMS.items():
        session.execute(update(Team).where(Team.key == key).values(name=name))
    session.commit()
    return export


def expected_hostile_rows() -> list[list[str]]:
    # Anna's teams sort "\tTab" (sales) before "\rCR" (support): a tab first.  A tab or
    # carriage return stored before such names were refused is shown as an escape,
    # after the leading "'" that neutralises the cell.
    return [
        ["email", "name", "teams"],
        ["anna@mueller-soehne.example", "'=cmd|' /C calc'!A0", "'<U+0009>Tab; <U+000D>CR"],
        ["chris@consulting.example", "'+1", "'<U+0009>Tab"],
        ["dora@mueller-soehne.example", "'-2", "'<U+000D>CR"],
        ["emil@mueller-soehne.example", "'@x", '\'=HYPERLINK("http://x")'],
    ]


def test_hostile_names_are_neutralised_in_csv(hostile):
    assert csv_rows(hostile("acme", "2026-10")) == expected_hostile_rows()


def test_hostile_names_are_string_cells_in_xlsx_never_formulas(hostile):
    data = hostile("acme", "2026-10", "xlsx")
    cells = xlsx_cells(data)
    assert {cell.data_type for row in cells for cell in row} == {"s"}
    assert all(cell.value.startswith("'") for row in cells[1:] for cell in row[1:])
    assert [[cell.value for cell in row] for row in cells] == expected_hostile_rows()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet
    assert "<f " not in sheet


# History ------------------------------------------------------------------


def exports_of(export, months: list[tuple[str, str]]) -> dict[tuple[str, str, str], bytes]:
    return {(key, month, fmt): export(key, month, fmt) for key, month in months for fmt in FORMATS}


def test_a_past_month_exports_the_same_after_later_archiving_and_purging(export, session):
    months = [("acme", "2026-10"), ("nordwind", "2026-10"), ("globex", "2026-10")]
    before = exports_of(export, months)
    december_before = csv_rows(export("acme", "2026-12"))
    later = datetime(2026, 11, 20, 12, tzinfo=UTC)
    # What a later archive and a purge do: archive teams after the month,
    # end every open membership and workspace access now.
    archive_from = datetime(2026, 11, 5, tzinfo=BERLIN)
    session.execute(
        insert(TeamArchivePeriod).from_select(
            ["team_id", "archived_from"],
            sql_select(Team.id, instant(archive_from)).where(Team.key.in_(["sales", "dispatch"])),
        )
    )
    session.execute(
        update(TeamMembership).where(TeamMembership.left_at.is_(None)).values(left_at=later)
    )
    session.execute(
        update(WorkspaceAccess).where(WorkspaceAccess.revoked_at.is_(None)).values(revoked_at=later)
    )
    session.commit()
    after = exports_of(export, months)
    assert after == before
    assert csv_rows(after["acme", "2026-10", "csv"]) == ACME_OCTOBER
    # The changes are real: December, after them, bills nobody any more.
    assert len(december_before) == 4
    assert csv_rows(export("acme", "2026-12")) == [["email", "name", "teams"]]


# The command line ---------------------------------------------------------


def test_the_cli_writes_csv_to_standard_output(demo_cli):
    result = demo_cli("licences", "acme", "--month", "2026-10")
    assert result.exit_code == 0, result.output
    assert csv_rows(result.stdout_bytes) == ACME_OCTOBER
    assert "4 billed member(s) of acme for 2026-10 written to standard output." in result.stderr


def test_the_cli_writes_xlsx_to_a_file(demo_cli, tmp_path):
    output = tmp_path / "nordwind.xlsx"
    result = demo_cli(
        "licences", "nordwind", "--month", "2026-10", "--format", "xlsx", "--output", str(output)
    )
    assert result.exit_code == 0, result.output
    assert xlsx_rows(output) == [["team", "members"], ["Disposition", 2], ["Fuhrpark", 1]]
    assert f"2 billed team(s) of nordwind for 2026-10 written to {output}." in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["nordwind.xlsx"]


def test_the_cli_replaces_an_earlier_file_with_the_new_export(demo_cli, tmp_path):
    output = tmp_path / "acme.csv"
    output.write_text("old", encoding="utf-8")
    result = demo_cli("licences", "acme", "--month", "2026-10", "--output", str(output))
    assert result.exit_code == 0, result.output
    assert csv_rows(output.read_bytes()) == ACME_OCTOBER
    assert sorted(path.name for path in tmp_path.iterdir()) == ["acme.csv"]


def test_the_cli_pipes_xlsx_when_standard_output_is_not_a_terminal(demo_cli):
    result = demo_cli("licences", "acme", "--month", "2026-10", "--format", "xlsx")
    assert result.exit_code == 0, result.output
    assert xlsx_rows(result.stdout_bytes) == ACME_OCTOBER


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["nope", "--month", "2026-10"], 1, "no workspace with the key 'nope'"),
        (["acme", "--month", "2999-01"], 1, "2999-01 is in the future"),
        (["acme", "--month", "2026-13"], 2, "2026-13 is not a month"),
        (["acme", "--month", "Oct"], 2, "'Oct' is not a month: write it as YYYY-MM"),
        (["acme", "--separator", "|"], 2, "'|' is not a CSV separator"),
        (["acme", "--month", "2026-10", "--format", "pdf"], 2, "'pdf' is not one of"),
    ],
)
def test_the_cli_refuses_bad_arguments_and_writes_nothing(
    demo_cli, tmp_path, args, status, message
):
    earlier = tmp_path / "earlier.csv"
    earlier.write_bytes(b"kept")
    for output in (tmp_path / "new.csv", earlier):
        result = demo_cli("licences", *args, "--output", str(output))
        assert result.exit_code == status, result.output
        assert message in result.output
        assert result.stdout_bytes == b""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["earlier.csv"]
    assert earlier.read_bytes() == b"kept"


def test_the_cli_says_when_it_cannot_write(demo_cli, tmp_path):
    output = tmp_path / "missing" / "acme.csv"
    result = demo_cli("licences", "acme", "--month", "2026-10", "--output", str(output))
    assert result.exit_code == 1
    assert f"cannot write {output}" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_cli_refuses_to_write_xlsx_onto_a_terminal(demo_cli, database_url):
    terminal, child_side = pty.openpty()
    env = {
        **os.environ,
        "DEMO_DATABASE_URL": database_url,
        "BILLING_RULES_PATH": str(RULES_PATH),
    }
    command = [sys.executable, "-m", "flask", "--app", "examples.backoffice:create_app"]
    args = ["billing", "licences", "acme", "--month", "2026-10", "--format", "xlsx"]
    try:
        finished = subprocess.run(
            [*command, *args],
            stdout=child_side,
            stderr=subprocess.PIPE,
            cwd=REPOSITORY,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        os.close(child_side)
    written = b""
    while select.select([terminal], [], [], 0.1)[0]:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:
            break
        if not chunk:
            break
        written += chunk
    os.close(terminal)
    assert finished.returncode == 1
    assert b"standard output is a terminal" in finished.stderr
    assert written == b""


# Constant memory ---------------------------------------------------------

#: Members of the smaller generated workspace; the larger has ten times as many.
SMALL = 2000
#: How much more the larger export may take at its peak: a fraction of what
#: holding its extra rows would need (several megabytes).
MEMORY_BOUND = 256 * 1024


CREATED = datetime(2024, 1, 1, tzinfo=UTC)


def _add_workspace(session, key: str, variant: str, people: int):
    """The workspace's id and a subquery of its ``people`` new people (id, email).

    The people come from a recursive count in SQL: no rows are built in Python.
    """
    workspace_id = session.execute(
        insert(Workspace)
        .values(key=key, name=key, created_at=CREATED, contract_variant=variant)
        .returning(Workspace.id)
    ).scalar_one()
    numbers = sql_select(literal(1).label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(sql_select(numbers.c.n + 1).where(numbers.c.n < people))
    number = cast(numbers.c.n, String)
    session.execute(
        insert(Person).from_select(
            ["email", "name"],
            sql_select(
                literal("p") + number + literal(f"@{key}.example"), literal("Pérson ") + number
            ),
        )
    )
    return workspace_id, (
        sql_select(Person.id, Person.email).where(Person.email.like(f"%@{key}.example")).subquery()
    )


def _add_memberships(session, workspace_id: int, pairs) -> None:
    """Every (team, person) of ``pairs`` joins at :data:`CREATED`, in one statement."""
    session.execute(
        insert(TeamMembership).from_select(
            ["team_id", "person_id", "joined_at"],
            pairs.add_columns(instant(CREATED)).where(Team.workspace_id == workspace_id),
        )
    )
    session.commit()


def add_user_licence_workspace(session, key: str, people: int) -> None:
    """``people`` members, each in the same two teams: two rows per member to group."""
    workspace_id, members = _add_workspace(session, key, "user_licences", people)
    session.execute(
        insert(Team),
        [
            {"workspace_id": workspace_id, "key": name, "name": name, "created_at": CREATED}
            for name in ("one", "two")
        ],
    )
    everyone_in_both = sql_select(Team.id, members.c.id).join_from(Team, members, true())
    _add_memberships(session, workspace_id, everyone_in_both)


def add_team_licence_workspace(session, key: str, people: int) -> None:
    """``people`` members, each in a team of their own: one team row per member."""
    workspace_id, members = _add_workspace(session, key, "team_licences", people)
    session.execute(
        insert(Team).from_select(
            ["workspace_id", "key", "name", "created_at"],
            sql_select(literal(workspace_id), members.c.email, members.c.email, instant(CREATED)),
        )
    )
    _add_memberships(
        session, workspace_id, sql_select(Team.id, members.c.id).where(Team.key == members.c.email)
    )


BUILDERS = {
    "user_licences": add_user_licence_workspace,
    "team_licences": add_team_licence_workspace,
}


def peak_growth(write) -> int:
    """Bytes allocated at the peak of ``write()`` beyond what was allocated before it."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    write()
    return tracemalloc.get_traced_memory()[1] - before


def test_exports_run_in_constant_memory_whatever_the_row_count(session, rules, tmp_path):
    for variant, add in BUILDERS.items():
        for size in (SMALL, 10 * SMALL):
            add(session, f"{variant}-{size}", size)

    def write(variant: str, size: int, fmt: str) -> None:
        key = f"{variant}-{size}"
        with (tmp_path / f"{key}.{fmt}").open("wb") as out:
            count = export_licence_holders(session, rules, key, Month(2026, 10), NOW, fmt, out)
        assert count == size

    # Both row sources through CSV; the XLSX writer is the same for both, so
    # the narrower one shows its constant-memory mode (and keeps the test short).
    cases = [("user_licences", "csv"), ("team_licences", "csv"), ("team_licences", "xlsx")]
    for variant, fmt in cases:
        write(variant, SMALL, fmt)  # warm up: compiled SQL, imports, caches
    growth = {}
    tracemalloc.start()
    try:
        for variant, fmt in cases:
            small = peak_growth(lambda v=variant, f=fmt: write(v, SMALL, f))
            large = peak_growth(lambda v=variant, f=fmt: write(v, 10 * SMALL, f))
            growth[variant, fmt] = large - small
    finally:
        tracemalloc.stop()
    assert all(extra < MEMORY_BOUND for extra in growth.values()), growth
