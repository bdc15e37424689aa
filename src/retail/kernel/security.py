"""Token issuing and verification (PyJWT, pinned algorithm) and the `Annotated` auth dependencies.

Three token kinds, told apart by the `typ` claim:
- access: issued by auth, verified locally by every service (`CurrentUser`, `AdminUser`);
- service: minted by a service for its calls to another (`InternalCaller`); signed with a key
  derived from JWT_SECRET_KEY for that purpose only, so no user token can ever pass as one;
- refresh tokens are opaque random strings kept (hashed) by auth, not JWTs.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from retail.kernel.errors import Forbidden, Unauthorized
from retail.kernel.settings import Settings

Role = Literal["customer", "admin"]
ISSUER = "retail-auth"
SERVICE_AUDIENCE = "retail-internal"
_LEEWAY_SECONDS = 5
# Tokens already verified, kept until they expire: a signed-in shopper or a peer service
# sends the same token on every call, and PyJWT's decode (key checks, HMAC, claims) was a
# real share of a cheap request. Bounded; the oldest entry goes first.
_VERIFIED_MAX = 4096


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user as an access token describes them. `version` is the user's token
    version when the token was issued (the `ver` claim; 0 for tokens issued without one):
    auth raises it when the role or the account's standing changes."""

    user_id: str
    role: Role
    session_id: str | None = None
    version: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class SessionRevoked(Unauthorized):
    """The token verifies, but its session was ended (logout, refresh reuse, a password
    change) or its user changed since it was issued (role, deactivation)."""

    error_code = "SESSION_REVOKED"
    message = "This session has ended; sign in again"


class RevocationCheck(Protocol):
    """What `TokenCodec` asks of the revocation set (`retail.kernel.sessions`), after a
    token verified: an O(1) lookup, never a call to auth."""

    def refuses(self, principal: Principal) -> bool: ...


class TokenCodec:
    def __init__(
        self,
        secret: str,
        algorithm: str = "HS256",
        *,
        access_ttl_seconds: int = 1800,
        service_ttl_seconds: int = 300,
    ) -> None:
        self._user_key = secret.encode()
        self._service_key = hmac.new(
            self._user_key, b"retail service tokens", hashlib.sha256
        ).digest()
        self._algorithm = algorithm
        # token -> (expiry, what it proves); exact token strings only, so nothing unsigned
        # can ever match an entry.
        self._verified: dict[str, tuple[float, Principal | str]] = {}
        self.access_ttl_seconds = access_ttl_seconds
        self.service_ttl_seconds = service_ttl_seconds
        # Fed from auth's feed by `retail.kernel.sessions`; None: nothing is revoked.
        self.revocations: RevocationCheck | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCodec:
        return cls(
            settings.signing_secret(),
            settings.jwt_algorithm,
            access_ttl_seconds=settings.access_token_expire_minutes * 60,
            service_ttl_seconds=settings.service_token_expire_seconds,
        )

    def issue_access(
        self, user_id: str, role: Role, session_id: str | None = None, version: int = 0
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": user_id,
            "role": role,
            "typ": "access",
            "iat": now,
            "exp": now + self.access_ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        if session_id:
            claims["sid"] = session_id
        if version:
            claims["ver"] = version
        return jwt.encode(claims, self._user_key, algorithm=self._algorithm)

    def verify_access(self, token: str) -> Principal:
        known = self._known(token)
        principal = known if isinstance(known, Principal) else self._decode_access(token)
        # After the cache, on every request: a remembered token is refused once revoked.
        revocations = self.revocations
        if revocations is not None and revocations.refuses(principal):
            raise SessionRevoked()
        return principal

    def _decode_access(self, token: str) -> Principal:
        claims = self._decode(token, self._user_key, issuer=ISSUER)
        role, version = claims.get("role"), claims.get("ver", 0)
        if claims.get("typ") != "access" or role not in ("customer", "admin"):
            raise Unauthorized("Invalid or expired token")
        if type(version) is not int or version < 0:
            raise Unauthorized("Invalid or expired token")
        principal = Principal(str(claims["sub"]), role, claims.get("sid"), version)
        self._remember(token, claims, principal)
        return principal

    def issue_service(self, caller: str) -> str:
        now = int(time.time())
        claims = {
            "iss": f"retail-{caller}",
            "sub": f"service:{caller}",
            "aud": SERVICE_AUDIENCE,
            "typ": "service",
            "iat": now,
            "exp": now + self.service_ttl_seconds,
        }
        return jwt.encode(claims, self._service_key, algorithm=self._algorithm)

    def verify_service(self, token: str) -> str:
        known = self._known(token)
        if isinstance(known, str):
            return known
        claims = self._decode(token, self._service_key, audience=SERVICE_AUDIENCE)
        subject = str(claims.get("sub", ""))
        if claims.get("typ") != "service" or not subject.startswith("service:"):
            raise Unauthorized("Invalid or expired token")
        caller = subject.removeprefix("service:")
        self._remember(token, claims, caller)
        return caller

    def _known(self, token: str) -> Principal | str | None:
        """What a token verified before proves, while it has not expired. Which kind it is
        still matters to the caller: an access token never passes as a service one."""
        entry = self._verified.get(token)
        if entry is None:
            return None
        if time.time() >= entry[0]:
            del self._verified[token]
            return None
        return entry[1]

    def _remember(self, token: str, claims: dict[str, Any], proves: Principal | str) -> None:
        if len(self._verified) >= _VERIFIED_MAX:
            del self._verified[next(iter(self._verified))]
        # The same bound decode applies: valid until exp plus the leeway.
        self._verified[token] = (float(claims["exp"]) + _LEEWAY_SECONDS, proves)

    def _decode(
        self, token: str, key: bytes, *, issuer: str | None = None, audience: str | None = None
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[self._algorithm],  # pinned: never trust the token's own header
                issuer=issuer,
                audience=audience,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "typ"]},
            )
        except jwt.PyJWTError:
            raise Unauthorized("Invalid or expired token") from None
        return claims


