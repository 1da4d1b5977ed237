"""The French catalog: complete, well formed, compiled, and used by the screens."""

from __future__ import annotations

import ast
import os
import re
import shutil
import struct
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from tests.support.accounts import unreachable_account
from webmail.mailstore.base import Folder
from webmail.templatetags.mail import folder_label

CATALOG_DIR = Path(settings.LOCALE_PATHS[0]) / "fr" / "LC_MESSAGES"
PO_FILE = CATALOG_DIR / "django.po"
#: The server's catalog and the one the pages' scripts get from JavaScriptCatalog.
DOMAINS = ("django", "djangojs")

needs_msgfmt = pytest.mark.skipif(
    shutil.which("msgfmt") is None, reason="msgfmt (GNU gettext) is not installed"
)


# -- Reading the catalog ---------------------------------------------------


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    @property
    def translations(self) -> list[str]:
        return [self.msgstr[index] for index in sorted(self.msgstr)]


def read_po(path: Path) -> list[Entry]:
    """The entries of a .po file, header and obsolete entries left out."""
    entries: list[Entry] = []
    entry = Entry()
    target: tuple[str, int] | None = None

    def finish() -> None:
        nonlocal entry, target
        if entry.msgid or entry.msgstr:
            entries.append(entry)
        entry, target = Entry(), None

    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#~"):
            continue
        if line.startswith("#,"):
            if entry.msgstr:
                finish()
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            if entry.msgstr:
                finish()
        elif line.startswith('"'):
            assert target is not None, line
            value = ast.literal_eval(line)
            name, index = target
            if name == "msgstr":
                entry.msgstr[index] += value
            else:
                setattr(entry, name, (getattr(entry, name) or "") + value)
        else:
            keyword, _, value = line.partition(" ")
            if keyword in ("msgctxt", "msgid") and entry.msgstr:
                finish()
            text = ast.literal_eval(value)
            if keyword.startswith("msgstr"):
                index = int(keyword[7:-1]) if "[" in keyword else 0
                entry.msgstr[index] = text
                target = ("msgstr", index)
            else:
                setattr(entry, keyword, text)
                target = (keyword, 0)
    finish()
    return [e for e in entries if e.msgid]


def read_mo(path: Path) -> dict[bytes, bytes]:
    """A compiled catalog as {msgid: msgstr}, contexts and plurals as gettext stores them."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic == 0x950412DE else ">"
    _revision, count, ids_at, strs_at = struct.unpack(order + "4I", data[4:20])

    def string(table: int, index: int) -> bytes:
        length, offset = struct.unpack(
            order + "2I", data[table + 8 * index : table + 8 * index + 8]
        )
        return data[offset : offset + length]

    return {string(ids_at, i): string(strs_at, i) for i in range(count)}


def without_dates(catalog: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """The catalog with the header's dates left out: they change on every extraction."""
    header = b"\n".join(
        line
        for line in catalog.get(b"", b"").split(b"\n")
        if not line.startswith((b"POT-Creation-Date:", b"PO-Revision-Date:"))
    )
    return {**catalog, b"": header}


@pytest.fixture(scope="module", params=DOMAINS)
def domain(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def entries(domain: str) -> list[Entry]:
    return read_po(CATALOG_DIR / f"{domain}.po")


# -- The catalog itself ----------------------------------------------------


def test_catalog_is_read() -> None:
    entries = read_po(PO_FILE)
    inbox = [e for e in entries if e.msgctxt == "folder" and e.msgid == "Inbox"]
    assert len(inbox) == 1
    assert len(entries) > 100
    assert read_po(CATALOG_DIR / "djangojs.po")


def test_every_entry_is_translated(entries: list[Entry]) -> None:
    untranslated = [e.msgid for e in entries if not all(e.translations)]
    assert untranslated == []


def test_no_entry_is_fuzzy(entries: list[Entry]) -> None:
    assert [e.msgid for e in entries if "fuzzy" in e.flags] == []


def test_plurals_have_both_forms(entries: list[Entry]) -> None:
    plurals = [e for e in entries if e.msgid_plural is not None]
    for entry in plurals:
        assert sorted(entry.msgstr) == [0, 1], entry.msgid


PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]")
TAG = re.compile(r"<[^>]+>")


