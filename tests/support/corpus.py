"""Where the shared public test corpus lies, and its messages."""

from __future__ import annotations

import mailbox
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path:
    return Path(os.environ.get("FACTEUR_CORPUS") or ROOT.parent / "shared" / "corpus")


def require_corpus(*parts: str) -> Path:
    """The corpus path, or a skip that says where it was looked for."""
    path = corpus_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"test corpus not found at {path} (set FACTEUR_CORPUS to its folder)")
    return path


def corpus_messages() -> list[tuple[str, bytes]]:
    """Every message of the corpus: each .eml, and each message of each mbox."""
    base = corpus_dir()
    found: list[tuple[str, bytes]] = []
    for path in sorted((base / "mime").rglob("*.eml")):
        found.append((str(path.relative_to(base)), path.read_bytes()))
    for path in sorted((base / "mbox").rglob("*.mbox")):
        for index, item in enumerate(mailbox.mbox(path, create=False)):
            found.append((f"{path.relative_to(base)}#{index}", item.as_bytes()))
    return found
