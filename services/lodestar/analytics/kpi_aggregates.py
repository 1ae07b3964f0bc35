"""The SQL of each KPI measure: aggregates, group fields, and the conditions they share.

``DELIVERY_AGGREGATES`` (over ``deliveries`` rows) and ``EVENT_AGGREGATES``
(over ``events`` rows) give each ``core.kpi_catalog.Measure`` its aggregate
and, where it reads only some event types, those types (the query filters on
them, a sort-key column); ``SMS_VALUE_SUMS`` says how SMS parts and prices are
summed. Distinct counts count 64-bit CityHashes of the ids (``analytics.kpis``).
Migration 0005's rollups repeat these conditions; the known-truth tests check
that both agree.
"""

from __future__ import annotations

from lodestar.core.kpi_catalog import (
    ATTEMPT_TYPES,
    DELIVERED_TYPES,
    PUSH_OPEN_EVENT_TYPE,
    RECEIPT_DELIVERED_STATUS,
    SEND_RECEIPT_TYPES,
    SMS_ATTEMPT_TYPES,
    Grouping,
    Measure,
)


def sql_in(values: tuple[str, ...]) -> str:
    """A SQL tuple literal of constant strings."""
    return "(" + ", ".join("'" + v.replace("'", "\\'") + "'" for v in values) + ")"


def state(aggregate: str) -> str:
    """The ``-State`` form of a ``uniqExact`` / ``uniqExactIf`` aggregate: its partial state,
    which merges with the rollups' states of the same measure."""
    name, paren, rest = aggregate.partition("(")
    if name not in ("uniqExact", "uniqExactIf") or not paren:
        raise ValueError(f"not a uniqExact aggregate: {aggregate}")
    return f"{name.replace('uniqExact', 'uniqExactState', 1)}({rest}"


def _h(*columns: str) -> str:
    """The 64-bit hash distinct counts count (see the module doc)."""
    return f"cityHash64({', '.join(columns)})"


MESSAGE = _h("message_id")
_EVENT = _h("event_id")
_RECIPIENT = _h("if(endpoint_id != '', endpoint_id, message_id)")
_DELIVERED = (
    f"(event_type IN {sql_in(DELIVERED_TYPES)} OR (event_type IN {sql_in(SEND_RECEIPT_TYPES)} "
    f"AND channel NOT IN ('EMAIL', 'SMS') AND send_status = '{RECEIPT_DELIVERED_STATUS}'))"
)
_DELIVERED_TYPES_ALL = (*DELIVERED_TYPES, *SEND_RECEIPT_TYPES)


def _email(event: str, what: str = MESSAGE) -> tuple[str, tuple[str, ...]]:
    return f"uniqExactIf({what}, event_type = '_email.{event}')", (f"_email.{event}",)


# measure → (aggregate over deliveries rows, the event types it reads)
DELIVERY_AGGREGATES: dict[Measure, tuple[str, tuple[str, ...]]] = {
    Measure.ATTEMPTED: (f"uniqExactIf({MESSAGE}, event_type IN {sql_in(ATTEMPT_TYPES)})",
                        ATTEMPT_TYPES),
    Measure.DELIVERED: (f"uniqExactIf({MESSAGE}, {_DELIVERED})", _DELIVERED_TYPES_ALL),
    Measure.UNIQUE_DELIVERIES: (
        f"uniqExactIf({_h('endpoint_id')}, {_DELIVERED} AND endpoint_id != '')",
        _DELIVERED_TYPES_ALL),
    Measure.EMAIL_SENT: _email("send"),
    Measure.EMAIL_DELIVERED: _email("delivered"),
    Measure.EMAIL_OPENED: _email("open"),
    Measure.EMAIL_OPENERS: _email("open", _RECIPIENT),
    Measure.EMAIL_CLICKS: _email("click", _EVENT),
    Measure.EMAIL_CLICKERS: _email("click", _RECIPIENT),
    Measure.EMAIL_HARD_BOUNCED: _email("hardbounce"),
    Measure.EMAIL_SOFT_BOUNCED: _email("softbounce"),
    Measure.EMAIL_COMPLAINED: _email("complaint"),
    Measure.EMAIL_REJECTED: _email("rejected"),
    Measure.EMAIL_UNSUBSCRIBES: _email("unsubscribe", _EVENT),
    Measure.PUSH_DELIVERED: (
        f"uniqExactIf({_h('endpoint_id', 'campaign_activity_id')}, {_DELIVERED} "
        "AND channel = 'PUSH')",
        _DELIVERED_TYPES_ALL),
    Measure.SMS_SENT: (f"uniqExactIf({MESSAGE}, event_type IN {sql_in(SMS_ATTEMPT_TYPES)})",
                       SMS_ATTEMPT_TYPES),
    Measure.SMS_DELIVERED: (f"uniqExactIf({MESSAGE}, event_type = '_SMS.SUCCESS')",
                            ("_SMS.SUCCESS",)),
    Measure.SMS_FAILURES: (f"uniqExactIf({_EVENT}, event_type = '_SMS.FAILURE')",
                           ("_SMS.FAILURE",)),
}

# Sums of SMS values: measure → (the value column, the event types whose values count,
# the rollup state of the messages those events belong to). A message adds each distinct
# value its counted events report (normally one) once, however many events report it;
# the rollups keep the values as dimensions.
SMS_VALUE_SUMS: dict[Measure, tuple[str, tuple[str, ...], str]] = {
    Measure.SMS_PARTS_SENT: ("message_parts", SMS_ATTEMPT_TYPES, "sms_sent"),
    Measure.SMS_PARTS_DELIVERED: ("message_parts", ("_SMS.SUCCESS",), "sms_delivered"),
    Measure.SMS_PRICE: ("price_millicents_usd", SMS_ATTEMPT_TYPES, "sms_sent"),
}

_PUSH_OPEN = f"event_type = '{PUSH_OPEN_EVENT_TYPE}'"
_OPENER = _h("endpoint_id", "attributes['campaign_activity_id']")
# measure → (aggregate over events rows, the event types it reads; None: all)
EVENT_AGGREGATES: dict[Measure, tuple[str, tuple[str, ...] | None]] = {
    Measure.PUSH_OPENED: (f"uniqExactIf({_OPENER}, {_PUSH_OPEN})", (PUSH_OPEN_EVENT_TYPE,)),
    Measure.PUSH_OPENS: (f"uniqExactIf({_EVENT}, {_PUSH_OPEN})", (PUSH_OPEN_EVENT_TYPE,)),
    Measure.ACTIVE_ENDPOINTS: (f"uniqExact({_h('endpoint_id')})", None),
    Measure.ACTIVE_USERS: (f"uniqExactIf({_h('user_id')}, user_id != '')", None),
}

DELIVERY_GROUPS = {
    Grouping.DATE: "toString(event_date)",
    Grouping.CAMPAIGN: "campaign_id",
    Grouping.CAMPAIGN_ACTIVITY: "campaign_activity_id",
    Grouping.COUNTRY: "iso_country_code",
    Grouping.JOURNEY_ACTIVITY: "journey_activity_id",
    Grouping.RECORD_STATUS: "record_status",
}
EVENT_GROUPS = {
    Grouping.DATE: "toString(event_date)",
    Grouping.CAMPAIGN: "attributes['campaign_id']",
    Grouping.CAMPAIGN_ACTIVITY: "attributes['campaign_activity_id']",
}