@pytest.mark.parametrize("pattern", [PLACEHOLDER, TAG], ids=["placeholders", "html"])
def test_translations_keep_placeholders_and_markup(
    entries: list[Entry], pattern: re.Pattern[str]
) -> None:
    wrong = []
    for entry in entries:
        sources = [entry.msgid, entry.msgid_plural or entry.msgid]
        for index, translated in enumerate(entry.translations):
            source = sources[min(index, 1)]
            if Counter(pattern.findall(source)) != Counter(pattern.findall(translated)):
                wrong.append((entry.msgid, translated))
    assert wrong == []


def test_french_typography_is_consistent(entries: list[Entry]) -> None:
    """Straight apostrophes, « » quotes, U+00A0 before : ; ! ? and inside « »."""
    wrong = [
        translated
        for entry in entries
        for translated in entry.translations
        if re.search(r"[\u2019\u201c\u201d\u202f]| [:;!?»]|« ", translated)
    ]
    assert wrong == []


@needs_msgfmt
@pytest.mark.parametrize("domain", DOMAINS)
def test_msgfmt_accepts_the_catalog(tmp_path: Path, domain: str) -> None:
    po_file = CATALOG_DIR / f"{domain}.po"
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", str(tmp_path / "out.mo"), str(po_file)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LANGUAGE": "C", "LC_ALL": "C"},
    )
    assert result.returncode == 0, result.stderr
    assert "fuzzy" not in result.stderr
    assert "untranslated" not in result.stderr
    assert re.fullmatch(r"\d+ translated messages?\.\n", result.stderr), result.stderr


@needs_msgfmt
@pytest.mark.parametrize("domain", DOMAINS)
def test_compiled_catalog_matches_the_source(tmp_path: Path, domain: str) -> None:
    """The .mo files are committed: each must be compiled from the current .po."""
    mo_file = CATALOG_DIR / f"{domain}.mo"
    fresh = tmp_path / f"{domain}.mo"
    subprocess.run(["msgfmt", "-o", str(fresh), str(CATALOG_DIR / f"{domain}.po")], check=True)
    assert mo_file.exists(), "compile the catalog: manage.py compilemessages -l fr"
    committed = without_dates(read_mo(mo_file))
    expected = without_dates(read_mo(fresh))
    stale = sorted(set(committed.items()) ^ set(expected.items()))
    assert stale == [], f"{domain}.mo is stale: run manage.py compilemessages -l fr"


# -- Django uses it --------------------------------------------------------


@pytest.fixture(scope="module")
def server_entries() -> list[Entry]:
    """The catalog the pages are rendered with."""
    return read_po(PO_FILE)


@pytest.fixture(autouse=True)
def _keep_active_language() -> Iterator[None]:
    """LocaleMiddleware activates the request's language for the thread: undo it."""
    with translation.override(translation.get_language()):
        yield


def test_key_strings_in_french() -> None:
    with translation.override("fr"):
        assert translation.pgettext("folder", "Inbox") == "Boîte de réception"
        assert translation.pgettext("folder", "Trash") == "Corbeille"
        assert translation.pgettext("folder", "Junk") == "Indésirables"
        assert folder_label(Folder(name="INBOX", delimiter="/")) == "Boîte de réception"
        assert folder_label(Folder(name="Sent", delimiter="/", special_use="\\Sent")) == "Envoyés"
        assert translation.gettext("Sign in") == "Se connecter"
        assert translation.gettext("Sign out") == "Se déconnecter"
        assert translation.gettext("Attachments") == "Pièces jointes"


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 message non lu"), (1, "1 message non lu"), (2, "2 messages non lus")],
)
def test_french_plural_rule(count: int, expected: str) -> None:
    with translation.override("fr"):
        text = translation.ngettext(
            "%(counter)s unread message", "%(counter)s unread messages", count
        )
        assert text % {"counter": count} == expected


