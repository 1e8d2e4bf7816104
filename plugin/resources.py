"""Where the files that ship with the package are.

In the wheel, ``migrations/``, ``templates/`` and the example
``pricing_rules.yaml`` are inside the package; in a source checkout (an
editable install, the test suite) they sit at the top of the repository, as
the project layout asks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

_PACKAGE = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """The path of a shipped resource directory or file called ``name``."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"the billing plugin's {name!r} is missing from the installation")


def template_environment(
    *, autoescape: bool, filters: dict[str, Callable[..., Any]], **options: Any
) -> Environment:
    """A Jinja environment of the shipped ``templates/``, standalone of the host's Jinja setup.

    What is sent out (a PDF, a mail) must not change with the host's
    template folders, filters or globals.  A variable that is missing from
    the data is an error (``StrictUndefined``), never an empty string.
    """
    environment = Environment(
        loader=FileSystemLoader(resource_path("templates")),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        **options,
    )
    environment.filters.update(filters)
    return environment
