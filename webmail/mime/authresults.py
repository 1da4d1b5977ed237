"""Authentication-Results header fields (RFC 8601): what a receiving server found of a
message's SPF, DKIM and DMARC, and whether it vouches for the domain of its From.

Anyone can write such a field into a message. Only those of the office's own
server count, named by its authserv-id; that server is expected to add its own
to every message it receives and to remove any that claim its name (RFC 8601,
section 5), so the topmost one bearing its name is its own.

Parsing is one pass over each field, cut at ``MAX_FIELD_CHARS``, and at most
``MAX_FIELDS`` fields are read: hostile mail cannot make it costly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

#: Characters of one field that are read; the results come first in practice.
MAX_FIELD_CHARS = 8_192
#: Fields read, from the top of the message.
MAX_FIELDS = 50

_SPECIALS = frozenset('=;"(')


class _Operator(str):
    """Syntax, "=" or ";": never equal to a quoted string that holds the same character."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Operator) and str.__eq__(self, other)

    __hash__ = str.__hash__


_EQUALS, _SEMICOLON = _Operator("="), _Operator(";")


@dataclass(frozen=True)
class MethodResult:
    """One result: ``dkim=pass header.d=example.org``."""

    method: str  # lowercased, without its version
    result: str  # lowercased
    properties: dict[str, str] = field(default_factory=dict)  # "header.d" -> "example.org"


@dataclass(frozen=True)
class AuthenticationResults:
    authserv_id: str  # lowercased
    results: tuple[MethodResult, ...]


def _tokens(text: str) -> Iterator[str]:
    """Words, quoted strings (unquoted), "=" and ";", without comments or white space."""
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char.isspace():
            index += 1
        elif char in "=;":
            yield _EQUALS if char == "=" else _SEMICOLON
            index += 1
        elif char == "(":
            depth = 0
            while index < length:  # a comment, nested or not, up to its end
                char = text[index]
                if char == "\\":
                    index += 1
                elif char == "(":
                    depth += 1
                elif char == ")":
                    depth -= 1
                    if depth == 0:
                        index += 1
                        break
                index += 1
        elif char == '"':
            index += 1
            value = []
            while index < length and text[index] != '"':
                if text[index] == "\\" and index + 1 < length:
                    index += 1
                value.append(text[index])
                index += 1
            index += 1
            yield "".join(value)
        else:
            start = index
            while index < length and not text[index].isspace() and text[index] not in _SPECIALS:
                index += 1
            yield text[start:index]


def _statements(tokens: Iterable[str]) -> list[list[str]]:
    statements: list[list[str]] = [[]]
    for token in tokens:
        if token == _SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    return statements


def _pairs(tokens: list[str]) -> list[tuple[str, str]]:
    """The ``name=value`` pairs of one statement, in order; stray words are skipped."""
    pairs = []
    index = 0
    while index + 2 < len(tokens):
        if tokens[index + 1] == _EQUALS and _EQUALS not in (tokens[index], tokens[index + 2]):
            pairs.append((tokens[index].lower(), tokens[index + 2]))
            index += 3
        else:
            index += 1
    return pairs


def parse_authentication_results(value: str) -> AuthenticationResults | None:
    """One Authentication-Results field's value; None when it names no server."""
    head, *statements = _statements(_tokens(value[:MAX_FIELD_CHARS]))
    if not head or head[0] == _EQUALS:
        return None
    results = []
    for statement in statements:
        pairs = _pairs(statement)
        if not pairs:
            continue  # "none", or nothing readable
        (method, result), *rest = pairs
        results.append(
            MethodResult(
                method=method.partition("/")[0],
                result=result.lower(),
                properties={name: value for name, value in rest if "." in name},
            )
        )
    return AuthenticationResults(authserv_id=head[0].lower(), results=tuple(results))


def _aligned(signing_domain: str, from_domain: str) -> bool:
    """DMARC's relaxed alignment, short of the public suffix list: the signing domain is
    the From domain or one of its parents, and not a bare top-level name."""
    signing_domain = signing_domain.lower().rstrip(".")
    if "." not in signing_domain:
        return False
    return from_domain == signing_domain or from_domain.endswith("." + signing_domain)


def vouches_for(results: AuthenticationResults, from_domain: str) -> bool:
    """Whether ``results`` say the message really comes from ``from_domain``.

    A DMARC result decides when there is one: "pass" for that very domain. Without
    one, a passing DKIM signature of the domain (or of a parent of it) does.
    """
    from_domain = from_domain.lower().rstrip(".")
    dmarc = [r for r in results.results if r.method == "dmarc"]
    if dmarc:
        return any(
            r.result == "pass" and r.properties.get("header.from", "").lower() == from_domain
            for r in dmarc
        )
    return any(
        r.method == "dkim"
        and r.result == "pass"
        and _aligned(r.properties.get("header.d", ""), from_domain)
        for r in results.results
    )


def own_server_vouches(fields: Iterable[str], authserv_id: str, from_domain: str) -> bool:
    """Whether the topmost of ``fields`` (top first) written by ``authserv_id`` vouches for
    ``from_domain``; False when no field bears that name, or no name is configured."""
    authserv_id = authserv_id.strip().lower()
    if not authserv_id or not from_domain:
        return False
    for index, value in enumerate(fields):
        if index >= MAX_FIELDS:
            break
        parsed = parse_authentication_results(value)
        if parsed is not None and parsed.authserv_id == authserv_id:
            return vouches_for(parsed, from_domain)
    return False
