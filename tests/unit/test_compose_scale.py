"""docker-compose.scale.yml runs two web and two worker replicas on docker-compose.yml unchanged.

Read as Compose reads them (the override merged over the base file), without a
Docker daemon: the replicas, one beat, nothing that two replicas of one service
cannot share (a container name, a fixed host port), and the uploads kept where
every web replica and worker finds them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "docker-compose.yml"
SCALE = ROOT / "docker-compose.scale.yml"


def merged(base: dict, override: dict) -> dict:
    """Compose's merge of mappings: the override's keys over the base's, recursively."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def interpolated(value: str) -> str:
    """A ``${NAME:-default}`` value as it is when the operator set nothing."""
    return re.sub(r"\$\{\w+(?::?[-?]([^}]*))?\}", lambda m: m.group(1) or "", value)


@pytest.fixture(scope="module")
def config() -> dict:
    return merged(yaml.safe_load(BASE.read_text()), yaml.safe_load(SCALE.read_text()))


def replicas(service: dict) -> int:
    return service.get("deploy", {}).get("replicas", 1)


def test_the_override_only_scales():
    override = yaml.safe_load(SCALE.read_text())
    assert set(override) == {"services"}
    for name, service in override["services"].items():
        assert set(service) == {"deploy"}, name
        assert set(service["deploy"]) == {"replicas"}, name


def test_two_web_and_two_worker_replicas_and_one_beat(config):
    services = config["services"]
    assert replicas(services["web"]) == 2
    assert replicas(services["worker"]) == 2
    assert replicas(services["beat"]) == 1
    assert {"postgres", "redis"} <= set(services)


def test_no_service_has_a_fixed_container_name(config):
    assert [name for name, s in config["services"].items() if "container_name" in s] == []


def test_replicated_services_publish_no_port_of_their_own(config):
    services = config["services"]
    if "proxy" not in services:
        pytest.skip("docker-compose.yml has no proxy in front of web yet: web publishes its port")
    for name, service in services.items():
        if replicas(service) > 1:
            assert not service.get("ports"), f"{name} publishes a port its replicas would share"


def uploads_folder(service: dict) -> str:
    environment = {k: interpolated(str(v)) for k, v in service["environment"].items()}
    if environment.get("FACTEUR_UPLOADS_DIR"):
        return environment["FACTEUR_UPLOADS_DIR"]
    data_dir = environment.get("FACTEUR_DATA_DIR") or re.search(
        r"FACTEUR_DATA_DIR=(\S+)", (ROOT / "Dockerfile").read_text()
    ).group(1)
    return f"{data_dir.rstrip('/')}/uploads"


def test_every_web_replica_and_worker_shares_the_uploads(config):
    services = config["services"]
    assert replicas(services["web"]) > 1
    sharing = ("web", "worker")
    storage = {interpolated(services[n]["environment"]["FACTEUR_STORAGE"]) for n in sharing}
    if storage == {"s3"}:
        return
    assert storage == {"filesystem"}
    mounts = set()
    folders = {uploads_folder(services[name]) for name in sharing}
    for name in sharing:
        folder = uploads_folder(services[name])
        (source,) = [
            volume.split(":")[0]
            for volume in services[name].get("volumes", [])
            if volume.split(":")[1] == folder
        ]
        mounts.add(source)
    (volume,) = mounts
    assert volume in config["volumes"], "the uploads are not on a named volume"
    # The image makes the folder, owned by its user, so that a new volume is writable.
    (folder,) = folders
    assert f"mkdir -p {folder}" in (ROOT / "Dockerfile").read_text()


def test_interpolation_takes_the_defaults():
    assert interpolated("${FACTEUR_STORAGE:-filesystem}") == "filesystem"
    assert interpolated("${FACTEUR_S3_BUCKET:-}") == ""
    assert interpolated("redis://redis:6379/0") == "redis://redis:6379/0"
