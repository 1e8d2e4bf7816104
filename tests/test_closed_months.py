"""Invoiced months are closed, on every path; the export of an invoiced month is what was billed.

The demo data is invoiced for October 2026 (closed until 31 October 23:00
UTC, the end of October in Europe/Berlin).  acme (user licences) billed 4
people in October: Anna (sales, support), Chris (sales), Dora (support) and
Emil (legacy, archived from 15 October); nordwind (team licences) billed
dispatch (Hanna, Chris) and fleet (Ivan).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from plugin import api
from plugin.models import (
    ClosedPeriod,
    Invoice,
    InvoiceHolder,
    Person,
    Team,
    TeamMembership,
    Workspace,
)
from plugin.services.closed import closed_period
from plugin.services.exports import export_licence_holders, licence_holders
from plugin.services.invoicing import close_month
from plugin.services.periods import Month
from plugin.services.purge import purge_inactive
from plugin.types import utcnow
from tests.conftest import DEMO
from tests.helpers import snapshot

ACTOR = "support@backoffice.example"
OCTOBER = Month(2026, 10)
CLOSED_UNTIL = datetime(2026, 10, 31, 23, tzinfo=UTC)
CHRIS = "chris@consulting.example"


@pytest.fixture
def rules(app):
    return app.extensions["billing"].rules()


@pytest.fixture
def invoiced(demo_cli, session, rules):
    """The demo data with October 2026 closed: the invoice number of each workspace key."""
    close_month(session, rules, OCTOBER, utcnow(), actor="accounting")
    session.commit()
    return dict(
        session.execute(
            select(Invoice.workspace_key, Invoice.number).where(Invoice.period == str(OCTOBER))
        ).all()
    )


def export(session, rules, key: str, fmt: str = "csv", month: Month = OCTOBER) -> bytes:
    out = io.BytesIO()
    export_licence_holders(session, rules, key, month, utcnow(), fmt, out)
    return out.getvalue()


def csv_rows(data: bytes) -> list[str]:
    return data.decode("utf-8-sig").splitlines()


def write(tmp_path: Path, text_: str) -> str:
    path = tmp_path / "import.yaml"
    path.write_text(text_, encoding="utf-8")
    return str(path)


# Stored licence holders ------------------------------------------------------------


def test_the_close_stores_the_licence_holders_it_billed(demo_cli, session, rules):
    live = {key: export(session, rules, key) for key in ("acme", "nordwind", "globex", "initech")}
    numbers = close_month(session, rules, OCTOBER, utcnow(), actor="accounting").issued
    session.commit()
    assert len(numbers) == 4
    stored = session.execute(
        select(
            Invoice.workspace_key,
            InvoiceHolder.email,
            InvoiceHolder.team_name,
            InvoiceHolder.members,
        )
        .join(Invoice, Invoice.id == InvoiceHolder.invoice_id)
        .where(Invoice.workspace_key.in_(["acme", "nordwind"]))
        .order_by(Invoice.workspace_key, InvoiceHolder.email, InvoiceHolder.team_name)
    ).all()
    assert [tuple(row) for row in stored] == [
        ("acme", "anna@mueller-soehne.example", "Kundendienst", None),
        ("acme", "anna@mueller-soehne.example", "Vertrieb", None),
        ("acme", CHRIS, "Vertrieb", None),
        ("acme", "dora@mueller-soehne.example", "Kundendienst", None),
        ("acme", "emil@mueller-soehne.example", "Altprojekte", None),
        ("nordwind", None, "Disposition", 2),
        ("nordwind", None, "Fuhrpark", 1),
    ]
    # The invoice's quantity, the stored list and the live computation agree.
    quantities = dict(
        session.execute(
            select(Invoice.workspace_key, Invoice.quantity).where(Invoice.period == "2026-10")
        ).all()
    )
    for key, data in live.items():
        assert export(session, rules, key) == data
        assert len(csv_rows(data)) - 1 == quantities[key]
        assert licence_holders(session, rules, key, OCTOBER, utcnow()).invoice_id is not None


def test_an_invoiced_months_export_stays_byte_for_byte_after_any_later_change(
    invoiced, session, rules
):
    before = {
        (key, fmt): export(session, rules, key, fmt)
        for key in ("acme", "nordwind")
        for fmt in ("csv", "xlsx")
    }
    assert csv_rows(before[("acme", "csv")]) == [
        "email,name,teams",
        "anna@mueller-soehne.example,Anna Schäfer,Kundendienst; Vertrieb",
        "chris@consulting.example,Chris Olsen,Vertrieb",
        "dora@mueller-soehne.example,Dora Weiß,Kundendienst",
        "emil@mueller-soehne.example,Emil Brandt,Altprojekte",
    ]
    api.rename_person(email="anna@mueller-soehne.example", name="Anna Vogt", actor=ACTOR)
    api.change_email(
        email="dora@mueller-soehne.example", new_email="dora@weiss.example", actor=ACTOR
    )
    api.rename_team(workspace="acme", team="sales", name="=HYPERLINK(1)", actor=ACTOR)
    api.rename_team(workspace="nordwind", team="dispatch", name="Aaa first now", actor=ACTOR)
    api.remove_member(workspace="acme", email=CHRIS, actor=ACTOR)
    api.archive_team(workspace="acme", team="support", actor=ACTOR)
    api.add_to_team(workspace="nordwind", team="fleet", email="hanna@nordwind.example", actor=ACTOR)
    acme = session.scalar(select(Workspace.id).where(Workspace.key == "acme"))
    purge_inactive(session, acme, now=utcnow(), actor=ACTOR)
    session.commit()
    for (key, fmt), data in before.items():
        assert export(session, rules, key, fmt) == data, (key, fmt)
    # November, not invoiced, is computed from the history and shows the changes.
    november = csv_rows(export(session, rules, "acme", month=Month(2026, 11)))
    assert "anna@mueller-soehne.example,Anna Vogt,'=HYPERLINK(1); Kundendienst" in november


# The API and the services ----------------------------------------------------------


def test_the_api_refuses_an_instant_in_the_invoiced_month(invoiced, session):
    before = snapshot(session)
    for at in (datetime(2026, 10, 20, tzinfo=UTC), CLOSED_UNTIL):
        with pytest.raises(api.ClosedMonth) as error:
            api.add_to_team(
                workspace="acme",
                team="sales",
                email="gerda@mueller-soehne.example",
                actor=ACTOR,
                at=at,
            )
        message = str(error.value)
        assert message.startswith(
            "workspace acme: membership of gerda@mueller-soehne.example in sales"
        )
        assert f"which invoice {invoiced['acme']} holds" in message
        assert "the end of 2026-10" in message
        assert error.value.field == "at"
    with pytest.raises(api.ClosedMonth, match=invoiced["nordwind"]):
        api.create_team(workspace="nordwind", key="new", name="New", actor=ACTOR, at=CLOSED_UNTIL)
    with pytest.raises(api.ClosedMonth):
        api.archive_team(workspace="nordwind", team="dispatch", actor=ACTOR, at=CLOSED_UNTIL)
    with pytest.raises(api.ClosedMonth):
        api.remove_member(workspace="acme", email=CHRIS, actor=ACTOR, at=CLOSED_UNTIL)
    session.expire_all()
    assert snapshot(session) == before
    # Just after the end of the invoiced month is allowed.
    later = CLOSED_UNTIL + timedelta(microseconds=1)
    assert api.remove_member(workspace="acme", email=CHRIS, actor=ACTOR, at=later).changed


def test_a_late_close_of_an_earlier_month_never_moves_the_closed_period_back(
    invoiced, session, rules
):
    september = close_month(session, rules, Month(2026, 9), utcnow(), actor="accounting")
    session.commit()
    assert september.issued
    acme = session.scalar(select(Workspace.id).where(Workspace.key == "acme"))
    closed = closed_period(session, acme)
    assert (closed.closed_until, closed.invoice_number) == (CLOSED_UNTIL, invoiced["acme"])


# The import ---------------------------------------------------------------------------

SEPTEMBER_LEAVE = (
    "          - {email: chris@consulting.example, name: Chris Olsen, joined: 2023-02-01}\n",
    "          - {email: chris@consulting.example, name: Chris Olsen, joined: 2023-02-01, "
    "left: 2026-09-15}\n",
)


def test_the_september_leave_reimport_is_refused_and_changes_nothing(
    invoiced, demo_cli, session, rules, tmp_path
):
    """The issue's measurement: October invoiced, then a member leaves on 15 September."""
    october = export(session, rules, "acme")
    before = snapshot(session)
    changed = DEMO.read_text(encoding="utf-8").replace(*SEPTEMBER_LEAVE)
    assert changed != DEMO.read_text(encoding="utf-8")
    result = demo_cli("import", write(tmp_path, changed))
    assert result.exit_code == 1
    line = DEMO.read_text(encoding="utf-8").splitlines(keepends=True).index(SEPTEMBER_LEAVE[0]) + 1
    assert (
        f"import.yaml: line {line}: workspaces[0].teams[0].members[2]: workspace acme: ending the "
        "membership of chris@consulting.example in team acme/sales "
        "(joined 2023-02-01T00:00:00+01:00) at 2026-09-15T00:00:00+02:00 would change history "
        "at or before 2026-10-31T23:00:00+00:00, the end of 2026-10, which invoice "
        f"{invoiced['acme']} holds" in result.stderr
    ), result.stderr
    assert "1 error(s) in import.yaml; nothing was imported." in result.stderr
    session.expire_all()
    assert snapshot(session) == before
    assert export(session, rules, "acme") == october


