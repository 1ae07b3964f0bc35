"""Parsing endpoint import files (CSV and newline-delimited JSON), without I/O."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lodestar.core.endpoint_import import (
    ImportedRow,
    ImportFileError,
    ImportFormat,
    RowFailure,
    derived_endpoint_id,
    endpoints_csv,
    parse_csv,
    parse_json_lines,
    parse_rows,
)
from lodestar.core.endpoint_request import (
    MAX_ATTRIBUTE_VALUE_LENGTH,
    ChannelType,
    parse_endpoint_request,
)
from lodestar.core.timestamps import iso_millis


def _lines(text: str) -> list[str]:
    return io.StringIO(text, newline="").readlines()


PINPOINT_EXAMPLE = (
    "ChannelType,Address,Location.Country,Demographic.Platform,Demographic.Make,User.UserId\n"
    "SMS,+16045550182,CA,Android,LG,example-user-id-1\n"
    "EMAIL,john.stiles@example.com,US,iOS,Apple,example-user-id-2\n"
)


def test_pinpoint_documented_csv_example() -> None:
    rows = list(parse_csv(_lines(PINPOINT_EXAMPLE)))
    assert rows == [
        ImportedRow(2, derived_endpoint_id("SMS", "+16045550182"), {
            "Address": "+16045550182", "ChannelType": "SMS",
            "Demographic": {"Make": "LG", "Platform": "Android"},
            "Location": {"Country": "CA"}, "User": {"UserId": "example-user-id-1"}}),
        ImportedRow(3, derived_endpoint_id("EMAIL", "john.stiles@example.com"), {
            "Address": "john.stiles@example.com", "ChannelType": "EMAIL",
            "Demographic": {"Make": "Apple", "Platform": "iOS"},
            "Location": {"Country": "US"}, "User": {"UserId": "example-user-id-2"}}),
    ]


def test_csv_all_columns_repeated_attributes_and_quoting() -> None:
    text = (
        "Id, ChannelType,Address,Location.Latitude,Location.Longitude,Metrics.score,"
        "User.UserAttributes.interests,User.UserAttributes.interests,Attributes.plan,"
        "EffectiveDate,OptOut,EndpointStatus,CohortId\n"
        'e1,EMAIL,"a,b@example.com",47.61,-122.33,2.5,music,"books, ""rare""",pro,'
        "2026-05-01T12:00:00Z,NONE,ACTIVE,17\n"
        "e2,SMS,+15550100,,,,art,,,,ALL,,\n"
    )
    first, second = parse_csv(_lines(text))
    assert first == ImportedRow(2, "e1", {
        "Address": "a,b@example.com", "ChannelType": "EMAIL", "Attributes": {"plan": ["pro"]},
        "EffectiveDate": "2026-05-01T12:00:00.000Z", "EndpointStatus": "ACTIVE",
        "Location": {"Latitude": 47.6, "Longitude": -122.3}, "Metrics": {"score": 2.5},
        "OptOut": "NONE",
        "User": {"UserAttributes": {"interests": ["music", 'books, "rare"']}},
    })
    assert second == ImportedRow(3, "e2", {
        "Address": "+15550100", "ChannelType": "SMS", "OptOut": "ALL",
        "User": {"UserAttributes": {"interests": ["art"]}},
    })


def test_csv_row_failures_name_row_and_field() -> None:
    text = (
        "Id,ChannelType,Address,Location.Latitude,Metrics.n,Location.Country\n"
        "ok,SMS,+1,,,\n"
        "bad1,SMS,+1,123,,\n"
        "bad2,SMS,+1,,many,\n"
        "bad3,FAX,+1,,,\n"
        "bad4,SMS,+1,,,USA\n"
        ",,+1,,,\n"
        "short,SMS\n"
        "\n"
        "b{5},SMS,+1,,,\n"
        "last,EMAIL,x@example.com,,,\n"
    )
    results = list(parse_csv(_lines(text)))
    assert [r.row for r in results] == [2, 3, 4, 5, 6, 7, 8, 10, 11]
    assert isinstance(results[0], ImportedRow) and isinstance(results[-1], ImportedRow)
    failures = [r.message for r in results if isinstance(r, RowFailure)]
    assert failures[0].startswith("row 3: Location.Latitude: ")
    assert failures[1] == "row 4: Metrics.n: Metrics.n 'many' is not a number"
    assert failures[2].startswith("row 5: ChannelType: unknown ChannelType 'FAX'")
    assert failures[3].startswith("row 6: Location.Country: ")
    assert failures[4].startswith("row 7: Id: Id is missing, so ChannelType and Address")
    assert failures[5] == "row 8: the row has 2 values; the header has 6 columns"
    assert failures[6].startswith("row 10: Id: Id 'b{5}' must not contain")


