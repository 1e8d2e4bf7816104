"""The documentation's screenshots are the browser tests' own (``make screenshots``)."""

from __future__ import annotations

from tests.browser.screenshots import SCREENSHOTS, referenced, taken_by_tests


def test_every_screenshot_the_docs_show_is_taken_by_a_browser_test():
    shown = referenced()
    assert "workspace-page-nordwind-invoices" in shown  # the README's
    assert shown <= taken_by_tests(), shown - taken_by_tests()


def test_the_screenshots_folder_holds_exactly_what_the_docs_show():
    assert {path.stem for path in SCREENSHOTS.glob("*.png")} == referenced()
