"""Browser tests: Playwright driving Debian's Chromium, headless, against the demo back-office.

No browser is ever downloaded: Chromium is the Debian package (``/usr/bin/chromium``,
installed by ``make system-deps``), run with a fresh profile.  Each test module gets,
on each backend, a database of its own (a copy of the migrated template, with the demo
data imported through the CLI) and its own server: the demo host app run by werkzeug on
127.0.0.1, on a free port, in a thread.  The browser may talk to that server only: every
request goes through a route that lets 127.0.0.1:PORT through and fails the test on
anything else (and so do an uncaught script error and a 5xx answer).

Screenshots of the main pages are kept in ``tests/artifacts/browser/`` (git-ignored),
and a failing test leaves one of the page it failed on.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.conftest import BACKENDS, DEMO, REPOSITORY, RULES_PATH, Databases, make_app

#: Debian's package; never a browser that Playwright downloads.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPOSITORY / "tests" / "artifacts" / "browser"
#: Playwright's defaults (30 s for actions, 5 s for assertions), made one: a page of this
#: back-office takes milliseconds, but the machine may be busy with the rest of the suite.
TIMEOUT_MS = 10_000
expect.set_options(timeout=TIMEOUT_MS)


class QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without a log line per request (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def buffered(app: Any) -> Any:
    """The app's responses read whole, and closed, before the server writes them.

    Werkzeug's development server closes a response only after writing all of
    it (``serving.py``, ``execute``): when the browser drops a connection in the
    middle (it navigates away while a static file is sent), the file stays open
    and its ResourceWarning fails whichever test is running.  The pages are
    small, so reading them first costs nothing.
    """

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    return wsgi


@dataclass
class Backoffice:
    """The running demo back-office of one test module."""

    app: Flask
    base_url: str
    backend: str

    @property
    def netloc(self) -> str:
        return urlsplit(self.base_url).netloc

    def url(self, path: str) -> str:
        return self.base_url + path

    def cli(self, *args: str) -> Any:
        """``flask billing ARGS…`` in this server's app; fails the test if it fails."""
        result = self.app.test_cli_runner().invoke(args=["billing", *args])
        assert result.exit_code == 0, result.output
        return result


@dataclass
class Guard:
    """What the browser did that a test must not: leave 127.0.0.1, crash a script, a 5xx."""

    allowed_netloc: str = ""
    foreign: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    def route(self, route: Any) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https") and parts.netloc == self.allowed_netloc:
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort("blockedbyclient")

    def response(self, response: Any) -> None:
        if response.status >= 500:
            self.server_errors.append(f"{response.status} {response.url}")

    def problems(self) -> list[str]:
        return (
            [f"request leaving the test server: {url}" for url in self.foreign]
            + [f"uncaught script error: {error}" for error in self.page_errors]
            + [f"server error: {error}" for error in self.server_errors]
        )


@dataclass
class Browser:
    """The browser of the run (a persistent context on a fresh profile) and its guard."""

    context: Any
    guard: Guard


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Keep each phase's report on the test, so ``page`` knows whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the run, on a fresh user-data dir; contexts are per test."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (`make system-deps`)")
    user_data = tmp_path_factory.mktemp("chromium-profile")
    for stale in ARTIFACTS.glob("FAILED-*.png"):
        stale.unlink()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(user_data),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        guard = Guard()
        context.route("**/*", guard.route)
        try:
            yield Browser(context, guard)
        finally:
            context.close()


@pytest.fixture(scope="module", params=BACKENDS)
def backoffice(
    request: pytest.FixtureRequest,
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Backoffice]:
    """The demo host back-office with the demo data, served on 127.0.0.1 for this module.

    Once per backend, like the rest of the suite.  The rules file is a copy, so
    that nothing a test does in the editor can touch the repository's file.
    """
    database_url = databases.migrated(request.param)
    rules = tmp_path_factory.mktemp("rules") / "pricing_rules.yaml"
    shutil.copyfile(RULES_PATH, rules)
    app = make_app(database_url, BILLING_RULES_PATH=str(rules))
    office = Backoffice(app=app, base_url="", backend=request.param)
    office.cli("import", str(DEMO))
    server = make_server(
        "127.0.0.1", 0, buffered(app), threaded=True, request_handler=QuietHandler
    )
    office.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="backoffice", daemon=True)
    thread.start()
    try:
        yield office
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()
        databases.drop(database_url)


@pytest.fixture
def page(
    chromium: Browser, backoffice: Backoffice, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A fresh tab with no cookies (so no role yet) that may talk to this module's server only."""
    chromium.context.clear_cookies()
    guard = chromium.guard
    guard.allowed_netloc = backoffice.netloc
    guard.foreign.clear()
    guard.page_errors.clear()
    guard.server_errors.clear()
    tab = chromium.context.new_page()
    tab.on("pageerror", lambda error: guard.page_errors.append(str(error)))
    tab.on("response", guard.response)
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
    tab.close()
    problems = guard.problems()
    assert not problems, "\n".join(problems)


@pytest.fixture
def screenshot(backoffice: Backoffice) -> Any:
    """``screenshot(page, name)``: keep a full-page screenshot as a test artefact.

    Named after the page; on PostgreSQL the name ends in ``-postgresql``.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if backoffice.backend == "sqlite" else f"-{backoffice.backend}"

    def take(tab: Any, name: str) -> Path:
        path = ARTIFACTS / f"{name}{suffix}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def act_as(page: Any, backoffice: Backoffice) -> Any:
    """``act_as(role)``: log in the demo's way, by picking the role on the role-switch page."""

    def switch(role: str) -> None:
        page.goto(backoffice.url("/demo/role"))
        page.get_by_role("link", name=role, exact=True).click()
        page.wait_for_url(backoffice.url("/admin/"))

    return switch
