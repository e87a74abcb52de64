"""Tokens as a client meets them: each way a token can be wrong is told apart."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import jwt
import pytest

from meridian.app.cli import main as cli_main
from meridian.app.cli import parse_ttl
from meridian.auth.keys import LocalKey
from meridian.auth.settings import AuthSettings
from meridian.auth.tokens import AuthError, AuthFailure, TokenVerifier, mint_token


@pytest.fixture
def key(tmp_path: Path) -> LocalKey:
    return LocalKey.load_or_create(tmp_path / "auth" / "signing-key.pem")


def failure_of(verifier: TokenVerifier, token: str | None) -> AuthFailure:
    with pytest.raises(AuthError) as caught:
        verifier.verify(token)
    return caught.value.failure


def test_a_minted_token_carries_business_unit_and_roles(key: LocalKey) -> None:
    verifier = TokenVerifier(AuthSettings(), key)
    principal = verifier.verify(mint_token(key, business_unit="ads", roles=["admin"]))
    assert principal.business_unit == "ads"
    assert principal.is_admin
    assert not verifier.verify(mint_token(key, business_unit="ads")).is_admin


def test_each_bad_token_says_what_is_wrong(key: LocalKey, tmp_path: Path) -> None:
    verifier = TokenVerifier(AuthSettings(), key)
    other = LocalKey.load_or_create(tmp_path / "other.pem")
    assert failure_of(verifier, None) is AuthFailure.MISSING
    assert failure_of(verifier, "not-a-jwt") is AuthFailure.MALFORMED
    assert failure_of(verifier, mint_token(other, business_unit="ads")) is AuthFailure.BAD_SIGNATURE
    expired = mint_token(key, business_unit="ads", ttl_seconds=60, now=1_000_000)
    assert failure_of(verifier, expired) is AuthFailure.EXPIRED
    elsewhere = mint_token(key, business_unit="ads", settings=AuthSettings(audience="billing"))
    assert failure_of(verifier, elsewhere) is AuthFailure.WRONG_AUDIENCE
    foreign = mint_token(key, business_unit="ads", settings=AuthSettings(issuer="someone"))
    assert failure_of(verifier, foreign) is AuthFailure.WRONG_ISSUER


def test_a_tampered_payload_fails_the_signature(key: LocalKey) -> None:
    verifier = TokenVerifier(AuthSettings(), key)
    header, _, signature = mint_token(key, business_unit="ads").split(".")
    forged_claims = jwt.utils.base64url_encode(
        json.dumps(
            {"aud": "meridian", "iss": "meridian-local", "exp": 2**31, "business_unit": "bank"}
        ).encode()
    ).decode()
    assert (
        failure_of(verifier, f"{header}.{forged_claims}.{signature}") is AuthFailure.BAD_SIGNATURE
    )


def test_a_token_without_business_unit_is_refused_unless_admin(key: LocalKey) -> None:
    settings = AuthSettings(business_unit_claim="bu")
    verifier = TokenVerifier(settings, key)
    no_unit = mint_token(key, business_unit="ads")  # carries `business_unit`, not `bu`
    assert failure_of(verifier, no_unit) is AuthFailure.NO_BUSINESS_UNIT
    assert verifier.verify(mint_token(key, business_unit="ads", settings=settings)).business_unit


def test_the_local_key_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "auth" / "signing-key.pem"
    first = LocalKey.load_or_create(path)
    again = LocalKey.load_or_create(path)
    assert first.kid == again.kid
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


class _Jwks:
    """A real HTTP JWKS endpoint whose key set can change (a provider rotating keys)."""

    def __init__(self) -> None:
        self.keys: list[LocalKey] = []
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                jwks.fetches += 1
                body = json.dumps(
                    {
                        "keys": [
                            {
                                **json.loads(jwt.algorithms.ECAlgorithm.to_jwk(k.public_key)),
                                "kid": k.kid,
                                "use": "sig",
                                "alg": "ES256",
                            }
                            for k in jwks.keys
                        ]
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def jwks() -> Iterator[_Jwks]:
    server = _Jwks()
    yield server
    server.server.shutdown()


def test_oidc_keys_are_fetched_cached_and_rotated(jwks: _Jwks, tmp_path: Path) -> None:
    settings = AuthSettings(
        issuer="https://idp.example", jwks_url=jwks.url, jwks_refetch_cooldown_seconds=0
    )
    old = LocalKey.load_or_create(tmp_path / "old.pem")
    jwks.keys = [old]
    verifier = TokenVerifier(settings)
    for _ in range(3):
        assert verifier.verify(mint_token(old, business_unit="ads", settings=settings))
    assert jwks.fetches == 1  # cached

    new = LocalKey.load_or_create(tmp_path / "new.pem")
    jwks.keys = [new]  # the provider rotated: an unknown key id makes the verifier fetch
    assert verifier.verify(mint_token(new, business_unit="ads", settings=settings))
    assert jwks.fetches == 2
    local_issuer = mint_token(new, business_unit="ads")  # right key, wrong issuer
    assert failure_of(verifier, local_issuer) is AuthFailure.WRONG_ISSUER


def test_meridian_token_prints_a_token_the_api_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MERIDIAN_STATE_DIR", str(tmp_path))
    key = LocalKey.load_or_create(tmp_path / "auth" / "signing-key.pem")
    cli_main(["token", "--business-unit", "ads", "--role", "admin", "--ttl", "2h"])
    token = capsys.readouterr().out.strip()
    principal = TokenVerifier(AuthSettings(), key).verify(token)
    assert (principal.business_unit, principal.is_admin) == ("ads", True)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 7200


def test_ttl_forms() -> None:
    assert [parse_ttl(t) for t in ("90", "90s", "30m", "1h", "7d")] == [
        90,
        90,
        1800,
        3600,
        7 * 86400,
    ]
    with pytest.raises(Exception, match="bad ttl"):
        parse_ttl("soon")