def test_csv_limits_are_parse_endpoint_request_limits() -> None:
    long_value = "v" * (MAX_ATTRIBUTE_VALUE_LENGTH + 1)
    header = "Id,Attributes.a\n"
    (failure,) = parse_csv(_lines(header + f"e,{long_value}\n"))
    assert isinstance(failure, RowFailure)
    assert failure.message.startswith("row 2: Attributes.a: ")
    many = 51
    text = "Id," + ",".join(["Attributes.tags"] * many) + "\n" + "e," + ",".join(
        str(i) for i in range(many)) + "\n"
    (failure,) = parse_csv(_lines(text))
    assert isinstance(failure, RowFailure) and "at most 50" in failure.message


@pytest.mark.parametrize(("header", "message"), [
    ("Id,Fax\n", "'Fax' is not an endpoint field"),
    ("Id,Address,Address\n", "repeats the column 'Address'"),
    ("Id,Metrics.x,Metrics.x\n", "repeats the column 'Metrics.x'"),
    ("Id,,Address\n", "empty column name"),
    ("Id,Attributes.\n", "lacks an attribute name"),
    ("Demographic.Colour\n", "'Demographic.Colour' is not an endpoint field"),
    ("\n", "header"),
    ("", "empty"),
])
def test_bad_csv_header_fails_the_file(header: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        list(parse_csv(_lines(header + "e,x\n")) if header else parse_csv([]))


def test_json_lines() -> None:
    text = (
        '{"Id":"e1","ChannelType":"SMS","Address":"+1","Location":{"Country":"ca"}}\n'
        "\n"
        '{"ChannelType":"EMAIL","Address":"a@example.com","Attributes":{"Ride":["Bus"]}}\n'
        "not json\n"
        '["a list"]\n'
        '{"Id":"e5","Metrics":{"m":"x"}}\n'
        '{"Id":"e6","CohortId":"7","Demographic":{"Platform":"ios"}}'
    )
    rows = list(parse_json_lines(_lines("\ufeff" + text)))
    assert rows[0] == ImportedRow(1, "e1", {"Address": "+1", "ChannelType": "SMS",
                                            "Location": {"Country": "CA"}})
    assert rows[1] == ImportedRow(3, derived_endpoint_id("EMAIL", "a@example.com"), {
        "Address": "a@example.com", "ChannelType": "EMAIL", "Attributes": {"Ride": ["Bus"]}})
    assert isinstance(rows[2], RowFailure) and rows[2].message.startswith(
        "row 4: not valid JSON: ")
    assert isinstance(rows[3], RowFailure) and rows[3].message.startswith(
        "row 5: the record must be a JSON object")
    assert rows[4] == RowFailure(5 + 1, "row 6: Metrics.m: Metrics.m must be a number")
    assert rows[5] == ImportedRow(7, "e6", {"Demographic": {"Platform": "ios"}})
    assert list(parse_rows(ImportFormat.JSON, _lines(text))) == rows


def test_derived_ids_are_stable_and_distinct() -> None:
    a = derived_endpoint_id("EMAIL", "a@example.com")
    assert a == derived_endpoint_id("EMAIL", "a@example.com")
    assert len(a) == 32 and int(a, 16) >= 0
    assert a != derived_endpoint_id("SMS", "a@example.com")
    assert derived_endpoint_id("EMAIL", "a\x00b") != derived_endpoint_id("EMAIL\x00a", "b")


# --- the invariant: a CSV written from endpoints reads back as the same requests -----

text_values = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
                min_size=1, max_size=10).filter(lambda s: s.strip() == s and "\ufeff" not in s)
attr_maps = st.dictionaries(names, st.lists(text_values, min_size=1, max_size=4),
                            min_size=1, max_size=3)
endpoint_ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                       min_size=1, max_size=10).filter(
    lambda s: s.strip() and not set(s) & set("${}"))


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if draw(st.booleans()):
        body["Address"] = draw(text_values)
    if draw(st.booleans()):
        body["ChannelType"] = draw(st.sampled_from([c.value for c in ChannelType]))
    if draw(st.booleans()):
        body["Attributes"] = draw(attr_maps)
    if draw(st.booleans()):
        body["Metrics"] = draw(st.dictionaries(names, st.floats(allow_nan=False,
                                                                 allow_infinity=False),
                                               min_size=1, max_size=3))
    if draw(st.booleans()):
        body["Demographic"] = draw(st.fixed_dictionaries({}, optional={
            "Platform": text_values, "Make": text_values, "Timezone": text_values,
            "Locale": text_values}).filter(bool))
    if draw(st.booleans()):
        body["Location"] = draw(st.fixed_dictionaries({}, optional={
            "Country": st.sampled_from(["US", "CA", "DE"]),
            "Latitude": st.floats(-90, 90), "Longitude": st.floats(-180, 180),
            "City": text_values}).filter(bool))
    if draw(st.booleans()):
        user = draw(st.fixed_dictionaries({}, optional={
            "UserId": text_values, "UserAttributes": attr_maps}).filter(bool))
        body["User"] = user
    if draw(st.booleans()):
        body["OptOut"] = draw(st.sampled_from(["ALL", "NONE"]))
    if draw(st.booleans()):
        body["EndpointStatus"] = draw(st.sampled_from(["ACTIVE", "INACTIVE"]))
    if draw(st.booleans()):
        body["EffectiveDate"] = iso_millis(draw(st.integers(0, 4_102_444_800_000)))
    return parse_endpoint_request(body).to_pinpoint()


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(endpoint_ids, requests(), min_size=1, max_size=5))
def test_csv_written_from_endpoints_reads_back_the_same(
    endpoints: dict[str, dict[str, Any]],
) -> None:
    out = io.StringIO(newline="")
    csv.writer(out).writerows(endpoints_csv(list(endpoints.items())))
    parsed = list(parse_csv(_lines(out.getvalue())))
    assert parsed == [ImportedRow(n + 2, endpoint_id, request)
                      for n, (endpoint_id, request) in enumerate(endpoints.items())]


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(endpoint_ids, requests(), min_size=1, max_size=5))
def test_json_lines_written_from_endpoints_read_back_the_same(
    endpoints: dict[str, dict[str, Any]],
) -> None:
    text = "".join(json.dumps({"Id": i, **r}) + "\n" for i, r in endpoints.items())
    parsed = list(parse_json_lines(_lines(text)))
    assert parsed == [ImportedRow(n + 1, endpoint_id, request)
                      for n, (endpoint_id, request) in enumerate(endpoints.items())]


