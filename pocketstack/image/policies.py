"""Default policy rules of the image API (Glance's action names; overridable by `policy_file`).

Targets carry the image's `project_id` (its owner), `visibility` and, for member actions, `member_id`. Which
images a caller may see at all (public, community, own, shared with its project) is decided by the visibility
rules in `pocketstack.image.service`; these rules decide what the caller may do with them.
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
    "download_image": READER,
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
}
