"""The data contract a dataset declares: a pandera (polars) schema built from its data items."""

from collections.abc import Sequence

import pandera.polars as pa
import polars as pl

from catalog.datasets.models import DataItem
from catalog.vocab import DataType

DTYPES: dict[DataType, pl.DataType] = {
    DataType.string: pl.String(),
    DataType.integer: pl.Int64(),
    DataType.decimal: pl.Float64(),
    DataType.boolean: pl.Boolean(),
    DataType.date: pl.Date(),
    DataType.datetime: pl.Datetime("us"),
    DataType.geometry: pl.String(),  # WKT text; geometry is not checked beyond being text
}


def _checks(item: DataItem) -> list[pa.Check]:
    constraints = item.constraints or {}
    checks = []
    if constraints.get("enum") is not None:
        checks.append(pa.Check.isin(constraints["enum"]))
    if constraints.get("pattern") is not None:
        checks.append(pa.Check.str_matches(constraints["pattern"]))
    if constraints.get("minimum") is not None:
        checks.append(pa.Check.ge(constraints["minimum"]))
    if constraints.get("maximum") is not None:
        checks.append(pa.Check.le(constraints["maximum"]))
    return checks


def declared_schema(items: Sequence[DataItem]) -> pa.DataFrameSchema:
    """Every declared column, typed, with its nullability and constraints; nothing else allowed.

    Key items together must be unique (a composite key when there are several).
    """
    keys = [item.code for item in items if item.is_key]
    return pa.DataFrameSchema(
        {
            item.code: pa.Column(
                DTYPES[item.data_type], nullable=item.nullable, checks=_checks(item)
            )
            for item in items
        },
        strict=True,
        unique=keys or None,
    )
