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
from markupsafe import Markup

from .i18n import translations
from .validators import visible

_PACKAGE = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """The path of a shipped resource directory or file called ``name``."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"the billing plugin's {name!r} is missing from the installation")


def template_environment(
    *,
    autoescape: bool,
    filters: dict[str, Callable[..., Any]],
    language: str | None = None,
    **options: Any,
) -> Environment:
    """A Jinja environment of the shipped ``templates/``, standalone of the host's Jinja setup.

    What is sent out (a PDF, a mail) must not change with the host's
    template folders, filters or globals.  A variable that is missing from
    the data is an error (``StrictUndefined``), never an empty string.  Every
    printed value goes through :func:`shown_in_documents`, so a control or
    bidirectional character stored before the values were checked shows as
    ``<U+XXXX>`` instead of reaching the document.  With ``language``, the
    templates' ``gettext``/``pgettext`` read that language's catalogue
    (:func:`plugin.i18n.translations`), whatever language a request is in.
    """
    if language is not None:
        options["extensions"] = [*options.get("extensions", ()), "jinja2.ext.i18n"]
    environment = Environment(
        loader=FileSystemLoader(resource_path("templates")),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=shown_in_documents,
        **options,
    )
    environment.filters.update(filters)
    if language is not None:
        # The i18n extension adds this method to the environment at run time.
        environment.install_gettext_translations(  # type: ignore[attr-defined]
            translations(language), newstyle=True
        )
    return environment


def shown_in_documents(value: Any) -> Any:
    """A printed template value, its refused characters escaped (:func:`~.validators.visible`).

    Markup stays markup (a link built by the plugin), so it is not escaped twice.
    """
    if isinstance(value, Markup):
        return Markup(visible(value, "&lt;U+{:04X}&gt;"))
    return visible(value) if isinstance(value, str) else value