def test_a_reimport_that_leaves_out_or_adds_closed_history_is_refused(
    invoiced, demo_cli, session, tmp_path
):
    before = snapshot(session)
    demo = DEMO.read_text(encoding="utf-8")
    changed = (
        demo.replace(
            "        members:\n"
            "          - {email: emil@mueller-soehne.example, name: Emil Brandt, "
            "joined: 2022-05-10}\n",
            "",
        )
        .replace(
            "          - {email: ivan@nordwind.example, name: Ivan Petrov, joined: 2023-07-01}\n",
            "          - {email: ivan@nordwind.example, name: Ivan Petrov, joined: 2023-07-01}\n"
            "          - {email: new@nordwind.example, joined: 2026-10-05}\n",
        )
        .replace(
            "      - key: finance\n        name: Finanzen\n        created: 2026-11-03",
            "      - key: finance\n        name: Finanzen\n        created: 2026-11-03\n"
            "      - key: late\n        name: Late\n        created: 2026-09-01",
        )
    )
    result = demo_cli("import", write(tmp_path, changed))
    assert result.exit_code == 1
    # Teams are checked first: a team created inside the invoiced month.
    assert "workspaces[1].teams[3].created: workspace nordwind: creating team nordwind/late" in (
        result.stderr
    )
    session.expire_all()
    assert snapshot(session) == before
    without_team = changed.replace(
        "\n      - key: late\n        name: Late\n        created: 2026-09-01", ""
    )
    result = demo_cli("import", write(tmp_path, without_team))
    assert result.exit_code == 1
    assert (
        "workspaces[0]: workspace acme: removing the membership of emil@mueller-soehne.example "
        "in team acme/legacy (joined 2022-05-09T22:00:00+00:00), which the file leaves out"
    ) in result.stderr
    assert (
        "workspaces[1].teams[1].members[1]: workspace nordwind: adding the membership of "
        "new@nordwind.example in team nordwind/fleet"
    ) in result.stderr
    assert "3 error(s) in import.yaml; nothing was imported." in result.stderr
    session.expire_all()
    assert snapshot(session) == before


