"""The demo back-office: what `make demo` does, on both databases."""

from __future__ import annotations

from sqlalchemy import func, select

from plugin.models import Workspace
from tests.conftest import DEMO, make_app


def test_demo_setup_serves_the_back_office(empty_database_url):
    app = make_app(empty_database_url)
    runner = app.test_cli_runner()
    for args in (
        ["host-migrate"],
        ["billing", "migrate"],
        ["billing", "import", str(DEMO)],
        ["billing", "generate", "--seed", "7", "--scale", "tiny"],
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output)
    assert "Generated (seed 7, scale tiny): 5 billing_workspace" in result.output
    client = app.test_client()
    page = client.get("/admin/billing_workspaces/").get_data(as_text=True)
    assert "Müller &amp; Söhne GmbH" in page
    assert "gen-00001" in page
    assert client.get("/admin/tickets/").status_code == 200
    with app.app_context():
        session = app.extensions["sqlalchemy"].session
        assert session.scalar(select(func.count()).select_from(Workspace)) == 9
        # After the generator's bulk insert (explicit ids), ordinary inserts still work.
        session.add(
            Workspace(
                key="late",
                name="Late",
                created_at=session.scalar(select(func.max(Workspace.created_at))),
            )
        )
        session.commit()
        app.extensions["sqlalchemy"].engine.dispose()


def test_generating_twice_is_refused_and_changes_nothing(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["billing", "generate", "--scale", "tiny"]).exit_code == 0
    result = runner.invoke(args=["billing", "generate", "--scale", "tiny"])
    assert result.exit_code == 1
    assert "already" in result.output
    session = app.extensions["sqlalchemy"].session
    assert session.scalar(select(func.count()).select_from(Workspace)) == 5


def test_generate_refuses_an_unknown_scale(app):
    result = app.test_cli_runner().invoke(args=["billing", "generate", "--scale", "huge"])
    assert result.exit_code == 1
    assert "unknown scale 'huge'" in result.output
