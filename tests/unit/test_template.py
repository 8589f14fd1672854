"""JSON template compiler: every BSON type on the encoded bytes, and errors naming the path."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid

import bson
import pytest
from bson import Binary, Decimal128, Int64, ObjectId
from bson.raw_bson import RawBSONDocument
from typer.testing import CliRunner

from dataworks.cli import app
from dataworks.errors import TemplateError
from dataworks.generators.template import TemplateGenerator, compile_template

ALL_TYPES = {
    "oid": "{{ objectId }}",
    "when": "{{ date(\"2021-01-01\", \"2021-12-31\") }}",
    "small": "{{ int(-5, 5) }}",
    "big": "{{ long(3000000000, 3000000010) }}",
    "ratio": "{{ double(0, 1, 3) }}",
    "price": "{{ decimal(1, 99, 2) }}",
    "flag": "{{ bool }}",
    "nothing": "{{ null }}",
    "word": "{{ string(4, 6) }}",
    "ref": "{{ uuid }}",
    "blob": "{{ binary(3) }}",
    "seq": "{{ sequence(100, 10) }}",
    "pick": "{{ choice(\"a\", 7, true) }}",
    "label": "PO-{{ digits(4) }}/{{ sequence }}",
    "nested": {"deep": {"n": "{{ int(1, 1) }}"}, "constant": 1.5, "huge": 2**40},
    "items": {"$array": {"q": "{{ int(1, 3) }}"}, "min": 2, "max": 4},
    "either": {"$choice": ["x", {"y": "{{ bool(1) }}"}]},
    "fixed": [1, "two", None, {"three": 3}],
}


def _docs(spec, n=50, seed=1):
    gen = TemplateGenerator(compile_template(spec), seed=seed)
    return gen.encode_batch(0, n)


def test_every_type_is_encoded_with_its_bson_type() -> None:
    raw = _docs(ALL_TYPES)
    for index, data in enumerate(raw):
        doc = bson.decode(data)
        assert isinstance(doc["oid"], ObjectId)
        assert isinstance(doc["when"], dt.datetime) and doc["when"].year == 2021
        assert isinstance(doc["small"], int) and -5 <= doc["small"] <= 5
        assert isinstance(doc["big"], Int64) and 3_000_000_000 <= doc["big"] <= 3_000_000_010
        assert isinstance(doc["ratio"], float) and round(doc["ratio"], 3) == doc["ratio"]
        assert isinstance(doc["price"], Decimal128)
        assert 1 <= doc["price"].to_decimal() <= 99 and doc["price"].to_decimal().as_tuple().exponent == -2
        assert isinstance(doc["flag"], bool) and doc["nothing"] is None
        assert doc["word"].isalpha() and 4 <= len(doc["word"]) <= 6
        assert isinstance(doc["ref"], Binary) and doc["ref"].subtype == 4
        assert uuid.UUID(bytes=bytes(doc["ref"])).version == 4
        assert isinstance(doc["blob"], bytes) and len(doc["blob"]) == 3  # subtype 0
        assert doc["seq"] == 100 + 10 * index and isinstance(doc["seq"], Int64)
        assert doc["pick"] in ("a", 7, True)
        assert doc["label"] == f"PO-{doc['label'][3:7]}/{index + 1}" and doc["label"][3:7].isdigit()
        assert doc["nested"] == {"deep": {"n": 1}, "constant": 1.5, "huge": 2**40}
        assert isinstance(doc["nested"]["huge"], Int64)
        assert 2 <= len(doc["items"]) <= 4 and all(1 <= i["q"] <= 3 for i in doc["items"])
        assert doc["either"] in ("x", {"y": True})
        assert doc["fixed"] == [1, "two", None, {"three": 3}]
    # The raw type bytes, as a server sees them.
    first = RawBSONDocument(raw[0])
    assert bson.decode(first.raw)["small"] == bson.decode(raw[0])["small"]
    assert b"\x13price\x00" in raw[0] and b"\x12big\x00" in raw[0] and b"\x10small\x00" in raw[0]
    assert b"\x09when\x00" in raw[0] and b"\x05ref\x00" in raw[0] and b"\x07oid\x00" in raw[0]
    lengths = {len(bson.decode(d)["items"]) for d in raw}
    assert lengths == {2, 3, 4}


def test_same_seed_same_documents() -> None:
    assert _docs(ALL_TYPES, seed=5) == _docs(ALL_TYPES, seed=5)
    assert _docs(ALL_TYPES, seed=5) != _docs(ALL_TYPES, seed=6)


def test_constant_template_is_encoded_once_and_exactly() -> None:
    spec = {"a": 1, "b": {"c": [1, 2.5, "x"]}, "d": None, "e": False}
    assert _docs(spec, n=2) == [bson.encode(spec)] * 2


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        ({"a": {"b": "{{ nope }}"}}, "$.a.b", "unknown placeholder 'nope'"),
        ({"a": "{{ int(\"x\", 5) }}"}, "$.a", "must be an integer"),
        ({"a": "{{ int(9, 1) }}"}, "$.a", "greater than max"),
        ({"a": "{{ int(0, 9999999999) }}"}, "$.a", "does not fit"),
        ({"a": "{{ date(\"yesterday\") }}"}, "$.a", "not an ISO date"),
        ({"a": "{{ double(1, 2, 3, 4) }}"}, "$.a", "at most 3 arguments"),
        ({"a": "{{ choice() }}"}, "$.a", "at least one value"),
        ({"a": "{{ int(x) }}"}, "$.a", "must be literals"),
        ({"a": "{{ uuid(4) }}"}, "$.a", "at most 0 arguments"),
        ({"j": {"$array": {"p": [0, "{{ bool(2) }}"]}, "max": 2}}, "$.j.$array.p[1]", "between 0 and 1"),
        ({"j": {"$array": 1, "min": 3, "max": 1}}, "$.j", "min 3 is greater than max 1"),
        ({"j": {"$array": 1, "min": "two"}}, "$.j.min", "non-negative integer"),
        ({"j": {"$array": 1, "count": 2}}, "$.j", "only min and max"),
        ({"j": {"$choice": []}}, "$.j.$choice", "non-empty list"),
        ({"a": {"$oops": 1}}, "$.a.$oops", "unknown directive"),
        ({"a": "{{ int(1, }}"}, "$.a", "cannot parse"),
    ],
)
def test_template_errors_name_the_json_path(spec, path, fragment) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template(spec, source="t.json")
    message = str(caught.value)
    assert message.startswith(f"t.json: {path}: ")
    assert fragment in message


def test_cli_reports_template_errors_with_exit_code_2(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"order": {"lines": {"$array": {"qty": "{{ integer(1, 5) }}"}}}}))
    result = CliRunner().invoke(app, ["generate", "--source", str(bad), "--total", "5", "--dry-run"])
    assert result.exit_code == 2
    assert "$.order.lines.$array.qty" in result.output and "integer" in result.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": 1,,}')
    result = CliRunner().invoke(app, ["generate", "--source", str(broken), "--preview", "1"])
    assert result.exit_code == 2 and "invalid JSON" in result.output


def test_cli_preview_prints_extended_json_lines(tmp_path) -> None:
    template = tmp_path / "t.json"
    template.write_text(json.dumps({"n": "{{ sequence }}", "when": "{{ date }}"}))
    result = CliRunner().invoke(app, ["generate", "--source", str(template), "--preview", "3",
                                      "--seed", "1"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [line["n"] for line in lines] == [1, 2, 3]  # sequence starts at 1
    assert "$oid" in lines[0]["_id"] and "$date" in lines[0]["when"]


def test_uniform_ranges_reach_both_ends() -> None:
    docs = [bson.decode(d) for d in _docs({"v": "{{ int(1, 3) }}"}, n=300, seed=random.randrange(99))]
    assert {d["v"] for d in docs} == {1, 2, 3}
