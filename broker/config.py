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
    database_echo: bool = Field(default=False, description="Log every SQL statement.")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_embedded_default(self) -> bool:
        return self.is_sqlite
