"""`POST /client/v4/graphql`: the `workersInvocationsAdaptive` dataset of Cloudflare's GraphQL
Analytics API, computed from the recorded invocations (`invocations`).

The query is parsed, validated and executed by graphql-core against a real schema, so a field,
argument or filter this subset does not have is a GraphQL error in GraphQL's shape, never a
made-up number. As Cloudflare does, a variable may be declared as `string` or `Time` wherever
either is expected (the documented examples do), so variable positions are not type-checked.

Locally workerd does not measure CPU time per request, so `cpuTime` quantiles and the
`cpuTimeUs` sum are the wall time of the invocations (an upper bound of their CPU time); answers
that include them carry an `extensions.apiary` note saying so. Quantiles are in
microseconds, as Cloudflare's are.
https://developers.cloudflare.com/analytics/graphql-api/tutorials/querying-workers-metrics/
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    build_schema,
    execute,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import VariablesInAllowedPositionRule

from apiary_local.account.invocations import ERROR_STATUSES, InvocationLog, InvocationRow

type Info = GraphQLResolveInfo[dict[str, Any]]  # the context is the request's dict

MAX_LIMIT = 10_000
QUANTILES = {
    "P25": 0.25,
    "P50": 0.5,
    "P75": 0.75,
    "P90": 0.9,
    "P95": 0.95,
    "P99": 0.99,
    "P999": 0.999,
}
CPU_NOTE = (
    "cpuTime quantiles and cpuTimeUs are wall time: the local workerd does not report CPU "
    "time per invocation, so these are upper bounds of CPU time"
)
# dimension -> its value for an invocation
_BUCKETS: dict[str, Callable[[InvocationRow], str]] = {
    "datetime": lambda r: _format(r.started_ms // 1000 * 1000),
    "datetimeMinute": lambda r: _format(r.started_ms // 60_000 * 60_000),
    "datetimeFiveMinutes": lambda r: _format(r.started_ms // 300_000 * 300_000),
    "datetimeFifteenMinutes": lambda r: _format(r.started_ms // 900_000 * 900_000),
    "datetimeHour": lambda r: _format(r.started_ms // 3_600_000 * 3_600_000),
    "date": lambda r: _format(r.started_ms)[:10],
    "scriptName": lambda r: r.script,
    "scriptVersion": lambda r: r.version_id,
    "status": lambda r: r.status,
    "dispatchNamespaceName": lambda r: r.namespace,
}
_SUMS = ("requests", "errors", "subrequests", "wallTime", "cpuTimeUs")
_ORDER_VALUES = "\n".join(
    f"  {name}_{direction}"
    for name in [*_BUCKETS, *(f"sum_{s}" for s in _SUMS)]
    for direction in ("ASC", "DESC")
)
_QUANTILE_FIELDS = "\n".join(
    f"  {metric}{q}: float64!" for metric in ("cpuTime", "wallTime") for q in QUANTILES
)
SDL = f"""
scalar string
scalar Time
scalar Date
scalar uint64
scalar float64

type Query {{
  viewer: Viewer!
}}

type Viewer {{
  accounts(filter: AccountFilter_InputObject!): [Account!]!
}}

input AccountFilter_InputObject {{
  accountTag: string
}}

type Account {{
  workersInvocationsAdaptive(
    filter: AccountWorkersInvocationsAdaptiveFilter_InputObject
    limit: uint64!
    orderBy: [AccountWorkersInvocationsAdaptiveOrderBy!]
  ): [AccountWorkersInvocationsAdaptive!]!
}}

input AccountWorkersInvocationsAdaptiveFilter_InputObject {{
  datetime_geq: Time
  datetime_gt: Time
  datetime_leq: Time
  datetime_lt: Time
  scriptName: string
  scriptName_neq: string
  scriptVersion: string
  status: string
  status_neq: string
  dispatchNamespaceName: string
}}

enum AccountWorkersInvocationsAdaptiveOrderBy {{
{_ORDER_VALUES}
}}

type AccountWorkersInvocationsAdaptive {{
  sum: AccountWorkersInvocationsAdaptiveSum
  quantiles: AccountWorkersInvocationsAdaptiveQuantiles
  dimensions: AccountWorkersInvocationsAdaptiveDimensions
}}

type AccountWorkersInvocationsAdaptiveSum {{
  requests: uint64!
  errors: uint64!
  subrequests: uint64!
  wallTime: uint64!
  cpuTimeUs: uint64!
}}

type AccountWorkersInvocationsAdaptiveQuantiles {{
{_QUANTILE_FIELDS}
}}

