"""Default policy rules of the identity API: Keystone's action names and its personas (overridable by
`policy_file`).

As Keystone with `enforce_scope = false`, the `admin` role is the cloud administrator in any scope; a system
reader (`reader` on the system, a system-scoped token) reads everything; a domain `manager` manages the users,
groups, projects and grants of its domain (a domain-scoped token); a domain reader reads them.
"""

ADMIN = "rule:admin_required"
SYSTEM_READER = "(role:reader and system_scope:all)"
READER = f"{ADMIN} or {SYSTEM_READER}"


def _domain(persona: str, kind: str) -> str:
    """`persona` on the domain of the target `kind` (a domain-scoped token)."""
    return f"(role:{persona} and domain_id:%(target.{kind}.domain_id)s)"


def _manage(kind: str) -> str:
    return f"{ADMIN} or {_domain('manager', kind)}"


def _read(kind: str) -> str:
    return f"{READER} or {_domain('reader', kind)}"


IDENTITY_POLICIES: dict[str, str] = {
    "identity:get_domain": f"{READER} or domain_id:%(target.domain.id)s or "
                           "project_domain_id:%(target.domain.id)s or user_domain_id:%(target.domain.id)s",
    "identity:list_domains": f"{READER} or (role:reader and domain_id:%(target.domain.id)s)",
    "identity:create_domain": ADMIN,
    "identity:update_domain": ADMIN,
    "identity:delete_domain": ADMIN,
    "identity:get_project": f"{_read('project')} or project_id:%(target.project.id)s",
    "identity:list_projects": _read("project"),
    "identity:list_user_projects": f"{_read('user')} or user_id:%(target.user.id)s",
    "identity:create_project": _manage("project"),
    "identity:update_project": _manage("project"),
    "identity:delete_project": _manage("project"),
    "identity:list_project_tags": f"{_read('project')} or project_id:%(target.project.id)s",
    "identity:get_project_tag": f"{_read('project')} or project_id:%(target.project.id)s",
    "identity:update_project_tags": _manage("project"),
    "identity:create_project_tag": _manage("project"),
    "identity:delete_project_tags": _manage("project"),
    "identity:delete_project_tag": _manage("project"),
    "identity:get_user": f"{_read('user')} or user_id:%(target.user.id)s",
    "identity:list_users": _read("user"),
    "identity:create_user": _manage("user"),
    "identity:update_user": _manage("user"),
    "identity:delete_user": _manage("user"),
    "identity:change_password": f"{ADMIN} or user_id:%(target.user.id)s",  # the old password is checked too
    "identity:get_group": _read("group"),
    "identity:list_groups": _read("group"),
    "identity:list_groups_for_user": f"{_read('user')} or user_id:%(target.user.id)s",
    "identity:create_group": _manage("group"),
    "identity:update_group": _manage("group"),
    "identity:delete_group": _manage("group"),
    "identity:list_users_in_group": _read("group"),
    "identity:add_user_to_group": _manage("group"),
    "identity:remove_user_from_group": _manage("group"),
    "identity:check_user_in_group": _read("group"),
    "identity:get_role": READER,
    "identity:list_roles": READER,
    "identity:create_role": ADMIN,
    "identity:update_role": ADMIN,
    "identity:delete_role": ADMIN,
    "identity:get_domain_role": READER,
    "identity:list_implied_roles": READER,
    "identity:get_implied_role": READER,
    "identity:create_implied_role": ADMIN,
    "identity:delete_implied_role": ADMIN,
    "identity:list_role_inference_rules": READER,
    "identity:check_grant": f"{READER} or (role:reader and domain_id:%(target.domain.id)s)",
    "identity:list_grants": f"{READER} or (role:reader and domain_id:%(target.domain.id)s)",
    "identity:create_grant": f"{ADMIN} or (role:manager and domain_id:%(target.domain.id)s)",
    "identity:revoke_grant": f"{ADMIN} or (role:manager and domain_id:%(target.domain.id)s)",
    "identity:check_system_grant": READER,
    "identity:list_system_grants": READER,
    "identity:create_system_grant": ADMIN,
    "identity:revoke_system_grant": ADMIN,
    "identity:list_role_assignments": f"{READER} or (role:reader and domain_id:%(target.domain_id)s)",
    "identity:get_region": "@",
    "identity:list_regions": "@",
    "identity:create_region": ADMIN,
    "identity:update_region": ADMIN,
    "identity:delete_region": ADMIN,
    "identity:get_service": READER,
    "identity:list_services": READER,
    "identity:create_service": ADMIN,
    "identity:update_service": ADMIN,
    "identity:delete_service": ADMIN,
    "identity:get_endpoint": READER,
    "identity:list_endpoints": READER,
    "identity:create_endpoint": ADMIN,
    "identity:update_endpoint": ADMIN,
    "identity:delete_endpoint": ADMIN,
    "identity:get_application_credential": f"{READER} or user_id:%(target.user.id)s",
    "identity:list_application_credentials": f"{READER} or user_id:%(target.user.id)s",
    "identity:create_application_credential": "user_id:%(target.user.id)s",
    "identity:delete_application_credential": f"{ADMIN} or user_id:%(target.user.id)s",
    # access rules: the owner or the system only, as Keystone (a project admin does not see them)
    "identity:get_access_rule": f"{SYSTEM_READER} or user_id:%(target.user.id)s",
    "identity:list_access_rules": f"{SYSTEM_READER} or user_id:%(target.user.id)s",
    "identity:delete_access_rule": "(role:admin and system_scope:all) or user_id:%(target.user.id)s",
    # credentials: the owner, or an administrator
    "identity:get_credential": f"{READER} or user_id:%(target.credential.user_id)s",
    "identity:list_credentials": f"{READER} or user_id:%(target.credential.user_id)s",
    "identity:create_credential": f"{ADMIN} or user_id:%(target.credential.user_id)s",
    "identity:update_credential": f"{ADMIN} or user_id:%(target.credential.user_id)s",
    "identity:delete_credential": f"{ADMIN} or user_id:%(target.credential.user_id)s",
    "identity:ec2_get_credential": f"{READER} or user_id:%(target.credential.user_id)s",
    "identity:ec2_list_credentials": f"{READER} or user_id:%(target.user.id)s",
    "identity:ec2_create_credential": f"{ADMIN} or (role:member and user_id:%(target.user.id)s)",
    "identity:ec2_delete_credential": f"{ADMIN} or (role:member and user_id:%(target.credential.user_id)s)",
    # trusts: the trustor and the trustee see a trust, the trustor makes and deletes it
    "identity:create_trust": "user_id:%(target.trust.trustor_user_id)s",
    "identity:list_trusts": READER,
    "identity:list_trusts_for_trustor": f"{READER} or user_id:%(target.trust.trustor_user_id)s",
    "identity:list_trusts_for_trustee": f"{READER} or user_id:%(target.trust.trustee_user_id)s",
    "identity:get_trust": f"{READER} or user_id:%(target.trust.trustor_user_id)s or "
                          "user_id:%(target.trust.trustee_user_id)s",
    "identity:list_roles_for_trust": f"{READER} or user_id:%(target.trust.trustor_user_id)s or "
                                     "user_id:%(target.trust.trustee_user_id)s",
    "identity:get_role_for_trust": f"{READER} or user_id:%(target.trust.trustor_user_id)s or "
                                   "user_id:%(target.trust.trustee_user_id)s",
    "identity:delete_trust": f"{ADMIN} or user_id:%(target.trust.trustor_user_id)s",
    # the documents of records.py
    **{f"identity:{verb}_{kind}": READER if verb in ("get", "list") else ADMIN
       for kind in ("policy", "endpoint_group", "consumer", "identity_provider", "mapping", "protocol",
                    "service_provider", "domain_config", "project_endpoint", "endpoint_group_in_project",
                    "registered_limit", "limit")
       for verb in ("get", "list", "create", "update", "delete")},
    # A token may always validate or revoke itself; admins (and system readers and services, for validation)
    # any token, as Keystone.
    "identity:validate_token": f"{READER} or rule:service_role or user_id:%(target.token.user_id)s",
    "identity:check_token": f"{READER} or user_id:%(target.token.user_id)s",
    "identity:revoke_token": f"{ADMIN} or user_id:%(target.token.user_id)s",
}
