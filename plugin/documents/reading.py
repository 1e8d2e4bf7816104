"""Reading a hand-edited YAML or JSON file strictly: size limit, encoding, top-level mapping."""

from __future__ import annotations

import os

from .document import Document, DocumentError, LocatedError
from .json_reader import load_json
from .yaml_reader import load_yaml

#: Editors on Windows start UTF-8 files with it; it is not part of the document.
BOM = "\ufeff"


def read_limited(path: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """The bytes of the file at ``path``, refusing one over ``max_bytes`` before reading it.

    At most ``max_bytes + 1`` bytes are ever read, so a huge file (or one that
    grows while it is read) costs no more memory than the limit allows.
    """
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            raw = b"" if size > max_bytes else file.read(max_bytes + 1)
    except OSError as exc:
        raise DocumentError(
            [LocatedError("", f"cannot read {path}: {exc.strerror or exc}")]
        ) from exc
    if size > max_bytes or len(raw) > max_bytes:
        raise DocumentError([_too_large(size if size > max_bytes else None, max_bytes)])
    return raw


def _too_large(size: int | None, max_bytes: int) -> LocatedError:
    """``size`` is ``None`` where it is unknown (a pipe, a file that grew while it was read)."""
    found = f"{size:,} bytes" if size is not None else f"more than {max_bytes:,} bytes"
    return LocatedError("", f"the file is too large: {found}, at most {max_bytes:,} are allowed")


def load_document(
    text: str | bytes, *, source: str = "<string>", max_bytes: int = 1_000_000
) -> Document:
    """Parse a YAML (or, when ``source`` ends in ``.json``, JSON) document strictly.

    The size is checked on the bytes before anything is parsed.  The top level
    must be a mapping.  Raises :class:`DocumentError` with every problem found.
    """
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    if len(raw) > max_bytes:
        raise DocumentError([_too_large(len(raw), max_bytes)])
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise DocumentError(
                [
                    LocatedError(
                        "", "the file is not UTF-8 text: save it with the UTF-8 encoding", line
                    )
                ]
            ) from exc
    text = text.removeprefix(BOM)
    document = load_json(text, source) if source.endswith(".json") else load_yaml(text, source)
    if not isinstance(document.data, dict):
        found = "nothing" if document.data is None else type(document.data).__name__
        raise DocumentError(
            [
                LocatedError(
                    "",
                    f"the top level must be a mapping of 'key: value' lines, not {found}",
                    document.line_of(()),
                )
            ]
        )
    return document
