"""Client secrets are stored only as scrypt hashes (memory-hard, in the standard library)."""

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
_DUMMY_HASH: str | None = None


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str | None) -> bool:
    """Constant-time check; with no stored hash it still spends the same work, then says no."""
    global _DUMMY_HASH
    if stored is None:
        _DUMMY_HASH = _DUMMY_HASH or hash_secret(new_secret())
        verify_secret(secret, _DUMMY_HASH)
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