def test_moving_the_creation_of_an_invoiced_workspace_is_refused(
    invoiced, demo_cli, session, tmp_path
):
    """A workspace's creation decides the months it is billed for and its variant:
    nordwind, created after the cut-over, would bill user licences if created before."""
    before = snapshot(session)
    demo = DEMO.read_text(encoding="utf-8")
    for index, key, old, new, at in (
        (0, "acme", "2022-05-10", "2022-05-01", "2022-05-01T00:00:00+02:00"),
        (1, "nordwind", "2023-06-01", "2023-01-01", "2023-01-01T00:00:00+01:00"),
    ):
        head = f"  - key: {key}\n    name: "
        created = demo.index(f"    created: {old}\n", demo.index(head))
        line = demo[:created].count("\n") + 1
        changed = demo[:created] + demo[created:].replace(old, new, 1)
        result = demo_cli("import", write(tmp_path, changed))
        assert result.exit_code == 1
        assert (
            f"import.yaml: line {line}: workspaces[{index}].created: workspace {key}: moving "
            f"the creation of workspace {key} to {at} would change history at or before "
            "2026-10-31T23:00:00+00:00, the end of 2026-10, which invoice "
            f"{invoiced[key]} holds"
        ) in result.stderr, result.stderr
        assert "1 error(s) in import.yaml; nothing was imported." in result.stderr
        session.expire_all()
        assert snapshot(session) == before


