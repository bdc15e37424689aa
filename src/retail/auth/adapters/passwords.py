"""bcrypt, used directly (passlib is unmaintained), always in a worker thread: a hash at
cost 12 takes about a quarter second, which would stall every request on the event loop."""

from __future__ import annotations

from functools import partial

import anyio.to_thread
import bcrypt

from retail.auth.domain import MAX_PASSWORD_BYTES

# 31 characters of bcrypt's base64 alphabet: the length and form of a digest.
_DUMMY_DIGEST = b"." * 31


class BcryptHasher:
    def __init__(self, rounds: int, dummy_hash: bytes) -> None:
        self._rounds = rounds
        self._dummy_hash = dummy_hash

    @classmethod
    async def create(cls, rounds: int) -> BcryptHasher:
        """With a dummy hash of the same cost, for logins of unknown emails. Checking a
        password against a hash costs what the hash's cost field says, whatever its digest,
        so the dummy is a fresh salt of this cost and a made-up digest: nothing is hashed
        at start (at cost 12 that was a quarter second of CPU before auth could serve).
        `verify` never answers True for the dummy, whatever the digest."""
        return cls(rounds, bcrypt.gensalt(rounds) + _DUMMY_DIGEST)

    async def hash(self, password: str) -> str:
        encoded = password.encode()
        if len(encoded) > MAX_PASSWORD_BYTES:  # bcrypt would refuse; callers validate first
            raise ValueError(f"password longer than {MAX_PASSWORD_BYTES} bytes")
        return (await _hashpw(encoded, self._rounds)).decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        encoded = password.encode()
        # No account, an impossible password or a damaged hash: spend the same time on the
        # dummy, so the answer's timing does not tell which.
        usable = password_hash is not None and len(encoded) <= MAX_PASSWORD_BYTES
        candidate = password_hash.encode() if usable and password_hash else self._dummy_hash
        try:
            matches = await _checkpw(encoded[:MAX_PASSWORD_BYTES], candidate)
        except ValueError:
            await _checkpw(encoded[:MAX_PASSWORD_BYTES], self._dummy_hash)
            return False
        return usable and matches

    def needs_rehash(self, password_hash: str) -> bool:
        # "$2b$12$<salt+hash>": the cost is the third field.
        parts = password_hash.split("$")
        return len(parts) < 4 or parts[2] != f"{self._rounds:02d}"


async def _hashpw(password: bytes, rounds: int) -> bytes:
    return await anyio.to_thread.run_sync(partial(bcrypt.hashpw, password, bcrypt.gensalt(rounds)))


async def _checkpw(password: bytes, password_hash: bytes) -> bool:
    return await anyio.to_thread.run_sync(bcrypt.checkpw, password, password_hash)
