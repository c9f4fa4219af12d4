"""A grant's conditions applied to the data on its way out (DESIGN §4): columns, rows, masks."""

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from catalog.vocab import Aggregation
from core.errors import Conflict

OPERATORS = {
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: c != v,
    "lt": lambda c, v: c < v,
    "le": lambda c, v: c <= v,
    "gt": lambda c, v: c > v,
    "ge": lambda c, v: c >= v,
}


def keyed_hash(values: pl.Series, salt: bytes) -> pl.Series:
    """HMAC-SHA256 under the grant's salt: the same value hashes alike within one grant only.

    Each distinct value is hashed once (names and codes repeat), then mapped back.
    """
    text = values.cast(pl.String)
    distinct = text.drop_nulls().unique()
    digests = [
        hmac.new(salt, v.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
        for v in distinct.to_list()
    ]
    return text.replace_strict(distinct, pl.Series(digests, dtype=pl.String), default=None)


def partial_mask(column: pl.Expr) -> pl.Expr:
    """Keep the ends, star the middle: 310***********1234 (ID number), 138****5678 (phone)."""
    text = column.cast(pl.String)
    n = text.str.len_chars()
    stars = pl.lit("*" * 256)
    return (
        pl.when(n >= 8)
        .then(text.str.head(3) + stars.str.head(n - 7) + text.str.tail(4))
        .when(n >= 3)
        .then(text.str.head(1) + stars.str.head(n - 2) + text.str.tail(1))
        .otherwise(stars.str.head(n))
    )


def _literal(value: Any, dtype: pl.DataType) -> pl.Expr:
    return pl.lit(value).cast(dtype, strict=False)


def _row_filter(
    frame: pl.LazyFrame, schema: pl.Schema, rules: Sequence[dict[str, Any]]
) -> pl.LazyFrame:
    for rule in rules:
        column, op, value = rule["column"], rule["op"], rule["value"]
        if column not in schema:
            raise Conflict(f"The grant filters on '{column}', which this release does not hold.")
        dtype = schema[column]
        if op == "in":
            values = value if isinstance(value, list) else [value]
            frame = frame.filter(pl.col(column).is_in(pl.Series(values).cast(dtype, strict=False)))
        else:
            frame = frame.filter(OPERATORS[op](pl.col(column), _literal(value, dtype)))
    return frame


COMBINE = {
    Aggregation.sum: pl.Expr.sum,
    Aggregation.mean: pl.Expr.mean,
    Aggregation.min: pl.Expr.min,
    Aggregation.max: pl.Expr.max,
    Aggregation.last: pl.Expr.last,
}


def _aggregate(
    frame: pl.LazyFrame,
    schema: pl.Schema,
    *,
    level: str,
    columns: Sequence[str],
    aggregations: Mapping[str, Aggregation],
) -> tuple[pl.LazyFrame, list[str]]:
    numeric = [c for c in columns if c != level and schema[c].is_numeric()]
    how = {c: aggregations.get(c, Aggregation.none) for c in numeric}
    refused = sorted(c for c, a in how.items() if a == Aggregation.none)
    if refused:
        # Approval refuses this; the catalog may have changed since, and a rate is never summed.
        raise Conflict(
            f"The grant aggregates by '{level}', but {', '.join(refused)} cannot be aggregated "
            "(declared none, or a rate, average or price without a declared aggregation)."
        )
    combined = [COMBINE[how[c]](pl.col(c)) for c in numeric]
    frame = frame.group_by(level).agg(pl.len().alias("row_count"), *combined).sort(level)
    return frame, [level, "row_count", *numeric]


def apply(
    frame: pl.LazyFrame,
    *,
    columns: Sequence[str],
    conditions: dict[str, Any],
    aggregations: Mapping[str, Aggregation],
    salt: bytes,
) -> pl.LazyFrame:
    """The release as the grantee may see it.

    Rows are filtered first. An aggregation level naming a column combines each numeric granted
    column per value of it by the item's `aggregations` entry (sum, mean, min, max, or last: the
    group's last row in the release's row order), plus a row count, so no single row leaves; a
    column that cannot be aggregated (`none`, or missing from `aggregations`) refuses the
    download. Any other level (e.g. `district`) is the granularity the owner's releases already
    have, and is delivered as is. Then only granted columns remain, masked as the grant says. A
    condition the data cannot satisfy refuses the download rather than hand out more than was
    granted.
    """
    schema = frame.collect_schema()
    missing = [c for c in columns if c not in schema]
    if missing:
        raise Conflict(f"This release does not hold the granted column(s) {', '.join(missing)}.")
    frame = _row_filter(frame, schema, conditions.get("row_filter") or [])
    level = conditions.get("aggregation_level")
    if level and level in schema:
        frame, columns = _aggregate(
            frame, schema, level=level, columns=columns, aggregations=aggregations
        )
    else:
        frame = frame.select(columns)
    masks = []
    for column, method in (conditions.get("masking") or {}).items():
        if column not in columns:
            continue
        expr = pl.col(column)
        if method == "hash":
            masks.append(
                expr.map_batches(
                    lambda s: keyed_hash(s, salt), return_dtype=pl.String, is_elementwise=True
                )
            )
        elif method == "partial":
            masks.append(partial_mask(expr).alias(column))
        else:
            masks.append(pl.lit(None, dtype=pl.String).alias(column))
    return frame.with_columns(masks) if masks else frame
