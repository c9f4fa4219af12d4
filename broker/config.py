from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_DATABASE_URL = "sqlite+aiosqlite:///./broker.db"


class Settings(BaseSettings):
    """Everything configurable, read from `BROKER_*` environment variables.

    Built by the app factory and the CLI, never at import time, so tests construct their own.
    """

    model_config = SettingsConfigDict(env_prefix="BROKER_", extra="ignore")

    database_url: str = Field(
        default=EMBEDDED_DATABASE_URL,
        description="SQLAlchemy async URL; SQLite in the working directory by default.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest JSON request body accepted (bytes)."
    )
    max_import_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="Largest catalog sheet accepted (bytes)."
    )
    storage_root: str = Field(
        default="./releases",
        description="Where release files live: a directory, or an fsspec URL such as "
        "`s3://bucket/prefix` (needs the matching fsspec backend installed, e.g. s3fs).",
    )
    max_release_bytes: int = Field(
        default=2 * 1024 * 1024 * 1024, ge=1024, description="Largest release upload (bytes)."
    )
    max_release_rows: int = Field(
        default=5_000_000,
        ge=1,
        description="Most rows a release may hold once unpacked. Validation holds the release in "
        "memory: about 0.6 GB per million rows of the population register's width.",
    )
    heavy_work_slots: int = Field(
        default=2,
        ge=1,
        description="CPU-heavy jobs (parsing sheets, validating and writing releases, download "
        "extracts) one process runs at once; more wait their turn, so the event loop stays free.",
    )
    staging_sweep_interval_seconds: float = Field(
        default=300,
        gt=0,
        description="How often each process removes staging files that uploads or crashes left.",
    )
    staging_max_age_seconds: float = Field(
        default=3600,
        ge=60,
        description="A staging file not written for this long is abandoned and removed. Well "
        "above the longest validation, which reads its staged upload without writing it.",
    )
    database_echo: bool = Field(default=False, description="Log every SQL statement.")

    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where clients reach this API; used in discovery metadata.",
    )
    issuer: str = Field(
        default="http://127.0.0.1:8000",
        description="`iss` of the tokens this broker signs. Every replica must share it.",
    )
    audience: str = Field(default="data-resource-broker", description="`aud` tokens must carry.")
    token_ttl_seconds: int = Field(
        default=1800, ge=60, le=3600, description="Lifetime of issued access tokens (max 1 hour)."
    )
    jwt_leeway_seconds: int = Field(
        default=30, ge=0, le=300, description="Clock skew tolerated on exp/nbf/iat."
    )
    auth_max_failures: int = Field(
        default=5, ge=1, description="Wrong client secrets in a row before the client is slowed."
    )
    auth_max_lockout_seconds: int = Field(
        default=900, ge=1, description="Longest a client is refused after repeated failures."
    )
    auth_hash_concurrency: int = Field(
        default=4,
        ge=1,
        description="Client secrets hashed at once per process (scrypt: ~16 MiB and ~50 ms "
        "each, on worker threads off the event loop).",
    )

    reply_working_days: int = Field(
        default=10,
        ge=1,
        le=60,
        description="Working days an owner has to decide a line (国发〔2016〕51号 art. 14: 10).",
    )
    delivery_working_days: int = Field(
        default=5,
        ge=1,
        le=60,
        description="Working days an owner has, once a line is approved, to deliver a first "
        "accepted release its grant can download; then the delivery is overdue and goes to "
        "coordination.",
    )
    auto_approve_max_sensitivity: str = Field(
        default="L2",
        pattern=r"^L[1-4]$",
        description="Unconditional lines with a platform copy up to this sensitivity are approved "
        "on submit.",
    )

    external_issuer: str | None = Field(
        default=None, description="`iss` of an external OIDC provider (e.g. a Keycloak realm)."
    )
    external_jwks_url: str | None = Field(default=None, description="JWKS URL of that provider.")
    external_audience: str | None = Field(
        default=None, description="`aud` required on external tokens (defaults to `audience`)."
    )
    external_department_claim: str = Field(
        default="dept", description="Dotted path of the claim holding the department code."
    )
    external_roles_claim: str = Field(
        default="realm_access.roles",
        description="Dotted path of the claim holding the roles (Keycloak: realm_access.roles).",
    )
    external_jwks_cache_seconds: int = Field(
        default=300, ge=1, description="How long a fetched JWKS is trusted."
    )
    external_jwks_min_refetch_seconds: float = Field(
        default=10, ge=0, description="Least time between refetches triggered by an unknown kid."
    )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def external_enabled(self) -> bool:
        return bool(self.external_issuer and self.external_jwks_url)

    @property
    def is_embedded_default(self) -> bool:
        return self.is_sqlite
