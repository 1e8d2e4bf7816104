"""The billing dashboard: figures by hand from a small history, counters, links, rules errors.

The fixture, relative to the current month M (billing time zone):

- ``solo``: user licences (created 2022), one team of 3 people; e-mailed invoices;
- ``crew``: team licences (created 2024), teams ``red`` and ``blue``;
- ``pending``: user licences, one person, no billing details: every close holds it.

M-3 and M-2 are closed; crew's M-2 invoice is credited in full.  By hand
(pricing_rules.yaml, 2026 prices): solo 3 × 9.00 = 27.00, below the 59.00
minimum → 59.00 net; crew 2 × 32.00 = 64.00 net.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import request
from sqlalchemy import event, func, select, text, update

from plugin.models import Invoice, MonthLicences, OutboxMail, Person, Team, TeamMembership
from plugin.services.dashboard import invoice_problems, monthly_figures
from plugin.services.invoicing import close_month, issue_credit_note
from plugin.services.periods import Month
from plugin.types import utcnow
from tests.conftest import make_app
from tests.helpers import QueryCounter

URL = "/admin/billing_dashboard/"

FIXTURE = """
workspaces:
  - key: solo
    name: Solo GmbH
    created: 2022-01-10
    invoice_mailbox: invoices@solo.example
    billing_details:
      {legal_name: Solo GmbH, street: Hafenstraße 1, postcode: "20457", city: Hamburg,
       country: DE, language: de}
    owners: [ada@solo.example]
    teams:
      - key: core
        name: Core
        created: 2022-01-10
        members:
          - {email: ada@solo.example, name: Ada, joined: 2022-01-10}
          - {email: ben@solo.example, name: Ben, joined: 2022-01-10}
          - {email: cem@solo.example, name: Cem, joined: 2022-01-10}
  - key: crew
    name: Crew AG
    created: 2024-02-01
    billing_details:
      {legal_name: Crew AG, street: Am Kai 2, postcode: "20457", city: Hamburg,
       country: DE, language: en}
    owners: [dan@crew.example]
    teams:
      - key: red
        name: Red
        created: 2024-02-01
        members:
          - {email: dan@crew.example, name: Dan, joined: 2024-02-01}
      - key: blue
        name: Blue
        created: 2024-02-01
        members:
          - {email: eva@crew.example, name: Eva, joined: 2024-02-01}
  - key: pending
    name: Pending KG
    created: 2022-03-01
    owners: [fin@pending.example]
    teams:
      - key: only
        name: Only
        created: 2022-03-01
        members:
          - {email: fin@pending.example, name: Fin, joined: 2022-03-01}
