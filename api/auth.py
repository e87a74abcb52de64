"""Who is calling: every `/v1/...` route depends on `authenticate`.

A request without a valid bearer token gets 401 with a `WWW-Authenticate` header (RFC
6750) whose description says which check failed. The principal it yields carries the
caller's business unit and roles; `admin` is the one role with a special meaning.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from meridian.auth.keys import LocalKey
from meridian.auth.tokens import AuthError, AuthFailure, Principal, TokenVerifier
from meridian.settings import Settings

ADMIN_ONLY = "admin role required"
UNAUTHORIZED: dict[int | str, dict[str, object]] = {
    401: {"description": "no valid bearer token; WWW-Authenticate says what is wrong"}
}
REALM = "meridian"

# auto_error=False: a missing header is ours to answer (401 with the header RFC 6750
# asks for), and the scheme still shows in the OpenAPI docs' "Authorize" button.
_bearer = HTTPBearer(auto_error=False, description="a JWT: `meridian token` or your OIDC provider")


# Where a request keeps what its bearer token was found to be: the audit log verifies
# the token of every mutating request before routing, and the route's `authenticate`
# then reads the same verdict instead of checking the signature a second time.
VERDICT_KEY = "meridian_token_verdict"


def verify_once(verifier: TokenVerifier, scope: Scope, token: str | None) -> Principal:
    """`verifier.verify(token)`, done at most once per request and token: the verdict
    (principal or AuthError) is kept in the request's scope. Tokens verified through a
    JWKS fetch are not kept: their keys may fail to load once and load the next time."""
    state = scope.setdefault("state", {})
    kept = state.get(VERDICT_KEY)
    if kept is not None and kept[0] == token:
        verdict: Principal | AuthError = kept[1]
        if isinstance(verdict, AuthError):
            raise verdict
        return verdict
    try:
        principal = verifier.verify(token)
    except AuthError as exc:
        if exc.failure is not AuthFailure.UNAVAILABLE:
            state[VERDICT_KEY] = (token, exc)
        raise
    state[VERDICT_KEY] = (token, principal)
    return principal


def build_verifier(settings: Settings) -> TokenVerifier:
    """Fail closed: with neither an OIDC provider nor a local key the API refuses to
    start rather than answer without checking who asks."""
    auth = settings.auth
    if auth.jwks_url:
        return TokenVerifier(auth)
    path = auth.key_file(settings.state_dir)
    if not path.exists():
        raise RuntimeError(
            f"no way to verify tokens: set MERIDIAN_AUTH__JWKS_URL (OIDC) or provide the "
            f"local signing key at {path} (`meridian up` creates it)"
        )
    return TokenVerifier(auth, LocalKey.load(path))


def unauthorized(failure: AuthFailure, detail: str) -> HTTPException:
    error = "invalid_request" if failure is AuthFailure.MALFORMED else "invalid_token"
    challenge = f'Bearer realm="{REALM}"'
    if failure is not AuthFailure.MISSING:
        challenge += f', error="{error}", error_description="{detail}"'
    return HTTPException(
        status_code=401,
        detail={"error": failure.value, "message": detail},
        headers={"WWW-Authenticate": challenge},
    )


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    verifier: TokenVerifier = request.app.state.verifier
    token = credentials.credentials if credentials is not None else None
    if credentials is None and request.headers.get("authorization"):
        raise unauthorized(AuthFailure.MALFORMED, "Authorization header is not `Bearer <token>`")
    try:
        if verifier.uses_jwks:
            # Fetching the provider's keys blocks: keep it off the event loop.
            return await asyncio.to_thread(verify_once, verifier, request.scope, token)
        return verify_once(verifier, request.scope, token)
    except AuthError as exc:
        status = 503 if exc.failure is AuthFailure.UNAVAILABLE else 401
        if status == 503:
            raise HTTPException(status_code=503, detail=exc.detail) from exc
        raise unauthorized(exc.failure, exc.detail) from exc


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise HTTPException(status_code=403, detail=ADMIN_ONLY)
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
