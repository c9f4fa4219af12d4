"""The one place search differs by database: FTS5 on SQLite, a tsvector with GIN on PostgreSQL.

Both index the same Python-made tokens (catalog.text.tokens) and are asked for the same AND of
tokens, so the candidate sets are identical; ranking is plain SQL over the stored tokens.
"""

import itertools
import uuid
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    bindparam,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause

# table -> its FTS5 twin on SQLite; on PostgreSQL the table has a generated `search_vector`.
FTS_TABLES = {"dataset": "dataset_fts", "data_item": "data_item_fts"}
_names = itertools.count()
# Table names come from the fixed mapping above, never from input.
_DELETE = {t: text(f"DELETE FROM {fts} WHERE ref = :ref") for t, fts in FTS_TABLES.items()}  # noqa: S608
_INSERT = {
    t: text(f"INSERT INTO {fts} (ref, tokens) VALUES (:ref, :tokens)")  # noqa: S608
    for t, fts in FTS_TABLES.items()
}


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def reindex(session: AsyncSession, table: str, rows: list[tuple[uuid.UUID, str]]) -> None:
    """Make the SQLite FTS twin match `search_tokens`; PostgreSQL keeps its column itself."""
    if _dialect(session) != "sqlite" or not rows:
        return
    refs = [{"ref": row_id.hex, "tokens": tokens} for row_id, tokens in rows]
    await session.execute(_DELETE[table], [{"ref": r["ref"]} for r in refs])
    await session.execute(_INSERT[table], refs)


async def unindex(session: AsyncSession, table: str, ids: list[uuid.UUID]) -> None:
    if _dialect(session) != "sqlite" or not ids:
        return
    await session.execute(_DELETE[table], [{"ref": i.hex} for i in ids])


def matches(
    dialect: str, table: str, id_column: SQLColumnExpression[uuid.UUID], tokens: tuple[str, ...]
) -> ColumnElement[bool] | TextClause:
    """Rows whose tokens include every one of `tokens`."""
    name = f"match_{next(_names)}"
    if dialect == "sqlite":
        fts = FTS_TABLES[table]
        expression = " AND ".join('"' + t.replace('"', '""') + '"' for t in tokens)
        refs: Select[Any] = (
            select(literal_column("ref"))
            .select_from(text(fts))
            .where(text(f"{fts} MATCH :{name}").bindparams(bindparam(name, expression)))
        )
        return id_column.in_(refs)
    query = " & ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in tokens)
    return text(f"{table}.search_vector @@ CAST(:{name} AS tsquery)").bindparams(
        bindparam(name, query)
    )
