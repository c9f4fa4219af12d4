"""Every mapped table, imported in one place so Alembic and the tests see the whole schema."""

from broker.audit.models import AuditEvent
from broker.auth.models import Account, SigningKey
from broker.delivery.models import Receipt, Release
from broker.grants.models import Grant
from broker.kit.idempotency import IdempotencyRecord
from broker.requests.models import Decision, Request, RequestLine
from broker.scenarios.models import Scenario, ScenarioMember
from catalog.datasets.models import DataItem, Dataset
from catalog.departments.models import Department
from core.models import Base

metadata = Base.metadata

__all__ = [
    "Account",
    "AuditEvent",
    "DataItem",
    "Dataset",
    "Decision",
    "Department",
    "Grant",
    "IdempotencyRecord",
    "Receipt",
    "Release",
    "Request",
    "RequestLine",
    "Scenario",
    "ScenarioMember",
    "SigningKey",
    "metadata",
]
