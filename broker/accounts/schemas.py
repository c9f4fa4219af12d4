import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from broker.auth.models import AccountKind, Role
from broker.departments.schemas import DirectoryImportResult
from catalog.departments.schemas import DepartmentCode

AccountName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$"),
    Field(description="Login or client id; letters, digits, _ . @ -"),
]
RoleList = Annotated[list[Role], Field(min_length=1, max_length=5)]


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: AccountName
    display_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ]
    kind: AccountKind
    department_code: DepartmentCode
    roles: RoleList


class AccountRolesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: RoleList


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    display_name: str
    kind: AccountKind
    department_code: str
    roles: list[Role]
    disabled: bool
    has_secret: bool
    version: int
    created_at: datetime
    updated_at: datetime


class AccountCreated(AccountRead):
    client_secret: str | None = Field(
        description="Shown once, for clients only; store it now, it cannot be read again."
    )


class ClientSecret(BaseModel):
    client_id: str
    client_secret: str = Field(description="Shown once; the previous secret stops working now.")


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name, not a secret
    expires_in: int
    scope: str


class AuthorizationServerMetadata(BaseModel):
    issuer: str
    token_endpoint: str
    jwks_uri: str
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    scopes_supported: list[str]
    response_types_supported: list[str]


class JsonWebKeySet(BaseModel):
    keys: list[dict[str, str]]


class AccountImportResult(DirectoryImportResult):
    new_clients: list[str] = Field(
        description="System accounts created (or that would be, in a dry run); each gets a "
        "client secret."
    )
    client_secrets: dict[str, str] = Field(
        description="The client secret of each system account created, by name: shown once, "
        "in this answer only, and never stored; store them now (a lost one is replaced with "
        "POST /v1/accounts/{name}/secret). Empty in a dry run."
    )
