"""The codec server: Temporal's remote-codec protocol over the payload codec, so that the
Temporal Web UI (`--ui-codec-endpoint`, or its `codec.endpoint` setting) and the CLI
(`temporal ... --codec-endpoint http://<api>/codec`) show encrypted payloads decoded.

Decoding hands out task data, so it takes an admin token: the Web UI forwards its
user's when its codec setting `passAccessToken` is on. Under `meridian up` only
(`codec.open_on_loopback`), a caller on this machine needs none, so the local UI works
as it comes. Browsers call it from the UI's origin: those in `codec.cors_origins` are
answered, preflight included.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import ADMIN_ONLY, UNAUTHORIZED, authenticate
from meridian.security.codec import CodecError, EncryptionCodec, build_codec
from meridian.security.remote import MalformedPayloads, payloads_from_json, payloads_to_json
from meridian.security.settings import CodecSettings
from meridian.settings import Settings

PREFIX = "/codec"
NO_KEYS = "no codec keys are configured: payloads are not encrypted"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# A body in the protocol's shape, for the OpenAPI docs: the protobuf JSON of Payloads,
# where an absent body and a null list both mean no payloads (see payloads_from_json).
PAYLOADS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "payloads": {"type": ["array", "null"], "items": {"type": "object"}}
                    },
                },
                "example": {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}}]},
            }
        },
    }
}

_bearer = HTTPBearer(auto_error=False)


@dataclass
class CodecService:
    codec: EncryptionCodec | None
    settings: CodecSettings


def install_codec(app: FastAPI, settings: Settings) -> None:
    """The codec and its CORS answers (only under /codec, not on the rest of the API)."""
    app.state.codec = CodecService(build_codec(settings), settings.codec)
    app.add_middleware(CodecCors, origins=settings.codec.cors_origins)


class CodecCors:
    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace"],
            # The UI's `includeCredentials` sends cookies; the answer must allow them.
            allow_credentials=True,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX + "/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _service(request: Request) -> CodecService:
    service: CodecService = request.app.state.codec
    return service


def _is_local(request: Request) -> bool:
    """Called from this machine, and addressed to it by a loopback name: a page of some
    other site whose name resolves to 127.0.0.1 (DNS rebinding) carries its own name."""
    if request.client is None:
        return False
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    host = (request.url.hostname or "").strip("[]")
    return peer.is_loopback and host in LOOPBACK_NAMES


async def codec_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if _service(request).settings.open_on_loopback and _is_local(request):
        return
    principal = await authenticate(request, credentials)
    if not principal.is_admin:
        raise HTTPException(status_code=403, detail=ADMIN_ONLY)


router = APIRouter(
    prefix=PREFIX,
    tags=["codec"],
    dependencies=[Depends(codec_caller)],
    responses={
        **UNAUTHORIZED,
        400: {"description": "not a Payloads JSON body, or a payload that does not decrypt"},
        403: {"description": ADMIN_ONLY},
        503: {"description": NO_KEYS},
    },
)


async def _payloads(request: Request) -> tuple[EncryptionCodec, list[Any]]:
    codec = _service(request).codec
    if codec is None:
        raise HTTPException(status_code=503, detail=NO_KEYS)
    body = await request.body()
    # protobuf's parser walks any JSON container as the message's fields, so `[]` and
    # `""` read as no payloads: the protocol's body is an object (or nothing at all).
    if body.strip() and not body.lstrip().startswith(b"{"):
        raise HTTPException(status_code=400, detail="not a Payloads JSON body: not an object")
    try:
        return codec, payloads_from_json(body)
    except MalformedPayloads as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    except UnicodeDecodeError as exc:  # protobuf's parser decodes the bytes unguarded
        raise HTTPException(status_code=400, detail=f"not a Payloads JSON body: {exc}") from exc


@router.post("/encode", openapi_extra=PAYLOADS_BODY)
async def encode(request: Request) -> dict[str, Any]:
    """Encrypt payloads with the current key (what `temporal workflow start
    --codec-endpoint` does with its input)."""
    codec, payloads = await _payloads(request)
    return payloads_to_json(await codec.encode(payloads))


@router.post("/decode", openapi_extra=PAYLOADS_BODY)
async def decode(request: Request) -> dict[str, Any]:
    """Decrypt payloads; those not encrypted come back as they are."""
    codec, payloads = await _payloads(request)
    try:
        return payloads_to_json(await codec.decode(payloads))
    except CodecError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
