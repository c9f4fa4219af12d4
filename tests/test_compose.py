"""No Docker engine runs here, so the compose file is checked for coherence instead of started."""

from pathlib import Path

import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent


def load() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_api_talks_to_the_postgres_service_it_waits_for() -> None:
    services = load()["services"]
    api, postgres = services["api"], services["postgres"]
    url = make_url(api["environment"]["BROKER_DATABASE_URL"])
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "postgres"
    assert url.username == postgres["environment"]["POSTGRES_USER"]
    assert url.password == postgres["environment"]["POSTGRES_PASSWORD"]
    assert url.database == postgres["environment"]["POSTGRES_DB"]
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_service_has_a_healthcheck_and_the_api_checks_readiness() -> None:
    services = load()["services"]
    for name, service in services.items():
        assert "test" in service["healthcheck"], name
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_api_migrates_before_serving_and_publishes_its_port() -> None:
    api = load()["services"]["api"]
    command = " ".join(api["command"])
    assert command.index("broker db upgrade") < command.index("broker serve")
    assert "0.0.0.0" in command
    published = {p.split(":")[-1] for p in api["ports"]}
    assert "8000" in published


def test_dockerfile_builds_what_compose_runs() -> None:
    services = load()["services"]
    assert services["api"]["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    for needed in ("alembic", "broker", "catalog", "pip install"):
        assert needed in dockerfile
    named_volumes = set(load().get("volumes", {}))
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith((".", "/")) or source in named_volumes
