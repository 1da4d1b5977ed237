"""The deployment files are valid and describe what the README promises."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
