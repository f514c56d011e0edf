"""The identity API's URL map (Keystone v3): path -> method -> handler, in match order."""

from __future__ import annotations

from pocketstack.common.routes import RouteTable
from pocketstack.identity.api import app_creds, auth, catalog, credentials, resources, roles, tags, trusts

ROUTES: RouteTable = {
    "/": {"GET": auth.versions},
    "/v3": {"GET": auth.version_v3},
    "/v3/": {"GET": auth.version_v3},
    "/v3/auth/tokens": {
        "POST": auth.issue_token,
        "GET": auth.validate_token,
        "HEAD": auth.check_token,
        "DELETE": auth.revoke_token,
    },
    "/v3/auth/catalog": {"GET": auth.auth_catalog},
    "/v3/auth/projects": {"GET": auth.auth_projects},
    "/v3/auth/domains": {"GET": auth.auth_domains},
    "/v3/auth/system": {"GET": auth.auth_system},
    "/v3/domains": {"POST": resources.create_domain, "GET": resources.list_domains},
    "/v3/domains/{domain_id}": {
        "GET": resources.get_domain,
        "PATCH": resources.update_domain,
        "DELETE": resources.delete_domain,
    },
    "/v3/projects": {"POST": resources.create_project, "GET": resources.list_projects},
    "/v3/projects/{project_id}": {
        "GET": resources.get_project,
        "PATCH": resources.update_project,
        "DELETE": resources.delete_project,
    },
    "/v3/projects/{project_id}/tags": {
        "GET": tags.list_tags,
        "PUT": tags.replace_tags,
        "DELETE": tags.delete_tags,
    },
    "/v3/projects/{project_id}/tags/{tag}": {
        "GET": tags.check_project_tag,
        "HEAD": tags.check_project_tag,
        "PUT": tags.add_tag,
        "DELETE": tags.delete_tag,
    },
    "/v3/users": {"POST": resources.create_user, "GET": resources.list_users},
    "/v3/users/{user_id}": {"GET": resources.get_user, "PATCH": resources.update_user, "DELETE": resources.delete_user},
    "/v3/users/{user_id}/password": {"POST": resources.change_password},
    "/v3/users/{user_id}/projects": {"GET": resources.list_user_projects},
    "/v3/users/{user_id}/groups": {"GET": resources.list_user_groups},
    "/v3/users/{user_id}/credentials/OS-EC2": {"POST": credentials.create_ec2, "GET": credentials.list_ec2},
    "/v3/users/{user_id}/credentials/OS-EC2/{access}": {
        "GET": credentials.get_ec2,
        "DELETE": credentials.delete_ec2,
    },
    "/v3/credentials": {"POST": credentials.create_credential, "GET": credentials.list_credentials},
    "/v3/credentials/{credential_id}": {
        "GET": credentials.get_credential,
        "PATCH": credentials.update_credential,
        "DELETE": credentials.delete_credential,
    },
    "/v3/OS-TRUST/trusts": {"POST": trusts.create_trust, "GET": trusts.list_trusts},
    "/v3/OS-TRUST/trusts/{trust_id}": {"GET": trusts.get_trust, "DELETE": trusts.delete_trust},
    "/v3/OS-TRUST/trusts/{trust_id}/roles": {"GET": trusts.list_trust_roles},
    "/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}": {
        "GET": trusts.get_trust_role,
        "HEAD": trusts.check_trust_role,
    },
    "/v3/groups": {"POST": resources.create_group, "GET": resources.list_groups},
    "/v3/groups/{group_id}": {
        "GET": resources.get_group,
        "PATCH": resources.update_group,
        "DELETE": resources.delete_group,
    },
    "/v3/groups/{group_id}/users": {"GET": resources.list_group_users},
    "/v3/groups/{group_id}/users/{user_id}": {
        "PUT": resources.add_group_user,
        "HEAD": resources.check_group_user,
        "DELETE": resources.remove_group_user,
    },
    "/v3/roles": {"POST": roles.create_role, "GET": roles.list_roles},
    "/v3/roles/{role_id}": {"GET": roles.get_role, "PATCH": roles.update_role, "DELETE": roles.delete_role},
    "/v3/roles/{prior_id}/implies": {"GET": roles.list_implied},
    "/v3/roles/{prior_id}/implies/{implied_id}": {"PUT": roles.create_implied, "DELETE": roles.delete_implied},
    "/v3/role_inferences": {"GET": roles.list_inferences},
    "/v3/system/{actor_kind}/{actor_id}/roles/{role_id}": {
        "PUT": roles.put_system_grant,
        "GET": roles.head_system_grant,
        "HEAD": roles.head_system_grant,
        "DELETE": roles.delete_system_grant,
    },
    "/v3/system/{actor_kind}/{actor_id}/roles": {"GET": roles.list_system_grants},
    "/v3/{target_kind}/{target_id}/{actor_kind}/{actor_id}/roles/{role_id}": {
        "PUT": roles.put_grant,
        "HEAD": roles.head_grant,
        "DELETE": roles.delete_grant,
    },
    "/v3/OS-INHERIT/{target_kind}/{target_id}/{actor_kind}/{actor_id}/roles/{role_id}/inherited_to_projects": {
        "PUT": roles.put_inherited,
        "HEAD": roles.head_inherited,
        "DELETE": roles.delete_inherited,
    },
    "/v3/{target_kind}/{target_id}/{actor_kind}/{actor_id}/roles": {"GET": roles.list_grants},
    "/v3/role_assignments": {"GET": roles.list_role_assignments},
    "/v3/regions": {"POST": catalog.create_region, "GET": catalog.list_regions},
    "/v3/regions/{region_id}": {
        "GET": catalog.get_region,
        "PATCH": catalog.update_region,
        "DELETE": catalog.delete_region,
    },
    "/v3/services": {"POST": catalog.create_service, "GET": catalog.list_services},
    "/v3/services/{service_id}": {
        "GET": catalog.get_service,
        "PATCH": catalog.update_service,
        "DELETE": catalog.delete_service,
    },
    "/v3/endpoints": {"POST": catalog.create_endpoint, "GET": catalog.list_endpoints},
    "/v3/endpoints/{endpoint_id}": {
        "GET": catalog.get_endpoint,
        "PATCH": catalog.update_endpoint,
        "DELETE": catalog.delete_endpoint,
    },
    "/v3/users/{user_id}/application_credentials": {"POST": app_creds.create_app_cred, "GET": app_creds.list_app_creds},
    "/v3/users/{user_id}/application_credentials/{cred_id}": {
        "GET": app_creds.get_app_cred,
        "DELETE": app_creds.delete_app_cred,
    },
}
