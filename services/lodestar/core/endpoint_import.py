"""Rows of an endpoint import file (Pinpoint's CreateImportJob formats), parsed without I/O.

Two formats, as Pinpoint documents them for imported segments:

- **CSV** (RFC 4180, UTF-8): a header row of flattened EndpointRequest paths
  (``Id``, ``ChannelType``, ``Address``, ``Location.Country``,
  ``Demographic.Platform``, ``User.UserId``, ``User.UserAttributes.<name>``,
  ``Attributes.<name>``, ``Metrics.<name>``, ``EffectiveDate``, ``OptOut``, …),
  then one endpoint per row. An attribute with several values repeats its
  column, one value per column (Pinpoint's rule). An empty cell means "not
  given". Header names are trimmed; the response-only columns ``ApplicationId``,
  ``CohortId`` and ``CreationDate`` are ignored; any other unknown column, or a
  repeated single-valued one, makes the whole file invalid (``ImportFileError``).
- **JSON**: newline-delimited EndpointRequest objects (plus ``Id``); blank
  lines are skipped.

Every record becomes either an ``ImportedRow`` (endpoint id and the validated
EndpointRequest as Pinpoint JSON, via ``parse_endpoint_request``, so every
limit of UpdateEndpoint holds) or a ``RowFailure`` whose message names the row
and the field, e.g. ``row 4: Location.Latitude: Location.Latitude 123.0 is
outside -90..90``. Rows are numbered as a spreadsheet or editor shows them:
in CSV the header is row 1; in JSON row N is line N.

A record without ``Id`` needs ``ChannelType`` and ``Address`` (Pinpoint's rule
for new endpoints); its id is derived from those two (``derived_endpoint_id``),
so importing the same address again updates the same endpoint.

A record holding nothing but ``User.UserId`` is a **user row** (``ImportedUser``):
as in Pinpoint, it stands for every endpoint of that user already in the app,
which join the job's segment (``user_row_endpoints`` decides which, or why not).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lodestar.core.endpoint_request import (
    DEMOGRAPHIC_NAMES,
    LOCATION_NAMES,
    EndpointRequestError,
    parse_endpoint_id,
    parse_endpoint_request,
)
from lodestar.core.endpoint_rules import check_user_capacity


class ImportFormat(StrEnum):
    """Pinpoint's ``Format`` of an import job."""

    CSV = "CSV"
    JSON = "JSON"


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (e.g. a bad CSV header); ``str`` says why."""


@dataclass(frozen=True)
class ImportedRow:
    """A valid record: the endpoint id and its EndpointRequest as Pinpoint JSON."""

    row: int
    endpoint_id: str
    request: dict[str, Any]

    @property
    def user_id(self) -> str | None:
        """The record's ``User.UserId``, if it names one."""
        user = self.request.get("User")
        value = user.get("UserId") if isinstance(user, dict) else None
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class ImportedUser:
    """A record naming only ``User.UserId``: all of that user's endpoints."""

    row: int
    user_id: str


@dataclass(frozen=True)
class RowFailure:
    """An invalid record; ``message`` names the row and the field."""

    row: int
    message: str


RowResult = ImportedRow | ImportedUser | RowFailure


def within_user_cap(rows: Sequence[ImportedRow], existing: Mapping[str, Iterable[str]],
                    imported: dict[str, set[str]]) -> list[RowResult]:
    """``rows`` in order, each kept or failed as UpdateEndpoint's 15-endpoints-per-user
    rule decides: a user's endpoints are those ``existing`` lists (the read model) plus
    those ``imported`` holds (this run's earlier rows, which the read model may not show
    yet); ``imported`` takes every kept row's endpoint."""
    out: list[RowResult] = []
    for row in rows:
        user_id = row.user_id
        if user_id:
            mine = imported.setdefault(user_id, set())
            try:
                check_user_capacity(user_id, mine | set(existing.get(user_id, ())),
                                    [row.endpoint_id])
            except EndpointRequestError as exc:
                out.append(RowFailure(row.row, f"row {row.row}: {exc.field}: {exc}"))
                continue
            mine.add(row.endpoint_id)
        out.append(row)
    return out


