"""Default policy rules of the image API (Glance's action names; overridable by `policy_file`).

Targets carry the image's `project_id` (its owner), `visibility` and, for member actions, `member_id`. Which
images a caller may see at all (public, community, own, shared with its project) is decided by the visibility
rules in `pocketstack.image.service`; these rules decide what the caller may do with them.

Metadata definitions (metadefs) are the cloud's catalog: everyone with a role reads the public namespaces and
their own project's private ones, only admins write them (Glance's `metadef_admin`).
"""

ADMIN = "rule:admin_required"
MEMBER = "rule:admin_or_member"  # admin, or a member of the image owner's project
READER = "rule:admin_required or role:reader or role:member"

IMAGE_POLICIES: dict[str, str] = {
    "get_images": READER,
    "get_image": READER,
    "add_image": MEMBER,
    "modify_image": MEMBER,
    "delete_image": MEMBER,
    "publicize_image": ADMIN,
    "communitize_image": MEMBER,
    "set_image_owner": ADMIN,
    "upload_image": MEMBER,
    "download_image": "rule:admin_required or role:member",  # not a reader: Glance's download needs a member
    "deactivate": MEMBER,
    "reactivate": MEMBER,
    "stage_image": MEMBER,
    "import_image": MEMBER,
    "get_members": READER,
    "get_member": READER,
    "add_member": MEMBER,
    "delete_member": MEMBER,
    "modify_member": "role:member and project_id:%(member_id)s",  # only the member itself decides
    "get_usage": f"{ADMIN} or project_id:%(project_id)s",
    # the tasks API (/v2/tasks): Glance keeps it for admins (tasks_api_access)
    "tasks_api_access": ADMIN,
    "get_task": "rule:tasks_api_access",
    "get_tasks": "rule:tasks_api_access",
    "add_task": "rule:tasks_api_access",
    # metadata definitions: namespaces, their objects, properties, tags; resource types and associations
    **{f"get_metadef_{what}": READER for what in (
        "namespace", "namespaces", "object", "objects", "property", "properties", "tag", "tags",
        "resource_type")},
    "list_metadef_resource_types": READER,
    **{f"{verb}_metadef_{what}": ADMIN for verb, what in (
        ("add", "namespace"), ("modify", "namespace"), ("delete", "namespace"),
        ("add", "object"), ("modify", "object"), ("delete", "object"), ("delete", "objects"),
        ("add", "property"), ("modify", "property"), ("remove", "property"), ("remove", "properties"),
        ("add", "tag"), ("add", "tags"), ("modify", "tag"), ("delete", "tag"), ("delete", "tags"),
        ("add", "resource_type_association"), ("remove", "resource_type_association"))},
}