class VisibleText(HTMLParser):
    """The text a person reads or hears: text nodes and labelling attributes.

    The language menu is left out: it names each language in that language.
    """

    LABELS = ("title", "aria-label", "alt", "placeholder")

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.lang: str | None = None
        self.skipping = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang")
        if tag == "select" and values.get("name") == "language":
            self.skipping = True
        self.texts.extend(values[name] or "" for name in self.LABELS if name in values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.skipping = False

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.texts.extend(part.strip() for part in data.split(" — "))


def visible_text(html: str) -> VisibleText:
    parser = VisibleText()
    parser.feed(html)
    parser.close()
    return parser


def english_left(page: VisibleText, entries: list[Entry]) -> list[str]:
    """Texts of the page that are an English source string with a different French one."""
    english = {e.msgid for e in entries if e.msgid not in e.translations}
    return [text for text in page.texts if text in english]


@pytest.mark.django_db
def test_sign_in_page_in_french(client, server_entries: list[Entry]) -> None:
    response = client.get(reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 200
    page = visible_text(response.content.decode())
    assert page.lang == "fr"
    assert "Se connecter" in page.texts
    assert "Nom d'utilisateur ou adresse électronique" in page.texts
    assert "Mot de passe" in page.texts
    assert english_left(page, server_entries) == []


@pytest.mark.django_db
def test_sign_in_error_in_french(client, server_entries: list[Entry]) -> None:
    response = client.post(
        reverse("accounts:login"),
        {"username": "nobody", "password": "wrong"},
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    page = visible_text(response.content.decode())
    assert (
        "Le nom d'utilisateur, l'adresse électronique ou le mot de passe est incorrect."
        in page.texts
    )
    assert english_left(page, server_entries) == []


@pytest.fixture
def person(db):
    return get_user_model().objects.create_user("camille", "camille@example.org", "unused")


def test_no_account_page_in_french(client, person, server_entries: list[Entry]) -> None:
    client.force_login(person)
    response = client.get(reverse("webmail:home"), HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 200
    page = visible_text(response.content.decode())
    assert page.lang == "fr"
    assert "Pas encore de compte de messagerie" in page.texts
    assert "Se déconnecter" in page.texts
    assert english_left(page, server_entries) == []


def test_not_found_page_in_french(client, person, server_entries: list[Entry]) -> None:
    client.force_login(person)
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 404
    page = visible_text(response.content.decode())
    assert "Introuvable" in page.texts
    assert "Retour à votre messagerie" in page.texts
    assert english_left(page, server_entries) == []


def test_unavailable_page_in_french(person, server_entries: list[Entry]) -> None:
    request = RequestFactory().get("/")
    request.user = person
    with translation.override("fr"):
        html = render_to_string(
            "mail/unavailable.html",
            {
                "problem": translation.gettext(
                    "The mail server did not answer in time. Please try again."
                )
            },
            request=request,
        )
    page = visible_text(html)
    assert "Votre serveur de messagerie ne répond pas" in page.texts
    assert "Réessayer" in page.texts
    assert english_left(page, server_entries) == []


@pytest.fixture
def account(person):
    # Writing and the outbox need no mail server.
    return unreachable_account(person, "camille@example.org")


def test_compose_page_in_french(client, person, account, server_entries: list[Entry]) -> None:
    client.force_login(person)
    response = client.get(reverse("webmail:compose", args=[account.pk]), HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 200
    page = visible_text(response.content.decode())
    for text in ("Nouveau message", "Envoyer", "Enregistrer le brouillon", "Envoyer plus tard"):
        assert text in page.texts
    assert "Gras" in page.texts
    assert english_left(page, server_entries) == []


def test_outbox_page_in_french(client, person, account, server_entries: list[Entry]) -> None:
    client.force_login(person)
    response = client.get(reverse("webmail:outbox", args=[account.pk]), HTTP_ACCEPT_LANGUAGE="fr")
    page = visible_text(response.content.decode())
    assert "Boîte d'envoi" in page.texts
    assert english_left(page, server_entries) == []
