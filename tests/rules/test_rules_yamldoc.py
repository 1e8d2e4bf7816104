"""The strict YAML/JSON loader shared by the rules file and the import command."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml
from marshmallow import Schema, ValidationError, fields

from plugin.documents import (
    Document,
    DocumentError,
    LocatedError,
    StrictLoader,
    format_path,
    load_document,
    located_errors,
    read_limited,
    schema_load,
    yaml11_trap,
)


def problems(text: str | bytes, **kwargs) -> list[str]:
    with pytest.raises(DocumentError) as caught:
        load_document(text, **kwargs)
    return [str(error) for error in caught.value.errors]


def test_every_scalar_is_text_except_null():
    doc = load_document(
        "a: 1\nb: 1.50\nc: true\nd: 2023-03-01\ne: ~\nf: null\ng:\nh: ''\ni: 'null'\n"
        "j: [NO, 1:30]\n"
    )
    assert doc.data == {
        "a": "1", "b": "1.50", "c": "true", "d": "2023-03-01", "e": None, "f": None,
        "g": None, "h": "", "i": "null", "j": ["NO", "1:30"],
    }


def test_lines_of_every_path():
    doc = load_document("a: 1\nb:\n  - x: 1\n    y:\n      - 2\n  - 3\n")
    assert doc.line_of(()) == 1
    assert doc.line_of(("a",)) == 1
    assert doc.line_of(("b",)) == 2
    assert doc.line_of(("b", 0)) == 3
    assert doc.line_of(("b", 0, "y")) == 4
    assert doc.line_of(("b", 0, "y", 0)) == 5
    assert doc.line_of(["b", 1]) == 6
    assert doc.line_of(("nope",)) is None


@pytest.mark.parametrize(
    ("text", "meaning"),
    [
        ("NO", "a boolean"), ("yes", "a boolean"), ("On", "a boolean"), ("OFF", "a boolean"),
        ("y", "a boolean"), ("N", "a boolean"), ("True", "a boolean"),
        ("1:30", "the number 90 (base 60, like a clock time)"),
        ("-1:30:00", "the number -5400 (base 60, like a clock time)"),
        ("1:30.5", "the number 90.5 (base 60, like a clock time)"),
        ("010", "the octal number 8"), ("-017", "the octal number -15"),
        ("08", "a number with a leading zero (text in YAML 1.1, a number in YAML 1.2)"),
        ("0x1F", "the hexadecimal number 31"), ("0o17", "the octal number 15 (in YAML 1.2)"),
        ("0b101", "the binary number 5"), (".inf", "the special number infinity"),
        ("-.Inf", "the special number minus infinity"), (".NaN", "the special number NaN"),
    ],
)
def test_traps(text, meaning):
    assert yaml11_trap(text) == meaning
    doc = load_document(f"value: {text}\nquoted: '{text}'\n")
    assert doc.traps == frozenset({("value",)})
    assert doc.data["value"] == text


@pytest.mark.parametrize("text", ["0", "10", "12.50", "0.19", "-3", "Norway", "2023-03-01", "1e3"])
def test_not_traps(text):
    assert yaml11_trap(text) is None


def test_structural_problems_all_at_once():
    text = (
        "a: &x 1\n"
        "b: *x\n"
        "a: 2\n"
        "c: !!float 1.5\n"
        "d: !!str 010\n"
        "<<: {e: 1}\n"
        "? [1, 2]\n"
        ": f\n"
        "~: g\n"
    )
    assert problems(text) == [
        "line 1: a: anchors (&x) are not allowed: write the value out in full",
        "line 2: b: aliases (*x) are not allowed: write the value out in full",
        "line 3: a: duplicate key: 'a' is already given on line 1",
        "line 4: c: YAML tags (tag:yaml.org,2002:float) are not allowed: write plain values",
        "line 6: merge keys (<<) are not allowed",
        "line 7: keys must be plain text",
        "line 9: keys must be plain text",
    ]


def test_explicit_str_tag_is_text_not_trap():
    doc = load_document("d: !!str 010\n")
    assert doc.data == {"d": "010"}
    assert doc.traps == frozenset()


def test_billion_laughs_is_refused_without_expanding():
    text = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    found = problems(text)
    assert found[0] == "line 1: a: anchors (&a) are not allowed: write the value out in full"
    assert len(found) == 9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1, 2\n", "line 2: syntax error: expected ',' or ']', but got '<stream end>' "
         "(while parsing a flow sequence on line 1)"),
        ("a: b: c\n", "line 1: syntax error: mapping values are not allowed here"),
        ("a: 1\n b: 2\n", "line 2: syntax error: mapping values are not allowed here"),
        ("a: 1\n---\nb: 2\n", "line 2: syntax error: expected a single document in the stream, "
         "but found another document"),
        ("a: \"open\n", "line 2: syntax error: found unexpected end of stream "
         "(while scanning a quoted scalar on line 1)"),
        ("a: \x07\n", "line 1: the control character U+0007 is not allowed"),
        ("a: " + "[" * 100 + "]" * 100 + "\n", "line 1: nested more than 64 levels deep"),
    ],
)
def test_syntax_errors_have_lines(text, expected):
    assert problems(text) == [expected]


def test_size_is_checked_on_bytes_before_parsing():
    assert problems("a: ä\n", max_bytes=5) == [
        "the file is too large: 6 bytes, at most 5 are allowed"
    ]
    assert load_document("a: ä\n", max_bytes=6).data == {"a": "ä"}


def test_not_utf8():
    assert problems(b"a: 1\nb: \xe4\n") == [
        "line 2: the file is not UTF-8 text: save it with the UTF-8 encoding"
    ]


def test_bytes_with_bom():
    assert load_document("\ufeffa: 1\n".encode()).data == {"a": "1"}


def test_top_level_must_be_a_mapping():
    assert problems("just text\n") == [
        "line 1: the top level must be a mapping of 'key: value' lines, not str"
    ]


def test_json():
    doc = load_document(
        '{"a": 1, "b": [2.50, true, false, null], "c": {"d": "x"}}', source="data.json"
    )
    assert doc.data == {"a": "1", "b": ["2.50", "true", "false", None], "c": {"d": "x"}}
    assert doc.line_of(("a",)) == 1
    assert doc.traps == frozenset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1,\n "a": 2}', ["duplicate key: 'a' is given twice in one object"]),
        ('{"a": 1,\n\n "b": }', ["line 3, column 7: syntax error: Expecting value"]),
        ('{"a": NaN}', ["NaN is not allowed: write a plain number"]),
        ('[1]', ["line 1: the top level must be a mapping of 'key: value' lines, not list"]),
    ],
)
def test_json_problems(text, expected):
    assert problems(text, source="x.json") == expected


def test_format_path():
    assert format_path(("workspaces", 1, "teams", 0)) == "workspaces[1].teams[0]"
    assert format_path(()) == ""
    assert format_path(("contracts", "acme-corp", "variant")) == "contracts.acme-corp.variant"
    assert format_path(("contracts", "a b")) == 'contracts["a b"]'


def test_located_error_str():
    assert str(LocatedError("a.b[1]", "must not be negative", 14)) == (
        "line 14: a.b[1]: must not be negative"
    )
    assert str(LocatedError("a", "is missing")) == "a: is missing"
    assert str(LocatedError("", "syntax error: x", 3)) == "line 3: syntax error: x"
    assert str(LocatedError("", "too large")) == "too large"


def test_located_errors_flattens_sorts_and_falls_back_to_ancestors():
    doc = load_document("a:\n  - x: 1\n  - x: 2\n    y: 3\nb: 4\n")
    messages = {
        "b": ["bad b"],
        "a": {
            1: {"y": ["bad y"], "_schema": ["bad item"], "z": ["missing z"]},
            0: {"x": ["bad x"]},
        },
        "c": ["missing c"],
        "_schema": ["whole document"],
    }
    assert [str(error) for error in located_errors(messages, doc)] == [
        "line 2: a[0].x: bad x",
        "line 3: a[1]: bad item",
        "line 3: a[1].z: missing z",
        "line 4: a[1].y: bad y",
        "line 5: b: bad b",
        "whole document",
        "c: missing c",
    ]


class _Item(Schema):
    name = fields.String()
    price = fields.Decimal()
    when = fields.Date()
    active = fields.Boolean()


class _Doc(Schema):
    items = fields.List(fields.Nested(_Item))
    single = fields.Nested(_Item)
    tags = fields.Dict(keys=fields.String(), values=fields.String())
    many = fields.Nested(_Item, many=True)


def test_schema_load_refuses_traps_where_text_or_numbers_are_expected():
    doc = load_document(
        "items:\n"
        "  - name: NO\n"
        "    price: 010\n"
        "    active: yes\n"
        "    when: 2024-01-01\n"
        "single: {name: 'NO', price: 1:30}\n"
        "tags: {country: no}\n"
        "many: [{name: off}]\n"
    )
    with pytest.raises(ValidationError) as caught:
        schema_load(_Doc(), doc)
    assert [str(error) for error in located_errors(caught.value.messages, doc)] == [
        "line 2: items[0].name: value 'NO' is read by YAML as a boolean; "
        "write it in quotes if you mean the text",
        "line 3: items[0].price: value '010' is read by YAML as the octal number 8; "
        "write it in quotes if you mean the text",
        "line 6: single.price: value '1:30' is read by YAML as the number 90 "
        "(base 60, like a clock time); write it in quotes if you mean the text",
        "line 7: tags.country: value 'no' is read by YAML as a boolean; "
        "write it in quotes if you mean the text",
        "line 8: many[0].name: value 'off' is read by YAML as a boolean; "
        "write it in quotes if you mean the text",
    ]


def test_schema_load_passes_clean_documents_through():
    doc = load_document("items:\n  - name: 'NO'\n    price: 10.50\n    active: yes\n")
    assert schema_load(_Doc(), doc) == {
        "items": [{"name": "NO", "price": Decimal("10.50"), "active": True}]
    }


def test_strict_loader_is_a_safe_loader():
    assert issubclass(StrictLoader, yaml.SafeLoader)
    with pytest.raises(DocumentError):
        load_document("a: !!python/object/apply:os.system ['true']\n")


def test_document_is_frozen():
    doc = load_document("a: 1\n")
    assert isinstance(doc, Document)
    with pytest.raises(AttributeError):
        doc.data = {}


def test_json_nodes_have_lines_for_errors():
    text = '{\n "a": [1,\n   {"b": "x",\n    "c": [true, "y"]}],\n "d\\"q": {}\n}'
    doc = load_document(text, source="data.json")
    assert {path: doc.line_of(path) for path in doc.lines} == {
        (): 1,
        ("a",): 2,
        ("a", 0): 2,
        ("a", 1): 3,
        ("a", 1, "b"): 3,
        ("a", 1, "c"): 4,
        ("a", 1, "c", 0): 4,
        ("a", 1, "c", 1): 4,
        ('d"q',): 5,
    }


@pytest.mark.parametrize("depth", [65, 100_000])
def test_json_nested_too_deep_is_refused_with_its_place(depth):
    text = '{"a": ' + "[" * depth + "]" * depth + "}"
    assert problems(text, source="deep.json") == [
        "line 1, column 70: nested more than 64 levels deep"
    ]


@pytest.mark.parametrize("source", ["data.yaml", "data.json"])
def test_a_bom_is_accepted_in_yaml_and_json(source):
    text = '{"a": "x"}' if source.endswith(".json") else "a: x\n"
    assert load_document(("\ufeff" + text).encode(), source=source).data == {"a": "x"}
    assert load_document("\ufeff" + text, source=source).data == {"a": "x"}


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: 1\n" * 1000)
    with pytest.raises(DocumentError) as caught:
        read_limited(path, max_bytes=100)
    assert str(caught.value) == "the file is too large: 5,000 bytes, at most 100 are allowed"
    # A file whose size is not known in advance is read no further than the limit.
    with pytest.raises(DocumentError) as caught:
        read_limited("/dev/zero", max_bytes=100)
    assert str(caught.value) == (
        "the file is too large: more than 100 bytes, at most 100 are allowed"
    )
    assert read_limited(path, max_bytes=5000) == b"a: 1\n" * 1000
