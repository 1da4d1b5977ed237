"""What opening a hostile message costs, beside an ordinary message of the same size.

Builds one message of about 2 MB per attack on the content-processing code
(and an ordinary 2 MB message to compare with), delivers them all to a private
LocalMailServer, and opens each through Facteur as a person would: the message
page, then its body frame and the frame's inline images, through Django's test
client, with an empty cache each time. Prints the median seconds of
``--repeat`` opens of each, and its ratio to the ordinary message; the aim is
every one within 10x.

Run as root (the mail server needs it): ``.venv/bin/python bench/adversarial_open.py``.
``--in-process`` skips the mail server and times parsing and sanitising alone.
"""

from __future__ import annotations

import argparse
import base64
import logging
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from html import unescape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZE = 2 * 1024 * 1024
_FRAME_RE = re.compile(r'<iframe[^>]*src="([^"]+)"')
_IMAGE_RE = re.compile(r'<img[^>]*src="(/inline/[^"]+)"')
DOMAIN = "adversarial.test"

_WORDS = ("the", "report", "for", "meeting", "is", "attached", "please", "review",
          "budget", "before", "friday", "merci", "pour", "votre", "retour", "nous",
          "avons", "besoin", "du", "document", "avant", "la", "réunion", "de", "lundi")  # fmt: skip


def _prose(rng: random.Random, size: int) -> str:
    """Ordinary sentences, about ``size`` characters, in lines of about 72."""
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(_WORDS) for _ in range(12)).capitalize() + "."
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


def _headers(subject: str) -> list[tuple[str, str]]:
    return [
        ("From", f"Mallory <mallory@{DOMAIN}>"),
        ("To", f"victim@{DOMAIN}"),
        ("Subject", subject),
        ("Date", format_datetime(datetime.now(UTC))),
        ("Message-ID", make_msgid(domain=DOMAIN)),
        ("MIME-Version", "1.0"),
    ]