_BEARER_DESCRIPTION = "Access token from POST /api/auth/login"
_bearer = HTTPBearer(auto_error=False, description=_BEARER_DESCRIPTION)


async def get_token_codec(request: Request) -> TokenCodec:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per
    # authenticated request for what is an attribute read.
    codec: TokenCodec = request.app.state.tokens
    return codec


Tokens = Annotated[TokenCodec, Depends(get_token_codec)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class _VerifiedBearer(HTTPBearer):
    """The bearer scheme and the token check as one dependency: each dependency FastAPI
    solves costs per request, and a chain (scheme, codec, check) tripled it. Still an
    `HTTPBearer`, with its name, so OpenAPI documents the same security scheme."""

    def __init__(self, verify: Callable[[TokenCodec, str], Principal | str], missing: str | None):
        super().__init__(auto_error=False, description=_BEARER_DESCRIPTION)
        self.scheme_name = "HTTPBearer"
        self._verify = verify
        self._missing = missing

    async def __call__(self, request: Request) -> Any:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise Unauthorized(self._missing)
        return self._verify(request.app.state.tokens, credentials.credentials)


class _OptionalViewer(HTTPBearer):
    """Who is asking on a public read, if anyone, as one dependency: the principal of a
    valid access token, else None. A missing, expired or bad token is never a 401 there:
    the storefront sends its stored token on every request and signs the shopper out on
    any 401. Still an `HTTPBearer`, so OpenAPI documents the scheme, as optional."""

    def __init__(self) -> None:
        super().__init__(auto_error=False, description=_BEARER_DESCRIPTION)
        self.scheme_name = "HTTPBearer"

    async def __call__(self, request: Request) -> Principal | None:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            return None
        try:
            return request.app.state.tokens.verify_access(credentials.credentials)  # type: ignore[no-any-return]
        except Unauthorized:
            return None


optional_viewer = _OptionalViewer()
access_bearer = _VerifiedBearer(TokenCodec.verify_access, None)
service_bearer = _VerifiedBearer(TokenCodec.verify_service, "Service credentials required")


async def current_principal(credentials: Credentials, tokens: Tokens) -> Principal:
    """For callers that already hold the credentials (products' optional admin checks)."""
    if credentials is None:
        raise Unauthorized()
    return tokens.verify_access(credentials.credentials)


async def admin_principal(principal: Annotated[Principal, Depends(access_bearer)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("Admin role required")
    return principal


async def internal_caller(credentials: Credentials, tokens: Tokens) -> str:
    if credentials is None:
        raise Unauthorized("Service credentials required")
    return tokens.verify_service(credentials.credentials)


CurrentUser = Annotated[Principal, Depends(access_bearer)]
# On a public read: the caller if signed in with a valid token, else None (never a 401).
Viewer = Annotated[Principal | None, Depends(optional_viewer)]
AdminUser = Annotated[Principal, Depends(admin_principal)]
InternalCaller = Annotated[str, Depends(service_bearer)]
