from pydantic import BaseModel, Field


class DirectoryImportResult(BaseModel):
    """What a department or account list changed, or would change in a dry run."""

    dry_run: bool
    rows: int = Field(description="Rows read (blank rows, title rows and footer notes excluded).")
    created: list[str] = Field(description="Codes (departments) or names (accounts) created.")
    updated: dict[str, list[str]] = Field(description="Each one updated, and the fields changed.")
    unchanged: list[str]
    warnings: list[str] = Field(
        description="What was skipped or ignored: title rows, footer notes, unknown columns, "
        "disabled accounts."
    )
