"""What a template renders against: the recipient, its defaults and send-time values.

Variables are Pinpoint's endpoint paths (User Guide
``message-templates-personalizing.html``): ``Id``, ``Address``,
``ChannelType``, ``OptOut``, ``EndpointStatus``, ``EffectiveDate``,
``CreationDate``, ``RequestId``, ``CohortId``, ``Demographic.*``,
``Location.*``, ``Attributes.X``, ``Metrics.X``, ``User.UserId``,
``User.UserAttributes.X``. Attribute values are ``ValueList``s.

Precedence, lowest first:

1. ``DefaultSubstitutions`` — used where the endpoint lacks the value (absent,
   empty text or an empty list). A flat JSON object with dotted keys
   (``{"User.UserAttributes.FirstName": "friend"}``) or nested objects
   (``{"Attributes": {"Purchase": "Test"}}``); both forms may be mixed. A
   default under ``Attributes.`` / ``User.UserAttributes.`` becomes a one-item
   list, like the endpoint value it stands in for; a key ending in ``.[n]``
   sets item n.
2. the endpoint;
3. send-time ``Substitutions`` (name → list of strings, as SendMessages gives
   them; the sender merges message-level and per-recipient maps first, see
   ``merge_substitutions``) — they override both, even with an empty list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lodestar.core.endpoint_request import ChannelType
from lodestar.core.endpoint_state import EndpointState, endpoint_response
from lodestar.core.template_values import PathError, TemplateData, ValueList, split_path

Substitutions = Mapping[str, Sequence[str]]
_LIST_PARENTS = (("Attributes",), ("User", "UserAttributes"))


class SubstitutionError(ValueError):
    """Invalid DefaultSubstitutions or Substitutions; ``field`` is the offending path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RecipientContext:
    """The recipient's variables (Pinpoint-shaped, lists as ``ValueList``) and channel."""

    data: Mapping[str, Any] = field(default_factory=dict)
    channel_type: str | None = None


def endpoint_context(state: EndpointState) -> RecipientContext:
    """The variables of an endpoint, as GetEndpoint names them."""
    response = endpoint_response(state)
    data: dict[str, Any] = {}
    for key, value in response.items():
        if key == "Attributes":
            data[key] = {k: ValueList(v) for k, v in value.items()}
        elif key == "User":
            user = dict(value)
            if "UserAttributes" in user:
                user["UserAttributes"] = {
                    k: ValueList(v) for k, v in user["UserAttributes"].items()
                }
            data[key] = user
        else:
            data[key] = value
    channel = state.channel_type.value if state.channel_type is not None else None
    return RecipientContext(data, channel)


ENDPOINT_VARIABLES = frozenset({
    "ApplicationId", "Id", "Address", "ChannelType", "Attributes", "CohortId", "CreationDate",
    "Demographic", "EffectiveDate", "EndpointStatus", "Location", "Metrics", "OptOut",
    "RequestId", "User"})
"""Every top-level name ``endpoint_view.endpoint_response`` can give an endpoint."""
_PERSONAL = frozenset({"Attributes", "User"})


def personal_variables(endpoint: Mapping[str, Any], names: frozenset[str] | None
                       ) -> dict[str, Any] | None:
    """The ``Attributes`` and ``User`` variables of an endpoint record (a SendRequest's
    snapshot), exactly as the full endpoint context has them, when ``names`` (what the
    templates read, ``templates.root_names``) needs no other endpoint variable; None
    otherwise (build the full context then). Skips dating and copying the rest."""
    if names is None or not names.isdisjoint(ENDPOINT_VARIABLES - _PERSONAL):
        return None
    data: dict[str, Any] = {}
    if "Attributes" in names:
        data["Attributes"] = {k: ValueList(v)
                              for k, v in (endpoint.get("attributes") or {}).items()}
    if "User" in names:
        user = endpoint.get("user") or {}
        user_out: dict[str, Any] = {}
        if user.get("user_id") is not None:
            user_out["UserId"] = user["user_id"]
        if user.get("user_attributes"):
            user_out["UserAttributes"] = {k: ValueList(v)
                                          for k, v in user["user_attributes"].items()}
        if user_out:
            data["User"] = user_out
    return data


def address_context(address: str, channel_type: ChannelType | str | None) -> RecipientContext:
    """The variables of a bare address (SendMessages ``Addresses``): Address and ChannelType."""
    channel = None if channel_type is None else str(getattr(channel_type, "value", channel_type))
    data: dict[str, Any] = {"Address": address}
    if channel is not None:
        data["ChannelType"] = channel
    return RecipientContext(data, channel)


