"""Where the files that ship with the package are.

In the wheel, ``migrations/``, ``templates/`` and the example
``pricing_rules.yaml`` are inside the package; in a source checkout (an
editable install, the test suite) they sit at the top of the repository, as
the project layout asks.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """The path of a shipped resource directory or file called ``name``."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"the billing plugin's {name!r} is missing from the installation")
