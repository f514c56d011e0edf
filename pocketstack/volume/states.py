"""Volume, attachment and snapshot statuses as Cinder has them, and the transitions the API allows."""

from __future__ import annotations

from pocketstack.common.errors import BadRequest

# volume status
CREATING = "creating"
AVAILABLE = "available"
RESERVED = "reserved"
ATTACHING = "attaching"
IN_USE = "in-use"
DETACHING = "detaching"
DELETING = "deleting"
EXTENDING = "extending"
RETYPING = "retyping"
REVERTING = "reverting"
AWAITING_TRANSFER = "awaiting-transfer"
UPLOADING = "uploading"  # being copied to a new image
ERROR = "error"
ERROR_DELETING = "error_deleting"
ERROR_EXTENDING = "error_extending"
MAINTENANCE = "maintenance"

VOLUME_STATUSES = (CREATING, AVAILABLE, RESERVED, ATTACHING, IN_USE, DETACHING, DELETING, EXTENDING, RETYPING,
                   REVERTING, AWAITING_TRANSFER, UPLOADING, ERROR, ERROR_DELETING, ERROR_EXTENDING, MAINTENANCE)

# attach_status of a volume and of an attachment
DETACHED = "detached"
ATTACHED = "attached"
ATTACH_RESERVED = "reserved"
ATTACH_ATTACHING = "attaching"
ATTACH_DETACHING = "detaching"
ERROR_ATTACHING = "error_attaching"
ERROR_DETACHING = "error_detaching"
ATTACH_STATUSES = (DETACHED, ATTACHED, ATTACH_RESERVED, ATTACH_ATTACHING, ATTACH_DETACHING, ERROR_ATTACHING,
                   ERROR_DETACHING)

# snapshot status (creating, available, deleting, error, error_deleting as for volumes)
RESTORING = "restoring"  # the volume is being reverted to it
SNAPSHOT_STATUSES = (CREATING, AVAILABLE, DELETING, RESTORING, ERROR, ERROR_DELETING)


def require(action: str, kind: str, ident: str, status: str, allowed: tuple[str, ...]) -> None:
    """Cinder's InvalidVolume (400) unless `status` is one of `allowed`."""
    if status not in allowed:
        wanted = " or ".join(allowed)
        raise BadRequest(f"Invalid {kind}: {kind.capitalize()} {ident} status must be {wanted} to {action}, but "
                         f"current status is: {status}.")
