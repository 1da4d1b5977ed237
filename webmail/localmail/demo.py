"""Realistic demo mail for the local mail server.

``demo_messages(domain, people)`` builds, for each person, about thirty messages
of the kinds an office mailbox holds: plain notes, an HTML newsletter with
inline (``cid:``) and remote images, invoices and reports with PDF, PNG and CSV
attachments, a four-message thread, multipart/alternative mail, French, German
and Japanese text and emoji, dated over the last five weeks. Everything is
built with the standard library's ``email`` package (policy ``default``), and
the attachments are small but valid files generated here.

``seed_demo(server, people)`` creates the accounts and files the messages
through IMAP APPEND rather than LMTP, so that each message's arrival date is
the date it was written and the newest-first list looks lived-in: older mail
is read, urgent mail is flagged, and Sent and Drafts hold the person's own
messages.
"""

from __future__ import annotations

import imaplib
import ssl
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import LocalMailServer

#: The demo's people, as (login, full name); their address is login@<domain>.
DEMO_PEOPLE = [("alice", "Alice Martin"), ("bruno", "Bruno Garnier")]
#: Every demo account's password, published in the demo's instructions.
DEMO_PASSWORD = "facteur-demo"  # noqa: S105

#: Mail older than this is filed as already read.
READ_AFTER = timedelta(days=2)


@dataclass(frozen=True)
class _Person:
    name: str
    local_part: str


_CAMILLE = _Person("Camille Dupont", "camille.dupont")
_JURGEN = _Person("Jürgen Müller", "juergen.mueller")
_HANAKO = _Person("佐藤 花子", "hanako.sato")
_LUCIE = _Person("Lucie Lefèvre", "lucie.lefevre")
_OMAR = _Person("Omar Benali", "omar.benali")
_IT = _Person("Service informatique", "it")


def solid_png(
    width: int = 16, height: int = 16, rgb: tuple[int, int, int] = (32, 96, 160)
) -> bytes:
    """A valid PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def _pdf(text: str) -> bytes:
    """A valid one-page PDF showing one line of ASCII text."""
    content = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


class _Builder:
    """Builds one person's messages, each dated a given time before ``now``."""

    def __init__(self, domain: str, recipient: str, now: datetime) -> None:
        self.domain = domain
        self.recipient = recipient
        self.now = now
        self.messages: list[tuple[datetime, EmailMessage]] = []

    def address(self, person: _Person) -> Address:
        return Address(person.name, addr_spec=f"{person.local_part}@{self.domain}")

    def message(
        self,
        sender: _Person | Address,
        subject: str,
        age: timedelta,
        body: str | None = None,
        *,
        to: str | None = None,
        **headers: str,
    ) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.address(sender) if isinstance(sender, _Person) else sender
        msg["To"] = to or self.recipient
        msg["Subject"] = subject
        date = self.now - age
        msg["Date"] = date
        msg["Message-ID"] = make_msgid(domain=self.domain)
        for name, value in headers.items():
            msg[name.replace("_", "-")] = value
        if body is not None:
            msg.set_content(body)
        self.messages.append((date, msg))
        return msg


def _newsletter(builder: _Builder, issue: int, age: timedelta) -> None:
    sender = Address("La Lettre du Quartier", addr_spec="lettre@quartier.example.org")
    msg = builder.message(sender, f"La Lettre du Quartier — n°{issue} : l'été arrive ☀️", age)
    msg["List-Unsubscribe"] = "<https://quartier.example.org/desinscription>"
    logo_cid = make_msgid(domain="quartier.example.org")
    msg.set_content(
        f"La Lettre du Quartier, n°{issue}\n\n"
        "Marché d'été : tous les samedis de juin, place de la Mairie.\n"
        "Atelier vélo : réparations gratuites le 14.\n\n"
        f"Lire en ligne : https://quartier.example.org/lettre/{issue}\n"
    )
    msg.add_alternative(
        f"""\
<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>
  .title {{ color: #20609f; font-family: Georgia, serif; }}
  td {{ padding: 8px; }}
</style></head>
<body style="background:#f4f4f4">
<table width="600" align="center" bgcolor="#ffffff" cellpadding="0" cellspacing="0">
  <tr><td><img src="cid:{logo_cid[1:-1]}" alt="Logo" width="64" height="64"></td>
      <td><h1 class="title">La Lettre du Quartier</h1><p>Numéro {issue}</p></td></tr>
  <tr><td colspan="2">
    <img src="https://images.quartier.example.org/ete.jpg" alt="Marché d'été" width="560">
  </td></tr>
  <tr><td colspan="2">
    <h2>Marché d'été</h2>
    <p>Tous les samedis de juin, <b>place de la Mairie</b>. Producteurs locaux,
       musique et crêpes.</p>
    <h2>Atelier vélo</h2>
    <p>Réparations gratuites le 14 : <a href="https://quartier.example.org/velo">inscrivez-vous</a>.</p>
    <p style="font-size:small;color:#777">
      <a href="https://quartier.example.org/lettre/{issue}">Lire en ligne</a> ·
      <a href="https://quartier.example.org/desinscription">Se désinscrire</a>
    </p>
  </td></tr>
</table>
</body></html>
""",
        subtype="html",
    )
    msg.get_payload()[1].add_related(
        solid_png(64, 64, (32, 96, 160)), "image", "png", cid=logo_cid, filename="logo.png"
    )