def user_row_endpoints(row: ImportedUser, existing: Mapping[str, Iterable[str]],
                       imported: Mapping[str, Iterable[str]], defines_segment: bool
                       ) -> list[str] | RowFailure:
    """The endpoint ids a user row adds to the job's segment, sorted: the user's endpoints
    in ``existing`` (the read model) and ``imported`` (this run's earlier rows). A failure
    when the job defines no segment (a user row registers nothing) or the user has no
    endpoint (Pinpoint imports only user IDs that endpoints already carry)."""
    where = f"row {row.row}: User.UserId: "
    if not defines_segment:
        return RowFailure(row.row, f"{where}a row with only a user ID adds that user's "
                          "endpoints to the job's segment, and this job defines no segment "
                          "(set DefineSegment, or give Id, or ChannelType and Address, to "
                          "register an endpoint)")
    ids = sorted({*existing.get(row.user_id, ()), *imported.get(row.user_id, ())})
    if not ids:
        return RowFailure(row.row, f"{where}user {row.user_id!r} has no endpoint in this "
                          "app; add endpoints with this user ID before importing the user ID")
    return ids


IGNORED_COLUMNS = frozenset({"ApplicationId", "CohortId", "CreationDate"})
"""Response-only fields (a GetEndpoint or export written back): ignored, like Pinpoint."""

_TOP_LEVEL = ("Address", "ChannelType", "EffectiveDate", "EndpointStatus", "OptOut", "RequestId")
_MAP_PREFIXES = ("Attributes.", "User.UserAttributes.", "Metrics.")
_NUMERIC_LOCATION = frozenset({"Latitude", "Longitude"})


def derived_endpoint_id(channel_type: str, address: str) -> str:
    """The id of a record without ``Id``: 32 hex characters from its channel and address."""
    digest = hashlib.sha256(json.dumps([channel_type, address]).encode()).hexdigest()
    return digest[:32]


@dataclass(frozen=True)
class _Column:
    kind: str  # "id", "top", "demographic", "location", "user_id", "attributes",
    #            "user_attributes", "metrics", "ignored"
    name: str  # the Pinpoint member name, or the attribute/metric name


@dataclass(frozen=True)
class CsvHeader:
    """A validated CSV header: one ``_Column`` per cell."""

    columns: tuple[_Column, ...]


def _column(raw: str) -> _Column:
    name = raw.strip().lstrip("\ufeff").strip()
    if not name:
        raise ImportFileError("the CSV header has an empty column name")
    if name == "Id":
        return _Column("id", name)
    if name in _TOP_LEVEL:
        return _Column("top", name)
    if name == "User.UserId":
        return _Column("user_id", "UserId")
    if name in IGNORED_COLUMNS:
        return _Column("ignored", name)
    head, dot, rest = name.partition(".")
    if dot and head == "Demographic" and rest in DEMOGRAPHIC_NAMES.values():
        return _Column("demographic", rest)
    if dot and head == "Location" and rest in LOCATION_NAMES.values():
        return _Column("location", rest)
    for prefix, kind in zip(_MAP_PREFIXES, ("attributes", "user_attributes", "metrics"),
                            strict=True):
        if name.startswith(prefix):
            key = name[len(prefix):]
            if not key:
                raise ImportFileError(f"the CSV header column {name!r} lacks an attribute name")
            return _Column(kind, key)
    raise ImportFileError(
        f"the CSV header column {name!r} is not an endpoint field; use Id, ChannelType, "
        "Address, EffectiveDate, EndpointStatus, OptOut, RequestId, Demographic.<field>, "
        "Location.<field>, User.UserId, User.UserAttributes.<name>, Attributes.<name> or "
        "Metrics.<name>"
    )


