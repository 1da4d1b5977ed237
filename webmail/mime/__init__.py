"""Messages as bytes and as what people see: parsing for the message screen."""

from webmail.mime.build import Attachment, HeaderInjection, InvalidAddress, build_message
from webmail.mime.headers import Address, decode_header, envelope_addresses, parse_addresses
from webmail.mime.parse import (
    DEFAULT_LIMITS,
    ParsedMessage,
    ParseLimits,
    Part,
    extract_part,
    extract_parts,
    parse_message,
)

__all__ = [
    "DEFAULT_LIMITS",
    "Address",
    "Attachment",
    "HeaderInjection",
    "InvalidAddress",
    "ParseLimits",
    "ParsedMessage",
    "Part",
    "build_message",
    "decode_header",
    "envelope_addresses",
    "extract_part",
    "extract_parts",
    "parse_addresses",
    "parse_message",
]