"""


@pytest.fixture
def client(app):
    client = app.test_client()
    client.get("/demo/role/accounting")
    return client


@pytest.fixture
def months(app):
    rules = app.extensions["billing"].rules(app)
    current = Month.of(utcnow(), rules.zoneinfo)
    return [
        current.previous().previous().previous(),
        current.previous().previous(),
        current.previous(),
        current,
    ]


@pytest.fixture
def data(app, cli, session, tmp_path, months):
    path = tmp_path / "dashboard.yaml"
    path.write_text(FIXTURE, encoding="utf-8")
    result = cli("import", str(path))
    assert result.exit_code == 0, result.output
    rules = app.extensions["billing"].rules(app)
    for month in months[:2]:
        close_month(session, rules, month, utcnow(), actor="test")
        session.commit()
    crew = session.scalar(
        select(Invoice.number).where(
            Invoice.workspace_key == "crew", Invoice.period == str(months[1])
        )
    )
    issue_credit_note(session, rules, crew, "Teams were never used", utcnow(), actor="test")
    session.commit()
    return months


def rows(page: str) -> dict[str, dict[str, str]]:
    """The month table: month -> status, licences and net per variant, net total."""
    table = page.split('id="dashboard-months"')[1].split("</table>")[0]
    found = {}
    for month, status, body in re.findall(
        r'<tr data-month="([\d-]+)" data-status="(\w+)"[^>]*>(.*?)</tr>', table, re.S
    ):
        cells = dict(re.findall(r'data-(?:licences|net)="(\w+)">([^<]*)<', body))
        licences = re.findall(r'data-licences="(\w+)">([^<]*)<', body)
        nets = re.findall(r'data-net="(\w+)">([^<]*)<', body)
        assert cells
        found[month] = {
            "status": status,
            **{f"licences {v}": n for v, n in licences},
            **{f"net {v}": n.strip() for v, n in nets},
        }
    return found


def test_the_figures_are_the_hand_computed_ones(client, data):
    m3, m2, m1, current = data
    page = client.get(URL)
    assert page.status_code == 200
    table = rows(page.get_data(as_text=True))
    assert len(table) == 12
    assert table[str(m3)] == {
        "status": "invoiced",
        "licences team_licences": "2",
        "licences user_licences": "3",
        "net team_licences": "64.00",
        "net user_licences": "59.00",
        "net total": "123.00 EUR",
    }
    # Credited in full: crew's teams and revenue are gone from M-2.
    assert table[str(m2)] == {
        "status": "invoiced",
        "licences team_licences": "0",
        "licences user_licences": "3",
        "net team_licences": "0.00",
        "net user_licences": "59.00",
        "net total": "59.00 EUR",
    }
    # Not invoiced: counted live (pending's person too), and no revenue.
    live = {
        "licences team_licences": "2",
        "licences user_licences": "4",
        "net team_licences": "—",
        "net user_licences": "—",
        "net total": "—",
    }
    assert table[str(m1)] == {"status": "not_invoiced", **live}
    assert table[str(current)] == {"status": "current", **live}
    text = page.get_data(as_text=True)
    assert 'id="dashboard-total-net">182.00 EUR' in text


def test_not_invoiced_months_are_never_labelled_billed_and_the_current_one_is_so_far(client, data):
    m3, m2, m1, current = data
    text = client.get(URL).get_data(as_text=True)
    assert "billed" not in text.lower()
    chart = text.split('id="dashboard-licences-user_licences"')[1].split("</svg>")[0]
    kinds = dict(re.findall(r'data-month="([\d/]+)" data-kind="(\w+)"', chart))
    label = {month: month.first_day.strftime("%m/%y") for month in data}
    assert kinds[label[m3]] == kinds[label[m2]] == "final"
    assert kinds[label[m1]] == "provisional"
    assert kinds[label[current]] == "partial"
    assert f"<title>{current}: 4 (so far, not invoiced)</title>" in chart
    assert f"<title>{m1}: 4 (not invoiced)</title>" in chart
    revenue = text.split('id="dashboard-revenue-team_licences"')[1].split("</svg>")[0]
    assert f"<title>{m3}: 64.00 EUR net</title>" in revenue
    assert f"<title>{m1}: not invoiced</title>" in revenue
    # A month without a figure draws no bar.
    bars = re.findall(r'data-kind="(\w+)">\s*<title>[^<]*</title>\s*(<rect)?', revenue)
    assert [kind for kind, rect in bars if rect] == ["final", "final"]


def counter(text: str, key: str) -> tuple[str, str | None]:
    card = text.split(f'id="counter-{key}"')[1].split("</div>\n    </div>")[0]
    count = re.search(r'data-count="(\d*)"', f'id="counter-{key}"' + card).group(1)
    link = re.search(r'<a href="([^"]+)">', card)
    return count, link.group(1).replace("&amp;", "&") if link else None


def test_the_counters_link_to_the_lists_they_count(client, data, session):
    m3, m2, m1, _ = data
    solo = session.scalar(
        select(Invoice).where(Invoice.workspace_key == "solo", Invoice.period == str(m3))
    )
    session.execute(update(Invoice).where(Invoice.id == solo.id).values(einvoice_status="invalid"))
    session.execute(
        update(OutboxMail)
        .where(OutboxMail.invoice_id == solo.id)
        .values(status="failed", last_error="550 mailbox unavailable")
    )
    session.commit()
    text = client.get(URL).get_data(as_text=True)
    held, held_url = counter(text, "held")
    assert held == "1"
    assert held_url == f"/admin/billing_details/?month={m1}"
    assert "pending" in client.get(held_url).get_data(as_text=True)
    # Five documents without a PDF (4 invoices, 1 credit note), one of them an invalid
    # e-invoice, counted apart.
    expected = {"einvoices_invalid": ("1", {solo.number}), "mail_failed": ("1", {solo.number})}
    all_numbers = set(session.scalars(select(Invoice.number)))
    expected["pdfs_pending"] = ("4", all_numbers - {solo.number})
    for key, (count, numbers) in expected.items():
        shown, url = counter(text, key)
        assert shown == count, key
        listed = client.get(url).get_data(as_text=True)
        assert set(re.findall(r"\b\d{4}-\d{5}\b", listed)) & all_numbers == numbers, key


def test_support_sees_the_dashboard_but_no_link_to_the_month_close(client, data):
    client.get("/demo/role/support")
    text = client.get(URL).get_data(as_text=True)
    held, url = counter(text, "held")
    assert (held, url) == ("1", None)
    assert counter(text, "pdfs_pending")[1] is not None


def test_a_host_can_keep_the_dashboard_to_accounting(database_url):
    app = make_app(database_url, BILLING_ACCESS={"view_dashboard": ["accounting"]})
    client = app.test_client()
    client.get("/demo/role/support")
    assert client.get(URL).status_code == 403
    assert "Dashboard" not in client.get("/admin/billing_invoices/").get_data(as_text=True)
    client.get("/demo/role/accounting")
    assert client.get(URL).status_code == 200
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def test_a_broken_rules_file_is_shown_and_billing_goes_on(app, client, data, tmp_path):
    store = app.extensions["billing"].rules_store(app)
    path = tmp_path / "rules.yaml"
    path.write_text(store.path.read_text(encoding="utf-8"), encoding="utf-8")
    store_path = store.path
    try:
        store.path = path
        store.current()
        path.write_text("currency: EUR\ntax_rate: lots\n", encoding="utf-8")
        text = client.get(URL).get_data(as_text=True)
    finally:
        store.path = store_path
    error = text.split('id="dashboard-rules-error"')[1].split("</div>")[0]
    assert "rules.yaml on disk has errors; billing still uses the last valid rules" in error
    assert "tax_rate" in error
    assert 'id="dashboard-months"' in text


def test_without_valid_rules_the_counters_still_show(database_url, tmp_path):
    broken = tmp_path / "rules.yaml"
    broken.write_text("currency: [\n", encoding="utf-8")
    app = make_app(database_url, BILLING_RULES_PATH=str(broken))
    client = app.test_client()
    client.get("/demo/role/accounting")
    page = client.get(URL)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "billing is unavailable until it is fixed" in text
    assert counter(text, "held")[0] == ""
    assert counter(text, "pdfs_pending")[0] == "0"
    assert 'id="dashboard-months"' not in text
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def test_the_dashboard_takes_a_fixed_number_of_queries_whatever_the_size(
    app, client, data, session
):
    engine = app.extensions["sqlalchemy"].engine

    def queries() -> int:
        with QueryCounter(engine) as counter:
            assert client.get(URL).status_code == 200
        return counter.count

    # The first view counts every workspace (nothing kept yet): the most it runs.
    before = queries()
    team = session.scalar(select(Team).where(Team.key == "only"))
    for n in range(30):
        person = Person(email=f"extra{n}@pending.example", name=f"Extra {n}")
        session.add(person)
        session.flush()
        session.add(TeamMembership(team_id=team.id, person_id=person.id, joined_at=team.created_at))
    session.commit()
    result = client.application.test_cli_runner().invoke(
        args=["billing", "import", str(_more_workspaces(client.application, 20))]
    )
    assert result.exit_code == 0, result.output
    assert queries() <= before
    assert (
        monthly_figures(session, app.extensions["billing"].rules(app), utcnow())[-1].licences[
            "user_licences"
        ]
        == 4 + 30 + 20
    )
    session.rollback()
    # Nothing changed since: the kept counts serve, no person is counted.
    seen = statements(engine, lambda: client.get(URL))
    assert not [statement for statement in seen if COUNTING in statement]
    assert len(seen) < before


#: The costly count of the months not invoiced: the distinct billed people.
COUNTING = "count(DISTINCT"


def statements(engine, work) -> list[str]:
    """The SQL statements ``work()`` runs on ``engine``."""
    seen: list[str] = []

    def record(connection, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_the_counts_one_view_kept_serve_another_app_without_counting(client, data, database_url):
    first = rows(client.get(URL).get_data(as_text=True))
    other = make_app(database_url)
    other_client = other.test_client()
    other_client.get("/demo/role/accounting")
    with other.app_context():
        engine = other.extensions["sqlalchemy"].engine
    pages: list[str] = []
    seen = statements(engine, lambda: pages.append(other_client.get(URL).get_data(as_text=True)))
    assert rows(pages[0]) == first
    assert not [statement for statement in seen if COUNTING in statement]
    engine.dispose()


def _users(client) -> dict[str, str]:
    page = rows(client.get(URL).get_data(as_text=True))
    return {month: row["licences user_licences"] for month, row in page.items()}


def test_the_kept_counts_follow_a_member_removed_behind_the_plugins_back(client, data, session):
    m3, m2, m1, current = data
    start, _ = m1.bounds(ZoneInfo("Europe/Berlin"))
    team = session.scalar(select(Team).where(Team.key == "core"))
    person = Person(email="late@solo.example", name="Late")
    session.add(person)
    session.flush()
    session.add(
        TeamMembership(team_id=team.id, person_id=person.id, joined_at=start + timedelta(hours=1))
    )
    session.commit()
    assert [_users(client)[str(month)] for month in (m1, current)] == ["5", "5"]
    # Not through a service: the stamp's trigger is what tells the kept counts.
    session.execute(
        text("DELETE FROM billing_team_membership WHERE person_id = :id"), {"id": person.id}
    )
    session.commit()
    assert [_users(client)[str(month)] for month in (m1, current)] == ["4", "4"]


def test_the_kept_counts_follow_a_contract_moved_to_the_other_variant(client, data, session):
    m3, m2, m1, current = data
    assert [_users(client)[str(month)] for month in (m1, current)] == ["4", "4"]
    # No history changed, so no stamp: the variant the rules give now is compared.
    session.execute(
        text("UPDATE billing_workspace SET contract_variant = 'team_licences' WHERE key = 'solo'")
    )
    session.commit()
    page = rows(client.get(URL).get_data(as_text=True))
    for month in (m1, current):
        assert page[str(month)]["licences user_licences"] == "1"
        assert page[str(month)]["licences team_licences"] == "3"


def test_a_member_dated_ahead_counts_once_the_day_comes_without_a_change(app, data, session):
    rules = app.extensions["billing"].rules(app)
    engine = app.extensions["sqlalchemy"].engine
    start, _ = data[-1].bounds(rules.zoneinfo)
    team = session.scalar(select(Team).where(Team.key == "only"))
    person = Person(email="soon@pending.example", name="Soon")
    session.add(person)
    session.flush()
    joins = start + timedelta(days=2)
    session.add(TeamMembership(team_id=team.id, person_id=person.id, joined_at=joins))
    session.commit()

    def users(now):
        return monthly_figures(session, rules, now)[-1].licences["user_licences"]

    assert users(start + timedelta(days=1)) == 4
    hour_later: list[int] = []
    seen = statements(engine, lambda: hour_later.append(users(start + timedelta(days=1, hours=1))))
    assert hour_later == [4]
    assert not [statement for statement in seen if COUNTING in statement]
    assert users(joins + timedelta(hours=1)) == 5


def _more_workspaces(app, count: int):
    path = Path(app.instance_path) / "more.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["workspaces:"]
    for n in range(count):
        lines += [
            f"  - {{key: more-{n}, name: More {n}, created: 2022-02-01,",
            f"     owners: [o{n}@more.example],",
            "     teams: [{key: t, name: T, created: 2022-02-01, members:",
            f"       [{{email: o{n}@more.example, name: O, joined: 2022-02-01}}]}}]}}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def plans(session, work) -> dict[str, str]:
    """The database's plan of every statement ``work()`` sends, as it sends it (parameters
    bound: a partial index serves only a condition that names its value in the SQL)."""
    sent = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        # Queries only: the kept counts' write and its lock timeout have no plan to read.
        if not executemany and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    connection = session.connection()
    if engine.dialect.name == "sqlite":
        explain, column = "EXPLAIN QUERY PLAN ", -1
    else:
        # The fixture's few rows fit a page: without this, a scan is the cheaper plan.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        explain, column = "EXPLAIN ", 0
    return {
        statement: "\n".join(
            row[column] for row in connection.exec_driver_sql(explain + statement, parameters)
        )
        for statement, parameters in sent
    }


def test_the_counters_and_the_monthly_totals_read_their_indexes(app, session, data):
    # On a year of invoices these are the difference between scanning every
    # invoice and mail and reading a handful of index entries (docs/performance.md).
    rules = app.extensions["billing"].rules(app)
    (counters,) = plans(session, lambda: invoice_problems(session)).values()
    assert "ix_billing_invoice_einvoice_invalid" in counters
    assert "ix_billing_invoice_pdf_pending" in counters
    assert "ix_billing_outbox_mail_failed" in counters
    figures = plans(session, lambda: monthly_figures(session, rules, utcnow()))
    (totals,) = [plan for sql, plan in figures.items() if "GROUP BY billing_invoice.period" in sql]
    assert "ix_billing_invoice_month_totals" in totals
    if session.get_bind().dialect.name == "sqlite":
        assert "COVERING INDEX ix_billing_invoice_month_totals" in totals
    session.rollback()


def test_the_money_sums_are_exact(app, session, data):
    figures = monthly_figures(session, app.extensions["billing"].rules(app), utcnow())
    invoiced = [f for f in figures if f.invoiced]
    assert [f.total_net for f in invoiced] == [Decimal("123.00"), Decimal("59.00")]
    assert all(isinstance(v, Decimal) for f in invoiced for v in f.net.values())


def test_the_page_has_nothing_a_strict_content_security_policy_blocks(client, data):
    text = client.get(URL).get_data(as_text=True)
    own = text.split('<h2 class="mt-2 mb-3">Billing dashboard</h2>')[1].split("</table>")[0]
    assert own.count("<svg") == 4
    own = own.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for blocked in ("<script", " style=", "<style", "javascript:", "http://", "https://"):
        assert blocked not in own, blocked
    assert not re.search(r"\son\w+=", own)  # no inline event handler


def worker_panel(page: str) -> tuple[str, str]:
    found = re.search(
        r'<div class="alert (alert-\w+)" role="status" id="dashboard-worker">([^<]*)<', page
    )
    assert found, "no worker panel"
    return found.group(1), found.group(2)


def test_the_worker_panel_warns_while_pdfs_wait_and_no_worker_was_seen(client, data, session):
    from datetime import timedelta

    from plugin.services.workers import beat

    session.execute(update(Invoice).where(Invoice.kind == "invoice").values(pdf_sha256=None))
    session.commit()
    level, text = worker_panel(client.get(URL).get_data(as_text=True))
    assert (level, text) == (
        "alert-warning",
        "No worker has been seen yet. Waiting for a worker: invoice PDFs.",
    )
    beat(session, "worker:test", now=utcnow() - timedelta(minutes=10))
    level, text = worker_panel(client.get(URL).get_data(as_text=True))
    assert level == "alert-warning"
    assert text.startswith("No worker seen for too long: last 10 min ago.")
    beat(session, "worker:test", now=utcnow())
    level, text = worker_panel(client.get(URL).get_data(as_text=True))
    assert level == "alert-success"
    assert text.startswith("Worker running: last seen less than a minute ago.")


def test_without_the_stale_warning_there_is_no_worker_panel(app, client, data):
    app.config["BILLING_WORKER_STALE_SECONDS"] = 0
    assert 'id="dashboard-worker"' not in client.get(URL).get_data(as_text=True)


def test_the_live_months_follow_a_change_to_the_history_at_once(client, data, session):
    m3, m2, m1, current = data

    def users(month: Month) -> str:
        return rows(client.get(URL).get_data(as_text=True))[str(month)]["licences user_licences"]

    assert users(current) == "4"
    # Kept in the database: the same page again reads the same figures ...
    assert users(current) == "4"
    team = session.scalar(select(Team).where(Team.key == "only"))
    person = Person(email="new@pending.example", name="New")
    session.add(person)
    session.flush()
    session.add(TeamMembership(team_id=team.id, person_id=person.id, joined_at=team.created_at))
    session.commit()
    # ... until the history changes: the new member counts in both months not invoiced.
    assert users(current) == "5"
    assert users(m1) == "5"


HOST_CHANGE = "Renamed by the host, never committed"


def test_a_view_commits_none_of_the_host_s_changes_in_the_same_request(data, database_url):
    """The kept counts go in a transaction of their own: a GET of the dashboard must not
    commit what the host's code put in the request's session (here before the view)."""
    app = make_app(database_url)

    @app.before_request
    def host_change() -> None:
        if request.path == URL:
            session = app.extensions["sqlalchemy"].session
            session.scalars(select(Person).order_by(Person.id)).first().name = HOST_CHANGE

    client = app.test_client()
    client.get("/demo/role/accounting")
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    kept = select(func.count()).select_from(MonthLicences.__table__)
    with engine.connect() as connection:
        assert connection.scalar(kept) == 0
    assert client.get(URL).status_code == 200
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).where(Person.name == HOST_CHANGE)) == 0
        counts = connection.scalar(kept)
    if engine.dialect.name == "postgresql":
        # Kept beside the host's open transaction.
        assert counts > 0
    else:
        # The host's write holds SQLite's lock: keeping would wait for it, so the next
        # view counts again.
        assert counts == 0
    engine.dispose()