def test_a_workspace_without_an_invoice_may_still_move_its_creation(demo_cli, session, tmp_path):
    demo = DEMO.read_text(encoding="utf-8")
    head = '    name: "Müller & Söhne GmbH"\n    created: 2022-05-10\n'
    result = demo_cli("import", write(tmp_path, demo.replace(head, head[:-11] + "2022-05-01\n")))
    assert result.exit_code == 0, result.output
    created = session.scalar(select(Workspace.created_at).where(Workspace.key == "acme"))
    assert created == datetime(2022, 4, 30, 22, tzinfo=UTC)


def test_a_reimport_after_the_invoiced_month_still_works(invoiced, demo_cli, session, tmp_path):
    assert "Nothing to change" in demo_cli("import", str(DEMO)).output
    changed = DEMO.read_text(encoding="utf-8").replace(
        "{email: hanna@nordwind.example, name: Hanna Berg, joined: 2023-06-01}",
        "{email: hanna@nordwind.example, name: Hanna Berg, joined: 2023-06-01, left: 2026-11-20}",
    )
    result = demo_cli("import", write(tmp_path, changed))
    assert result.exit_code == 0, result.output
    assert "updated" in result.output


# The CLI ----------------------------------------------------------------------------


def test_the_cli_refuses_a_back_dated_change_in_the_invoiced_month(invoiced, demo_cli, session):
    before = snapshot(session)
    result = demo_cli("remove-from-team", "acme", "sales", CHRIS, "--at", "2026-10-20")
    assert result.exit_code == 1
    assert "workspace acme: membership of chris@consulting.example in sales" in result.stderr
    assert invoiced["acme"] in result.stderr
    assert result.stderr.rstrip().endswith("nothing was changed.")
    assert result.stdout == ""
    session.expire_all()
    assert snapshot(session) == before
    result = demo_cli("remove-from-team", "acme", "sales", CHRIS, "--at", "2026-11-02")
    assert result.exit_code == 0, result.output


# Raw SQL ------------------------------------------------------------------------------


def _chris_in_sales(session) -> int:
    return session.scalar(
        select(TeamMembership.id)
        .join(Team, Team.id == TeamMembership.team_id)
        .join(Person, Person.id == TeamMembership.person_id)
        .where(Team.key == "sales", Person.email == CHRIS)
    )


RAW_REFUSED = [
    "UPDATE billing_team_membership SET left_at = :sept WHERE id = :membership",
    "UPDATE billing_team_membership SET joined_at = :sept WHERE id = :membership",
    "DELETE FROM billing_team_membership WHERE id = :membership",
    "INSERT INTO billing_team_membership (team_id, person_id, joined_at, left_at) "
    "SELECT team_id, person_id, :sept, :sept FROM billing_team_membership WHERE id = :membership",
    "UPDATE billing_team SET created_at = :sept WHERE key = 'finance'",
    "UPDATE billing_workspace_access SET revoked_at = :sept "
    "WHERE revoked_at IS NULL AND granted_at < :sept",
    "INSERT INTO billing_team_archive_period (team_id, archived_from) "
    "SELECT id, :sept FROM billing_team WHERE key = 'sales'",
]


@pytest.mark.parametrize("statement", RAW_REFUSED)
def test_raw_sql_back_dating_is_refused_by_the_database(invoiced, session, statement):
    before = snapshot(session)
    sept = datetime(2026, 9, 15, tzinfo=UTC)
    if session.get_bind().dialect.name == "sqlite":
        sept = "2026-09-15 00:00:00.000000"
    with pytest.raises(DBAPIError, match="invoiced months are closed"):
        session.execute(text(statement), {"sept": sept, "membership": _chris_in_sales(session)})
    session.rollback()
    assert snapshot(session) == before


def test_raw_sql_may_still_rename_and_change_the_present(invoiced, session):
    session.execute(text("UPDATE billing_team SET name = 'Sales' WHERE key = 'sales'"))
    session.execute(
        text("UPDATE billing_team_membership SET left_at = :now WHERE id = :membership"),
        {"now": utcnow(), "membership": _chris_in_sales(session)},
    )
    session.commit()
    assert session.scalar(
        select(TeamMembership.left_at).where(TeamMembership.id == _chris_in_sales(session))
    )


