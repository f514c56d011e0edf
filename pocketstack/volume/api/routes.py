"""The block storage API's URL map (Cinder v3): path -> method -> handler, in match order. Every route but the
version documents is under `/v3/{project_id}`, whose project the service app checks against the token's."""

from __future__ import annotations

from pocketstack.common.routes import RouteTable
from pocketstack.volume.api import (
    attachments,
    default_types,
    hosts,
    limits,
    messages,
    services,
    snapshots,
    transfers,
    types,
    versions,
    volume_actions,
    volumes,
)

PROJECT = "/v3/{project_id}"

ROUTES: RouteTable = {
    "/": {"GET": versions.versions},
    "/v3": {"GET": versions.version_v3},
    "/v3/": {"GET": versions.version_v3},
    f"{PROJECT}/volumes": {"POST": volumes.create_volume, "GET": volumes.list_volumes},
    f"{PROJECT}/volumes/": {"GET": volumes.no_volume_id, "PUT": volumes.no_volume_id,
                              "DELETE": volumes.no_volume_id},
    f"{PROJECT}/volumes/detail": {"GET": volumes.list_volumes_detail},
    f"{PROJECT}/volumes/summary": {"GET": volumes.volumes_summary},
    f"{PROJECT}/volumes/{{volume_id}}": {
        "GET": volumes.show_volume,
        "PUT": volumes.update_volume,
        "DELETE": volumes.delete_volume,
    },
    f"{PROJECT}/volumes/{{volume_id}}/metadata": {
        "GET": volumes.get_metadata,
        "POST": volumes.create_metadata,
        "PUT": volumes.replace_metadata,
    },
    f"{PROJECT}/volumes/{{volume_id}}/metadata/{{key}}": {
        "GET": volumes.get_metadata_item,
        "PUT": volumes.set_metadata_item,
        "DELETE": volumes.delete_metadata_item,
    },
    f"{PROJECT}/volumes/{{volume_id}}/action": {"POST": volume_actions.volume_action},
    f"{PROJECT}/snapshots": {"POST": snapshots.create_snapshot, "GET": snapshots.list_snapshots},
    f"{PROJECT}/snapshots/detail": {"GET": snapshots.list_snapshots_detail},
    f"{PROJECT}/snapshots/{{snapshot_id}}": {
        "GET": snapshots.show_snapshot,
        "PUT": snapshots.update_snapshot,
        "DELETE": snapshots.delete_snapshot,
    },
    f"{PROJECT}/snapshots/{{snapshot_id}}/action": {"POST": snapshots.snapshot_action},
    f"{PROJECT}/snapshots/{{snapshot_id}}/metadata": {
        "GET": snapshots.get_metadata,
        "POST": snapshots.create_metadata,
        "PUT": snapshots.replace_metadata,
    },
    f"{PROJECT}/snapshots/{{snapshot_id}}/metadata/{{key}}": {
        "GET": snapshots.get_metadata_item,
        "PUT": snapshots.set_metadata_item,
        "DELETE": snapshots.delete_metadata_item,
    },
    f"{PROJECT}/types": {"GET": types.list_types, "POST": types.create_type},
    f"{PROJECT}/types/{{type_id}}": {"GET": types.show_type, "PUT": types.update_type, "DELETE": types.delete_type},
    f"{PROJECT}/types/{{type_id}}/extra_specs": {"GET": types.list_specs, "POST": types.create_specs},
    f"{PROJECT}/types/{{type_id}}/extra_specs/{{key}}": {
        "GET": types.show_spec,
        "PUT": types.update_spec,
        "DELETE": types.delete_spec,
    },
    f"{PROJECT}/types/{{type_id}}/os-volume-type-access": {"GET": types.list_access},
    f"{PROJECT}/types/{{type_id}}/action": {"POST": types.type_action},
    f"{PROJECT}/attachments": {"POST": attachments.create_attachment, "GET": attachments.list_attachments},
    f"{PROJECT}/attachments/detail": {"GET": attachments.list_attachments_detail},
    f"{PROJECT}/attachments/{{attachment_id}}": {
        "GET": attachments.show_attachment,
        "PUT": attachments.update_attachment,
        "DELETE": attachments.delete_attachment,
    },
    f"{PROJECT}/attachments/{{attachment_id}}/action": {"POST": attachments.attachment_action},
    f"{PROJECT}/os-volume-transfer": {"POST": transfers.create_transfer, "GET": transfers.list_transfers},
    f"{PROJECT}/volume-transfers": {"POST": transfers.create_transfer, "GET": transfers.list_transfers},
    f"{PROJECT}/os-volume-transfer/detail": {"GET": transfers.list_transfers_detail},
    f"{PROJECT}/volume-transfers/detail": {"GET": transfers.list_transfers_detail},
    f"{PROJECT}/os-volume-transfer/{{transfer_id}}": {
        "GET": transfers.show_transfer,
        "DELETE": transfers.delete_transfer,
    },
    f"{PROJECT}/volume-transfers/{{transfer_id}}": {
        "GET": transfers.show_transfer,
        "DELETE": transfers.delete_transfer,
    },
    f"{PROJECT}/os-volume-transfer/{{transfer_id}}/accept": {"POST": transfers.accept_transfer},
    f"{PROJECT}/volume-transfers/{{transfer_id}}/accept": {"POST": transfers.accept_transfer},
    f"{PROJECT}/default-types/{{target}}": {
        "PUT": default_types.set_default,
        "GET": default_types.show_default,
        "DELETE": default_types.unset_default,
    },
    f"{PROJECT}/default-types": {"GET": default_types.list_defaults},
    f"{PROJECT}/os-quota-sets/{{target}}/defaults": {"GET": limits.quota_defaults},
    f"{PROJECT}/os-quota-sets/{{target}}": {
        "GET": limits.show_quota,
        "PUT": limits.update_quota,
        "DELETE": limits.delete_quota,
    },
    f"{PROJECT}/limits": {"GET": limits.limits},
    f"{PROJECT}/messages": {"GET": messages.list_messages},
    f"{PROJECT}/messages/{{message_id}}": {"GET": messages.show_message, "DELETE": messages.delete_message},
    f"{PROJECT}/os-services": {"GET": services.list_services},
    f"{PROJECT}/os-services/{{action}}": {"PUT": services.update_service},
    f"{PROJECT}/scheduler-stats/get_pools": {"GET": services.get_pools},
    f"{PROJECT}/capabilities/{{host}}": {"GET": services.capabilities},
    f"{PROJECT}/os-availability-zone": {"GET": services.availability_zones},
    f"{PROJECT}/os-hosts": {"GET": hosts.list_hosts},
    f"{PROJECT}/os-hosts/{{host}}": {"GET": hosts.show_host},
    f"{PROJECT}/extensions": {"GET": hosts.list_extensions},
}
