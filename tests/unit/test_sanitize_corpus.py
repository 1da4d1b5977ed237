"""The sanitiser against the public XSS corpus.

Every vector is sanitised and the output is parsed the way a browser would
parse it inside the preview iframe; the checks below must hold for all of
them. The output is never compared with another sanitiser's output.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest
import tinycss2

# The html5lib parser that bleach ships: it parses as browsers do.
from bleach.html5lib_shim import HTMLParser

from webmail.sanitize import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_CSS_PROPERTIES,
    ALLOWED_TAGS,
    sanitize_html,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("FACTEUR_CORPUS", REPO_ROOT.parent / "shared" / "corpus"))
XSS = CORPUS / "xss"

FORBIDDEN_TAGS = frozenset(
    (
        "applet", "base", "button", "embed", "form", "frame", "frameset", "iframe", "input",
        "link", "math", "meta", "noscript", "object", "script", "select", "style", "svg",
        "template", "textarea",
    )
)  # fmt: skip
URL_ATTRIBUTES = frozenset(("href", "src", "background"))
CSS_FORBIDDEN = ("url(", "image-set", "expression", "@import", "var(", "\\", "/*", "javascript")
DATA_IMAGE_RE = re.compile(r"data:image/(png|jpeg|jpg|gif|webp);base64,[a-z0-9+/=]*")
CID_PREFIX = "/parts/"
CONTROL_AND_SPACE_RE = re.compile(r"[\x00-\x20\x7f-\xa0\s]+")


def cid_url(content_id: str) -> str:
    return CID_PREFIX + quote(content_id, safe="")


def normalise(value: str) -> str:
    """An attribute value without whitespace or control characters, lower-cased."""
    return CONTROL_AND_SPACE_RE.sub("", value).lower()


def parse_as_browser(fragment: str):
    document = HTMLParser(namespaceHTMLElements=False).parse(
        f"<!DOCTYPE html><html><head></head><body>{fragment}</body></html>"
    )
    return document.find("body")


def assert_safe_html(fragment: str, *, allow_remote: bool = False) -> None:
    """The security properties every sanitised fragment has."""
    body = parse_as_browser(fragment)
    for element in body.iter():
        tag = element.tag
        if not isinstance(tag, str):  # a comment
            raise AssertionError(f"comment survived: {fragment!r}")
        if element is body:
            continue
        assert "}" not in tag, f"foreign element {tag}"
        assert tag not in FORBIDDEN_TAGS, f"<{tag}> survived"
        assert tag in ALLOWED_TAGS, f"<{tag}> is not on the allowlist"
        allowed = ALLOWED_ATTRIBUTES.get(tag, frozenset()) | ALLOWED_ATTRIBUTES["*"]
        if tag == "a":
            allowed |= {"target", "rel"}
            assert element.get("target") == "_blank"
            assert element.get("rel") == "noopener noreferrer"
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"event handler {name}={value!r}"
            assert name in allowed, f"attribute {name} on <{tag}>"
            assert_safe_attribute(tag, name, value, allow_remote=allow_remote)


def assert_safe_attribute(tag: str, name: str, value: str, *, allow_remote: bool) -> None:
    flat = normalise(value)
    assert not flat.startswith(("javascript:", "vbscript:", "livescript:")), (name, value)
    if flat.startswith("data:"):
        assert tag == "img" and name == "src", (tag, name, value)
        assert DATA_IMAGE_RE.fullmatch(flat), value
    if name == "style":
        for needle in CSS_FORBIDDEN:
            assert needle not in flat, f"{needle!r} in style {value!r}"
        for node in tinycss2.parse_declaration_list(value, skip_whitespace=True):
            assert node.type == "declaration", value
            assert node.lower_name in ALLOWED_CSS_PROPERTIES, value
    if name in URL_ATTRIBUTES:
        if name == "href":
            assert flat.startswith(("http:", "https:", "mailto:")), value
        elif flat.startswith(("http:", "https:")):
            assert allow_remote, f"remote {name} {value!r}"
        else:
            assert flat.startswith((CID_PREFIX, "data:image/")), f"{name} {value!r}"
    elif name != "style":
        # Only the URL attributes above may hold a URL.
        assert "://" not in flat or name in ("title", "alt"), (name, value)


def assert_sanitises_safely(payload: str) -> None:
    for allow_remote in (False, True):
        result = sanitize_html(payload, cid_url=cid_url, allow_remote=allow_remote)
        assert_safe_html(result.html, allow_remote=allow_remote)
    once = sanitize_html(payload).html
    assert sanitize_html(once).html == once, "not idempotent"


def corpus_params(items, describe):
    if not XSS.is_dir():
        reason = f"XSS corpus not found at {XSS}; set FACTEUR_CORPUS to the corpus folder"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="corpus-missing")]
    return [pytest.param(item, id=describe(item)) for item in items()]


def vectors():
    return json.loads((XSS / "vectors.json").read_text(encoding="utf-8"))


def documents():
    files = sorted((XSS / "html").glob("*.html")) + sorted(
        path for path in (XSS / "h5sc-attachments").iterdir() if path.name != "SOURCES.md"
    )
    return [path for path in files if path.is_file()]


@pytest.mark.parametrize("vector", corpus_params(vectors, lambda v: v["id"]))
def test_vector(vector):
    payload = vector["payload"]
    if vector.get("context", "html") == "css-stylesheet":
        if "</style" not in payload.lower():
            # Style sheets are dropped whole: nothing of them may show as text.
            assert sanitize_html(f"<style>{payload}</style>").html == ""
        payload = f"<style>{payload}</style>"
    assert_sanitises_safely(payload)


@pytest.mark.parametrize("path", corpus_params(documents, lambda p: f"{p.parent.name}/{p.name}"))
def test_document(path):
    text = path.read_text(encoding="utf-8", errors="replace")
    assert_sanitises_safely(text)
    if path.suffix == ".css":
        assert_sanitises_safely(f"<style>{text}</style>")
        assert_sanitises_safely(f'<div style="{text}">x</div>')
