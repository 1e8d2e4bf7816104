"""Changes made in the back-office after a month is invoiced leave its export as it was."""

from __future__ import annotations

from sqlalchemy import select

from plugin.models import Person
from tests.test_admin_lists import csrf


def october(client) -> bytes:
    response = client.get("/admin/billing_workspaces/w/acme/export?month=2026-10&format=csv")
    assert response.status_code == 200
    return response.get_data()


def test_an_invoiced_months_export_survives_every_change_from_the_workspace_page(
    app, demo_cli, session
):
    client = app.test_client()
    client.get("/demo/role/admin")
    assert demo_cli("close-month", "2026-10").exit_code == 0
    invoiced = october(client)
    assert b"chris@consulting.example" in invoiced
    token = csrf(client.get("/admin/billing_workspaces/w/acme/").get_data(as_text=True))
    chris = session.scalar(select(Person.id).where(Person.email == "chris@consulting.example"))
    changes = [
        ("/admin/billing_workspaces/w/acme/manage/rename_team", {"team": "sales", "name": "Sales"}),
        (
            "/admin/billing_workspaces/w/acme/manage/remove_from_team",
            {"email": "anna@mueller-soehne.example", "team": "sales"},
        ),
        (
            "/admin/billing_workspaces/w/acme/manage/remove_member",
            {"email": "chris@consulting.example"},
        ),
        (f"/admin/billing_people/p/{chris}/rename_person", {"name": "Christopher Olsen"}),
        (f"/admin/billing_people/p/{chris}/change_email", {"new_email": "chris@olsen.example"}),
    ]
    for url, data in changes:
        response = client.post(url, data={"csrf_token": token, **data})
        assert response.status_code == 302, (url, response.get_data(as_text=True)[:2000])
    assert october(client) == invoiced
    # The person page still says where they were billed.
    page = client.get(f"/admin/billing_people/p/{chris}/").get_data(as_text=True)
    assert 'data-month="2026-10"' in page
    assert "chris@olsen.example" in page
