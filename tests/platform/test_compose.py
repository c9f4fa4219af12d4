"""No Docker engine runs here, so the compose file is checked for coherence instead of started.

The topology it must describe (DESIGN §7): PostgreSQL, migrations run once, then two stateless
API replicas on the same database, issuer and release store.
"""

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
STORAGE_ROOT = "/var/lib/broker/releases"


def load() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def command(service: dict[str, Any]) -> str:
    value = service.get("command", "")
    return " ".join(value) if isinstance(value, list) else str(value)


def replicas(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if "broker serve" in command(s)}


def test_two_replicas_serve_one_postgres_database_under_one_issuer() -> None:
    services = load()["services"]
    postgres = services["postgres"]
    serving = replicas(services)
    assert sorted(serving) == ["api-1", "api-2"]
    urls = {s["environment"]["BROKER_DATABASE_URL"] for s in serving.values()}
    assert len(urls) == 1
    url = make_url(urls.pop())
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "postgres"
    assert url.username == postgres["environment"]["POSTGRES_USER"]
    assert url.password == postgres["environment"]["POSTGRES_PASSWORD"]
    assert url.database == postgres["environment"]["POSTGRES_DB"]
    issuers = {s["environment"].get("BROKER_ISSUER") for s in serving.values()}
    assert len(issuers) == 1
    assert None not in issuers
    for name, service in serving.items():
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name


def test_replicas_publish_different_host_ports_to_the_port_they_serve() -> None:
    serving = replicas(load()["services"])
    host_ports = []
    for name, service in serving.items():
        served = command(service).split("--port")[1].split()[0]
        (mapping,) = service["ports"]
        host, container = mapping.rsplit(":", 1)
        assert container == served, name
        assert "0.0.0.0" in command(service), name
        host_ports.append(host)
    assert len(set(host_ports)) == len(serving)


def test_replicas_keep_releases_on_one_shared_volume_at_the_storage_root() -> None:
    compose = load()
    named_volumes = set(compose.get("volumes", {}))
    sources = set()
    for name, service in replicas(compose["services"]).items():
        assert service["environment"]["BROKER_STORAGE_ROOT"] == STORAGE_ROOT, name
        mounted = {
            volume.split(":")[1]: volume.split(":")[0] for volume in service.get("volumes", [])
        }
        assert STORAGE_ROOT in mounted, name
        sources.add(mounted[STORAGE_ROOT])
    assert len(sources) == 1
    assert sources <= named_volumes


def test_migrations_run_once_before_either_replica_serves() -> None:
    services = load()["services"]
    migrating = [name for name, s in services.items() if "broker db upgrade" in command(s)]
    assert migrating == ["migrate"]
    migrate = services["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    serving = replicas(services)
    for name, service in serving.items():
        assert "db upgrade" not in command(service), name
        condition = service["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
        assert (
            service["environment"]["BROKER_DATABASE_URL"]
            == migrate["environment"]["BROKER_DATABASE_URL"]
        ), name
        assert service["build"] == migrate["build"], name


def test_long_running_services_have_healthchecks_and_replicas_check_readiness() -> None:
    services = load()["services"]
    for name, service in services.items():
        if name == "migrate":
            # One-shot: the image's /readyz probe must not run against a job that never serves.
            assert service["healthcheck"] == {"disable": True}
            continue
        assert "test" in service["healthcheck"], name
    for name, service in replicas(services).items():
        assert "/readyz" in " ".join(service["healthcheck"]["test"]), name


def test_dockerfile_builds_what_compose_runs_and_does_not_migrate_by_itself() -> None:
    compose = load()
    services = compose["services"]
    for name in ("migrate", *replicas(services)):
        assert services[name]["build"] == ".", name
    dockerfile = (ROOT / "Dockerfile").read_text()
    for needed in ("COPY broker", "COPY catalog", "pip wheel", "pip install"):
        assert needed in dockerfile
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD"))
    assert "broker" in cmd
    assert "serve" in cmd
    assert "upgrade" not in cmd
    named_volumes = set(compose.get("volumes", {}))
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith((".", "/")) or source in named_volumes


def final_stage(dockerfile: str) -> list[str]:
    """The instructions of the image that runs: those after the last FROM, continuations joined."""
    joined = dockerfile.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[last_from:]


def test_the_image_installs_the_built_wheel_and_serves_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.upper().count("FROM ") >= 2, "build the wheel in its own stage"
    stage = final_stage(dockerfile)
    installs = [line for line in stage if line.startswith("RUN") and "pip install" in line]
    assert installs, "the final stage installs the package"
    for line in installs:
        assert ".whl" in line, line
        assert " -e " not in f"{line} ", line
        assert "--editable" not in line, line
    for line in stage:
        if line.startswith("COPY"):
            assert "--from=" in line, f"the final stage takes only the built wheel: {line}"
    users = [line.split()[1] for line in stage if line.startswith("USER ")]
    assert users, "the final stage names a USER"
    assert users[-1].split(":")[0] not in ("root", "0"), users
    cmd = next(i for i, line in enumerate(stage) if line.startswith("CMD"))
    assert max(i for i, line in enumerate(stage) if line.startswith("USER ")) < cmd
    assert any(STORAGE_ROOT in line and "chown" in line for line in stage), (
        "the release store's mount point belongs to that user, so a fresh volume is writable"
    )
