"""Every mapped table, imported in one place so Alembic and the tests see the whole schema."""

from catalog.base import Base
from catalog.departments.models import Department

metadata = Base.metadata

__all__ = ["Department", "metadata"]
