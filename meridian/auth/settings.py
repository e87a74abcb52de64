"""Authentication settings (`MERIDIAN_AUTH__*`).

Production points Meridian at an OIDC provider (`issuer`, `audience`, `jwks_url`); the
embedded default (`meridian up`) signs its own tokens with a local key under the state
directory. Either way every `/v1/...` request needs a bearer token.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

LOCAL_ISSUER = "meridian-local"
DEFAULT_AUDIENCE = "meridian"
ADMIN_ROLE = "admin"


class AuthSettings(BaseModel):
    # The `iss` every token must carry. Empty: the local issuer when the local key signs.
    issuer: str = ""
    # The `aud` every token must carry.
    audience: str = DEFAULT_AUDIENCE
    # OIDC: where the provider publishes its signing keys. Empty: verify with the local
    # key (its public half), the embedded default.
    jwks_url: str = ""
    # How long fetched keys are trusted before they are fetched again; a token signed by
    # an unknown key id triggers a fetch at once (the provider rotated its keys).
    jwks_cache_seconds: float = Field(300.0, gt=0)
    # At most one such fetch per this long: a flood of tokens with made-up key ids must
    # not turn into a flood of requests to the provider.
    jwks_refetch_cooldown_seconds: float = Field(30.0, ge=0)
    jwks_timeout_seconds: float = Field(5.0, gt=0)
    # Claims that carry the caller's business unit and roles.
    business_unit_claim: str = "business_unit"
    roles_claim: str = "roles"
    # The local signing key (PEM, EC P-256); created by `meridian up` when missing.
    # Empty: `<state dir>/auth/signing-key.pem`.
    local_key_file: Path | None = None
    # Clock skew tolerated on `exp`, `nbf` and `iat`.
    leeway_seconds: float = Field(30.0, ge=0)
    algorithms: list[str] = Field(default_factory=lambda: ["ES256", "RS256"])

    def key_file(self, state_dir: Path) -> Path:
        return self.local_key_file or state_dir / "auth" / "signing-key.pem"

    def effective_issuer(self) -> str:
        return self.issuer or (LOCAL_ISSUER if not self.jwks_url else "")