def _thread(builder: _Builder, start: timedelta) -> None:
    subject = "Séminaire d'équipe à Annecy"
    first = builder.message(
        _CAMILLE,
        subject,
        start,
        "Bonjour à tous,\n\n"
        "Je propose le séminaire à Annecy les 12 et 13 du mois prochain.\n"
        "Qui est disponible ?\n\nCamille\n",
        Cc=str(builder.address(_JURGEN)),
    )
    replies = [
        (_JURGEN, "Die Termine passen mir. Ich kann die Zugtickets buchen.\n\nJürgen\n"),
        (_LUCIE, "Parfait pour moi aussi ! Je m'occupe de la salle.\n\nLucie\n"),
        (_CAMILLE, "Merci ! C'est donc confirmé, je réserve l'hôtel.\n\nCamille\n"),
    ]
    references = [first["Message-ID"]]
    for step, (sender, text) in enumerate(replies, start=1):
        reply = builder.message(
            sender,
            f"Re: {subject}",
            start - timedelta(hours=5 * step),
            text,
            In_Reply_To=references[-1],
            References=" ".join(references),
        )
        references.append(reply["Message-ID"])


def _person_messages(domain: str, recipient: str, now: datetime) -> list[EmailMessage]:
    b = _Builder(domain, recipient, now)
    day = timedelta(days=1)
    hour = timedelta(hours=1)

    b.message(
        _IT,
        "Bienvenue sur Facteur",
        34 * day,
        "Bonjour,\n\nVotre messagerie est prête. Vous pouvez la consulter depuis\n"
        "n'importe quel navigateur, sur ordinateur, tablette ou téléphone.\n\n"
        "Le service informatique\n",
    )
    notes = [
        (
            _OMAR,
            "Compte rendu de la réunion de lundi",
            31 * day,
            "Points abordés :\n- budget du trimestre\n- recrutement d'un stagiaire\n"
            "- déménagement du serveur\n\nProchaine réunion lundi 10 h.\n",
        ),
        (
            _LUCIE,
            "Clés de la salle B",
            29 * day,
            "Je laisse les clés de la salle B à l'accueil ce soir.\n",
        ),
        (
            _CAMILLE,
            "Déjeuner jeudi ?",
            27 * day,
            "On teste le nouveau restaurant libanais rue des Lilas ?\n",
        ),
        (
            _OMAR,
            "Mot de passe du Wi-Fi invités",
            24 * day,
            "Le nouveau mot de passe est affiché à l'accueil.\n",
        ),
        (
            _JURGEN,
            "Grüße aus München — Änderungen am Vertrag",
            22 * day,
            "Hallo,\n\nanbei die Änderungen: Die Kündigungsfrist beträgt künftig drei Monate,\n"
            "und die Vergütung wird quartalsweise überwiesen. Schöne Grüße aus München!\n\n"
            "Jürgen Müller\n",
        ),
        (
            _HANAKO,
            "会議の議事録について",
            19 * day,
            "皆様\n\nお疲れ様です。佐藤です。\n先日の会議の議事録を共有いたします。\n"
            "ご確認のほど、よろしくお願いいたします。\n\n佐藤 花子\n",
        ),
        (
            _LUCIE,
            "🎉 Pot de départ de Lucie vendredi",
            12 * day,
            "Venez nombreux vendredi à 17 h en salle B ! 🥂🍰\n",
        ),
        (
            _OMAR,
            "Commande de fournitures",
            9 * day,
            "Dernier délai pour la commande de fournitures : mercredi midi.\n",
        ),
        (
            _CAMILLE,
            "Nouveaux horaires d'accueil",
            6 * day,
            "À partir de lundi, l'accueil ouvre de 8 h 30 à 18 h.\n",
        ),
        (
            _JURGEN,
            "Kurze Frage zum Angebot",
            4 * day,
            "Könntest du mir bitte das aktuelle Angebot schicken? Danke!\n",
        ),
        (
            _HANAKO,
            "Re: traduction du contrat",
            3 * day,
            "La traduction japonaise est prête, je l'envoie demain. よろしく。\n",
        ),
        (_OMAR, "Café", 20 * hour, "Il reste du café en salle de pause ☕\n"),
        (
            _LUCIE,
            "Réunion déplacée",
            5 * hour,
            "La réunion de demain est déplacée à 14 h, même salle.\n",
        ),
        (
            _CAMILLE,
            "Photos du séminaire",
            2 * hour,
            "Les photos sont sur le partage commun, dossier « Annecy ».\n",
        ),
    ]
    for sender, subject, age, body in notes:
        b.message(sender, subject, age, body)

    invoice = b.message(
        Address("Imprimerie Martin", addr_spec="factures@imprimerie.example.com"),
        "Facture n°2024-042",
        26 * day,
        "Madame, Monsieur,\n\nVeuillez trouver ci-joint notre facture n°2024-042.\n\n"
        "Cordialement,\nImprimerie Martin\n",
    )
    invoice.add_attachment(
        _pdf("Facture 2024-042 - 1 250,00 EUR"),
        "application",
        "pdf",
        filename="Facture n°2024-042.pdf",
    )

    photo = b.message(
        _LUCIE, "Le nouveau logo", 21 * day, "Voici la proposition du graphiste, qu'en dis-tu ?\n"
    )
    photo.add_attachment(solid_png(48, 48, (220, 80, 40)), "image", "png", filename="logo-v2.png")

    report = b.message(
        _OMAR, "Chiffres du mois", 15 * day, "Le tableau des ventes du mois est en pièce jointe.\n"
    )
    report.add_attachment(
        "Date;Client;Montant (€)\n2024-05-02;Café Rémi;1 200,00\n"
        "2024-05-07;Müller GmbH;3 450,50\n2024-05-15;株式会社サトウ;980,00\n",
        subtype="csv",
        filename="ventes-mai.csv",
    )

    _newsletter(b, 41, 17 * day)
    _newsletter(b, 42, 3 * day)

    shipped = b.message(
        Address("Boutique Bureau", addr_spec="commandes@boutique.example.net"),
        "Votre commande a été expédiée",
        8 * day,
        "Votre commande n°88412 a été expédiée.\n"
        "Suivi : https://boutique.example.net/suivi/88412\n",
    )
    shipped.add_alternative(
        "<p>Votre commande <b>n°88412</b> a été expédiée.</p>"
        '<p><a href="https://boutique.example.net/suivi/88412">Suivre le colis</a></p>',
        subtype="html",
    )

    b.message(
        _IT,
        "Urgent : coupure du serveur ce soir",
        1 * day,
        "Le serveur de fichiers sera arrêté ce soir de 20 h à 22 h.\n"
        "Pensez à enregistrer vos documents avant 19 h 45.\n",
        Importance="high",
        X_Priority="1",
    )
    _thread(b, 11 * day)

    return [msg for _, msg in sorted(b.messages, key=lambda item: item[0])]


