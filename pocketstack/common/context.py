"""The request context: who is calling, in which scope, under which global request id.

It travels with every hop: set by the auth middleware on HTTP requests, read by the REST clients (request id and
token on outgoing calls) and serialised into RPC messages.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any

REQUEST_ID_RE = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


@dataclass
class RequestContext:
    request_id: str = field(default_factory=new_request_id)
    auth_token: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    user_domain_id: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None  # set for domain-scoped tokens
    domain_name: str | None = None
    system_scope: str | None = None  # "all" for a system-scoped token
    roles: list[str] = field(default_factory=list)
    expires_at: str | None = None
    application_credential_id: str | None = None
    audit_id: str | None = None  # of the token used: links a request to the token's issue (FLOW.md 1-2)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    def policy_credentials(self) -> dict[str, Any]:
        """The attributes policy rules may test (`role:`, `project_id:`, `user_id:`, `domain_id:`)."""
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "domain_id": self.domain_id,
            "user_domain_id": self.user_domain_id,
            "project_domain_id": self.project_domain_id,
            "system_scope": self.system_scope,
            "roles": self.roles,
            "is_admin": self.is_admin,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestContext:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def __repr__(self) -> str:  # never print the token
        return (
            f"RequestContext(request_id={self.request_id!r}, user_id={self.user_id!r}, "
            f"project_id={self.project_id!r}, roles={self.roles!r})"
        )


current_context: ContextVar[RequestContext | None] = ContextVar("pocketstack_context", default=None)


def get_current() -> RequestContext | None:
    return current_context.get()
