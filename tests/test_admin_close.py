"""The month close as a page: the preview, the confirmation, the worker's close, its
progress and summary; a second click or a second browser issues nothing more.

The data is the dashboard's (tests/test_admin_dashboard.py): for the month before
the current one, ``solo`` and ``crew`` are to be invoiced and ``pending`` is held
(no billing details).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from plugin.models import CloseJob, Invoice
from plugin.services import workers
from plugin.services.close_jobs import queue_close, work_next_close
from plugin.services.invoicing import held_in_month, plan_month
from plugin.services.periods import Month
from plugin.types import utcnow
from tests.helpers import snapshot
from tests.test_admin_dashboard import FIXTURE
from tests.test_admin_lists import csrf

URL = "/admin/billing_close/"
POST = "/admin/billing_close/close"


@pytest.fixture
def month(app, cli, tmp_path) -> Month:
    path = tmp_path / "close.yaml"
    path.write_text(FIXTURE, encoding="utf-8")
    result = cli("import", str(path))
    assert result.exit_code == 0, result.output
    rules = app.extensions["billing"].rules(app)
    return Month.of(utcnow(), rules.zoneinfo).previous()


@pytest.fixture
def client(app):
    client = app.test_client()
    client.get("/demo/role/accounting")
    return client


def words(month: Month) -> str:
    return f"Close {month.first_day:%B %Y}"


def post(client, month: Month, confirm: str, token: str | None = None):
    if token is None:
        page = client.get(URL, query_string={"month": str(month)})
        token = csrf(page.get_data(as_text=True))
    return client.post(POST, data={"csrf_token": token, "month": str(month), "confirm": confirm})


def invoices(session, month: Month) -> int:
    session.expire_all()
    return session.scalar(
        select(func.count()).select_from(Invoice).where(Invoice.period == str(month))
    )


def jobs(session) -> list[tuple[str, str]]:
    session.expire_all()
    return list(session.execute(select(CloseJob.period, CloseJob.status).order_by(CloseJob.id)))


def test_the_preview_shows_what_a_close_would_issue_and_hold(client, month):
    page = client.get(URL).get_data(as_text=True)
    assert f"Month close: {month.first_day:%B %Y}" in page
    assert "Invoices to issue: 2; already invoiced: 0; nothing to bill: 0; held: 1." in page
    planned = page.split('id="close-planned"')[1].split("</table>")[0]
    assert "Solo GmbH" in planned
    assert "Crew AG" in planned
    assert "Pending" not in planned
    totals = page.split('id="close-totals"')[1].split("</table>")[0]
    assert "<td>S</td>" in totals
    assert "123.00 EUR" in totals
    held = page.split('id="close-held"')[1].split("</table>")[0]
    assert "Pending KG" in held
    assert "legal name" in held
    assert f"To confirm, type: {words(month)}" in page
    assert 'http-equiv="refresh"' not in page


def test_the_close_runs_in_the_worker_and_the_page_shows_progress_then_the_summary(
    app, client, cli, session, month
):
    token = csrf(client.get(URL).get_data(as_text=True))
    assert post(client, month, words(month).lower() + "  ", token).status_code == 302
    assert jobs(session) == [(str(month), "queued")]
    assert invoices(session, month) == 0
    page = client.get(URL, query_string={"month": str(month)}).get_data(as_text=True)
    assert 'data-status="queued"' in page
    assert 'http-equiv="refresh"' in page
    assert "0 of 2 planned" in page
    assert 'id="close-form"' not in page

    result = cli("worker", "--until-idle")
    assert result.exit_code == 0, result.output
    assert jobs(session) == [(str(month), "done")]
    assert invoices(session, month) == 2
    page = client.get(URL, query_string={"month": str(month)}).get_data(as_text=True)
    assert 'data-status="done"' in page
    assert "2 of 2 planned" in page
    assert page.split('id="close-pdfs">')[1].startswith("2 of 2")
    assert 'http-equiv="refresh"' not in page
    assert "Held, billing details incomplete: 1 workspace(s)" in page
    link = page.split('id="close-invoices-link"')[0].rsplit('href="', 1)[1].split('"')[0]
    listed = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    numbers = session.scalars(select(Invoice.number).where(Invoice.period == str(month)))
    for number in numbers:
        assert number in listed
    # Nothing is left to issue: no form, and a POST all the same closes nothing.
    assert 'id="close-form"' not in page
    response = post(client, month, words(month), token)
    assert response.status_code == 400
    assert "nothing left to issue" in response.get_data(as_text=True)
    assert len(jobs(session)) == 1
    assert invoices(session, month) == 2


def test_a_second_click_queues_nothing_more(app, client, session, month):
    page = client.get(URL, query_string={"month": str(month)}).get_data(as_text=True)
    first = post(client, month, words(month), csrf(page))
    second = post(client, month, words(month), csrf(page))
    assert first.status_code == second.status_code == 302
    followed = client.get(second.location).get_data(as_text=True)
    assert "was already asked for: nothing more is queued" in followed
    assert jobs(session) == [(str(month), "queued")]
    rules = app.extensions["billing"].rules(app)
    assert work_next_close(session, rules, utcnow()).issued == 2
    assert work_next_close(session, rules, utcnow()) is None
    assert invoices(session, month) == 2


@pytest.mark.parametrize("confirm", ["", "Close", "Close the month", "yes", "Close December 1999"])
def test_a_wrong_confirmation_closes_nothing(client, session, month, confirm):
    before = snapshot(session)
    response = post(client, month, confirm)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert f"Type “{words(month)}” to close the month: nothing was closed." in text
    session.expire_all()
    assert snapshot(session) == before


@pytest.mark.parametrize("value", ["", "2026-13", "next month", "2026-11-01"])
def test_a_bad_month_closes_nothing(client, session, month, value):
    before = snapshot(session)
    token = csrf(client.get(URL).get_data(as_text=True))
    response = client.post(POST, data={"csrf_token": token, "month": value, "confirm": "x"})
    assert response.status_code == 400
    session.expire_all()
    assert snapshot(session) == before


def test_the_current_month_cannot_be_closed(app, client, session, month):
    current = month.next()
    page = client.get(URL, query_string={"month": str(current)}).get_data(as_text=True)
    assert "is not over yet" in page
    assert 'id="close-form"' not in page
    token = csrf(client.get(URL).get_data(as_text=True))
    response = post(client, current, f"Close {current.first_day:%B %Y}", token)
    assert response.status_code == 400
    assert "only past months can be closed" in response.get_data(as_text=True)
    assert jobs(session) == []


def test_without_a_token_or_as_admin_nothing_is_queued(app, client, session, month):
    response = client.post(POST, data={"month": str(month), "confirm": words(month)})
    assert response.status_code == 400
    admin = app.test_client()
    admin.get("/demo/role/admin")
    page = admin.get(URL).get_data(as_text=True)
    assert "Invoices to issue: 2" in page
    assert 'id="close-form"' not in page
    token = csrf(admin.get("/admin/billing_workspaces/w/solo/").get_data(as_text=True))
    response = admin.post(
        POST, data={"csrf_token": token, "month": str(month), "confirm": words(month)}
    )
    assert response.status_code == 403
    assert jobs(session) == []


def test_a_queued_close_with_no_worker_seen_is_warned_of_on_every_page(app, client, session, month):
    rules = app.extensions["billing"].rules(app)
    warning = 'id="billing-worker-warning"'
    assert warning not in client.get(URL).get_data(as_text=True)
    queue_close(session, rules, month, utcnow(), actor="test")
    for page in (URL, "/admin/billing_invoices/", "/admin/billing_workspaces/"):
        text = client.get(page).get_data(as_text=True)
        assert "Waiting for a worker: a month close.</strong>" in text, page
        assert "run by a worker only" in text
    workers.beat(session, "worker", now=utcnow())
    assert warning not in client.get(URL).get_data(as_text=True)


def test_a_close_whose_worker_died_is_taken_over_after_its_lease(app, session, month):
    rules = app.extensions["billing"].rules(app)
    queue_close(session, rules, month, utcnow(), actor="test")
    session.execute(
        update(CloseJob).values(
            status="running", claim_token="dead" * 8, claimed_until=utcnow() + timedelta(minutes=5)
        )
    )
    session.commit()
    assert work_next_close(session, rules, utcnow()) is None
    later = utcnow() + timedelta(minutes=6)
    done = work_next_close(session, rules, later)
    assert done is not None
    assert done.issued == 2
    session.expire_all()
    job = session.scalar(select(CloseJob))
    assert (job.status, job.attempts, job.claim_token) == ("done", 1, None)


def test_the_dashboard_counter_holds_what_the_close_holds(app, session, month):
    rules = app.extensions["billing"].rules(app)
    now = utcnow()
    assert [h.key for h in held_in_month(session, rules, month, now)] == ["pending"]
    assert held_in_month(session, rules, month, now) == plan_month(session, rules, month, now).held


def test_two_browsers_at_once_queue_one_close(app, backend, database_url, month):
    if backend != "postgresql":
        pytest.skip("row locks and concurrent transactions: PostgreSQL")
    rules = app.extensions["billing"].rules(app)
    engine = app.extensions["sqlalchemy"].engine
    # The first request's job, inserted but not committed yet: the second request finds
    # no job, inserts its own and waits on the unique index until the first commits.
    first = Session(engine)
    first.add(
        CloseJob(
            period=str(month),
            status="queued",
            requested_by="first",
            requested_at=utcnow(),
            planned=2,
            attempts=0,
        )
    )
    first.flush()
    outcome = {}

    def second() -> None:
        with Session(engine) as other:
            queued = queue_close(other, rules, month, utcnow(), actor="second")
            outcome["created"], outcome["by"] = queued.created, queued.job.requested_by

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=2)
    assert thread.is_alive(), "the second insert should wait for the first transaction"
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert outcome == {"created": False, "by": "first"}
    with Session(engine) as check:
        assert check.scalar(select(func.count()).select_from(CloseJob)) == 1


def test_two_requests_at_once_queue_one_close(app, backend, month):
    if backend != "postgresql":
        pytest.skip("concurrent requests: PostgreSQL")
    barrier = threading.Barrier(2)
    statuses = []

    def click() -> None:
        # In a thread of its own, each browser's requests get app contexts of their own
        # (the test's context would share one CSRF token between the two sessions).
        client = app.test_client()
        client.get("/demo/role/accounting")
        token = csrf(client.get(URL).get_data(as_text=True))
        barrier.wait()
        response = client.post(
            POST, data={"csrf_token": token, "month": str(month), "confirm": words(month)}
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [302, 302]
    engine = app.extensions["sqlalchemy"].engine
    with Session(engine) as check:
        assert check.scalar(select(func.count()).select_from(CloseJob)) == 1


def test_the_held_workspaces_agree_with_the_plan_on_the_demo_customers(app, customers_cli, session):
    rules = app.extensions["billing"].rules(app)
    now = utcnow()
    last = Month.of(now, rules.zoneinfo).previous()
    assert customers_cli("close-month", str(last.previous())).exit_code == 0
    for month in (last.previous(), last, last.next()):
        held = held_in_month(session, rules, month, now)
        assert held == plan_month(session, rules, month, now).held, month
    assert held, "the demo's customers include one with incomplete details"
