"""Client secrets are stored only as scrypt hashes (memory-hard, in the standard library).

scrypt costs about 16 MiB and 50 ms of CPU per call, by design. Run on the event loop, a burst
of token requests stalled every other request of the process; so it runs on worker threads
(hashlib releases the GIL), at most `auth_hash_concurrency` at a time per process through one
CapacityLimiter, which also bounds the memory a flood of guesses can take.
"""

import base64
import functools
import hashlib
import hmac
import secrets

import anyio
from anyio import CapacityLimiter

_N, _R, _P = 2**14, 8, 1


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _hash_now(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


@functools.cache
def _dummy_hash() -> str:
    return _hash_now(new_secret())


def _verify_now(secret: str, stored: str | None) -> bool:
    if stored is None:
        _verify_now(secret, _dummy_hash())
        return False
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            secret.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(base64.b64decode(expected)),
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


async def hash_secret(secret: str, *, limiter: CapacityLimiter | None) -> str:
    """The stored form of a new secret; `limiter=None` uses anyio's default (CLI, scripts)."""
    return await anyio.to_thread.run_sync(_hash_now, secret, limiter=limiter)


async def verify_secret(
    secret: str, stored: str | None, *, limiter: CapacityLimiter | None
) -> bool:
    """Constant-time check; with no stored hash it still spends the same work, then says no."""
    return await anyio.to_thread.run_sync(_verify_now, secret, stored, limiter=limiter)
