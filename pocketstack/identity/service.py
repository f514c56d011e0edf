"""Identity logic (no HTTP here): authentication, token issue/validation/revocation, and the auth context.

Validation is the hot path of the whole cloud (every request to every service is validated once per cache TTL),
so the result of the database work -- user, scope, effective roles, catalog -- is cached per (user, scope) for
`auth.cache_ttl` seconds and dropped at once on any local identity write; revocation events are kept in memory
and reloaded at most every `identity.revocation_refresh` seconds, so other identity workers see them too.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bcrypt
from cryptography.fernet import InvalidToken
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.cache import MemoryCache
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Forbidden, NotFound, Unauthorized
from pocketstack.common.policy import PolicyEngine
from pocketstack.common.timeutils import utcnow
from pocketstack.identity import models as m
from pocketstack.identity.policies import IDENTITY_POLICIES
from pocketstack.identity.store.catalog import token_catalog
from pocketstack.identity.store.roles import effective_role_ids, implied_closure
from pocketstack.identity.store.trusts import consume_trust, trust_in_force, trust_role_ids
from pocketstack.identity.tokens import SYSTEM_ALL, KeyRepository, TokenPayload, TokenProvider, new_audit_id
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.identity")

DEFAULT_DOMAIN_ID = "default"


@dataclass(frozen=True)
class Scope:
    """What a token request asks to be scoped to (nothing: unscoped)."""

    project_id: str | None = None
    domain_id: str | None = None
    system: str | None = None
    trust: m.Trust | None = None


def new_id() -> str:
    return uuid.uuid4().hex


def isotime(ts: float | datetime | None) -> str | None:
    """Keystone's timestamp format: 2026-01-01T00:00:00.000000Z."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, UTC) if isinstance(ts, float | int) else ts
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class IdentityManager:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        key_dir = settings.identity.key_repository or settings.data_dir / "fernet-keys"
        self.keys = KeyRepository(Path(key_dir), settings.identity.max_active_keys)
        self.tokens = TokenProvider(self.keys)
        cred_dir = settings.identity.credential_key_repository or settings.data_dir / "credential-keys"
        self.credential_keys = KeyRepository(Path(cred_dir), settings.identity.max_active_keys)
        self.policy = PolicyEngine(IDENTITY_POLICIES, settings.policy_file)
        self.bcrypt_rounds = settings.identity.bcrypt_rounds
        self.token_ttl = settings.identity.token_expiration
        self._auth_cache = MemoryCache(settings.auth.cache_size)
        self._auth_cache_ttl = settings.auth.cache_ttl
        self._generation = 0
        self._revocations: list[m.RevocationEvent] = []
        self._revocations_loaded = 0.0
        self._revocations_lock = asyncio.Lock()

    # ----- secrets -----------------------------------------------------------------------------------------
    async def hash_secret(self, secret: str) -> str:
        data = secret.encode()
        if len(data) > 72:  # bcrypt ignores bytes past 72; refuse rather than silently truncate
            raise BadRequest("Invalid input: the password is longer than 72 bytes.")
        salt = bcrypt.gensalt(self.bcrypt_rounds)
        return (await asyncio.to_thread(bcrypt.hashpw, data, salt)).decode()

    async def check_secret(self, secret: str, hashed: str | None) -> bool:
        if not hashed:
            return False
        data = secret.encode()
        if len(data) > 72:
            return False
        return await asyncio.to_thread(bcrypt.checkpw, data, hashed.encode())

    def encrypt_blob(self, blob: str) -> str:
        """A credential's blob as it is stored: encrypted with the primary credential key."""
        return self.credential_keys.fernet().encrypt(blob.encode()).decode()

    def decrypt_blob(self, stored: str) -> str:
        try:
            return self.credential_keys.fernet().decrypt(stored.encode()).decode()
        except InvalidToken:
            raise Unauthorized("The credential cannot be decrypted with the credential keys.") from None

    # ----- cache invalidation ------------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Called after every identity write: cached auth contexts are recomputed."""
        self._generation += 1
        self._auth_cache.clear()

    async def add_revocation(self, session: AsyncSession, **match: str | None) -> None:
        now = time.time()
        session.add(m.RevocationEvent(issued_before=now, expires_at=now + self.token_ttl + 60, **match))
        self._revocations_loaded = 0.0  # reload on next validation
        self.invalidate()

    async def _current_revocations(self) -> list[m.RevocationEvent]:
        now = time.monotonic()
        if now - self._revocations_loaded < self.settings.identity.revocation_refresh:
            return self._revocations
        async with self._revocations_lock:
            if time.monotonic() - self._revocations_loaded < self.settings.identity.revocation_refresh:
                return self._revocations
            async def read(session: AsyncSession) -> list[m.RevocationEvent]:
                return list((await session.scalars(
                    select(m.RevocationEvent).where(m.RevocationEvent.expires_at > time.time()))).all())
            self._revocations = await self.db.run(read, write=False)
            self._revocations_loaded = time.monotonic()
        return self._revocations

    async def purge_expired_revocations(self) -> int:
        async def purge(session: AsyncSession) -> int:
            result = await session.execute(
                delete(m.RevocationEvent).where(m.RevocationEvent.expires_at <= time.time()))
            return result.rowcount or 0  # type: ignore[attr-defined]
        return await self.db.run(purge, write=True)

    @staticmethod
    def _revoked_by(event: m.RevocationEvent, payload: TokenPayload, domains: set[str]) -> bool:
        if payload.issued_at > event.issued_before:
            return False
        if event.user_id is not None and event.user_id != payload.user_id:
            return False
        if event.project_id is not None and event.project_id != payload.project_id:
            return False
        if event.domain_id is not None and event.domain_id not in domains:
            return False
        if event.audit_id is not None and event.audit_id not in payload.audit_ids:
            return False
        return not (event.application_credential_id is not None
                    and event.application_credential_id != payload.application_credential_id)

    # ----- authentication ----------------------------------------------------------------------------------
    async def _find_domain(self, session: AsyncSession, ref: dict[str, Any] | None) -> m.Domain:
        if not isinstance(ref, dict) or not (ref.get("id") or ref.get("name")):
            raise BadRequest("Invalid input: a domain needs an 'id' or a 'name'.")
        if ref.get("id"):
            domain = await session.get(m.Domain, str(ref["id"]))
        else:
            domain = await session.scalar(select(m.Domain).where(m.Domain.name == str(ref["name"])))
        if domain is None:
            raise Unauthorized("Could not find the domain.")
        return domain

    async def _find_user(self, session: AsyncSession, ref: dict[str, Any]) -> m.User:
        if not isinstance(ref, dict):
            raise BadRequest("Invalid input: 'user' must be an object.")
        if ref.get("id"):
            user = await session.get(m.User, str(ref["id"]))
        elif ref.get("name"):
            if "domain" not in ref:
                raise BadRequest("Invalid input: a user given by name needs its 'domain' (id or name).")
            domain = await self._find_domain(session, ref.get("domain"))
            user = await session.scalar(select(m.User).where(
                m.User.name == str(ref["name"]), m.User.domain_id == domain.id))
        else:
            raise BadRequest("Invalid input: 'user' needs an 'id' or a 'name'.")
        if user is None:
            raise Unauthorized()
        return user

    async def _resolve_scope(self, session: AsyncSession, scope: Any) -> Scope:
        """The project, domain, system or trust an auth request's `scope` names."""
        if scope is None or scope == "unscoped":
            return Scope()
        if not isinstance(scope, dict):
            raise BadRequest("Invalid input: 'scope' must be an object.")
        if len([k for k in ("project", "domain", "system", "OS-TRUST:trust") if k in scope]) > 1:
            raise BadRequest("Invalid input: 'scope' names more than one of project, domain, system and trust.")
        if "project" in scope:
            ref = scope["project"]
            if not isinstance(ref, dict):
                raise BadRequest("Invalid input: 'scope.project' must be an object.")
            if ref.get("id"):
                project = await session.get(m.Project, str(ref["id"]))
            elif ref.get("name"):
                if "domain" not in ref:
                    raise BadRequest("Invalid input: a project given by name needs its 'domain'.")
                domain = await self._find_domain(session, ref["domain"])
                project = await session.scalar(select(m.Project).where(
                    m.Project.name == str(ref["name"]), m.Project.domain_id == domain.id))
            else:
                raise BadRequest("Invalid input: 'scope.project' needs an 'id' or a 'name'.")
            if project is None:
                raise Unauthorized("Could not find the project to scope to.")
            return Scope(project_id=project.id)
        if "domain" in scope:
            domain = await self._find_domain(session, scope["domain"])
            return Scope(domain_id=domain.id)
        if "system" in scope:
            if scope["system"] != {"all": True}:
                raise BadRequest("Invalid input: 'scope.system' must be {\"all\": true}.")
            return Scope(system=SYSTEM_ALL)
        if "OS-TRUST:trust" in scope:
            ref = scope["OS-TRUST:trust"]
            if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
                raise BadRequest("Invalid input: 'scope.OS-TRUST:trust' needs an 'id'.")
            trust = await session.get(m.Trust, ref["id"])
            if trust is None:
                raise NotFound(f"Could not find trust: {ref['id']}.")
            return Scope(trust=trust)
        raise BadRequest("Invalid input: 'scope' must name a project, a domain, the system or a trust.")

    def _scoped_payload(self, user_id: str, methods: list[str], now: float, expires: float, audit_ids: list[str],
                        scope: Scope) -> TokenPayload:
        """A token's payload for `scope`; a trust scope makes the token the trustor's when it impersonates."""
        trust = scope.trust
        if trust is not None:
            if trust.trustee_user_id != user_id:
                raise Forbidden("The user is not the trustee of the trust.")
            if trust.expires_at is not None:
                expires = min(expires, trust.expires_at.replace(tzinfo=UTC).timestamp())
            return TokenPayload(user_id=trust.trustor_user_id if trust.impersonation else user_id,
                                methods=methods, issued_at=now, expires_at=expires, audit_ids=audit_ids,
                                project_id=trust.project_id, trust_id=trust.id)
        return TokenPayload(user_id=user_id, methods=methods, issued_at=now, expires_at=expires, audit_ids=audit_ids,
                            project_id=scope.project_id, domain_id=scope.domain_id, system=scope.system)

    async def authenticate(self, auth: Any) -> TokenPayload:
        """Check an `auth` request body (password, token or application_credential) and return the payload."""
        if not isinstance(auth, dict) or not isinstance(auth.get("identity"), dict):
            raise BadRequest("Invalid input: 'auth.identity' is required.")
        identity = auth["identity"]
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods or not all(isinstance(x, str) for x in methods):
            raise BadRequest("Invalid input: 'auth.identity.methods' must be a non-empty list of strings.")
        if len(methods) != 1:
            raise Unauthorized("Exactly one authentication method is supported per request.")
        method = methods[0]
        if method not in identity or not isinstance(identity[method], dict):
            raise BadRequest(f"Invalid input: 'auth.identity.{method}' is required.")
        now = time.time()

        async def check(session: AsyncSession) -> TokenPayload:
            requested = await self._resolve_scope(session, auth.get("scope"))
            if requested.trust is not None:
                await consume_trust(session, requested.trust)
            if method == "password":
                user = await self._find_user(session, identity["password"].get("user"))
                password = identity["password"]["user"].get("password")
                if not isinstance(password, str):
                    raise BadRequest("Invalid input: 'password.user.password' is required.")
                if not await self.check_secret(password, user.password_hash):
                    log.info("password authentication failed for user %s", user.id)
                    raise Unauthorized()
                await self._check_user_usable(session, user)
                if auth.get("scope") is None and user.default_project_id:
                    project = await session.get(m.Project, user.default_project_id)
                    if project and project.enabled and await effective_role_ids(
                            session, user.id, project_id=project.id):
                        requested = Scope(project_id=project.id)
                payload = self._scoped_payload(user.id, ["password"], now, now + self.token_ttl, [new_audit_id()],
                                               requested)
            elif method == "token":
                token_id = identity["token"].get("id")
                if not isinstance(token_id, str):
                    raise BadRequest("Invalid input: 'token.id' is required.")
                parent = await self.validate_payload(token_id)
                if parent.application_credential_id:
                    raise Forbidden("A token created from an application credential cannot be rescoped.")
                if parent.trust_id:
                    raise Forbidden("A trust-scoped token cannot be rescoped.")
                payload = self._scoped_payload(parent.user_id, sorted({*parent.methods, "token"}), now,
                                               parent.expires_at, [new_audit_id(), parent.audit_ids[-1]], requested)
            elif method == "application_credential":
                payload = await self._authenticate_app_cred(session, identity["application_credential"],
                                                            requested, now)
            else:
                raise Unauthorized(f"Unsupported authentication method: {method}.")
            return payload
        scope = auth.get("scope")
        uses_trust = isinstance(scope, dict) and "OS-TRUST:trust" in scope  # a trust's remaining uses count down
        payload = await self.db.run(check, write=uses_trust)
        await self.auth_context(payload)  # checks the scope: enabled, roles present
        return payload

    async def _authenticate_app_cred(self, session: AsyncSession, ref: dict[str, Any],
                                     requested: Scope, now: float) -> TokenPayload:
        secret = ref.get("secret")
        if not isinstance(secret, str):
            raise BadRequest("Invalid input: 'application_credential.secret' is required.")
        if ref.get("id"):
            cred = await session.get(m.ApplicationCredential, str(ref["id"]))
        elif ref.get("name") and ref.get("user"):
            user = await self._find_user(session, ref["user"])
            cred = await session.scalar(select(m.ApplicationCredential).where(
                m.ApplicationCredential.user_id == user.id, m.ApplicationCredential.name == str(ref["name"])))
        else:
            raise BadRequest("Invalid input: 'application_credential' needs an 'id', or a 'name' and 'user'.")
        if cred is None or not await self.check_secret(secret, cred.secret_hash):
            raise Unauthorized()
        if cred.expires_at is not None and cred.expires_at <= utcnow():
            raise Unauthorized("The application credential has expired.")
        if requested != Scope() and requested != Scope(project_id=cred.project_id):
            raise Unauthorized("An application credential token is scoped to the credential's project only.")
        expires = now + self.token_ttl
        if cred.expires_at is not None:
            expires = min(expires, cred.expires_at.replace(tzinfo=UTC).timestamp())
        return TokenPayload(user_id=cred.user_id, methods=["application_credential"], issued_at=now,
                            expires_at=expires, audit_ids=[new_audit_id()], project_id=cred.project_id,
                            application_credential_id=cred.id)

    async def _check_user_usable(self, session: AsyncSession, user: m.User) -> None:
        domain = await session.get(m.Domain, user.domain_id)
        if not user.enabled or domain is None or not domain.enabled:
            raise Unauthorized("The user or its domain is disabled.")

    # ----- validation ----------------------------------------------------------------------------------------
    async def validate_payload(self, token: str, *, allow_expired: bool = False) -> TokenPayload:
        payload = self.tokens.decode(token)
        if not allow_expired and payload.expires_at <= time.time():
            raise NotFound("The token has expired.")
        return payload

    async def auth_context(self, payload: TokenPayload) -> dict[str, Any]:
        """User, scope and roles for a token, checked against the current state (cached per user and scope)."""
        key = (f"{payload.user_id}|{payload.project_id}|{payload.domain_id}|{payload.application_credential_id}|"
               f"{payload.system}|{payload.trust_id}")
        cached = self._auth_cache.get_now(key)
        if cached is None:
            generation = self._generation
            cached = await self._load_auth_context(payload)
            if generation == self._generation:
                self._auth_cache.set_now(key, cached, self._auth_cache_ttl)
        return cached

    async def _load_auth_context(self, payload: TokenPayload) -> dict[str, Any]:
        async def load(session: AsyncSession) -> dict[str, Any]:
            return await self._auth_context_of(session, payload)
        return await self.db.run(load, write=False)

    async def _auth_context_of(self, session: AsyncSession, payload: TokenPayload) -> dict[str, Any]:
        user = await session.get(m.User, payload.user_id)
        if user is None:
            raise Unauthorized("The user of the token no longer exists.")
        await self._check_user_usable(session, user)
        user_domain = await session.get(m.Domain, user.domain_id)
        ctx: dict[str, Any] = {
            "user": {"id": user.id, "name": user.name, "password_expires_at": None,
                     "domain": {"id": user_domain.id, "name": user_domain.name}},
            "domains": [user.domain_id],
        }
        role_ids: set[str] = set()
        trust = await trust_in_force(session, payload.trust_id) if payload.trust_id else None
        if trust is not None:
            ctx["OS-TRUST:trust"] = {"id": trust.id, "impersonation": trust.impersonation,
                                     "trustee_user": {"id": trust.trustee_user_id},
                                     "trustor_user": {"id": trust.trustor_user_id}}
        if payload.project_id:
            project = await session.get(m.Project, payload.project_id)
            if project is None or not project.enabled:
                raise Unauthorized("The project of the token is disabled or does not exist.")
            pdomain = await session.get(m.Domain, project.domain_id)
            if pdomain is None or not pdomain.enabled:
                raise Unauthorized("The domain of the project is disabled.")
            ctx["project"] = {"id": project.id, "name": project.name,
                              "domain": {"id": pdomain.id, "name": pdomain.name}}
            ctx["domains"].append(pdomain.id)
            if trust is not None:
                role_ids = await trust_role_ids(session, trust)
                if not role_ids:
                    raise Unauthorized("The trustor no longer holds the roles the trust delegates.")
            else:
                role_ids = await effective_role_ids(session, user.id, project_id=project.id)
            if not role_ids:
                raise Unauthorized(f"User {user.id} has no access to project {project.id}.")
        elif payload.domain_id:
            domain = await session.get(m.Domain, payload.domain_id)
            if domain is None or not domain.enabled:
                raise Unauthorized("The domain of the token is disabled or does not exist.")
            ctx["domain"] = {"id": domain.id, "name": domain.name}
            ctx["domains"].append(domain.id)
            role_ids = await effective_role_ids(session, user.id, domain_id=domain.id)
            if not role_ids:
                raise Unauthorized(f"User {user.id} has no access to domain {domain.id}.")
        elif payload.system:
            ctx["system"] = {"all": True}
            role_ids = await effective_role_ids(session, user.id, system=True)
            if not role_ids:
                raise Unauthorized(f"User {user.id} has no role on the system.")
        if payload.application_credential_id:
            cred = await session.get(m.ApplicationCredential, payload.application_credential_id)
            if cred is None:
                raise Unauthorized("The application credential no longer exists.")
            delegated = {r["id"] for r in cred.roles}
            role_ids = await implied_closure(session, role_ids & delegated)
            if not role_ids:
                raise Unauthorized("The application credential's roles are no longer held by the user.")
            ctx["application_credential"] = {"id": cred.id, "name": cred.name,
                                             "restricted": not cred.unrestricted}
        if role_ids:
            roles = (await session.scalars(select(m.Role).where(m.Role.id.in_(role_ids)))).all()
            ctx["roles"] = sorted(({"id": r.id, "name": r.name} for r in roles), key=lambda r: r["name"])
        if payload.project_id or payload.domain_id or payload.system:
            ctx["catalog"] = await token_catalog(session, payload.project_id)
        return ctx

    async def validate(self, token: str, *, allow_expired: bool = False) -> tuple[TokenPayload, dict[str, Any]]:
        """Full validation: signature, expiry, revocation, and the current state of user and scope."""
        payload = await self.validate_payload(token, allow_expired=allow_expired)
        ctx = await self.auth_context(payload)
        events = await self._current_revocations()
        if events:
            domains = set(ctx["domains"])
            if any(self._revoked_by(e, payload, domains) for e in events):
                raise NotFound("The token has been revoked.")
        return payload, ctx

    def token_body(self, payload: TokenPayload, ctx: dict[str, Any], *, catalog: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "methods": payload.methods, "user": ctx["user"], "audit_ids": payload.audit_ids,
            "expires_at": isotime(payload.expires_at), "issued_at": isotime(payload.issued_at),
        }
        if "project" in ctx:
            body["project"] = ctx["project"]
            body["is_domain"] = False
        if "domain" in ctx:
            body["domain"] = ctx["domain"]
        if "system" in ctx:
            body["system"] = ctx["system"]
        if "OS-TRUST:trust" in ctx:
            body["OS-TRUST:trust"] = ctx["OS-TRUST:trust"]
        if "roles" in ctx:
            body["roles"] = ctx["roles"]
        if "application_credential" in ctx:
            body["application_credential"] = ctx["application_credential"]
        if catalog and "catalog" in ctx:
            body["catalog"] = ctx["catalog"]
        return body

    async def revoke_token(self, payload: TokenPayload) -> None:
        async def revoke(session: AsyncSession) -> None:
            await self.add_revocation(session, audit_id=payload.audit_ids[0])
        await self.db.run(revoke, write=True)
