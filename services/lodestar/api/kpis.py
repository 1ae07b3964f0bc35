"""GetApplicationDateRangeKpi, GetCampaignDateRangeKpi, GetJourneyDateRangeKpi.

``GET /v1/apps/{application-id}[/campaigns/{campaign-id}|/journeys/{journey-id}]
/kpis/daterange/{kpi-name}?start-time=&end-time=&next-token=&page-size=`` answers
Pinpoint's body ``{ApplicationId, [CampaignId|JourneyId], KpiName, StartTime,
EndTime, KpiResult: {Rows}, [NextToken]}`` (boto3 shows it under
``ApplicationDateRangeKpiResponse`` …). The names, formulas and result shapes
are ``lodestar.core.kpi_catalog``'s; the values come from ClickHouse through
the registered analytics query ``kpi`` (``analytics.reading``), i.e. from the
worker when ClickHouse is embedded.

Dates follow Pinpoint: ISO-8601 UTC, inclusive; without ``end-time`` the range
ends now, without ``start-time`` it starts 31 days earlier; at most 31 days.
Pinpoint does not page KPI results; Lodestar honours ``page-size`` (rows per
page) and answers ``NextToken`` while rows remain. 400 ``BadRequestException``
for an unknown KPI name (the message lists the scope's valid names), bad dates
or paging; 500 when no worker or ClickHouse answers. Campaign and journey ids
are not looked up: one without data answers empty ``Rows``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lodestar.analytics.reading import AnalyticsUnavailable, query_analytics_async
from lodestar.analytics.registry import QueryParameterError
from lodestar.api.errors import ErrorType, error_response, new_request_id
from lodestar.api.paging import decode_token, encode_token
from lodestar.core.kpi_catalog import KpiScope, UnknownKpi, lookup_kpi
from lodestar.core.kpi_dates import DateRangeError, kpi_date_range
from lodestar.core.timestamps import iso_millis

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000

_ID_FIELDS = {KpiScope.CAMPAIGN: ("campaign_id", "CampaignId"),
              KpiScope.JOURNEY: ("journey_id", "JourneyId")}


class _BadPaging(ValueError):
    pass


def _page(rows: list[Any], page_size: str | None, token: str | None) -> tuple[
        list[Any], str | None]:
    """The page of ``rows`` the request asks for, and the token of the next one."""
    if page_size is None and token is None:
        return rows, None
    try:
        size = MAX_PAGE_SIZE if page_size is None else int(page_size)
    except ValueError:
        raise _BadPaging(f"page-size must be a whole number, got {page_size!r}.") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _BadPaging(f"page-size must be from 1 to {MAX_PAGE_SIZE}.")
    start = 0
    if token:
        try:
            start = int(decode_token(token))
        except ValueError:
            raise _BadPaging("next-token is not one of ours.") from None
        if start < 0:
            raise _BadPaging("next-token is not one of ours.")
    end = start + size
    return rows[start:end], (encode_token(str(end)) if end < len(rows) else None)


async def _date_range_kpi(request: Request, scope: KpiScope) -> Response:
    request_id = new_request_id()
    path = request.path_params
    app_id = path["application_id"]
    name = path["kpi_name"]
    query = request.query_params
    try:
        kpi = lookup_kpi(name, scope)
        dates = kpi_date_range(query.get("start-time"), query.get("end-time"),
                               int(time.time() * 1000))
    except (UnknownKpi, DateRangeError) as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    params = {"app-id": app_id, "kpi-name": kpi.name, "scope": scope.value,
              "start-ms": str(dates.start_ms), "end-ms": str(dates.end_ms)}
    body: dict[str, Any] = {"ApplicationId": app_id}
    if scope in _ID_FIELDS:
        param, field = _ID_FIELDS[scope]
        params["scope-id"] = body[field] = path[param]
    try:
        result = await query_analytics_async(request.app.state.settings, "kpi", params)
        rows, next_token = _page(result["Rows"], query.get("page-size"), query.get("next-token"))
    except (QueryParameterError, _BadPaging) as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    except AnalyticsUnavailable as exc:
        log.warning("KPI %s for %s: %s", kpi.name, app_id, exc)
        return error_response(ErrorType.INTERNAL, str(exc), request_id)
    body.update({"KpiName": kpi.name, "StartTime": iso_millis(dates.start_ms),
                 "EndTime": iso_millis(dates.end_ms), "KpiResult": {"Rows": rows}})
    if next_token is not None:
        body["NextToken"] = next_token
    return JSONResponse(body, headers={"x-amzn-RequestId": request_id})


async def get_application_date_range_kpi(request: Request) -> Response:
    """GetApplicationDateRangeKpi."""
    return await _date_range_kpi(request, KpiScope.APPLICATION)


async def get_campaign_date_range_kpi(request: Request) -> Response:
    """GetCampaignDateRangeKpi."""
    return await _date_range_kpi(request, KpiScope.CAMPAIGN)


async def get_journey_date_range_kpi(request: Request) -> Response:
    """GetJourneyDateRangeKpi."""
    return await _date_range_kpi(request, KpiScope.JOURNEY)


def kpi_routes() -> list[Route]:
    """The three KPI routes, for the API's route table."""
    base = "/v1/apps/{application_id}"
    tail = "/kpis/daterange/{kpi_name}"
    return [
        Route(f"{base}{tail}", get_application_date_range_kpi, methods=["GET"]),
        Route(f"{base}/campaigns/{{campaign_id}}{tail}", get_campaign_date_range_kpi,
              methods=["GET"]),
        Route(f"{base}/journeys/{{journey_id}}{tail}", get_journey_date_range_kpi,
              methods=["GET"]),
    ]
