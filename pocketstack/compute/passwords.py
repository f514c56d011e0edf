"""Server passwords: the `adminPass` Nova generates for a build, sealed for the guest, and the guest's own
encrypted password (`os-server-password`).

The API returns a generated `adminPass` once and keeps it only sealed (Fernet, with a key derived from the
metadata proxy's shared secret): the metadata service and the conductor (for the config drive) unseal it to hand
it to the guest as Nova's `admin_pass` in `meta_data.json`. A guest may post its password, encrypted with its key
pair's public key, to the metadata service once (Nova's 256-character `password` document); the owner reads it
with `GET /servers/{id}/os-server-password` and clears it with `DELETE`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets

from cryptography.fernet import Fernet, InvalidToken

from pocketstack.common.config import CoreSettings
from pocketstack.common.service import shared_secret
from pocketstack.compute.spec import METADATA_SECRET_KEY

log = logging.getLogger("pocketstack.compute.passwords")

# Nova's generate_password: letters and digits without the ones that are easy to confuse (0/O, 1/l/I)
PASSWORD_SYMBOLS = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
PASSWORD_LENGTH = 12
GUEST_PASSWORD_MAX = 256  # the metadata service's limit on a posted password (Nova's MAX_SIZE)


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password as Nova makes one (at least one lower, one upper case letter and one digit)."""
    groups = ("23456789", "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz")
    chars = [secrets.choice(group) for group in groups]
    chars += [secrets.choice(PASSWORD_SYMBOLS) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


class PasswordSeal:
    """Seals and unseals admin passwords with a key only the compute family knows."""

    def __init__(self, secret: str) -> None:
        key = hashlib.sha256(b"pocketstack admin_pass:" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    @classmethod
    def from_settings(cls, settings: CoreSettings) -> PasswordSeal | None:
        """The seal of this cloud; None (passwords are then not kept for the guest) without a shared secret."""
        try:
            return cls(shared_secret(settings, "metadata", METADATA_SECRET_KEY))
        except RuntimeError as exc:
            log.warning("admin passwords cannot reach guests: %s", exc)
            return None

    def seal(self, password: str) -> str:
        return self._fernet.encrypt(password.encode()).decode()

    def unseal(self, sealed: str | None) -> str | None:
        if not sealed:
            return None
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            log.warning("an admin password could not be unsealed (was the shared secret changed?)")
            return None
