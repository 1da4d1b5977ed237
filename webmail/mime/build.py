"""Building outgoing messages: what a person wrote becomes a standard MIME message.

``build_message`` takes the fields of the compose form and returns the
standard library's ``EmailMessage`` (policy.default) and the envelope
recipients. Addresses are parsed with ``email.headerregistry`` (display names,
quoted names, groups) and internationalised domains are written in their
ASCII form. Nothing a person typed may carry CR or LF into a header, and Bcc
recipients are only in the envelope, never in the message.

An attachment of type message/rfc822 (a forwarded message), or of another
message type (a delivery report), is attached byte for byte, in 7bit or 8bit
as RFC 2046 (5.2.1) requires: never in base64.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email import policy as email_policy
from email.errors import HeaderParseError
from email.headerregistry import Address as HeaderAddress
from email.headerregistry import Group
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from webmail.mime.headers import LINE_BREAKS_RE, Address

#: Serialisation for SMTP and IMAP: CRLF line endings, long lines folded.
WIRE_POLICY = email_policy.default.clone(linesep="\r\n")

_ADDRESS_PARSER = email_policy.default.header_factory
_SUBTYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")


class HeaderInjection(ValueError):
    """A field meant for a header holds a line break."""


class InvalidAddress(ValueError):
    """An address cannot be sent to; ``address`` is the text as the person typed it."""

    def __init__(self, address: str, message: str | None = None) -> None:
        self.address = address
        super().__init__(
            message or _("“%(address)s” is not a valid address.") % {"address": address}
        )


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


class _Source(EmailMessage):
    """A message's source, written out as it is.

    The generator writes a part's headers through the part itself when it has
    this method: here there are none to write, and the whole source is the
    body, so an attached message is not parsed and written again (which would
    refold its headers and rebuild its structure).
    """

    def _write_headers(self, generator: Any) -> None:
        pass


def _attach_message(message: EmailMessage, attachment: Attachment, subtype: str) -> None:
    source = _Source(policy=message.policy)
    # Surrogates carry 8-bit bytes through the generator unchanged; it writes
    # the lines with the wire's line endings.
    source.set_payload(attachment.content.decode("ascii", "surrogateescape"))
    part = EmailMessage(policy=message.policy)
    part["Content-Type"] = f"message/{subtype}"
    part["Content-Transfer-Encoding"] = "7bit" if attachment.content.isascii() else "8bit"
    part["Content-Disposition"] = "attachment"
    part.set_param(
        "filename",
        _check_line(attachment.filename, _("attachment name")),
        header="Content-Disposition",
    )
    part.set_payload([source])
    if message.get_content_type() != "multipart/mixed":
        message.make_mixed()
    message.attach(part)


def _check_line(value: str, field: str) -> str:
    if LINE_BREAKS_RE.search(value):
        raise HeaderInjection(_("The %(field)s field must be on one line.") % {"field": field})
    return value


def _ascii_domain(domain: str, typed: str) -> str:
    if domain.isascii():
        return domain.lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidAddress(typed) from exc


def _header_address(name: str, addr_spec: str, typed: str) -> HeaderAddress:
    local, at, domain = addr_spec.rpartition("@")
    if not at or not local or not domain or "." not in domain.strip("."):
        raise InvalidAddress(typed)
    if not local.isascii():
        raise InvalidAddress(
            typed,
            _("“%(address)s”: addresses with non-ASCII characters before the @ cannot be sent to.")
            % {"address": typed},
        )
    try:
        return HeaderAddress(display_name=name, username=local, domain=_ascii_domain(domain, typed))
    except (ValueError, HeaderParseError) as exc:
        raise InvalidAddress(typed) from exc


def parse_recipients(
    value: str | Iterable[str | Address], field: str
) -> list[HeaderAddress | Group]:
    """Addresses and groups of one recipient field, as typed or as Address values.

    Raises InvalidAddress naming the first address that cannot be sent to.
    """
    items = [value] if isinstance(value, str) else list(value)
    parsed: list[HeaderAddress | Group] = []
    for item in items:
        if isinstance(item, Address):
            _check_line(item.name, field)
            parsed.append(_header_address(item.name, _check_line(item.email, field), item.email))
            continue
        text = _check_line(item, field)
        if not text.strip():
            continue
        header = _parse_field(field, text)
        if header is None:
            raise InvalidAddress(_first_invalid(field, text))
        for group in header.groups:
            members = [
                _header_address(a.display_name, a.addr_spec, str(a) or text)
                for a in group.addresses
            ]
            if group.display_name is None:
                parsed.extend(members)
            else:
                parsed.append(Group(group.display_name, members))
    return parsed


def _parse_field(field: str, text: str) -> Any:
    try:
        header = _ADDRESS_PARSER(field, text)
    except (HeaderParseError, IndexError, ValueError):
        return None
    return None if header.defects else header


def _items(text: str) -> list[str]:
    """The addresses of a field as typed: split at the commas and semicolons between them."""
    items, current, quoted, escaped, depth = [], [], False, False, 0
    for character in text:
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == '"':
            quoted = not quoted
        elif not quoted and character in "<(":
            depth += 1
        elif not quoted and character in ">)":
            depth = max(0, depth - 1)
        elif not quoted and not depth and character in ",;":
            items.append("".join(current))
            current = []
            continue
        current.append(character)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _first_invalid(field: str, text: str) -> str:
    """The first address of ``text`` that does not parse on its own, to name it to the person."""
    for item in _items(text):
        name, colon, rest = item.partition(":")
        # A group's name ("Team: a@example.org") is not an address.
        if colon and "@" not in name and "<" not in name and '"' not in name:
            item = rest.strip()
        if item and _parse_field(field, item) is None:
            return item
    return text.strip()


def _flatten(items: Iterable[HeaderAddress | Group]) -> list[str]:
    result: list[str] = []
    for item in items:
        for address in item.addresses if isinstance(item, Group) else (item,):
            result.append(address.addr_spec)
    return result


def _message_id(value: str, field: str) -> str:
    value = _check_line(value, field).strip()
    if not (value.startswith("<") and value.endswith(">")) or " " in value:
        raise ValueError(_("“%(value)s” is not a message identifier.") % {"value": value})
    return value


def build_message(
    *,
    sender: Address,
    to: str | Iterable[str | Address] = (),
    cc: str | Iterable[str | Address] = (),
    bcc: str | Iterable[str | Address] = (),
    subject: str = "",
    text: str = "",
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    message_id_domain: str,
    require_recipient: bool = True,
) -> tuple[EmailMessage, list[str]]:
    """The message to send and its envelope recipients (To, Cc and Bcc, each once).

    With ``html`` the body is multipart/alternative with ``text`` as its plain
    part. Raises HeaderInjection for a line break in any header field and
    InvalidAddress for an address that cannot be sent to, or for no recipient
    (unless ``require_recipient`` is false: a draft may have none yet).
    """
    from_address = _header_address(
        _check_line(sender.name, "From"), _check_line(sender.email, "From"), sender.email
    )
    fields = {"To": parse_recipients(to, "To"), "Cc": parse_recipients(cc, "Cc")}
    hidden = parse_recipients(bcc, "Bcc")
    envelope = list(dict.fromkeys(_flatten([*fields["To"], *fields["Cc"], *hidden])))
    if not envelope and require_recipient:
        raise InvalidAddress("", _("Add at least one recipient."))

    message = EmailMessage(policy=email_policy.default)
    message["From"] = from_address
    for name, items in fields.items():
        if items:
            message[name] = items
    message["Subject"] = _check_line(subject, "Subject")
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = make_msgid(domain=_check_line(message_id_domain, "Message-ID"))
    if in_reply_to:
        message["In-Reply-To"] = _message_id(in_reply_to, "In-Reply-To")
    if references:
        message["References"] = " ".join(_message_id(r, "References") for r in references)

    # Quoted-printable keeps the text readable and needs no 8BITMIME from the server.
    message.set_content(text, cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", cte="quoted-printable")
    for attachment in attachments:
        maintype, slash, subtype = attachment.content_type.partition("/")
        _check_line(attachment.content_type, _("attachment type"))
        if not slash or not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        if maintype.strip().lower() == "message":
            subtype = subtype.strip().lower()
            if _SUBTYPE_RE.fullmatch(subtype):
                _attach_message(message, attachment, subtype)
                continue
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype,
            filename=_check_line(attachment.filename, _("attachment name")),
        )
    # The standard library gives the parts it creates their own MIME-Version; only
    # the message's own belongs (RFC 2045, 4).
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]
    return message, envelope


def as_bytes(message: EmailMessage) -> bytes:
    """The message as it goes over SMTP and into IMAP: CRLF line endings, never a Bcc."""
    del message["Bcc"]
    return message.as_bytes(policy=WIRE_POLICY)
