"""Baidu Cloud (BCE) request signing, auth v1, and the BCE credential sources.

Implements the documented "bce-auth-v1" scheme:
    prefix     = bce-auth-v1/{ak}/{UTC timestamp}/{expiration seconds}
    signingKey = HMAC-SHA256-hex(sk, prefix)
    canonical  = METHOD \\n URI-encoded path (slashes kept) \\n sorted encoded query \\n
                 sorted "name:value" lines of the signed headers (lower-case, encoded)
    Authorization = prefix/{signed header names joined by ;}/HMAC-SHA256-hex(signingKey,
                    canonical)
The tests check it byte for byte against the official SDK's signer where that is
installed.
"""

from __future__ import annotations

import configparser
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

EXPIRATION_SECONDS = 1800
SIGNED_HEADERS = ("host", "x-bce-date")


@dataclass(frozen=True)
class BceCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never let a secret reach a log line through repr
        return f"BceCredentials(access_key_id={self.access_key_id[:4]}...)"


def uri_encode(value: str, keep_slash: bool = False) -> str:
    return quote(value, safe="-_.~/" if keep_slash else "-_.~")


def canonical_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(
    credentials: BceCredentials,
    method: str,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    moment: datetime,
    expiration_seconds: int = EXPIRATION_SECONDS,
) -> str:
    prefix = (
        f"bce-auth-v1/{credentials.access_key_id}/{canonical_time(moment)}/{expiration_seconds}"
    )
    signing_key = hmac.new(
        credentials.secret_access_key.encode(), prefix.encode(), hashlib.sha256
    ).hexdigest()
    query = "&".join(
        sorted(
            f"{uri_encode(k)}={uri_encode(str(v))}"
            for k, v in params.items()
            if k.lower() != "authorization"
        )
    )
    lowered = {k.strip().lower(): str(v).strip() for k, v in headers.items()}
    names = sorted(name for name in SIGNED_HEADERS if lowered.get(name))
    canonical_headers = "\n".join(
        sorted(f"{uri_encode(n)}:{uri_encode(lowered[n])}" for n in names)
    )
    canonical = "\n".join(
        [method.upper(), uri_encode(path, keep_slash=True), query, canonical_headers]
    )
    signature = hmac.new(signing_key.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return f"{prefix}/{';'.join(names)}/{signature}"


def default_credentials(home: Path | None = None) -> BceCredentials:
    """The BCE CLI's standard sources, in its order: the BCE_ACCESS_KEY_ID /
    BCE_SECRET_ACCESS_KEY (and BCE_SESSION_TOKEN) environment, then the `defaults`
    section (`ak`, `sk`, `sts`) of ~/.bce/credentials. This stands in for an SDK
    credential loader, which is why it reads the environment itself."""
    env = os.environ
    if env.get("BCE_ACCESS_KEY_ID") and env.get("BCE_SECRET_ACCESS_KEY"):
        return BceCredentials(
            env["BCE_ACCESS_KEY_ID"], env["BCE_SECRET_ACCESS_KEY"], env.get("BCE_SESSION_TOKEN")
        )
    path = (home or Path.home()) / ".bce" / "credentials"
    parser = configparser.ConfigParser()
    parser.read(path)
    for name in ("Defaults", "defaults"):
        if parser.has_section(name):
            section = parser[name]  # option names are case-folded by configparser
            if section.get("ak") and section.get("sk"):
                token = section.get("sts") or section.get("token") or None
                return BceCredentials(section["ak"], section["sk"], token)
    raise LookupError("no Baidu Cloud credentials in the environment or ~/.bce/credentials")
