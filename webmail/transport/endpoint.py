"""Where and how to reach one mail server, independent of the database."""

from __future__ import annotations

from dataclasses import dataclass, field

TLS = "tls"
STARTTLS = "starttls"
PLAIN = "none"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: str  # TLS, STARTTLS or PLAIN
    login: str
    password: str = field(repr=False)
    ca_file: str | None = None  # trust this CA instead of the system's
    verify: bool = True  # False only when an administrator knowingly accepts any certificate
    timeout: float = 10.0