# The migration ----------------------------------------------------------------------


def test_upgrading_closes_the_months_of_existing_invoices(invoiced, app, session):
    """Invoices issued before migration 0010 close their months when it runs."""
    from plugin import migrate

    engine = app.extensions["sqlalchemy"].engine
    session.close()
    migrate.downgrade(engine, "0007")
    migrate.upgrade(engine)
    rows = session.execute(
        select(Workspace.key, ClosedPeriod.closed_until, Invoice.number)
        .join(Workspace, Workspace.id == ClosedPeriod.workspace_id)
        .join(Invoice, Invoice.id == ClosedPeriod.invoice_id)
        .order_by(Workspace.key)
    ).all()
    assert [tuple(row) for row in rows] == [
        (key, CLOSED_UNTIL, number) for key, number in sorted(invoiced.items())
    ]
    with pytest.raises(api.ClosedMonth):
        api.remove_member(workspace="acme", email=CHRIS, actor=ACTOR, at=CLOSED_UNTIL)


def test_stored_holders_equal_the_live_computation_on_generated_data(app, session, rules):
    """Every invoice of a generated back-office (both variants, archived teams, people in
    several teams and workspaces): its stored rows are the live rows at issue time."""
    from dataclasses import replace

    from plugin.services.exports import licence_holders_of
    from plugin.synthetic.generator import generate

    now = utcnow()
    generate(session, seed=7, scale=12, tz=rules.zoneinfo, now=now)
    session.commit()
    month = Month.of(now, rules.zoneinfo).previous()
    workspace_ids = session.scalars(select(Workspace.id)).all()
    live = {
        export.workspace_key: list(export.rows())
        for export in licence_holders_of(session, rules, workspace_ids, month, now)
    }
    issued = close_month(session, rules, month, now, actor="accounting").issued
    session.commit()
    assert len(issued) == len(workspace_ids)
    exports = licence_holders_of(session, rules, workspace_ids, month, now)
    assert all(export.invoice_id is not None for export in exports)
    variants = {export.variant for export in exports}
    assert variants == {"user_licences", "team_licences"}
    for export in exports:
        assert list(export.rows()) == live[export.workspace_key], export.workspace_key
        assert list(replace(export, invoice_id=None).rows()) == live[export.workspace_key]
    assert sum(len(rows) for rows in live.values()) > 100


def test_the_closed_month_check_reads_each_changed_row_once(invoiced, session):
    """PostgreSQL's check of an UPDATE (migration 0017) reads the changed rows once: with
    ``LIMIT 1`` it was planned to stop at the first offending row and read every new row
    again for each invoiced workspace, so a purge of 110,000 members after a close spent
    26 s in it where the UPDATE itself took 2 s.  Watched with auto_explain's plans: the
    demo's few rows do not make the planner pick that loop, so the test checks that the
    check is planned for every row (no ``Limit`` node), as well as what it read."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite checks each row in a trigger of its own")
    plans: list[str] = []
    connection = session.connection().connection.driver_connection
    connection.add_notice_handler(
        lambda notice: plans.append(f"{notice.message_primary}\n{notice.context}")
    )
    for setting in (
        "LOAD 'auto_explain'",
        "SET LOCAL auto_explain.log_min_duration = 0",
        "SET LOCAL auto_explain.log_analyze = on",
        "SET LOCAL auto_explain.log_nested_statements = on",
        "SET LOCAL auto_explain.log_level = notice",
    ):
        session.execute(text(setting))
    acme = session.scalar(select(Workspace.id).where(Workspace.key == "acme"))
    result = purge_inactive(session, acme, now=utcnow(), actor=ACTOR)
    checks = [plan for plan in plans if "closed_update()" in plan and "Tuplestore" in plan]
    assert len(result.removed) == 3
    assert len(checks) == 2  # the access UPDATE's check and the membership UPDATE's
    assert not any("\nLimit  (" in plan for plan in checks), checks
    scans = [line for plan in checks for line in plan.splitlines() if "Tuplestore Scan" in line]
    assert scans
    assert all("loops=1)" in line or "never executed" in line for line in scans), checks