def parse_default_substitutions(raw: object, field_name: str = "DefaultSubstitutions"
                                ) -> Mapping[str, Any]:
    """DefaultSubstitutions (a JSON object as a string) as a nested default tree.

    Values may be strings, numbers, booleans, lists of those, nested objects or
    null (no default). Raises ``SubstitutionError`` naming the key.
    """
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        raise SubstitutionError(field_name, "must be a JSON object encoded as a string")
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise SubstitutionError(field_name, f"is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise SubstitutionError(field_name, "must be a JSON object")
    tree: dict[str, Any] = {}
    _load(tree, (), parsed, field_name)
    return tree


def _load(tree: dict[str, Any], prefix: tuple[str, ...], data: Mapping[str, Any],
          where: str) -> None:
    for key, value in data.items():
        here = f"{where}.{key}"
        try:
            path = prefix + split_path(key)
        except PathError as exc:
            raise SubstitutionError(here, str(exc)) from None
        if isinstance(value, dict):
            _load(tree, path, value, here)
            continue
        if value is None:
            continue
        if isinstance(value, list):
            if not all(isinstance(v, (str, int, float, bool)) for v in value):
                raise SubstitutionError(here, "a list may hold only strings, numbers, booleans")
            leaf: Any = ValueList(value)
        elif isinstance(value, (str, int, float, bool)):
            leaf = value
        else:  # pragma: no cover - json.loads gives nothing else
            raise SubstitutionError(here, "unsupported value")
        _place(tree, path, leaf, here)


def _place(tree: dict[str, Any], path: tuple[str, ...], leaf: Any, where: str) -> None:
    """Set ``path`` in ``tree``; a final digit segment sets an item of a list."""
    index: int | None = None
    if len(path) > 1 and path[-1].isdigit():
        index, path = int(path[-1]), path[:-1]
    if index is None and path[:-1] in _LIST_PARENTS and not isinstance(leaf, ValueList):
        leaf = ValueList([leaf])
    node = tree
    for segment in path[:-1]:
        child = node.get(segment)
        if child is None:
            child = node[segment] = {}
        elif not isinstance(child, dict):
            raise SubstitutionError(where, f"conflicts with the value set for {segment!r}")
        node = child
    last = path[-1]
    if index is not None:
        current = node.get(last)
        if isinstance(current, dict):
            raise SubstitutionError(where, f"conflicts with the object set for {last!r}")
        items = list(current) if isinstance(current, ValueList) else (
            [] if current is None else [current])
        items.extend([""] * (index + 1 - len(items)))
        items[index] = leaf if not isinstance(leaf, ValueList) else str(leaf)
        node[last] = ValueList(items)
        return
    if isinstance(node.get(last), dict):
        raise SubstitutionError(where, f"conflicts with the object set for {last!r}")
    node[last] = leaf


def parse_substitutions(values: object, field_name: str = "Substitutions") -> Mapping[str, Any]:
    """Send-time Substitutions (name → list of strings) as a tree of ``ValueList``s."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise SubstitutionError(field_name, "must be an object of lists of strings")
    tree: dict[str, Any] = {}
    for key, value in values.items():
        here = f"{field_name}.{key}"
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise SubstitutionError(here, "must be a list of strings")
        try:
            path = split_path(str(key))
        except PathError as exc:
            raise SubstitutionError(here, str(exc)) from None
        _place(tree, path, ValueList(value), here)
    return tree


def merge_substitutions(*layers: Substitutions | None) -> dict[str, list[str]]:
    """Message-level then per-recipient Substitutions: a later layer's key wins."""
    out: dict[str, list[str]] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            out[key] = list(value)
    return out


def _empty(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, ValueList) and not value)


def _overlay(base: TemplateData, top: Mapping[str, Any], *, keep_defaults: bool) -> None:
    for key, value in top.items():
        kind = type(value)
        if kind is str or kind is ValueList:  # the common leaves, as the last branch has it
            if keep_defaults and key in base and _empty(value):
                continue
            base[key] = value
        elif kind is dict or kind is TemplateData or isinstance(value, Mapping):
            current = base.get(key)
            if not isinstance(current, TemplateData):
                if keep_defaults and current is not None and not _empty(current):
                    continue
                current = TemplateData()
                base[key] = current
            _overlay(current, value, keep_defaults=keep_defaults)
        elif isinstance(value, (list, tuple)):
            if keep_defaults and not value and key in base:
                continue
            base[key] = ValueList(value)
        else:
            if keep_defaults and _empty(value) and key in base:
                continue
            base[key] = value


def build_render_data(defaults: Mapping[str, Any], recipient: RecipientContext,
                      substitutions: Mapping[str, Any],
                      names: frozenset[str] | None = None) -> TemplateData:
    """The root object of a render: defaults < recipient < send-time substitutions.

    ``substitutions`` is a ``parse_substitutions`` tree. ``names``: build only these
    top-level keys (each exactly as the full build has it; the templates' own
    ``root_names``), None for all.
    """
    root = TemplateData()
    layers: tuple[Mapping[str, Any], ...] = (defaults, recipient.data, substitutions)
    if names is not None:
        layers = tuple({k: layer[k] for k in names if k in layer} for layer in layers)
    _overlay(root, layers[0], keep_defaults=False)
    _overlay(root, layers[1], keep_defaults=True)
    _overlay(root, layers[2], keep_defaults=False)
    return root