def _raw(headers: list[tuple[str, str]], body: str, content_type: str) -> bytes:
    """A message written by hand, so that nothing refolds or re-encodes what it holds."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (
        f"{head}Content-Type: {content_type}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    ).encode()


def _multipart(headers: list[tuple[str, str]], kind: str, parts: list[bytes]) -> bytes:
    boundary = "=_adversarial_boundary"
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return (
        f'{head}Content-Type: multipart/{kind}; boundary="{boundary}"\r\n\r\n'.encode()
        + body
        + b"--"
        + boundary.encode()
        + b"--\r\n"
    )


def _part(content_type: str, body: str | bytes, *extra: str, encoding: str = "8bit") -> bytes:
    head = "".join(f"{line}\r\n" for line in extra)
    if isinstance(body, bytes):
        body = base64.encodebytes(body).decode().replace("\n", "\r\n")
        encoding = "base64"
    return (
        f"Content-Type: {content_type}\r\n{head}Content-Transfer-Encoding: {encoding}\r\n\r\n{body}"
    ).encode()


def _fill(unit: str, size: int = SIZE) -> str:
    return unit * (size // len(unit))


def ordinary(rng: random.Random) -> bytes:
    """A long newsletter: HTML with tables and styles, its text version, a PDF."""
    paragraphs, total = [], 0
    while total < 900_000:
        text = _prose(rng, 400).replace("\n", " ")
        paragraphs.append(
            '<tr><td style="padding: 8px; color: #333; font-family: Arial, sans-serif">'
            f'<p style="margin: 0 0 8px 0">{text} <a href="https://example.com/a?b=1">more</a>'
            "</p></td></tr>\n"
        )
        total += len(paragraphs[-1])
    html = f'<html><body><table width="600">{"".join(paragraphs)}</table></body></html>'
    return _multipart(
        _headers("Ordinary newsletter"),
        "mixed",
        [
            _multipart(
                [],
                "alternative",
                [_part("text/plain; charset=utf-8", _prose(rng, 500_000)),
                 _part("text/html; charset=utf-8", html)],
            ),
            _part(
                "application/pdf",
                rng.randbytes(400_000),
                'Content-Disposition: attachment; filename="report.pdf"',
            ),
        ],
    )  # fmt: skip


def data_url_blanks(rng: random.Random) -> bytes:
    unit = f'<img src="data:image/png;base64,AAAA{" " * 32_000}!">\n'
    return _raw(_headers("data: URL blanks"), _fill(unit), "text/html; charset=utf-8")


def closing_brackets(rng: random.Random) -> bytes:
    body = "See http://example.com/x" + ")" * (SIZE // 2) + ".)" * (SIZE // 4)
    return _raw(_headers("Closing brackets"), body, "text/plain; charset=utf-8")


def deep_html_nesting(rng: random.Random) -> bytes:
    depth = SIZE // 16
    body = "<div><b>" * depth + "x" + "</b></div>" * depth
    return _raw(_headers("Deep nesting"), body[:SIZE], "text/html; charset=utf-8")


def deep_mime_nesting(rng: random.Random) -> bytes:
    depth = 5_000
    head = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
    )
    tail = "".join(f"\r\n--b{i}--" for i in reversed(range(depth)))
    body = "Content-Type: text/plain\r\n\r\n" + _fill("inner text\r\n", SIZE - len(head) * 2)
    raw = "".join(f"{n}: {v}\r\n" for n, v in _headers("Deep MIME nesting")) + head + body + tail
    return raw.encode()


def single_line_html(rng: random.Random) -> bytes:
    unit = '<p style="color: red"><span>word</span> <a href="https://example.com/">link</a></p>'
    return _raw(_headers("One-line HTML"), _fill(unit), "text/html; charset=utf-8")


def big_inline_part(rng: random.Random) -> bytes:
    """The shape found in a browser: a 5 MB inline image and 1.2 MB of HTML on one line."""
    unit = '<div><img src="cid:big@x"><span style="font-weight: bold">text</span></div>'
    html = _fill(unit, 1_200_000)
    png = b"\x89PNG\r\n\x1a\n" + rng.randbytes(5 * 1024 * 1024)
    return _multipart(
        _headers("Big inline part"),
        "related",
        [
            _part("text/html; charset=utf-8", html),
            _part("image/png", png, "Content-ID: <big@x>", "Content-Disposition: inline"),
        ],
    )


def rfc2231_names(rng: random.Random) -> bytes:
    continuations = "".join(f"; filename*{i}*=utf-8''%41%5C%22{'b' * 20}" for i in range(50))
    quoted = 'name="' + '\\"\\\\x' * 2_500 + '"'
    parts = [_part("text/plain", "See the attachments.")]
    while sum(map(len, parts)) < SIZE:
        parts.append(
            _part(
                f"application/octet-stream; {quoted}",
                b"data",
                f"Content-Disposition: attachment{continuations}",
            )
        )
    return _multipart(_headers("RFC 2231 names"), "mixed", parts[:400])


def long_header_folding(rng: random.Random) -> bytes:
    folded = "\r\n ".join(["word"] * (SIZE // 14))
    addresses = ",\r\n ".join(f'"Name {i}" <p{i}@{DOMAIN}>' for i in range(SIZE // 60))
    headers = [*_headers(folded), ("Cc", addresses)]
    return _raw(headers, "Short body.", "text/plain")


def many_references(rng: random.Random) -> bytes:
    ids = " ".join(f"<{i}.{rng.random()}@{DOMAIN}>" for i in range(SIZE // 40))
    headers = [*_headers("Many references"), ("References", ids), ("In-Reply-To", ids[:500_000])]
    return _raw(headers, "Short body.", "text/plain")


def css_bombs(rng: random.Random) -> bytes:
    nested = "rgb(" * 2_000 + ")" * 2_000
    declarations = "; ".join(f"color: rgb({i % 255}, 0, 0)" for i in range(2_000))
    units = [
        f'<p style="color: {nested}">a</p>',
        f'<p style="{declarations}">b</p>',
        '<p style="/*' + "*" * 20_000 + '">c</p>',
        '<p style="font-family: ' + "\\75 " * 5_000 + '">d</p>',
        '<p style="' + "a:b;" * 5_000 + '">e</p>',
    ]
    body = "".join(units) * (SIZE // sum(map(len, units)) + 1)
    return _raw(_headers("CSS bombs"), body[:SIZE], "text/html; charset=utf-8")


def many_parts(rng: random.Random) -> bytes:
    parts = [
        _part("text/plain", f"part {i}", f'Content-Disposition: attachment; filename="f{i}.txt"')
        for i in range(SIZE // 120)
    ]
    return _multipart(_headers("Many parts"), "mixed", parts)


def many_attributes(rng: random.Random) -> bytes:
    unit = "<p " + " ".join(f'a{i}="v"' for i in range(5_000)) + ">x</p>"
    return _raw(_headers("Many attributes"), _fill(unit), "text/html; charset=utf-8")


def unclosed_markup(rng: random.Random) -> bytes:
    body = "<!--" + "<a href='" * (SIZE // 20) + "<table><tr><td>x" * (SIZE // 40)
    return _raw(_headers("Unclosed markup"), body[:SIZE], "text/html; charset=utf-8")


def table_foster(rng: random.Random) -> bytes:
    body = "<table>" + "<tr>text<td>x</td>more" * (SIZE // 24) + "</table>"
    return _raw(_headers("Misplaced table text"), body, "text/html; charset=utf-8")


def text_addresses(rng: random.Random) -> bytes:
    lines = ["a." * 500 + "@", "x@" * 500, "www." * 500, "mailto:" + "a" * 900]
    body = "\n".join(lines * (SIZE // sum(map(len, lines))))
    return _raw(_headers("Address-like text"), body, "text/plain; charset=utf-8")


def quote_markers(rng: random.Random) -> bytes:
    body = "\n".join(["> " * 5_000 + "text", ">" * 10_000, "> > >x"] * 80)
    return _raw(_headers("Quote markers"), body, "text/plain; charset=utf-8")


def encoded_words(rng: random.Random) -> bytes:
    word = "=?utf-8?q?caf=C3=A9?= "
    subject = "\r\n ".join([word * 10] * (SIZE // (len(word) * 10 + 3)))
    return _raw(_headers(subject), "Body.", "text/plain")


def character_references(rng: random.Random) -> bytes:
    unit = "&#x" + "0" * 5_000 + "41;" + "&#" + "0" * 5_000 + "65;" + "&amp" * 1_000
    body = f'<p title="{unit}">{unit}</p>'
    return _raw(_headers("Character references"), _fill(body), "text/html; charset=utf-8")


ATTACKS: dict[str, Callable[[random.Random], bytes]] = {
    "ordinary": ordinary,
    "data: URL blanks": data_url_blanks,
    "closing brackets": closing_brackets,
    "deep HTML nesting": deep_html_nesting,
    "deep MIME nesting": deep_mime_nesting,
    "one-line HTML": single_line_html,
    "5 MB inline part": big_inline_part,
    "RFC 2231 names": rfc2231_names,
    "long header folding": long_header_folding,
    "many References": many_references,
    "CSS bombs": css_bombs,
    "many parts": many_parts,
    "many attributes": many_attributes,
    "unclosed markup": unclosed_markup,
    "misplaced table text": table_foster,
    "address-like text": text_addresses,
    "quote markers": quote_markers,
    "encoded words": encoded_words,
    "character references": character_references,
}


def build() -> dict[str, bytes]:
    return {name: make(random.Random(name)) for name, make in ATTACKS.items()}


def open_in_process(raw: bytes) -> None:
    """Parsing and sanitising as the message page does, without IMAP or HTTP."""
    from webmail.mime import parse_message
    from webmail.reading import parse_limits, safe_body
    from webmail.sanitize import plain_text_to_html

    message = parse_message(raw, limits=parse_limits())
    if message.html is not None:
        safe_body(message, cid_url=lambda cid: f"/inline/{cid}", allow_remote=False)
    elif message.text:
        plain_text_to_html(message.text)


def _seconds(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _opener(server, messages: dict[str, bytes]) -> Callable[[str], Callable[[], None]]:
    """Delivers every message to one new person, and opens one by its name as they would."""
    from django.core.cache import cache
    from django.test import Client
    from django.urls import reverse

    from bench.seed import seeded_account
    from webmail.mailstore import for_account

    account, _seconds = seeded_account(server, "adversary", 1)
    for raw in messages.values():
        server.deliver(account.email, raw)
    browser = Client(HTTP_HOST="localhost")
    browser.force_login(account.user)
    anonymous = Client(HTTP_HOST="localhost")
    # Delivered in order, after the one seeded message: their UIDs follow.
    page = for_account(account).page("INBOX", 1, per_page=len(messages) + 1)
    delivered = sorted(item.uid for item in page.items)[1:]
    assert len(delivered) == len(messages), "a message was not delivered"
    uids = dict(zip(messages, delivered, strict=True))

    def open_message(name: str) -> Callable[[], None]:
        def run() -> None:
            cache.clear()
            url = reverse("webmail:message", args=[account.pk, uids[name]]) + "?folder=INBOX"
            response = browser.get(url)
            assert response.status_code == 200, (name, response.status_code)
            frame = _FRAME_RE.search(response.content.decode())
            if frame:
                body = browser.get(unescape(frame.group(1)))
                assert body.status_code == 200, name
                # The frame's own images, as the browser asks for them: each URL once,
                # without cookies.
                for image in dict.fromkeys(_IMAGE_RE.findall(body.content.decode())):
                    assert anonymous.get(unescape(image)).status_code == 200, name

        return run

    return open_message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="opens per median")
    parser.add_argument("--in-process", action="store_true", help="no mail server, no HTTP")
    parser.add_argument("--only", default="", help="comma-separated attack names")
    args = parser.parse_args()

    import bench.environment  # noqa: F401  (sets Django up first)

    # A plain kill stops the mail server too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    logging.getLogger("webmail.mailstore.pool").setLevel(logging.WARNING)
    messages = build()
    if args.only:
        wanted = {"ordinary", *args.only.split(",")}
        messages = {name: raw for name, raw in messages.items() if name in wanted}
    root = None
    server = None
    if args.in_process:
        open_message = lambda name: lambda: open_in_process(messages[name])  # noqa: E731
    else:
        from django.core.management import call_command

        from webmail.localmail import LocalMailServer

        LocalMailServer.ensure_installed()
        call_command("migrate", verbosity=0)
        root = Path(tempfile.mkdtemp(prefix="facteur-bench-"))
        server = LocalMailServer(root)
        server.start()
    try:
        if server is not None:
            open_message = _opener(server, messages)
        print(f"{args.repeat} opens per median, empty cache each time.\n")
        print(f"{'message':<22} {'size':>9} {'seconds':>8} {'ratio':>7}")
        print("-" * 49)
        # In turns, so that a busy machine slows every message alike.
        timings: dict[str, list[float]] = {name: [] for name in messages}
        for _ in range(args.repeat):
            for name in messages:
                timings[name].append(_seconds(open_message(name)))
        base = statistics.median(timings["ordinary"])
        worst = 0.0
        for name, raw in messages.items():
            seconds = statistics.median(timings[name])
            worst = max(worst, seconds / base)
            print(f"{name:<22} {len(raw) / 1e6:>7.2f}MB {seconds:>8.3f} {seconds / base:>6.1f}x")
        print(f"\nThe costliest is {worst:.1f}x the ordinary message (the aim: at most 10x).")
    finally:
        if server is not None:
            server.stop()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
