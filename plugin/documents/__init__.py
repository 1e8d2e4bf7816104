"""Strict reading of hand-edited YAML (and JSON) documents, with line numbers.

Used by the pricing rules (:mod:`plugin.rules.loader`) and the data import
(:mod:`plugin.services.importer`): :func:`load_document` parses
(:mod:`~plugin.documents.yaml_reader`, :mod:`~plugin.documents.json_reader`),
:func:`schema_load` runs a marshmallow schema over the result
(:mod:`~plugin.documents.schemas`), :func:`located_errors` says where each
problem is (:mod:`~plugin.documents.document`).
"""

from .document import DocPath, Document, DocumentError, LocatedError, format_path, located_errors
from .reading import load_document, read_limited
from .schemas import CheckedText, checked, schema_load, trap_messages
from .yaml_reader import StrictLoader, yaml11_trap

__all__ = [
    "CheckedText",
    "DocPath",
    "Document",
    "DocumentError",
    "LocatedError",
    "StrictLoader",
    "checked",
    "format_path",
    "load_document",
    "located_errors",
    "read_limited",
    "schema_load",
    "trap_messages",
    "yaml11_trap",
]
