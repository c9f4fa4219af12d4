"""Comparing and combining approval terms, for four-eyes decisions (DESIGN §4).

Two stewards of the owning department must agree before a high-sensitivity line is granted, and
the terms that take effect are never looser than either approver's. Terms are compared dimension
by dimension; "looser" means the grantee would receive or be allowed more:

- columns: a superset (no subset given is "every column");
- masking: a weaker method per column (none < partial < hash < null);
- lift_masking: lifting a column's default masking the other did not lift (so a lift by one
  approver alone never unmasks: combined terms keep only the lifts both made);
- row filter: missing any of the other's filters (filters are conjunctive: more is narrower);
- aggregation level: none where the other aggregates, or a different level;
- valid_until: later (none is "until the request's usage period ends");
- no_reshare, in_platform_only: off where the other has it on;
- purpose: none or different where the other states one.
"""

from datetime import date
from typing import Any

from broker.grants.schemas import MAX_ROW_FILTERS, Conditions

# How much a masking method hides; a column without a method is sent in clear.
MASK_STRENGTH = {None: 0, "partial": 1, "hash": 2, "null": 3}


def _filters(terms: Conditions) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json") for f in terms.row_filter]


def _describe(row_filter: dict[str, Any]) -> str:
    return f"{row_filter['column']} {row_filter['op']} {row_filter['value']}"


def loosenings(new: Conditions, old: Conditions) -> list[str]:
    """Where `new` gives the grantee more than `old` does, one sentence per dimension."""
    found: list[str] = []
    if old.columns is not None:
        wanted = {"(every column)"} if new.columns is None else set(new.columns)
        extra = sorted(wanted - set(old.columns))
        if extra:
            found.append(f"columns: adds {', '.join(extra)} to {sorted(old.columns)}")
    weaker = [
        f"{column}: {new.masking.get(column) or 'clear'} instead of {method}"
        for column, method in sorted(old.masking.items())
        if MASK_STRENGTH[new.masking.get(column)] < MASK_STRENGTH[method]
    ]
    if weaker:
        found.append("masking: " + "; ".join(weaker))
    lifted = sorted(set(new.lift_masking) - set(old.lift_masking))
    if lifted:
        found.append(
            f"lift_masking: lifts the default masking of {', '.join(lifted)}, "
            "which the other approval keeps"
        )
    new_filters = _filters(new)
    dropped = [f for f in _filters(old) if f not in new_filters]
    if dropped:
        found.append("row_filter: drops " + "; ".join(_describe(f) for f in dropped))
    if old.aggregation_level is not None and new.aggregation_level != old.aggregation_level:
        found.append(
            f"aggregation_level: {new.aggregation_level or 'row level'} "
            f"instead of {old.aggregation_level}"
        )
    ends_later = new.valid_until is None or (
        old.valid_until is not None and new.valid_until > old.valid_until
    )
    if old.valid_until is not None and ends_later:
        later = new.valid_until.isoformat() if new.valid_until else "the end of the usage period"
        found.append(f"valid_until: {later} instead of {old.valid_until.isoformat()}")
    for flag in ("no_reshare", "in_platform_only"):
        if getattr(old, flag) and not getattr(new, flag):
            found.append(f"{flag}: off instead of on")
    if old.purpose is not None and new.purpose != old.purpose:
        found.append(f"purpose: {new.purpose or 'none'} instead of {old.purpose}")
    return found


def _earlier(a: date | None, b: date | None) -> date | None:
    return min((d for d in (a, b) if d is not None), default=None)


def combine(a: Conditions, b: Conditions) -> Conditions | None:
    """The strictest terms within both `a` and `b`; None when no such terms exist.

    They are the intersection of columns, the stronger mask per column, the lifts of default
    masking both made (with the reason `a` gave), both sets of row filters, the earlier end,
    either flag. Disjoint columns, two different aggregation levels or purposes
    cannot both hold, nor more row filters than a grant may carry.
    """
    if a.aggregation_level and b.aggregation_level and a.aggregation_level != b.aggregation_level:
        return None
    if a.purpose and b.purpose and a.purpose != b.purpose:
        return None
    if a.columns is None or b.columns is None:
        columns = a.columns if b.columns is None else b.columns
    else:
        columns = [c for c in a.columns if c in set(b.columns)]
        if not columns:
            return None
    masking = {
        column: max(a.masking.get(column), b.masking.get(column), key=MASK_STRENGTH.__getitem__)
        for column in sorted({*a.masking, *b.masking})
    }
    filters = _filters(a) + [f for f in _filters(b) if f not in _filters(a)]
    if len(filters) > MAX_ROW_FILTERS:
        return None
    return Conditions.model_validate(
        {
            "columns": columns,
            "masking": masking,
            "lift_masking": {c: r for c, r in a.lift_masking.items() if c in b.lift_masking},
            "row_filter": filters,
            "aggregation_level": a.aggregation_level or b.aggregation_level,
            "purpose": a.purpose or b.purpose,
            "valid_until": _earlier(a.valid_until, b.valid_until),
            "no_reshare": a.no_reshare or b.no_reshare,
            "in_platform_only": a.in_platform_only or b.in_platform_only,
        }
    )


def is_unconditional(terms: Conditions) -> bool:
    """Plain approval: nothing restricts what the line covers."""
    return terms == Conditions()
