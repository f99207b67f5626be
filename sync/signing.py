"""Signed hub commands: the hub signs freeze/unfreeze/expedite with Ed25519, the device verifies.

Why: the device pulls commands over the shop LAN; without a signature anybody who can answer in
the hub's place (a spoofed address, a proxy) could send an ``unfreeze`` and let a cancelled
parcel ship. The hub's private key never leaves the hub database (``hub_meta``); devices hold
only the public key.

What is signed: the *canonical JSON* of the command payload without its ``signature`` key --
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` encoded as UTF-8,
prefixed by the domain tag ``scanedge-command-v1\\n`` (so a signature can never be replayed as
some other kind of signed message). The payload holds ``command_id``, ``kind``, ``order_id``,
``issued_at``, ``version``, ``reason`` (freezes), ``hub_key`` (the signer's public key, base64) and
whatever else the hub put in it: every field the device acts on is covered.

Which key the device trusts (its "pin", stored in ``sync_state``; sync/pinning.py): the configured
``hub_public_key`` (written by ``scanedge enroll``) when set. Without one, a device refuses every
signed command (``no_hub_key``), unless ``hub_trust_first_key`` opts into trust on first use: the
key of the first signed command it receives, logged as a warning and an outbox event. See
docs/security.md, "Enrolment and hub identity".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)
DOMAIN = b"scanedge-command-v1\n"
SIGNED_KINDS = ("freeze", "unfreeze", "expedite", "note")
REQUIRED = ("command_id", "kind", "order_id", "issued_at", "version", "hub_key")


def canonical_json(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_bytes(payload: dict[str, Any]) -> bytes:
    return DOMAIN + canonical_json({k: v for k, v in payload.items() if k != "signature"})


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def key_id(public_key_b64: str) -> str:
    """A short fingerprint to show people (first 16 hex digits of SHA-256 of the raw key)."""
    return hashlib.sha256(public_key_b64.encode()).hexdigest()[:16]


def check_public_key(text: str) -> str | None:
    """None when ``text`` is a base64 Ed25519 public key, else what is wrong (for config checks)."""
    try:
        raw = _unb64(text)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return "base64 (as printed by `scanedge hub public-key`)"
    return None if len(raw) == 32 else "a 32-byte Ed25519 public key in base64"


@dataclass(frozen=True)
class HubSigner:
    """The hub's keypair. ``private_b64``/``public_b64``: raw 32-byte keys in base64."""

    private_b64: str
    public_b64: str

    @classmethod
    def generate(cls) -> HubSigner:
        from cryptography.hazmat.primitives import serialization as ser

        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
        public = key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
        return cls(_b64(private), _b64(public))

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key", Ed25519PrivateKey.from_private_bytes(_unb64(self.private_b64)))

    def sign(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload with ``hub_key`` and ``signature`` added (a new dict)."""
        out = {k: v for k, v in payload.items() if k != "signature"}
        out["hub_key"] = self.public_b64
        out["signature"] = _b64(self._key.sign(signed_bytes(out)))  # type: ignore[attr-defined]
        return out

    def __repr__(self) -> str:  # never print the private key by accident
        return f"HubSigner(key_id={key_id(self.public_b64)})"


def verify(payload: dict[str, Any], public_b64: str) -> str | None:
    """None when ``payload`` carries a valid signature by ``public_b64``, else the problem."""
    signature = payload.get("signature")
    if not isinstance(signature, str) or not signature:
        return "unsigned"
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        return f"missing_{missing[0]}"
    if payload.get("hub_key") != public_b64:
        return "unknown_key"
    try:
        Ed25519PublicKey.from_public_bytes(_unb64(public_b64)).verify(
            _unb64(signature), signed_bytes(payload))
    except (InvalidSignature, binascii.Error, ValueError):
        return "bad_signature"
    return None
