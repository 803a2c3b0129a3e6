"""Local dashboard tokens: HS256 JWTs signed with LOCAL_JWT_SECRET, checked like the JWT authorizer.

Deployed, API Gateway's JWT authorizer checks the dashboard's tokens and hands the handler their
claims, every value as a string. Locally the stack signs and checks its own HS256 tokens: a missing
token, a bad signature or an expired `exp` is API Gateway's 401 before any handler runs; the handler
checks the `projects` claim itself. Issuer and audience are not checked (local tokens need not carry them).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import jwt

DEFAULT_SECRET = "local-dev-secret"  # noqa: S105 - a well-known development secret, never deployed
SECRET_VARIABLE = "LOCAL_JWT_SECRET"  # noqa: S105 - the variable's name
LOCAL_ISSUER = "https://auth.local.ripples.invalid/"
LOCAL_AUDIENCE = "ripples-dashboard-local"
DEFAULT_TTL_SECONDS = 12 * 3600
ALGORITHM = "HS256"

# The documented development secret is shorter than the 32 bytes RFC 7518 recommends: local tokens only.
warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)


def secret_from(environ: Mapping[str, str]) -> str:
    return environ.get(SECRET_VARIABLE) or DEFAULT_SECRET


def issue_token(
    projects: Iterable[str],
    secret: str = DEFAULT_SECRET,
    *,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    subject: str = "local-developer",
    now: int | None = None,
) -> str:
    """A dashboard token for these projects, valid for `ttl_seconds`."""
    issued = int(time.time()) if now is None else now
    claims = {
        "sub": subject,
        "iss": LOCAL_ISSUER,
        "aud": LOCAL_AUDIENCE,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "projects": list(projects),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def bearer_token(header_value: str | None) -> str | None:
    """The token of an identity source value: `Bearer <token>` or the bare token, as API Gateway takes it."""
    if not header_value:
        return None
    value = header_value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value or None


def verify_token(header_value: str | None, secret: str) -> dict[str, Any] | None:
    """The token's claims, or None when it is missing, badly signed, expired or not yet valid."""
    token = bearer_token(header_value)
    if token is None:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"verify_aud": False, "verify_iss": False}
        )
    except jwt.PyJWTError:
        return None
    return claims


def claim_string(value: Any) -> str:
    """A claim value as API Gateway passes it to an HTTP API's handler: numbers as strings, arrays `[a b]`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return "[" + " ".join(claim_string(item) for item in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return ""
    return str(value)


def stringify_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    return {name: claim_string(value) for name, value in claims.items()}


def token_scopes(claims: Mapping[str, Any]) -> list[str]:
    """The token's scopes: `scope` (space-separated) or `scp` (a list or a string)."""
    scopes = claims.get("scope", claims.get("scp", []))
    if isinstance(scopes, str):
        return scopes.split()
    return [str(scope) for scope in scopes]