def parse_csv_header(cells: Sequence[str]) -> CsvHeader:
    """Validate the header row. Multi-valued columns (Attributes, UserAttributes) may repeat."""
    columns = tuple(_column(cell) for cell in cells)
    seen: set[tuple[str, str]] = set()
    for column, raw in zip(columns, cells, strict=True):
        if column.kind in ("attributes", "user_attributes", "ignored"):
            continue
        key = (column.kind, column.name)
        if key in seen:
            raise ImportFileError(
                f"the CSV header repeats the column {raw.strip()!r}; only Attributes.<name> and "
                "User.UserAttributes.<name> columns may repeat (one value per column)"
            )
        seen.add(key)
    if not any(c.kind != "ignored" for c in columns):
        raise ImportFileError("the CSV header names no endpoint field")
    return CsvHeader(columns)


def _number(value: str, path: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise EndpointRequestError(path, f"{path} {value[:40]!r} is not a number") from None


def csv_record(header: CsvHeader, cells: Sequence[str]) -> dict[str, Any]:
    """The EndpointRequest JSON (plus ``Id``) of one CSV data row; empty cells are not given.

    Raises ``EndpointRequestError`` for a row that does not fit the header or a
    numeric cell that is not a number.
    """
    if len(cells) != len(header.columns):
        raise EndpointRequestError(
            "", f"the row has {len(cells)} values; the header has {len(header.columns)} columns"
        )
    body: dict[str, Any] = {}
    for column, value in zip(header.columns, cells, strict=True):
        if value == "" or column.kind == "ignored":
            continue
        if column.kind in ("id", "top"):
            body[column.name] = value
        elif column.kind == "user_id":
            body.setdefault("User", {})["UserId"] = value
        elif column.kind == "demographic":
            body.setdefault("Demographic", {})[column.name] = value
        elif column.kind == "location":
            path = f"Location.{column.name}"
            body.setdefault("Location", {})[column.name] = (
                _number(value, path) if column.name in _NUMERIC_LOCATION else value
            )
        elif column.kind == "metrics":
            path = f"Metrics.{column.name}"
            body.setdefault("Metrics", {})[column.name] = _number(value, path)
        elif column.kind == "attributes":
            body.setdefault("Attributes", {}).setdefault(column.name, []).append(value)
        else:  # user_attributes
            user = body.setdefault("User", {})
            user.setdefault("UserAttributes", {}).setdefault(column.name, []).append(value)
    return body


def parse_record(body: object, row: int) -> RowResult:
    """One decoded record (EndpointRequest JSON plus ``Id``) → ``ImportedRow`` or failure."""
    try:
        if not isinstance(body, Mapping):
            raise EndpointRequestError("", "the record must be a JSON object (an EndpointRequest)")
        raw_id = body.get("Id")
        if _only_user_id(body):
            user = parse_endpoint_request(body).user
            if user is not None and user.user_id:
                return ImportedUser(row, user.user_id)
        if raw_id is None or raw_id == "":
            channel, address = body.get("ChannelType"), body.get("Address")
            if not (isinstance(channel, str) and channel and isinstance(address, str) and address):
                raise EndpointRequestError(
                    "Id", "Id is missing, so ChannelType and Address are required (they "
                    "identify a new endpoint); a row with nothing but User.UserId stands for "
                    "all of that user's endpoints"
                )
            endpoint_id = derived_endpoint_id(channel, address)
        else:
            endpoint_id = parse_endpoint_id(raw_id)
        request = parse_endpoint_request(body)
    except EndpointRequestError as bad:
        where = f"row {row}: {bad.field}: " if bad.field else f"row {row}: "
        return RowFailure(row, f"{where}{bad}")
    return ImportedRow(row, endpoint_id, request.to_pinpoint())


def _only_user_id(body: Mapping[str, Any]) -> bool:
    """Whether a record names a user and nothing else (``Id`` absent or empty)."""
    user = body.get("User")
    return (isinstance(user, Mapping) and set(user) == {"UserId"}
            and user["UserId"] not in (None, "")
            and all(key == "User" or (key == "Id" and body[key] in (None, ""))
                    for key in body))


def parse_csv(lines: Iterable[str]) -> Iterator[RowResult]:
    """Parse CSV text given as lines (line endings kept). Raises ``ImportFileError``.

    Blank rows are skipped (but counted). The first row must be the header.
    """
    reader = csv.reader(iter(lines), strict=True)
    header: CsvHeader | None = None
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            row += 1
            if header is None:
                raise ImportFileError(f"row {row}: the CSV header cannot be read: {exc}") from None
            yield RowFailure(row, f"row {row}: not valid CSV: {exc}")
            continue
        row += 1
        if header is None:
            if not cells or all(not c.strip() for c in cells):
                raise ImportFileError("the file is empty or its first row (the header) is blank")
            header = parse_csv_header(cells)
            continue
        if not cells or (len(cells) == 1 and cells[0] == ""):
            continue
        try:
            body = csv_record(header, cells)
        except EndpointRequestError as bad:
            where = f"row {row}: {bad.field}: " if bad.field else f"row {row}: "
            yield RowFailure(row, f"{where}{bad}")
            continue
        yield parse_record(body, row)
    if header is None:
        raise ImportFileError("the file is empty: a CSV import needs a header row")


def parse_json_lines(lines: Iterable[str]) -> Iterator[RowResult]:
    """Parse newline-delimited JSON; row N is line N; blank lines are skipped."""
    for row, line in enumerate(lines, start=1):
        text = line.lstrip("\ufeff") if row == 1 else line
        if not text.strip():
            continue
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RowFailure(row, f"row {row}: not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        yield parse_record(body, row)


def parse_rows(fmt: ImportFormat, lines: Iterable[str]) -> Iterator[RowResult]:
    """The records of one file in ``fmt``, in order. CSV raises ``ImportFileError`` on a bad
    header (when the iterator reaches it)."""
    if fmt is ImportFormat.CSV:
        return parse_csv(lines)
    return parse_json_lines(lines)


# --------------------------------------------------------------------------- writing CSV


def _flatten(endpoint_id: str, request: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    cells: list[tuple[str, list[str]]] = [("Id", [endpoint_id])]
    for name in _TOP_LEVEL:
        if request.get(name) is not None:
            cells.append((name, [str(request[name])]))
    for section in ("Demographic", "Location"):
        for key, value in (request.get(section) or {}).items():
            cells.append((f"{section}.{key}", [repr(value) if isinstance(value, float)
                                               else str(value)]))
    user = request.get("User") or {}
    if user.get("UserId") is not None:
        cells.append(("User.UserId", [user["UserId"]]))
    for key, values in (user.get("UserAttributes") or {}).items():
        cells.append((f"User.UserAttributes.{key}", list(values)))
    for key, values in (request.get("Attributes") or {}).items():
        cells.append((f"Attributes.{key}", list(values)))
    for key, value in (request.get("Metrics") or {}).items():
        cells.append((f"Metrics.{key}", [repr(float(value))]))
    return cells


def endpoints_csv(items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[list[str]]:
    """Header and rows of a CSV import file for ``(endpoint id, EndpointRequest JSON)`` items.

    A multi-valued attribute gets as many columns (same name) as its longest
    value list. The inverse of ``parse_csv`` for requests whose strings are
    non-empty (an empty cell reads back as "not given").
    """
    widths: dict[str, int] = {}
    flat = [_flatten(endpoint_id, request) for endpoint_id, request in items]
    for cells in flat:
        for column, values in cells:
            widths[column] = max(widths.get(column, 1), len(values))
    header = [column for column, width in widths.items() for _ in range(width)]
    rows = [header]
    for cells in flat:
        by_column = dict(cells)
        row: list[str] = []
        for column, width in widths.items():
            values = by_column.get(column, [])
            row.extend(values + [""] * (width - len(values)))
        rows.append(row)
    return rows
