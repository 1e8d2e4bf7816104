"""The demo back-office: what `make demo` does, on both databases."""

from __future__ import annotations

import re
import shlex

from sqlalchemy import func, select

from plugin.models import Workspace
from tests.conftest import DEMO, REPOSITORY, make_app

MAKEFILE = REPOSITORY / "Makefile"


def demo_data_steps() -> list[list[str]]:
    """The ``flask`` commands of the Makefile's ``demo-data`` recipe, as `make demo` runs them."""
    recipe = re.search(r"^demo-data:.*\n((?:\t.*\n)+)", MAKEFILE.read_text(), re.MULTILINE)[1]
    steps = []
    for line in recipe.splitlines():
        if line.startswith("\t$(FLASK) "):
            args = shlex.split(line.removeprefix("\t$(FLASK) ").replace("$(DEMO_SCALE)", "tiny"))
            steps.append([str(REPOSITORY / a) if a.startswith("examples/") else a for a in args])
    return steps


def test_demo_setup_serves_the_back_office(empty_database_url):
    app = make_app(empty_database_url)
    runner = app.test_cli_runner()
    steps = demo_data_steps()
    assert steps[:3] == [["host-migrate"], ["billing", "migrate"], ["billing", "import", str(DEMO)]]
    for args in steps:
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output)
        if args[:2] == ["billing", "generate"]:
            assert "Generated (seed 7, scale tiny): 5 billing_workspace" in result.output
    client = app.test_client()
    page = client.get("/admin/billing_workspaces/").get_data(as_text=True)
    assert "Müller &amp; Söhne GmbH" in page
    assert "gen-00001" in page
    assert client.get("/admin/tickets/").status_code == 200
    # The demo closes last month, so accounting has invoices to download, credit and mail.
    client.get("/demo/role/accounting")
    invoices = client.get("/admin/billing_invoices/").get_data(as_text=True)
    assert ">PDF<" in invoices
    assert "Credit…" in invoices
    assert "queued <small" in invoices
    with app.app_context():
        session = app.extensions["sqlalchemy"].session
        assert session.scalar(select(func.count()).select_from(Workspace)) == 14
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
