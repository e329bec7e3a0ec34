"""Standard Webhooks signatures (https://www.standardwebhooks.com): the ingestion API
checks them on callbacks, delivery puts them on every generic webhook it sends."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets


def new_secret() -> str:
    """A fresh signing secret, `whsec_` + 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _key_bytes(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            pass
    return secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for a message (Standard Webhooks, v1)."""
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
