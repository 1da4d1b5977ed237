"""What docker-compose.yml and the Dockerfile run, read from the files themselves,
so that the tests run exactly that."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
CADDYFILE = ROOT / "deploy/caddy/Caddyfile"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_command(service: str) -> list[str]:
    command = compose()["services"][service]["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Each build stage's instructions, as (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            current = stages.setdefault(arguments.split()[-1], [])
        current.append((instruction, " ".join(arguments.split())))
    return stages


def dockerfile_cmd(stage: str = "app") -> list[str]:
    commands = [args for instruction, args in dockerfile_stages()[stage] if instruction == "CMD"]
    return json.loads(commands[-1])


def dockerfile_run_commands(stage: str = "app") -> list[list[str]]:
    """Every shell command of the stage's RUN lines, split on `&&`, as argument lists."""
    commands = []
    for instruction, arguments in dockerfile_stages()[stage]:
        if instruction == "RUN":
            commands += [shlex.split(part) for part in arguments.split("&&")]
    return commands


def dockerfile_manage_command(name: str, stage: str = "app") -> list[str]:
    """The `python manage.py <name> ...` a RUN line of the stage runs, without its
    leading VAR=value assignments."""
    for command in dockerfile_run_commands(stage):
        words = [word for word in command if not re.fullmatch(r"[A-Z_]+=.*", word)]
        if words[:3] == ["python", "manage.py", name]:
            return words
    raise LookupError(f"The Dockerfile's {stage} stage does not run manage.py {name}")
