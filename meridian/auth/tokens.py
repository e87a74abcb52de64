"""Bearer tokens: minting (the local key of the embedded default) and verifying (the
local key, or an OIDC provider's JWKS), with PyJWT doing the cryptography and checks.

A failed check says which check failed, so that a 401 can tell a client what to fix:
missing, malformed, bad signature, expired, wrong audience, wrong issuer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from meridian.auth.keys import LocalKey
from meridian.auth.settings import ADMIN_ROLE, LOCAL_ISSUER, AuthSettings


class AuthFailure(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_ISSUER = "wrong_issuer"
    NO_BUSINESS_UNIT = "no_business_unit"
    UNAVAILABLE = "keys_unavailable"


class AuthError(Exception):
    def __init__(self, failure: AuthFailure, detail: str):
        super().__init__(detail)
        self.failure = failure
        self.detail = detail


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject, business unit and roles."""

    subject: str
    business_unit: str | None
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


def mint_token(
    key: LocalKey,
    *,
    business_unit: str,
    roles: list[str] | None = None,
    ttl_seconds: float = 3600,
    subject: str | None = None,
    settings: AuthSettings | None = None,
    now: float | None = None,
) -> str:
    settings = settings or AuthSettings()
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": settings.issuer or LOCAL_ISSUER,
        "aud": settings.audience,
        "sub": subject or f"{business_unit}-user",
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl_seconds),
        settings.business_unit_claim: business_unit,
        settings.roles_claim: list(roles or []),
    }
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})


class TokenVerifier:
    """Checks signature, expiry, audience and issuer, then reads the principal.

    With a JWKS URL, PyJWT's client fetches and caches the provider's keys; a token whose
    key id is not in the cache makes it fetch again, which is how rotation is followed.
    """

    def __init__(self, settings: AuthSettings, local_key: LocalKey | None = None):
        self.settings = settings
        self.local_key = local_key
        self._jwks = (
            jwt.PyJWKClient(
                settings.jwks_url,
                cache_jwk_set=True,
                lifespan=settings.jwks_cache_seconds,
                cooldown_duration=settings.jwks_refetch_cooldown_seconds,
                timeout=settings.jwks_timeout_seconds,
            )
            if settings.jwks_url
            else None
        )
        if self._jwks is None and local_key is None:
            raise ValueError("auth needs either MERIDIAN_AUTH__JWKS_URL or a local signing key")

    @property
    def uses_jwks(self) -> bool:
        return self._jwks is not None

    def _signing_key(self, token: str) -> Any:
        if self._jwks is None and self.local_key is not None:
            return self.local_key.public_key
        if self._jwks is None:
            raise AuthError(AuthFailure.UNAVAILABLE, "no key to verify tokens with")
        try:
            return self._jwks.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthError(AuthFailure.UNAVAILABLE, f"signing keys unavailable: {exc}") from exc
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise AuthError(AuthFailure.BAD_SIGNATURE, f"no key for this token: {exc}") from exc

    def verify(self, token: str | None) -> Principal:
        if not token:
            raise AuthError(AuthFailure.MISSING, "no bearer token")
        try:
            jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise AuthError(AuthFailure.MALFORMED, f"malformed token: {exc}") from exc
        key = self._signing_key(token)
        issuer = self.settings.effective_issuer() or None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.settings.algorithms,
                audience=self.settings.audience,
                issuer=issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError(AuthFailure.EXPIRED, "token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError(
                AuthFailure.WRONG_AUDIENCE, f"token is not for audience {self.settings.audience!r}"
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError(AuthFailure.WRONG_ISSUER, f"token not issued by {issuer!r}") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError(AuthFailure.BAD_SIGNATURE, "bad token signature") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(AuthFailure.MALFORMED, f"invalid token: {exc}") from exc
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        roles_claim = claims.get(self.settings.roles_claim) or []
        if isinstance(roles_claim, str):
            roles_claim = roles_claim.split()
        roles = frozenset(str(r) for r in roles_claim)
        unit = claims.get(self.settings.business_unit_claim)
        if not unit and ADMIN_ROLE not in roles:
            raise AuthError(
                AuthFailure.NO_BUSINESS_UNIT,
                f"token has no {self.settings.business_unit_claim!r} claim",
            )
        return Principal(
            subject=str(claims.get("sub") or ""),
            business_unit=str(unit) if unit else None,
            roles=roles,
        )
