"""The deployment files are valid and describe what the README promises."""

import ipaddress
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import deployment

ROOT = Path(__file__).resolve().parents[2]


def compose(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (./scripts/bootstrap installs it)")
    env = {**os.environ, "FACTEUR_SECRET_KEY": "x", "FACTEUR_CREDENTIALS_KEYS": "y"}
    return subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_compose_file_is_valid():
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_has_the_production_services_and_the_demo_profile():
    services = set(compose("config", "--services").stdout.split())
    assert {"web", "worker", "beat", "postgres", "redis"} <= services
    assert "demo" in set(compose("--profile", "demo", "config", "--services").stdout.split())
    # The demo only runs when its profile is asked for.
    rendered = compose("--profile", "demo", "config").stdout
    demo_service = rendered.split("\n  demo:\n", 1)[1].split("\n  postgres:", 1)[0]
    assert "profiles:\n    - demo" in demo_service


def test_compose_refuses_to_run_without_the_keys():
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTEUR_")}
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "FACTEUR_SECRET_KEY" in result.stderr


def test_production_settings_refuse_to_start_without_keys():
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTEUR_")}
    env["DJANGO_SETTINGS_MODULE"] = "webmail.settings"
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "FACTEUR_SECRET_KEY must be set" in result.stderr


# Without a Docker daemon, docker-compose.yml and the Dockerfile are read as files.

APP_SERVICES = ("migrate", "web", "worker", "beat")


def services() -> dict:
    return deployment.compose()["services"]


def healthcheck_text(service: str) -> str:
    return " ".join(services()[service]["healthcheck"]["test"])


def test_compose_services_and_their_commands():
    assert set(services()) == {
        "proxy",
        "migrate",
        "web",
        "worker",
        "beat",
        "postgres",
        "redis",
        "demo",
    }
    assert deployment.compose_command("web") == [
        "gunicorn",
        "-c",
        "python:webmail.gunicorn_conf",
        "webmail.wsgi",
    ]
    assert deployment.compose_command("worker")[:4] == ["celery", "-A", "webmail", "worker"]
    assert deployment.compose_command("beat")[:4] == ["celery", "-A", "webmail", "beat"]
    assert deployment.compose_command("migrate") == ["python", "manage.py", "migrate", "--noinput"]
    for name in APP_SERVICES:
        service = services()[name]
        assert service["image"] == "facteur:latest"
        assert service["build"]["target"] == "app"
    # Replicas of the web service never race each other to migrate.
    for name in ("web", "worker", "beat"):
        condition = services()[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"


def test_compose_healthchecks():
    assert "http://127.0.0.1:8000/healthz" in healthcheck_text("web")
    assert "/readyz" in healthcheck_text("proxy")
    assert "celery -A webmail inspect ping" in healthcheck_text("worker")
    assert "pg_isready" in healthcheck_text("postgres")
    assert "redis-cli ping" in healthcheck_text("redis")


def test_only_the_proxy_publishes_ports_and_the_demo_only_on_loopback():
    published = {name for name, service in services().items() if service.get("ports")}
    assert published == {"proxy", "demo"}
    assert services()["proxy"]["ports"] == ["80:80", "443:443", "443:443/udp"]
    assert all(port.startswith("127.0.0.1:") for port in services()["demo"]["ports"])
    assert "expose" not in services()["web"]


def test_the_proxy_is_caddy_with_its_config_and_a_tls_choice():
    proxy = services()["proxy"]
    assert proxy["image"] == "caddy:2"
    assert "./deploy/caddy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert proxy["environment"]["FACTEUR_TLS"] == "${FACTEUR_TLS:-internal}"
    caddyfile = (ROOT / "deploy/caddy/Caddyfile").read_text()
    assert "tls {$FACTEUR_TLS:internal}" in caddyfile
    assert "{$FACTEUR_DOMAIN:localhost} {" in caddyfile
    assert re.search(r"^\s*dynamic a web 8000\b", caddyfile, re.MULTILINE)


def test_forwarded_headers_are_trusted_from_the_proxy_address_only():
    compose = deployment.compose()
    subnet = ipaddress.ip_network(compose["networks"]["facteur"]["ipam"]["config"][0]["subnet"])
    proxy_address = ipaddress.ip_address(services()["proxy"]["networks"]["facteur"]["ipv4_address"])
    assert proxy_address in subnet
    for name in APP_SERVICES:
        environment = services()[name]["environment"]
        assert environment["FACTEUR_TRUSTED_PROXIES"] == str(proxy_address)
        assert environment["FACTEUR_BEHIND_TLS_PROXY"] == "true"
        assert services()[name]["networks"] == ["facteur"]


def test_required_secrets_refuse_to_default():
    for name in APP_SERVICES:
        environment = services()[name]["environment"]
        for secret in ("FACTEUR_SECRET_KEY", "FACTEUR_CREDENTIALS_KEYS"):
            assert environment[secret] == f"${{{secret}:?set {secret}}}"


def test_the_image_runs_what_the_smoke_test_runs():
    """tests/integration/test_production.py runs these same commands."""
    assert ["pip", "install", "--no-cache-dir", "."] in deployment.dockerfile_run_commands()
    assert deployment.dockerfile_manage_command("collectstatic") == [
        "python",
        "manage.py",
        "collectstatic",
        "--noinput",
    ]
    assert deployment.dockerfile_cmd() == deployment.compose_command("web")
    # Built without debug, so collectstatic uses the manifest storage.
    app_stage = deployment.dockerfile_stages()["app"]
    assert not any("FACTEUR_DEBUG" in arguments for _, arguments in app_stage)


def test_the_demo_image_makes_its_own_secret_key_at_start():
    command = " ".join(deployment.dockerfile_cmd("demo"))
    assert "export FACTEUR_SECRET_KEY=" in command
    assert "secrets.token_urlsafe" in command


def test_gunicorn_config():
    from webmail import gunicorn_conf

    assert gunicorn_conf.worker_class == "gthread"
    assert gunicorn_conf.bind == "0.0.0.0:8000"
    assert gunicorn_conf.workers >= 1 and gunicorn_conf.threads > 1
    assert gunicorn_conf.timeout > 0
    assert gunicorn_conf.graceful_timeout > 0
    # The path without the query string (%(U)s), and neither the request line nor
    # the Referer, which carry it.
    assert "%(U)s" in gunicorn_conf.access_log_format
    for item in ("%(r)s", "%(q)s", "%(f)s"):
        assert item not in gunicorn_conf.access_log_format


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", "var/", ".venv/", ".git/", "test-artifacts/", "staticfiles/"} <= ignored