def test_within_user_cap_counts_the_read_model_and_earlier_rows() -> None:
    from lodestar.core.endpoint_import import ImportedRow, RowFailure, within_user_cap

    def row(n: int, endpoint: str, user: str | None) -> ImportedRow:
        request = {"ChannelType": "EMAIL", "Address": f"{endpoint}@x.test"}
        if user:
            request["User"] = {"UserId": user}
        return ImportedRow(n, endpoint, request)

    existing = {"big": [f"old-{i}" for i in range(14)]}
    imported: dict[str, set[str]] = {}
    first = within_user_cap([row(2, "n1", "big"), row(3, "n2", "big"),
                             row(4, "old-0", "big"), row(5, "free", None)],
                            existing, imported)
    assert [r.row for r in first if isinstance(r, ImportedRow)] == [2, 4, 5]
    [failure] = [r for r in first if isinstance(r, RowFailure)]
    assert failure.message.startswith("row 3: User.UserId: a user has at most 15 endpoints")
    assert imported == {"big": {"n1", "old-0"}}
    # a later batch of the same run remembers n1 although the read model lags behind
    later = within_user_cap([row(9, "n1", "big"), row(10, "n3", "big")], existing, imported)
    assert [type(r).__name__ for r in later] == ["ImportedRow", "RowFailure"]


def test_a_row_with_only_a_user_id_is_a_user_row() -> None:
    from lodestar.core.endpoint_import import ImportedUser

    text = (
        "Id,ChannelType,Address,User.UserId,Attributes.plan\n"
        ",,,u1,\n"               # only the user: all of u1's endpoints
        "e1,EMAIL,a@x.test,u2,\n"  # an endpoint that names its user
        ",,,u3,gold\n"           # a user and an attribute: not a user row
        ",,,,\n"                 # empty cells only: a row without Id, a failure
    )
    results = list(parse_csv(_lines(text)))
    assert results[0] == ImportedUser(2, "u1")
    assert isinstance(results[1], ImportedRow) and results[1].user_id == "u2"
    assert isinstance(results[2], RowFailure)
    assert results[2].message.startswith("row 4: Id: Id is missing, so ChannelType and Address")
    assert "nothing but User.UserId" in results[2].message
    assert isinstance(results[3], RowFailure)
    lines = ['{"User": {"UserId": "u9"}}', '{"Id": "", "User": {"UserId": "u8"}}',
             '{"User": {"UserId": 7}}', '{"User": {"UserId": "u7", "UserAttributes": {}}}']
    parsed = list(parse_json_lines(lines))
    assert parsed[:2] == [ImportedUser(1, "u9"), ImportedUser(2, "u8")]
    assert isinstance(parsed[2], RowFailure) and parsed[2].message.startswith(
        "row 3: User.UserId: ")
    assert isinstance(parsed[3], RowFailure)  # UserAttributes to write: not a user row


def test_user_row_endpoints_come_from_the_read_model_and_this_run() -> None:
    from lodestar.core.endpoint_import import ImportedUser, user_row_endpoints

    existing = {"u1": ["e2", "e1"]}
    imported = {"u1": {"e3", "e1"}, "u2": {"e9"}}
    assert user_row_endpoints(ImportedUser(2, "u1"), existing, imported, True) == [
        "e1", "e2", "e3"]
    assert user_row_endpoints(ImportedUser(3, "u2"), existing, imported, True) == ["e9"]
    none = user_row_endpoints(ImportedUser(4, "ghost"), existing, imported, True)
    assert isinstance(none, RowFailure) and none.message == (
        "row 4: User.UserId: user 'ghost' has no endpoint in this app; add endpoints with "
        "this user ID before importing the user ID")
    unsegmented = user_row_endpoints(ImportedUser(5, "u1"), existing, imported, False)
    assert isinstance(unsegmented, RowFailure)
    assert unsegmented.message.startswith("row 5: User.UserId: a row with only a user ID")