type AccountWorkersInvocationsAdaptiveDimensions {{
  datetime: Time!
  datetimeMinute: Time!
  datetimeFiveMinutes: Time!
  datetimeFifteenMinutes: Time!
  datetimeHour: Time!
  date: Date!
  scriptName: string!
  scriptVersion: string!
  status: string!
  dispatchNamespaceName: string!
}}
"""
RULES = [rule for rule in specified_rules if rule is not VariablesInAllowedPositionRule]


def _format(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any, name: str) -> int:
    if not isinstance(value, str):
        raise GraphQLError(f"{name} must be an RFC 3339 time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GraphQLError(f"{name}: {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _fields(selection: SelectionSetNode | None, info: Info) -> Iterable[str]:
    for node in selection.selections if selection else ():
        if isinstance(node, FieldNode):
            yield node.name.value
        elif isinstance(node, InlineFragmentNode):
            yield from _fields(node.selection_set, info)
        elif isinstance(node, FragmentSpreadNode):
            yield from _fields(info.fragments[node.name.value].selection_set, info)


def _subfields(info: Info, name: str) -> list[str]:
    found: list[str] = []
    for field in info.field_nodes:
        for node in field.selection_set.selections if field.selection_set else ():
            if isinstance(node, FieldNode) and node.name.value == name:
                found.extend(_fields(node.selection_set, info))
    return found


def _matches(row: InvocationRow, where: dict[str, Any]) -> bool:
    checks = {
        "scriptName": row.script,
        "scriptVersion": row.version_id,
        "status": row.status,
        "dispatchNamespaceName": row.namespace,
    }
    for key, actual in checks.items():
        if key in where and actual != where[key]:
            return False
        if f"{key}_neq" in where and actual == where[f"{key}_neq"]:
            return False
    return True


def _group(rows: list[InvocationRow], dimensions: list[str]) -> dict[str, Any]:
    walls = [r.duration_ms * 1000 for r in rows]  # microseconds
    quantiles: dict[str, float] = {}
    for suffix, q in QUANTILES.items():
        value = round(quantile(walls, q), 2)
        quantiles[f"wallTime{suffix}"] = quantiles[f"cpuTime{suffix}"] = value
    return {
        "dimensions": {d: _BUCKETS[d](rows[0]) for d in dimensions},
        "sum": {
            "requests": len(rows),
            "errors": sum(1 for r in rows if r.status in ERROR_STATUSES),
            "subrequests": sum(r.subrequests for r in rows),
            "wallTime": round(sum(walls)),
            "cpuTimeUs": round(sum(walls)),  # wall time: see CPU_NOTE
        },
        "quantiles": quantiles,
    }


class Analytics:
    def __init__(self, invocations: InvocationLog, account_id: str) -> None:
        self.invocations = invocations
        self.account_id = account_id
        self.schema: GraphQLSchema = build_schema(SDL)
        # Query, Viewer and Account are object types (SDL above), the ones with fields.
        fields = cast(dict[str, GraphQLObjectType], self.schema.type_map)
        fields["Query"].fields["viewer"].resolve = lambda *_: {}
        fields["Viewer"].fields["accounts"].resolve = self._accounts
        fields["Account"].fields["workersInvocationsAdaptive"].resolve = self._invocations

    def _accounts(self, _: Any, info: Info, filter: dict[str, Any]) -> list[Any]:
        tag = filter.get("accountTag")
        if tag != self.account_id:
            raise GraphQLError(f"not authorized for account {tag!r}")
        return [{}]

    def _invocations(
        self,
        _: Any,
        info: Info,
        limit: Any,
        filter: dict[str, Any] | None = None,
        orderBy: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        if type(limit) is not int or not 0 < limit <= MAX_LIMIT:
            raise GraphQLError(f"limit must be an integer from 1 to {MAX_LIMIT}")
        where = dict(filter or {})
        since = max(
            [_parse_time(where[k], k) for k in ("datetime_geq",) if k in where]
            + [_parse_time(where[k], k) + 1 for k in ("datetime_gt",) if k in where],
            default=None,
        )
        until = min(
            [_parse_time(where[k], k) for k in ("datetime_leq",) if k in where]
            + [_parse_time(where[k], k) - 1 for k in ("datetime_lt",) if k in where],
            default=None,
        )
        # Both a range bound and the instant are to the millisecond; a bound given to the
        # second covers that whole second, as `datetime` (a second) suggests.
        if until is not None and "datetime_leq" in where:
            until += 999 if until % 1000 == 0 else 0
        dimensions = list(dict.fromkeys(_subfields(info, "dimensions")))
        if any(q.startswith("cpuTime") for q in _subfields(info, "quantiles")) or (
            "cpuTimeUs" in _subfields(info, "sum")
        ):
            info.context["cpu_note"] = True
        rows = [
            r for r in self.invocations.select(since_ms=since, until_ms=until) if _matches(r, where)
        ]
        groups: dict[tuple[str, ...], list[InvocationRow]] = {}
        for row in rows:
            groups.setdefault(tuple(_BUCKETS[d](row) for d in dimensions), []).append(row)
        answer = [_group(members, dimensions) for members in groups.values()]
        for order in reversed(orderBy or []):
            key, _, direction = order.rpartition("_")
            if key.startswith("sum_"):
                field = key[4:]
                answer.sort(key=lambda g: g["sum"][field], reverse=direction == "DESC")
            elif key in dimensions:
                answer.sort(key=lambda g: g["dimensions"][key], reverse=direction == "DESC")
            else:
                raise GraphQLError(f"cannot order by {key}: it is not a selected dimension")
        return answer[:limit]

    def run(self, query: Any, variables: Any, operation: Any) -> dict[str, Any]:
        if not isinstance(query, str) or not query.strip():
            return {"data": None, "errors": [{"message": "a query is required"}]}
        if variables is not None and not isinstance(variables, dict):
            return {"data": None, "errors": [{"message": "variables must be an object"}]}
        try:
            document = parse(query)
        except GraphQLError as error:
            return {"data": None, "errors": [error.formatted]}
        problems = validate(self.schema, document, RULES)
        if problems:
            return {"data": None, "errors": [p.formatted for p in problems]}
        context: dict[str, Any] = {}
        result = execute(
            self.schema,
            document,
            variable_values=variables,
            operation_name=operation if isinstance(operation, str) else None,
            context_value=context,
        )
        assert not hasattr(result, "__await__")
        answer: dict[str, Any] = {
            "data": result.data,
            "errors": [e.formatted for e in result.errors] if result.errors else None,
        }
        if context.get("cpu_note"):
            answer["extensions"] = {"apiary": CPU_NOTE}
        return answer
