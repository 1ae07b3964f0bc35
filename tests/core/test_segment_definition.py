from __future__ import annotations

from typing import Any

import pytest

from lodestar.core.behaviour_counters import DAY_MS, HOUR_MS
from lodestar.core.segment_definition import (
    AttributeCondition,
    AttributeType,
    Combine,
    Comparison,
    CountOperator,
    Dimensions,
    GpsCondition,
    MetricCondition,
    NotPerformedSinceCondition,
    PerformedCondition,
    RecencyCondition,
    SeenCondition,
    SegmentDefinitionError,
    SetCondition,
    SourceSegment,
    TimeRef,
    counter_type,
    parse_segment,
    parse_time_ref,
)

MAY_1 = 1_777_593_600_000  # 2026-05-01T00:00:00Z

FULL_DIMENSIONS: dict[str, Any] = {
    "Attributes": {
        "plan": {"AttributeType": "INCLUSIVE", "Values": ["pro", "team"]},
        "signup": {"AttributeType": "BETWEEN",
                   "Values": ["2026-04-01T00:00:00Z", "2026-05-01T00:00:00.000Z"]},
    },
    "UserAttributes": {"trial_end": {"AttributeType": "BEFORE", "Values": ["NOW-P7D"]}},
    "Behavior": {"Recency": {"Duration": "DAY_7", "RecencyType": "ACTIVE"}},
    "Demographic": {
        "Platform": {"DimensionType": "INCLUSIVE", "Values": ["ios"]},
        "Channel": {"DimensionType": "EXCLUSIVE", "Values": ["SMS"]},
        "DeviceType": {"Values": ["mobile"]},
    },
    "Location": {
        "Country": {"DimensionType": "INCLUSIVE", "Values": ["US"]},
        "GPSPoint": {"Coordinates": {"Latitude": 47.6, "Longitude": -122.3},
                     "RangeInKilometers": 50},
    },
    "Metrics": {"orders": {"ComparisonOperator": "GREATER_THAN_OR_EQUAL", "Value": 3}},
    "Behavioral": {
        "Performed": [{"EventType": "purchase", "Attributes": {"plan": "pro"},
                       "Operator": "EXACTLY", "Count": 2, "WithinHours": 24}],
        "NotPerformedSince": [{"EventType": "login", "Since": "NOW-P14D"}],
        "FirstSeen": [{"After": "2026-01-01"}],
        "LastSeen": [{"EventType": "view", "Before": "NOW-PT12H", "After": "NOW-P30D"}],
    },
}


def test_full_dimensions_parse_to_conditions_in_order() -> None:
    definition = parse_segment({"Name": "vip", "Dimensions": FULL_DIMENSIONS})
    assert definition.name == "vip" and definition.segment_groups is None
    assert definition.dimensions is not None
    assert definition.dimensions.conditions == (
        AttributeCondition("Attributes", "plan", AttributeType.INCLUSIVE, ("pro", "team")),
        AttributeCondition(
            "Attributes", "signup", AttributeType.BETWEEN,
            ("2026-04-01T00:00:00Z", "2026-05-01T00:00:00.000Z"),
            (TimeRef(MAY_1 - 30 * DAY_MS), TimeRef(MAY_1)),
        ),
        AttributeCondition("User.UserAttributes", "trial_end", AttributeType.BEFORE,
                           ("NOW-P7D",), (TimeRef(-7 * DAY_MS, relative=True),)),
        RecencyCondition(7 * DAY_MS, active=True),
        SetCondition("Channel", False, frozenset({"SMS"})),
        SetCondition("DeviceType", True, frozenset({"MOBILE"})),
        SetCondition("Platform", True, frozenset({"ios"})),
        SetCondition("Country", True, frozenset({"US"})),
        GpsCondition(47.6, -122.3, 50.0),
        MetricCondition("orders", Comparison.GREATER_THAN_OR_EQUAL, 3.0),
        PerformedCondition("purchase", (("plan", "pro"),), CountOperator.EXACTLY, 2,
                           24 * HOUR_MS),
        NotPerformedSinceCondition("login", TimeRef(-14 * DAY_MS, relative=True)),
        SeenCondition(True, None, None, TimeRef(MAY_1 - 120 * DAY_MS)),
        SeenCondition(False, "view", TimeRef(-12 * HOUR_MS, relative=True),
                      TimeRef(-30 * DAY_MS, relative=True)),
    )


def test_segment_groups_parse_with_defaults() -> None:
    definition = parse_segment({"SegmentGroups": {"Groups": [{
        "Dimensions": [{"Metrics": {"x": {"ComparisonOperator": "EQUAL", "Value": 1}}}, {}],
        "SourceSegments": [{"Id": "s1"}, {"Id": "s2", "Version": 3}],
    }]}})
    assert definition.dimensions is None and definition.segment_groups is not None
    assert definition.segment_groups.include is Combine.ALL
    group = definition.segment_groups.groups[0]
    assert (group.type, group.source_type) == (Combine.ALL, Combine.ANY)
    assert group.source_segments == (SourceSegment("s1"), SourceSegment("s2", 3))
    assert group.dimensions[1] == Dimensions(())


