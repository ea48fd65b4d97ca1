"""The bundle check assembles a bundle's canonical text from its members, each serialised once: it must refuse
exactly what the whole-document comparison refused, and give each member's own canonical text."""

import json

import pytest

from decisions.check import _canonical_members
from strategy.decision_record import DecisionError, canonical_json

DOCUMENT = {"state": {"b": "1", "a": [1.5, None, True]}, "config": {"é": "x", "z": 0.1}, "inputs": {},
            "record": {"\U0001f600": 1, "\uffff": 2}}  # keys whose UTF-16 order differs from their code points'


def test_a_canonical_bundle_gives_its_value_and_each_members_text() -> None:
    document, members = _canonical_members(canonical_json(DOCUMENT), "bundle")
    assert document == DOCUMENT
    assert members == {key: canonical_json(value) for key, value in DOCUMENT.items()}


@pytest.mark.parametrize("text", [
    canonical_json(DOCUMENT) + " ",
    json.dumps(DOCUMENT, sort_keys=True, separators=(",", ":"), ensure_ascii=False),  # Python's key order
    json.dumps(DOCUMENT, ensure_ascii=False),
    canonical_json(DOCUMENT).replace("1.5", "1.50"),
])
def test_any_other_spelling_is_refused(text: str) -> None:
    with pytest.raises(DecisionError, match="not in canonical form"):
        _canonical_members(text, "bundle")


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(DecisionError, match="not JSON"):
        _canonical_members('{"record":', "bundle")
