"""Every message of the public test corpus, through the parser.

Each must parse without reaching the parser's last-resort fallback, name its
attachments safely, give each of them back, and read the same whatever its
line endings.
"""

import mailbox
import os
import re
from pathlib import Path

import pytest

from webmail.mime import ParsedMessage, extract_part, parse_message
from webmail.mime import parse as mime_parse

CORPUS = Path(
    os.environ.get(
        "FACTEUR_CORPUS", Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    )
)

if not (CORPUS / "mime").is_dir() or not (CORPUS / "mbox").is_dir():
    pytest.skip(
        f"No test corpus at {CORPUS} (set FACTEUR_CORPUS to its folder).", allow_module_level=True
    )

UNSAFE_FILENAME = re.compile(r"[/\\\x00-\x1f\x7f-\x9f]")


def corpus_messages():
    for path in sorted((CORPUS / "mime").rglob("*.eml")):
        yield pytest.param(path, None, id=str(path.relative_to(CORPUS)))
    for path in sorted((CORPUS / "mbox").rglob("*.mbox")):
        for number, key in enumerate(mailbox.mbox(path, create=False).keys()):
            yield pytest.param(path, key, id=f"{path.relative_to(CORPUS)}#{number}")


def read(path: Path, key: str | None) -> bytes:
    if key is None:
        return path.read_bytes()
    return mailbox.mbox(path, create=False).get_bytes(key)


def summary(parsed: ParsedMessage) -> tuple:
    return (
        parsed.subject,
        parsed.text,
        parsed.html,
        [(part.part_id, part.filename) for part in parsed.attachments],
    )


def fail_on_fallback(problem: str) -> None:
    raise AssertionError("parse_message fell back on its last resort")


@pytest.mark.parametrize(("path", "key"), list(corpus_messages()))
def test_corpus_message(path, key, monkeypatch):
    raw = read(path, key)
    monkeypatch.setattr(mime_parse, "_unreadable", fail_on_fallback)

    parsed = parse_message(raw)

    for part in parsed.attachments:
        name = part.filename
        assert name and not name.startswith(".") and len(name.encode()) <= 255, name
        assert not UNSAFE_FILENAME.search(name), name
        content_type, filename, payload = extract_part(raw, part.part_id)
        assert (content_type, filename) == (part.content_type, part.filename)
        assert isinstance(payload, bytes)

    with_lf = parse_message(raw.replace(b"\r\n", b"\n"))
    with_crlf = parse_message(re.sub(rb"\r?\n", b"\r\n", raw))
    assert summary(with_lf) == summary(with_crlf)
