"""Server state machine: vm_state, task_state, power_state, the API status they map to, and allowed actions."""

from __future__ import annotations

from pocketstack.common.errors import Conflict

# vm_state
ACTIVE = "active"
BUILDING = "building"
PAUSED = "paused"
SUSPENDED = "suspended"
STOPPED = "stopped"
ERROR = "error"
DELETED = "deleted"
RESCUED = "rescued"
SHELVED = "shelved"  # powered off, its disk saved as an image, still on its host
SHELVED_OFFLOADED = "shelved_offloaded"  # on no host: only the image (and its ports, volumes) remain
RESIZED = "resized"  # moved (resized or migrated) to its new host, waiting for confirm or revert

# task_state
SCHEDULING = "scheduling"
BLOCK_DEVICE_MAPPING = "block_device_mapping"
NETWORKING = "networking"
SPAWNING = "spawning"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
REBOOTING = "rebooting"
REBOOTING_HARD = "rebooting_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
DELETING = "deleting"
IMAGE_SNAPSHOT_PENDING = "image_snapshot_pending"  # the API accepted a snapshot, its host has not begun it
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_BACKUP = "image_backup"
IMAGE_PENDING_UPLOAD = "image_pending_upload"  # the driver copies the disk
IMAGE_UPLOADING = "image_uploading"  # the copy streams to the image service
SHELVING = "shelving"
SHELVING_IMAGE_PENDING_UPLOAD = "shelving_image_pending_upload"
SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
SHELVING_OFFLOADING = "shelving_offloading"
UNSHELVING = "unshelving"
RESCUING = "rescuing"
UNRESCUING = "unrescuing"
REBUILDING = "rebuilding"
REBUILD_BLOCK_DEVICE_MAPPING = "rebuild_block_device_mapping"
REBUILD_SPAWNING = "rebuild_spawning"
RESIZE_PREP = "resize_prep"  # the API accepted a resize or migration; conductor and scheduler pick a host
RESIZE_MIGRATING = "resize_migrating"  # the source host powers the guest off and hands its disk over
RESIZE_MIGRATED = "resize_migrated"
RESIZE_FINISH = "resize_finish"  # the destination host starts the guest with the new flavor
RESIZE_REVERTING = "resize_reverting"
RESIZE_CONFIRMING = "resize_confirming"
RESIZE_TASKS = frozenset({RESIZE_PREP, RESIZE_MIGRATING, RESIZE_MIGRATED, RESIZE_FINISH})

# power_state (Nova's integer codes)
NOSTATE = 0
RUNNING = 1
PAUSED_POWER = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED_POWER = 7

POWER_STATE_NAMES = {NOSTATE: "NOSTATE", RUNNING: "Running", PAUSED_POWER: "Paused", SHUTDOWN: "Shutdown",
                     CRASHED: "Crashed", SUSPENDED_POWER: "Suspended"}

_STATUS_BY_VM_STATE = {
    ACTIVE: "ACTIVE", BUILDING: "BUILD", PAUSED: "PAUSED", SUSPENDED: "SUSPENDED", STOPPED: "SHUTOFF",
    ERROR: "ERROR", DELETED: "DELETED", RESCUED: "RESCUE", SHELVED: "SHELVED", SHELVED_OFFLOADED: "SHELVED_OFFLOADED",
    RESIZED: "VERIFY_RESIZE",
}
_STATUS_BY_TASK = {REBOOTING: "REBOOT", REBOOTING_HARD: "HARD_REBOOT"}
_REBUILD_TASKS = frozenset({REBUILDING, REBUILD_BLOCK_DEVICE_MAPPING, REBUILD_SPAWNING})


def api_status(vm_state: str, task_state: str | None) -> str:
    """The `status` field Nova shows for a vm_state/task_state pair."""
    if vm_state == ACTIVE and task_state in _STATUS_BY_TASK:
        return _STATUS_BY_TASK[task_state]
    if vm_state in (ACTIVE, STOPPED, ERROR) and task_state in _REBUILD_TASKS:
        return "REBUILD"
    if vm_state in (ACTIVE, STOPPED) and task_state in RESIZE_TASKS:
        return "RESIZE"
    if vm_state in (ACTIVE, RESIZED) and task_state == RESIZE_REVERTING:
        return "REVERT_RESIZE"
    return _STATUS_BY_VM_STATE.get(vm_state, "UNKNOWN")


# action -> (vm_states it may start from, task_state it sets, vm_states it may end in)
ACTIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "stop": (frozenset({ACTIVE, ERROR}), POWERING_OFF),
    "start": (frozenset({STOPPED}), POWERING_ON),
    "reboot": (frozenset({ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR}), REBOOTING),
    "reboot_hard": (frozenset({ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR}), REBOOTING_HARD),
    "pause": (frozenset({ACTIVE}), PAUSING),
    "unpause": (frozenset({PAUSED}), UNPAUSING),
    "suspend": (frozenset({ACTIVE}), SUSPENDING),
    "resume": (frozenset({SUSPENDED}), RESUMING),
    "createImage": (frozenset({ACTIVE, STOPPED, PAUSED, SUSPENDED}), IMAGE_SNAPSHOT_PENDING),
    "createBackup": (frozenset({ACTIVE, STOPPED, PAUSED, SUSPENDED}), IMAGE_BACKUP),
    "shelve": (frozenset({ACTIVE, STOPPED, PAUSED, SUSPENDED}), SHELVING),
    "shelveOffload": (frozenset({SHELVED}), SHELVING_OFFLOADING),
    "unshelve": (frozenset({SHELVED, SHELVED_OFFLOADED}), UNSHELVING),
    "rebuild": (frozenset({ACTIVE, STOPPED, ERROR}), REBUILDING),
    "rescue": (frozenset({ACTIVE, STOPPED, ERROR}), RESCUING),
    "unrescue": (frozenset({RESCUED}), UNRESCUING),
    "resize": (frozenset({ACTIVE, STOPPED}), RESIZE_PREP),
    "migrate": (frozenset({ACTIVE, STOPPED}), RESIZE_PREP),
    "confirmResize": (frozenset({RESIZED}), None),
    "revertResize": (frozenset({RESIZED}), RESIZE_REVERTING),
}


def check_action(action: str, uuid: str, vm_state: str, task_state: str | None) -> str | None:
    """Raise Conflict (Nova's InstanceInvalidState) unless `action` may start now; return the new task_state."""
    allowed, new_task = ACTIONS[action]
    if vm_state not in allowed or task_state is not None:
        name = action.replace("_hard", "")
        state = f"vm_state {vm_state}" if vm_state not in allowed else f"task_state {task_state}"
        raise Conflict(f"Cannot '{name}' instance {uuid} while it is in {state}")
    return new_task
