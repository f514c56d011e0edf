"""Default policy rules of the block storage API (Cinder's action names; overridable by `policy_file`).

Targets carry the resource's `project_id`. Which resources a caller sees at all (its project's, or every
project's for admins asking with `all_tenants`) is decided by the queries; these rules decide what it may do.
"""

ADMIN = "rule:admin_required"
MEMBER = "rule:admin_required or (role:member and project_id:%(project_id)s)"
READER = "rule:admin_required or (role:reader and project_id:%(project_id)s)"
SERVICE_OR_MEMBER = f"rule:service_role or {MEMBER}"
ANY = "@"

_VOLUME_ACTIONS = ("attach", "detach", "reserve", "unreserve", "begin_detaching", "roll_detaching",
                   "initialize_connection", "terminate_connection")

VOLUME_POLICIES: dict[str, str] = {
    "volume:create": MEMBER,
    "volume:create_from_image": MEMBER,
    "volume:get": READER,
    "volume:get_all": READER,
    "volume:update": MEMBER,
    "volume:delete": MEMBER,
    "volume:force_delete": ADMIN,
    "volume:extend": MEMBER,
    "volume:extend_attached_volume": MEMBER,
    "volume:retype": MEMBER,
    "volume:update_readonly_flag": MEMBER,
    "volume:multiattach": MEMBER,
    "volume_extension:volume_host_attribute": ADMIN,
    "volume_extension:volume_tenant_attribute": READER,
    "volume_extension:volume_mig_status_attribute": ADMIN,
    "volume_extension:volume_admin_actions:reset_status": ADMIN,
    "volume_extension:volume_admin_actions:force_delete": ADMIN,
    "volume_extension:volume_admin_actions:force_detach": ADMIN,
    **{f"volume_extension:volume_actions:{action}": MEMBER for action in _VOLUME_ACTIONS},
    "volume:get_volume_metadata": READER,
    "volume:create_volume_metadata": MEMBER,
    "volume:update_volume_metadata": MEMBER,
    "volume:delete_volume_metadata": MEMBER,
    "volume_extension:volume_image_metadata:show": READER,
    "volume_extension:volume_image_metadata:set": MEMBER,
    "volume_extension:volume_image_metadata:remove": MEMBER,
    "volume:attachment_create": MEMBER,
    "volume:attachment_update": MEMBER,
    "volume:attachment_delete": MEMBER,
    "volume:attachment_complete": MEMBER,
    "volume:get_snapshot": READER,
    "volume:get_all_snapshots": READER,
    "volume:create_snapshot": MEMBER,
    "volume:update_snapshot": MEMBER,
    "volume:delete_snapshot": MEMBER,
    "volume:get_snapshot_metadata": READER,
    "volume:update_snapshot_metadata": MEMBER,
    "volume:delete_snapshot_metadata": MEMBER,
    "volume_extension:extended_snapshot_attributes": READER,
    "volume_extension:snapshot_admin_actions:reset_status": ADMIN,
    "volume_extension:snapshot_admin_actions:force_delete": ADMIN,
    "volume_extension:type_get_all": ANY,
    "volume_extension:type_get": ANY,
    "volume_extension:type_create": ADMIN,
    "volume_extension:type_update": ADMIN,
    "volume_extension:type_delete": ADMIN,
    "volume_extension:access_types_extra_specs": ADMIN,  # see every extra spec, not only user-visible ones
    "volume_extension:types_extra_specs:index": ANY,
    "volume_extension:types_extra_specs:show": ANY,
    "volume_extension:types_extra_specs:create": ADMIN,
    "volume_extension:types_extra_specs:update": ADMIN,
    "volume_extension:types_extra_specs:delete": ADMIN,
    "volume_extension:volume_type_access": ANY,
    "volume_extension:volume_type_access:get_all_for_type": ADMIN,
    "volume_extension:volume_type_access:addProjectAccess": ADMIN,
    "volume_extension:volume_type_access:removeProjectAccess": ADMIN,
    "volume_extension:default_set_or_update": ADMIN,
    "volume_extension:default_get": ADMIN,
    "volume_extension:default_get_all": ADMIN,
    "volume_extension:default_unset": ADMIN,
    "volume:revert_to_snapshot": MEMBER,
    "volume_extension:quotas:show": READER,
    "volume_extension:quotas:update": ADMIN,
    "volume_extension:quotas:delete": ADMIN,
    "limits_extension:used_limits": ANY,
    "message:get_all": READER,
    "message:get": READER,
    "message:delete": MEMBER,
    "volume_extension:services:index": ADMIN,
    "volume_extension:services:update": ADMIN,
    "scheduler_extension:scheduler_stats:get_pools": ADMIN,
    "volume_extension:availability_zone_list": ANY,
}
