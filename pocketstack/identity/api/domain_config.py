"""Domain-specific configuration (`/v3/domains/{domain_id}/config[/{group}[/{option}]]`) and its defaults.

Keystone accepts the `identity` and `ldap` groups and keeps them per domain; with pocketstack's SQL identity
backend they are stored and served, not acted on (no LDAP driver)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, Forbidden, NotFound
from pocketstack.identity.api.common import enforce, manager
from pocketstack.identity.store import records
from pocketstack.identity.store.common import Domain, fetch

LDAP_OPTIONS = (
    "url", "user", "password", "suffix", "query_scope", "page_size", "alias_dereferencing", "debug_level",
    "chase_referrals", "user_tree_dn", "user_filter", "user_objectclass", "user_id_attribute",
    "user_name_attribute", "user_description_attribute", "user_mail_attribute", "user_pass_attribute",
    "user_enabled_attribute", "user_enabled_invert", "user_enabled_mask", "user_enabled_default",
    "user_attribute_ignore", "user_default_project_id_attribute", "user_enabled_emulation",
    "user_enabled_emulation_dn", "user_enabled_emulation_use_group_config", "user_additional_attribute_mapping",
    "group_tree_dn", "group_filter", "group_objectclass", "group_id_attribute", "group_name_attribute",
    "group_member_attribute", "group_members_are_ids", "group_desc_attribute", "group_attribute_ignore",
    "group_additional_attribute_mapping", "tls_cacertfile", "tls_cacertdir", "use_tls", "tls_req_cert",
    "use_pool", "pool_size", "pool_retry_max", "pool_retry_delay", "pool_connection_timeout",
    "pool_connection_lifetime", "use_auth_pool", "auth_pool_size", "auth_pool_connection_lifetime",
)
DEFAULTS: dict[str, dict[str, Any]] = {
    "identity": {"driver": "sql", "list_limit": None},
    "ldap": {**{option: None for option in LDAP_OPTIONS}, "url": "ldap://localhost", "user_tree_dn": None,
             "query_scope": "one", "page_size": 0, "user_objectclass": "inetOrgPerson",
             "user_id_attribute": "cn", "user_name_attribute": "sn", "group_objectclass": "groupOfNames"},
}
KIND = "domain_config"


def _check(config: Any, group: str | None = None) -> dict[str, dict[str, Any]]:
    """A configuration body (of one group when `group` is given); 403 for groups and options Keystone refuses."""
    if not isinstance(config, dict) or not config:
        raise BadRequest("Invalid input: 'config' must be a non-empty object.")
    for name, options in config.items():
        if name not in DEFAULTS:
            raise Forbidden(f"Invalid domain specific configuration: group {name} is not supported.")
        if group is not None and name != group:
            raise BadRequest(f"Invalid input: the body names group {name}, the URL {group}.")
        if not isinstance(options, dict):
            raise BadRequest(f"Invalid input: group {name} must be an object of options.")
        for option in options:
            if option not in DEFAULTS[name]:
                raise Forbidden(f"Invalid domain specific configuration: option {option} in group {name} is "
                                "not supported.")
    return config


def _group_of(config: dict[str, Any], group: str) -> dict[str, Any]:
    if group not in DEFAULTS:
        raise Forbidden(f"Invalid domain specific configuration: group {group} is not supported.")
    if group not in config:
        raise NotFound(f"Could not find config group {group}.")
    return config[group]


async def _config(request: Request, domain_id: str, action: str) -> dict[str, Any]:
    enforce(request, action)
    await fetch(manager(request).db, Domain, domain_id, "domain")
    row = await records.find(manager(request).db, KIND, domain_id)
    if row is None:
        raise NotFound(f"Could not find domain config: {domain_id}.")
    return row.data


async def create_config(request: Request, domain_id: str) -> Response:
    enforce(request, "identity:create_domain_config")
    config = _check(_body(await json_body(request)))
    await fetch(manager(request).db, Domain, domain_id, "domain")
    row, created = await records.update(manager(request).db, KIND, domain_id, lambda _: config,
                                        create_missing=True, owner=domain_id)
    return json_response({"config": row.data}, status=201 if created else 200)


def _body(body: Any) -> Any:
    if not isinstance(body, dict) or "config" not in body:
        raise BadRequest("Invalid input: 'config' is a required property.")
    return body["config"]


async def get_config(request: Request, domain_id: str) -> Response:
    return json_response({"config": await _config(request, domain_id, "identity:get_domain_config")})


async def update_config(request: Request, domain_id: str) -> Response:
    await _config(request, domain_id, "identity:update_domain_config")
    changes = _check(_body(await json_body(request)))
    return json_response({"config": await _merge(request, domain_id, changes)})


async def _merge(request: Request, domain_id: str, changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def merge(current: dict[str, Any]) -> dict[str, Any]:
        merged = {group: dict(options) for group, options in current.items()}
        for group, options in changes.items():
            merged.setdefault(group, {}).update(options)
        return merged
    row, _ = await records.update(manager(request).db, KIND, domain_id, merge)
    return row.data


async def delete_config(request: Request, domain_id: str) -> Response:
    await _config(request, domain_id, "identity:delete_domain_config")
    await records.remove(manager(request).db, KIND, domain_id)
    return Response(status_code=204)


async def get_group(request: Request, domain_id: str, group: str) -> Response:
    config = await _config(request, domain_id, "identity:get_domain_config")
    return json_response({"config": {group: _group_of(config, group)}})


async def update_group(request: Request, domain_id: str, group: str) -> Response:
    config = await _config(request, domain_id, "identity:update_domain_config")
    _group_of(config, group)
    changes = _check(_body(await json_body(request)), group)
    return json_response({"config": await _merge(request, domain_id, changes)})


async def delete_group(request: Request, domain_id: str, group: str) -> Response:
    config = await _config(request, domain_id, "identity:delete_domain_config")
    _group_of(config, group)
    await records.update(manager(request).db, KIND, domain_id,
                         lambda cur: {g: o for g, o in cur.items() if g != group})
    return Response(status_code=204)


def _option_of(config: dict[str, Any], group: str, option: str) -> Any:
    options = _group_of(config, group)
    if option not in options:
        raise NotFound(f"Could not find config option {option} in group {group}.")
    return options[option]


async def get_option(request: Request, domain_id: str, group: str, option: str) -> Response:
    config = await _config(request, domain_id, "identity:get_domain_config")
    return json_response({"config": {option: _option_of(config, group, option)}})


async def update_option(request: Request, domain_id: str, group: str, option: str) -> Response:
    config = await _config(request, domain_id, "identity:update_domain_config")
    _option_of(config, group, option)
    value = _body(await json_body(request))
    if not isinstance(value, dict) or set(value) != {option}:
        raise BadRequest(f"Invalid input: the body must set exactly option {option}.")
    return json_response({"config": await _merge(request, domain_id, _check({group: value}, group))})


async def delete_option(request: Request, domain_id: str, group: str, option: str) -> Response:
    config = await _config(request, domain_id, "identity:delete_domain_config")
    _option_of(config, group, option)

    def drop(cur: dict[str, Any]) -> dict[str, Any]:
        return {g: ({k: v for k, v in o.items() if k != option} if g == group else o) for g, o in cur.items()}
    await records.update(manager(request).db, KIND, domain_id, drop)
    return Response(status_code=204)


async def default_config(request: Request) -> Response:
    enforce(request, "identity:get_domain_config")
    return json_response({"config": DEFAULTS})


async def default_group(request: Request, group: str) -> Response:
    enforce(request, "identity:get_domain_config")
    return json_response({"config": {group: _group_of(DEFAULTS, group)}})


async def default_option(request: Request, group: str, option: str) -> Response:
    enforce(request, "identity:get_domain_config")
    return json_response({"config": {option: _option_of(DEFAULTS, group, option)}})
