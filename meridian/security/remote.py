"""Temporal's remote-codec protocol: `POST <endpoint>/encode` and `<endpoint>/decode`
take and return `{"payloads": [...]}`, the protobuf JSON of `temporal.api.common.v1.Payloads`
(metadata values and data in base64), as the Temporal Web UI and the `temporal` CLI
send it."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads


class MalformedPayloads(ValueError):
    pass


def payloads_from_json(body: bytes) -> list[Payload]:
    message = Payloads()
    try:
        json_format.Parse(body or b"{}", message)
    except json_format.ParseError as exc:
        raise MalformedPayloads(f"not a Payloads JSON body: {exc}") from None
    return list(message.payloads)


def payloads_to_json(payloads: list[Payload]) -> dict[str, Any]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}
