import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from broker.delivery.models import Copy, ReleaseStatus
from broker.grants.schemas import Conditions
from catalog.vocab import Freshness, UpdateCycle


class ByAlias(BaseModel):
    """`copy` would shadow BaseModel.copy: the attribute is `copy_`, the name on the wire `copy`."""

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class FailureExample(BaseModel):
    row: int = Field(description="1 is the first data row (the row after the header).")
    value: Any = None


class CheckResult(BaseModel):
    column: str | None = Field(description="Item code, or the key columns joined by commas.")
    check: str = Field(
        description="data_type, not_null, enum, pattern, minimum, maximum, unique_key, "
        "missing_column or extra_column."
    )
    failure_count: int
    examples: list[FailureExample]


class ValidationReport(BaseModel):
    valid: bool
    rows: int
    checks: list[CheckResult]


class ReleaseRead(ByAlias):
    id: uuid.UUID
    dataset_code: str
    status: ReleaseStatus
    copy_: Copy = Field(
        alias="copy",
        description="`owner`, or `platform`: the platform's aggregated copy (已归集).",
    )
    supersedes_id: uuid.UUID | None = Field(
        description="The accepted release this one corrects (declared with `correction_of`)."
    )
    period_start: date
    period_end: date
    source_format: str
    source_filename: str | None
    source_sha256: str
    size_bytes: int
    row_count: int
    sha256: str | None = Field(description="Digest of the stored Parquet; none when rejected.")
    report: ValidationReport
    published_by: str
    created_at: datetime


class ReleasePage(BaseModel):
    items: list[ReleaseRead]
    next_cursor: str | None = None


class GrantRelease(ByAlias):
    """A release as a grantee sees it: what period it covers and what it holds, never the
    owner's upload details (report, source file, publisher)."""

    id: uuid.UUID
    copy_: Copy = Field(alias="copy")
    period_start: date
    period_end: date
    row_count: int
    sha256: str
    created_at: datetime


class GrantReleasePage(BaseModel):
    items: list[GrantRelease]
    next_cursor: str | None = None


class StaleDataset(BaseModel):
    code: str
    title: str
    update_cycle: UpdateCycle
    publication_lag_days: int
    last_updated_at: datetime | None
    latest_period_end: date | None = Field(
        description="The latest period end an accepted release covers; freshness follows it."
    )
    due_at: datetime | None
    stale_at: datetime | None
    freshness: Freshness


class DepartmentFreshness(BaseModel):
    department_code: str
    department_name: str
    due: int
    stale: int
    datasets: list[StaleDataset]


class FreshnessReport(BaseModel):
    as_of: datetime
    departments: list[DepartmentFreshness]


class ReceiptGrant(BaseModel):
    """The agreement the data left under."""

    id: uuid.UUID
    scenario_id: uuid.UUID
    purpose: str | None = Field(description="The request's purpose the grant is bound to.")
    terms: Conditions = Field(
        description="The grant's conditions as enforced, incl. `masking`, `lift_masking` and "
        "`no_reshare`."
    )
    columns: list[str] = Field(description="Granted item codes.")
    grantee: str = Field(description="Code of the department the grant was issued to.")
    owner: str = Field(description="Code of the department that owns the data.")


class ReceiptRelease(ByAlias):
    """One release of a range download."""

    id: uuid.UUID
    copy_: Copy = Field(alias="copy")
    period_start: date
    period_end: date


class ReceiptData(ByAlias):
    """What was delivered: the release, the file's format, size, rows and digest."""

    dataset: str = Field(description="Dataset code.")
    release_id: uuid.UUID = Field(description="The release served (a range's latest period).")
    # Receipts signed before platform copies existed carry no `copy`: they were the owner's.
    copy_: Copy = Field(default=Copy.owner, alias="copy", description="Whose copy was served.")
    period_start: date = Field(description="First day covered (a range's first period).")
    period_end: date = Field(description="Last day covered (a range's last period).")
    releases: list[ReceiptRelease] = Field(
        default_factory=list,
        description="A range download's releases, in period order; empty for one release.",
    )
    format: str
    rows: int
    size_bytes: int
    sha256: str = Field(description="Hex SHA-256 of the bytes delivered.")


class ReceiptAccount(BaseModel):
    """Who downloaded."""

    subject: str = Field(description="The token's subject (the account id for local accounts).")
    account_id: uuid.UUID | None
    client_id: str | None = Field(description="The account's name.")
    department: str = Field(description="Code of the account's department.")
    acting_for: str | None = Field(
        default=None, description="A contractor's: the department it downloaded for."
    )


class ReceiptClaims(BaseModel):
    """The payload of a receipt JWS (header `typ` is `broker-receipt+jwt`)."""

    iss: str = Field(description="The broker that signed it.")
    iat: int = Field(description="When, in seconds since the epoch.")
    jti: uuid.UUID = Field(description="The receipt's id.")
    grant: ReceiptGrant
    data: ReceiptData
    account: ReceiptAccount


class ReceiptRead(BaseModel):
    id: uuid.UUID
    grant_id: uuid.UUID
    release_id: uuid.UUID
    account_subject: str
    sha256: str
    created_at: datetime
    jws: str = Field(
        description="The compact JWS as the download's `X-Receipt` header carried it; check it "
        "with the JWKS at /.well-known/jwks.json or `broker receipts verify`."
    )
    claims: ReceiptClaims = Field(description="The JWS's payload, decoded.")


class ReceiptPage(BaseModel):
    items: list[ReceiptRead]
    next_cursor: str | None = None
