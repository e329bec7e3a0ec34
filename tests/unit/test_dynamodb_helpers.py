"""The DynamoDB adapter's pure helpers: number conversion and expression rendering."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metric_stream.adapters.dynamodb import (
    Expression,
    decode_item,
    encode,
    encode_item,
    from_dynamo,
    render_condition,
    render_update,
    to_dynamo,
)
from metric_stream.errors import InvalidInput
from metric_stream.ports import Absent, AllOf, Exists, FieldIn, Key, Update

NOW = 1_800_000_000


def round_trip(value: Any) -> Any:
    return decode_item(encode_item({"v": value}))["v"]


def same(back: Any, sent: Any) -> bool:
    """Equal all the way down, bools staying bools and fractional floats floats. (A float
    with an integral value may come back as an equal int: DynamoDB trims "1.0" to "1".)"""
    if isinstance(sent, bool) or isinstance(back, bool):
        return type(back) is type(sent) and back == sent
    if isinstance(sent, float):
        return isinstance(back, int | float) and back == sent and (
            isinstance(back, float) or sent.is_integer())
    if type(back) is not type(sent):
        return False
    if isinstance(sent, dict):
        return back.keys() == sent.keys() and all(same(back[k], sent[k]) for k in sent)
    if isinstance(sent, list):
        return len(back) == len(sent) and all(same(b, s) for b, s in zip(back, sent, strict=True))
    return bool(back == sent)

# ---------------------------------------------------------------- numbers
@pytest.mark.parametrize("value", [
    0, -7, 10**30, 0.0, -0.0, 0.1, 1.5, -2.5e-7, 1e-100, 1e100, 1.7976931348e100, 123456789.123,
    1 / 3, 1.6970829202913052e16, 1e23, True, False, None, "", "text", [], {},
    {"a": [1, 2.0, None, True, {"b-c.d:e": [0.25, {"deep": -1e-50}]}], "n": 3},
])
def test_round_trip_keeps_values_and_types(value: Any) -> None:
    assert same(round_trip(value), value)


def test_floats_become_exact_decimals() -> None:
    assert to_dynamo(0.1) == Decimal("0.1")
    assert to_dynamo({"a": [1.5, True, 2]}) == {"a": [Decimal("1.5"), True, 2]}
    assert to_dynamo((1.0,)) == [Decimal("1.0")]


@pytest.mark.parametrize(("number", "expected"), [
    (Decimal("5"), 5), (Decimal("-12"), -12), (Decimal("5.0"), 5.0), (Decimal("0.5"), 0.5),
    (Decimal("1E+100"), 1e100), (Decimal("1E-7"), 1e-7),
])
def test_decimals_come_back_as_int_or_float(number: Decimal, expected: float) -> None:
    assert same(from_dynamo(number), expected)


def test_numbers_dynamodb_cannot_hold_are_invalid_input() -> None:
    for value in (1e300, 5e-324, math.nan, math.inf, 10**40):
        with pytest.raises(InvalidInput):
            encode_item({"v": value})


json_values = st.recursive(
    st.none() | st.booleans() | st.text(max_size=5)
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda f: f == 0 or 1e-100 <= abs(f) <= 1e100),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_round_trips(value: Any) -> None:
    assert same(round_trip(value), value)


# ---------------------------------------------------------------- conditions
def rendered(condition: Any) -> tuple[str | None, dict[str, Any]]:
    expr = Expression(NOW)
    return render_condition(condition, expr), expr.params()


def test_absent_counts_expired_as_absent() -> None:
    text, params = rendered(Absent())
    assert text == "(attribute_not_exists(#pk) OR #exp <= :now)"
    assert params == {"ExpressionAttributeNames": {"#pk": "pk", "#exp": "expiresAt"},
                      "ExpressionAttributeValues": {":now": {"N": str(NOW)}}}


def test_exists_requires_an_unexpired_item() -> None:
    text, params = rendered(Exists())
    assert text == "(attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now))"
    assert params["ExpressionAttributeNames"] == {"#pk": "pk", "#exp": "expiresAt"}


def test_field_in_one_value_is_an_equality_on_a_named_field() -> None:
    text, params = rendered(FieldIn("status-x.y:z", ("pending",)))
    assert text == ("(attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now)"
                    " AND #n0 = :v0)")
    assert params["ExpressionAttributeNames"] == {
        "#pk": "pk", "#n0": "status-x.y:z", "#exp": "expiresAt"}
    assert params["ExpressionAttributeValues"][":v0"] == {"S": "pending"}


def test_field_in_several_values() -> None:
    text, params = rendered(FieldIn("n", (1, 2.5, "a", 1)))
    assert text is not None
    assert text.endswith("#n0 IN (:v0, :v1, :v2))")
    assert [params["ExpressionAttributeValues"][f":v{i}"] for i in range(3)] == [
        {"N": "1"}, {"N": "2.5"}, {"S": "a"}]


def test_field_in_none_also_matches_a_missing_field() -> None:
    text, params = rendered(FieldIn("error", (None, "x")))
    assert text is not None
    assert "(#n0 IN (:v0, :v1) OR attribute_not_exists(#n0))" in text
    assert params["ExpressionAttributeValues"][":v0"] == {"NULL": True}


def test_field_in_nothing_never_holds() -> None:
    text, _ = rendered(FieldIn("n", ()))
    assert text == "(attribute_exists(#pk) AND attribute_not_exists(#pk))"


def test_field_in_many_values_is_split_into_in_groups_of_100() -> None:
    text, params = rendered(FieldIn("n", tuple(range(250))))
    assert text is not None
    assert text.count(" IN (") == 3
    assert len(params["ExpressionAttributeValues"]) == 251  # with :now


def test_all_of_joins_parts_and_shares_placeholders() -> None:
    text, params = rendered(AllOf((Exists(), FieldIn("status", ("a", "b")))))
    assert text == (
        "((attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now)) AND "
        "(attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now) AND "
        "#n0 IN (:v0, :v1)))")
    assert params["ExpressionAttributeNames"] == {"#pk": "pk", "#exp": "expiresAt",
                                                  "#n0": "status"}


def test_a_field_may_be_named_like_a_placeholder() -> None:
    text, params = rendered(FieldIn("#pk", ("x",)))
    assert text is not None
    assert text.endswith("AND #n0 = :v0)")
    assert params["ExpressionAttributeNames"]["#n0"] == "#pk"


def test_empty_all_of_always_holds() -> None:
    assert rendered(AllOf(())) == (None, {})
    assert rendered(AllOf((AllOf(()), Absent())))[0] == rendered(Absent())[0]


def test_unused_placeholders_are_not_sent() -> None:
    assert Expression(NOW).params() == {}


# ---------------------------------------------------------------- updates
def update_of(**fields: Any) -> tuple[str | None, dict[str, Any]]:
    expr = Expression(NOW)
    return render_update(Update(Key("p", "s"), **fields), expr), expr.params()


def test_update_sets_adds_and_removes() -> None:
    text, params = update_of(set={"a": 1.5, "b-c": "x"}, add={"n": 1}, remove=("old",))
    assert text == "SET #n0 = :v0, #n1 = :v1 ADD #n2 :v2 REMOVE #n3"
    assert params["ExpressionAttributeNames"] == {"#n0": "a", "#n1": "b-c", "#n2": "n",
                                                  "#n3": "old"}
    assert params["ExpressionAttributeValues"] == {":v0": {"N": "1.5"}, ":v1": {"S": "x"},
                                                   ":v2": {"N": "1"}}


def test_update_folds_overlapping_fields_like_apply_update() -> None:
    text, params = update_of(set={"n": 2, "gone": 1, "s": "x"}, add={"n": 3, "s": 1, "g2": 1},
                             remove=("gone", "g2"))
    assert text == "SET #n0 = :v0, #n1 = :v1 REMOVE #n2, #n3"
    assert params["ExpressionAttributeNames"] == {"#n0": "n", "#n1": "s", "#n2": "gone",
                                                  "#n3": "g2"}
    assert params["ExpressionAttributeValues"] == {":v0": {"N": "5"}, ":v1": {"N": "1"}}


def test_update_changing_nothing_renders_nothing() -> None:
    assert update_of() == (None, {})


def test_encode_names_the_field_it_refuses() -> None:
    with pytest.raises(InvalidInput) as refused:
        encode_item({"ok": 1, "bad": object()})
    assert refused.value.field == "bad"
    assert encode(True) == {"BOOL": True}
