"""Compile the shipped translations (``translations/*/LC_MESSAGES/*.po``) into ``.mo`` files.

Runs on every wheel and editable build, so the wheel holds the compiled
catalogue and the ``.mo`` files never need to be committed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def compile_catalogues(root: Path) -> list[Path]:
    """Write each ``.po`` under ``root/translations`` as the ``.mo`` beside it."""
    written = []
    for po in sorted((root / "translations").glob("*/LC_MESSAGES/*.po")):
        with po.open("rb") as source:
            catalogue = read_po(source, locale=po.parent.parent.name)
        mo = po.with_suffix(".mo")
        with mo.open("wb") as target:
            write_mo(target, catalogue, use_fuzzy=False)
        written.append(mo)
    return written


class TranslationsHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "translations"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        compile_catalogues(Path(self.root))
