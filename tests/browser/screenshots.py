"""The documentation's screenshots: taken by the browser tests, never by hand.

The browser tests keep a full-page screenshot of each main page in
``tests/artifacts/browser/`` (see ``conftest.py``).  The documentation and the
README use some of them, from ``docs/_static/screenshots/``.  ``make
screenshots`` runs the browser tests on SQLite and then this module
(``python -m tests.browser.screenshots``), which copies every screenshot the
docs refer to from the artefacts, so the pictures show what the current code
draws.  ``tests/test_docs_screenshots.py`` checks that each one is referred
to, present, and taken by a browser test.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
DOCS = REPOSITORY / "docs"
SCREENSHOTS = DOCS / "_static" / "screenshots"
ARTIFACTS = REPOSITORY / "tests" / "artifacts" / "browser"
REFERENCE = re.compile(r"_static/screenshots/([a-z0-9-]+)\.png")
TAKEN = re.compile(r"""screenshot\(\s*\w+,\s*["']([a-z0-9-]+)["']\s*\)""")


def referenced() -> set[str]:
    """The names of the screenshots that the docs and the README show."""
    pages = [*DOCS.glob("*.md"), REPOSITORY / "README.md"]
    return {name for page in pages for name in REFERENCE.findall(page.read_text("utf-8"))}


def taken_by_tests() -> set[str]:
    """The names under which the browser tests keep screenshots (on SQLite)."""
    tests = Path(__file__).parent.glob("test_*.py")
    return {name for test in tests for name in TAKEN.findall(test.read_text("utf-8"))}


def main() -> int:
    missing = sorted(name for name in referenced() if not (ARTIFACTS / f"{name}.png").exists())
    if missing:
        print(f"not in {ARTIFACTS}: {', '.join(missing)} (run the browser tests first)")
        return 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for stale in SCREENSHOTS.glob("*.png"):
        if stale.stem not in referenced():
            stale.unlink()
    for name in sorted(referenced()):
        shutil.copyfile(ARTIFACTS / f"{name}.png", SCREENSHOTS / f"{name}.png")
        print(f"docs/_static/screenshots/{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
