"""User messages (`/messages`): what the user is told when an asynchronous operation fails."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.orm import Session

from pocketstack.common.context import get_current
from pocketstack.common.timeutils import utcnow
from pocketstack.volume import models as m

MESSAGE_TTL = timedelta(days=30)  # Cinder's message_ttl

# event ids as Cinder spells them: VOLUME_<resource>_<action>_<detail>
SCHEDULE_ALLOCATE_VOLUME = ("VOLUME_VOLUME_001_002", "schedule allocate volume")
CREATE_VOLUME = ("VOLUME_VOLUME_002_001", "create volume")
COPY_IMAGE_TO_VOLUME = ("VOLUME_VOLUME_003_002", "copy image to volume")
DELETE_VOLUME = ("VOLUME_VOLUME_005_001", "delete volume")
EXTEND_VOLUME = ("VOLUME_VOLUME_006_001", "extend volume")
CREATE_SNAPSHOT = ("VOLUME_SNAPSHOT_001_001", "create snapshot")
DELETE_SNAPSHOT = ("VOLUME_SNAPSHOT_002_001", "delete snapshot")
REVERT_VOLUME = ("VOLUME_VOLUME_009_001", "revert volume to snapshot")
COPY_VOLUME_TO_IMAGE = ("VOLUME_VOLUME_004_002", "copy volume to image")
UPDATE_ATTACHMENT = ("VOLUME_VOLUME_004_001", "update attachment")


def add(session: Session, project_id: str, resource_type: str, resource_uuid: str, event: tuple[str, str],
        detail: str) -> None:
    """Record a user message about a resource of a project."""
    ctx = get_current()
    now = utcnow()
    event_id, action = event
    session.add(m.Message(id=str(uuid.uuid4()), project_id=project_id, request_id=ctx.request_id if ctx else None,
                          resource_type=resource_type, resource_uuid=resource_uuid, event_id=event_id,
                          message_level="ERROR", user_message=f"{action}: {detail}", created_at=now,
                          expires_at=now + MESSAGE_TTL))