def test_time_refs() -> None:
    assert parse_time_ref("NOW", "x") == TimeRef(0, relative=True)
    assert parse_time_ref("now+P1W", "x") == TimeRef(7 * DAY_MS, relative=True)
    assert parse_time_ref("NOW-P1DT2H3M4S", "x") == TimeRef(
        -(DAY_MS + 2 * HOUR_MS + 3 * 60_000 + 4000), relative=True
    )
    assert parse_time_ref("2026-05-01", "x") == TimeRef(MAY_1)
    assert parse_time_ref("2026-05-01T02:00:00+02:00", "x") == TimeRef(MAY_1)


def test_counter_type_names_the_filter_sorted() -> None:
    assert counter_type("purchase") == "purchase"
    assert counter_type("purchase", (("z", "1"), ("a", "b"))) == "purchase[a=b,z=1]"


def _dims(**kw: Any) -> dict[str, Any]:
    return {"Dimensions": kw}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ([], "WriteSegmentRequest", "must be an object"),
        ({"Name": "x"}, "Dimensions", "one of Dimensions or SegmentGroups is required"),
        ({"Dimensions": {}, "SegmentGroups": {"Groups": [{}]}}, "SegmentGroups", "not both"),
        ({"Name": "", "Dimensions": {}}, "Name", "non-empty"),
        ({"Dimensions": {}, "Foo": 1}, "Foo", "unknown field"),
        ({"Dimensions": {"Attribute": {}}}, "Dimensions.Attribute", "unknown field"),
        (_dims(Attributes={"plan": {"AttributeType": "NOT_BETWEEN", "Values": ["a"]}}),
         "Dimensions.Attributes.plan.AttributeType", "'NOT_BETWEEN' is not one of INCLUSIVE"),
        (_dims(Attributes={"plan": {"AttributeType": "INCLUSIVE", "Values": []}}),
         "Dimensions.Attributes.plan.Values", "non-empty list"),
        (_dims(Attributes={"plan": {"Values": ["a", 3]}}),
         "Dimensions.Attributes.plan.Values[1]", "must be a string"),
        (_dims(UserAttributes={"d": {"AttributeType": "BEFORE", "Values": ["a", "b"]}}),
         "Dimensions.UserAttributes.d.Values", "exactly 1"),
        (_dims(UserAttributes={"d": {"AttributeType": "AFTER", "Values": ["soon"]}}),
         "Dimensions.UserAttributes.d.Values[0]", "not an ISO-8601 timestamp"),
        (_dims(Attributes={"d": {"AttributeType": "BETWEEN", "Values": ["2026-05-02",
                                                                       "2026-05-01"]}}),
         "Dimensions.Attributes.d.Values", "start <= end"),
        (_dims(Attributes={"d": {"AttributeType": "ON", "Values": ["NOW-7D"]}}),
         "Dimensions.Attributes.d.Values[0]", "NOW±<ISO-8601 duration>"),
        (_dims(Behavior={"Recency": {"Duration": "DAY_3", "RecencyType": "ACTIVE"}}),
         "Dimensions.Behavior.Recency.Duration", "HR_24, DAY_7, DAY_14, DAY_30"),
        (_dims(Behavior={"Recency": {"Duration": "DAY_7", "RecencyType": "IDLE"}}),
         "Dimensions.Behavior.Recency.RecencyType", "ACTIVE or INACTIVE"),
        (_dims(Demographic={"Platform": {"DimensionType": "MAYBE", "Values": ["ios"]}}),
         "Dimensions.Demographic.Platform.DimensionType", "INCLUSIVE or EXCLUSIVE"),
        (_dims(Demographic={"Channel": {"Values": ["PIGEON"]}}),
         "Dimensions.Demographic.Channel.Values[0]", "'PIGEON' is not one of PUSH"),
        (_dims(Demographic={"Os": {"Values": ["x"]}}), "Dimensions.Demographic.Os",
         "unknown field"),
        (_dims(Location={"Country": {"Values": "US"}}), "Dimensions.Location.Country.Values",
         "non-empty list"),
        (_dims(Location={"GPSPoint": {"Coordinates": {"Latitude": 91, "Longitude": 0}}}),
         "Dimensions.Location.GPSPoint.Coordinates.Latitude", "between -90 and 90"),
        (_dims(Location={"GPSPoint": {"Coordinates": {"Latitude": 1, "Longitude": "0"}}}),
         "Dimensions.Location.GPSPoint.Coordinates.Longitude", "must be a number"),
        (_dims(Location={"GPSPoint": {"Coordinates": {"Latitude": 1, "Longitude": 0},
                                      "RangeInKilometers": -1}}),
         "Dimensions.Location.GPSPoint.RangeInKilometers", "must not be negative"),
        (_dims(Metrics={"x": {"ComparisonOperator": "NOT_EQUAL", "Value": 1}}),
         "Dimensions.Metrics.x.ComparisonOperator", "is not one of GREATER_THAN"),
        (_dims(Metrics={"x": {"ComparisonOperator": "EQUAL", "Value": True}}),
         "Dimensions.Metrics.x.Value", "must be a number"),
        (_dims(Behavioral={"Performed": [{"EventType": "a", "Count": 1}]}),
         "Dimensions.Behavioral.Performed[0].WithinHours", "WithinHours or WithinDays"),
        (_dims(Behavioral={"Performed": [{"EventType": "a", "Count": 1, "WithinHours": 49}]}),
         "Dimensions.Behavioral.Performed[0].WithinHours", "from 1 to 48"),
        (_dims(Behavioral={"Performed": [{"EventType": "a", "Count": 1, "WithinDays": 91}]}),
         "Dimensions.Behavioral.Performed[0].WithinDays", "from 1 to 90"),
        (_dims(Behavioral={"Performed": [{"EventType": "a", "Count": -1, "WithinDays": 1}]}),
         "Dimensions.Behavioral.Performed[0].Count", "non-negative integer"),
        (_dims(Behavioral={"Performed": [{"EventType": "a", "Count": 1, "WithinDays": 1,
                                          "Operator": "MORE"}]}),
         "Dimensions.Behavioral.Performed[0].Operator", "AT_LEAST, AT_MOST, EXACTLY"),
        (_dims(Behavioral={"Performed": [{"EventType": "a", "Count": 1, "WithinDays": 1,
                                          "Attributes": {"k": 1}}]}),
         "Dimensions.Behavioral.Performed[0].Attributes.k", "must be a string"),
        (_dims(Behavioral={"Performed": [{"EventType": "", "Count": 1, "WithinDays": 1}]}),
         "Dimensions.Behavioral.Performed[0].EventType", "non-empty string"),
        (_dims(Behavioral={"NotPerformedSince": [{"EventType": "a"}]}),
         "Dimensions.Behavioral.NotPerformedSince[0].Since", "is required"),
        (_dims(Behavioral={"LastSeen": [{"EventType": "a"}]}),
         "Dimensions.Behavioral.LastSeen[0]", "Before, After or both"),
        (_dims(Behavioral={"FirstSeen": {"After": "NOW"}}),
         "Dimensions.Behavioral.FirstSeen", "must be a list"),
        ({"SegmentGroups": {"Groups": []}}, "SegmentGroups.Groups", "exactly one group"),
        ({"SegmentGroups": {"Include": "SOME", "Groups": [{}]}}, "SegmentGroups.Include",
         "is not one of ALL, ANY, NONE"),
        ({"SegmentGroups": {"Groups": [{"Type": "EVERY"}]}}, "SegmentGroups.Groups[0].Type",
         "is not one of"),
        ({"SegmentGroups": {"Groups": [{"SourceType": 1}]}},
         "SegmentGroups.Groups[0].SourceType", "is not one of"),
        ({"SegmentGroups": {"Groups": [{"SourceSegments": [{"Version": 1}]}]}},
         "SegmentGroups.Groups[0].SourceSegments[0].Id", "non-empty string"),
        ({"SegmentGroups": {"Groups": [{"SourceSegments": [{"Id": "s", "Version": 0}]}]}},
         "SegmentGroups.Groups[0].SourceSegments[0].Version", "positive integer"),
        ({"SegmentGroups": {"Groups": [{"Dimensions": [{"Metrics": {"x": {}}}]}]}},
         "SegmentGroups.Groups[0].Dimensions[0].Metrics.x.ComparisonOperator",
         "is not one of"),
    ],
)
def test_invalid_definitions_name_the_field(body: object, field: str, message: str) -> None:
    with pytest.raises(SegmentDefinitionError) as caught:
        parse_segment(body)
    assert caught.value.field == field
    assert message in caught.value.message
    assert str(caught.value).startswith(field + ": ")


def _metrics(n: int) -> dict[str, Any]:
    return {f"m{i}": {"ComparisonOperator": "EQUAL", "Value": i} for i in range(n)}


def test_at_most_100_dimensions() -> None:
    assert parse_segment(_dims(Metrics=_metrics(100))).dimensions is not None
    with pytest.raises(SegmentDefinitionError, match="at most 100") as caught:
        parse_segment(_dims(Metrics=_metrics(101)))
    assert caught.value.field == "Dimensions"
    groups = {"Groups": [{"Dimensions": [{"Metrics": _metrics(60)}, {"Metrics": _metrics(41)}]}]}
    with pytest.raises(SegmentDefinitionError, match="101 dimensions") as caught:
        parse_segment({"SegmentGroups": groups})
    assert caught.value.field == "SegmentGroups"