def demo_messages(domain: str, people: list[str]) -> list[tuple[str, bytes]]:
    """Return (recipient address, raw message) pairs, oldest first for each person."""
    now = datetime.now().astimezone().replace(microsecond=0)
    return [
        (person, msg.as_bytes())
        for person in people
        for msg in _person_messages(domain, person, now)
    ]


def _own_messages(domain: str, sender: str, now: datetime) -> list[tuple[str, EmailMessage]]:
    """(folder, message) pairs written by ``sender``: a few sent messages and a draft."""
    b = _Builder(domain, sender, now)
    me = Address(addr_spec=sender)
    filed: list[tuple[str, EmailMessage]] = []
    for recipient, subject, age, body in [
        (
            _CAMILLE,
            "Re: Déjeuner jeudi ?",
            timedelta(days=27),
            "Avec plaisir, à 12 h 30 devant l'entrée.\n",
        ),
        (_JURGEN, "Angebot", timedelta(days=4), "Hallo Jürgen, anbei das Angebot. Grüße!\n"),
        (
            _HANAKO,
            "Merci pour la traduction",
            timedelta(days=2),
            "Merci beaucoup Hanako ! ありがとうございます。\n",
        ),
        (_LUCIE, "Pot de départ", timedelta(days=11), "J'apporte une tarte aux pommes 🍏\n"),
    ]:
        msg = b.message(me, subject, age, body, to=str(b.address(recipient)))
        filed.append(("Sent", msg))
    draft = b.message(
        me,
        "Congés d'été",
        timedelta(hours=3),
        "Bonjour Omar,\n\nJe souhaiterais poser mes congés du\n",
        to=str(b.address(_OMAR)),
    )
    filed.append(("Drafts", draft))
    return filed


def seed_demo(server: LocalMailServer, people: list[tuple[str, str]]) -> None:
    """Create each (address, password) account and fill its folders with demo mail."""
    for address, password in people:
        server.add_user(address, password)
    now = datetime.now().astimezone().replace(microsecond=0)
    context = ssl.create_default_context(cafile=str(server.ca_file))
    for address, password in people:
        filed = [("INBOX", msg) for msg in _person_messages(server.domain, address, now)]
        filed += _own_messages(server.domain, address, now)
        with imaplib.IMAP4_SSL(server.host, server.imaps_port, ssl_context=context) as imap:
            imap.login(address, password)
            for folder, msg in filed:
                date = msg["Date"].datetime
                flags = []
                if folder != "INBOX" or now - date > READ_AFTER:
                    flags.append("\\Seen")
                if msg.get("Importance") == "high":
                    flags.append("\\Flagged")
                if folder == "Drafts":
                    flags.append("\\Draft")
                imap.append(folder, f"({' '.join(flags)})", date, msg.as_bytes())
