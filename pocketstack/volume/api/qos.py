"""`/v3/{project_id}/qos-specs` (QoS specs and their volume types) and `/types/{id}/encryption` (admin only).

pocketstack's file backend and its attachments enforce no QoS limits and encrypt nothing: the specs are kept and
shown as Cinder keeps them, and volumes of an encrypted type are refused (there is no key manager)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.volume.api.common import bool_param, check_metadata, enforce, links, state
from pocketstack.volume.store import qos as store
from pocketstack.volume.store.lookups import QosSpecs, VolumeTypeEncryption

CONSUMERS = ("front-end", "back-end", "both")
CONTROL_LOCATIONS = ("front-end", "back-end")


def _view(qos: QosSpecs) -> dict[str, Any]:
    return {"id": qos.id, "name": qos.name, "consumer": qos.consumer, "specs": dict(qos.specs or {})}


def _specs(raw: Any, key: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not isinstance(raw.get(key), dict):
        raise BadRequest(f"Missing required element '{key}' in request body.")
    specs = {k: str(v) if isinstance(v, bool | int | float) else v for k, v in raw[key].items()}
    if "consumer" in specs and specs["consumer"] not in CONSUMERS:
        raise BadRequest(f"Invalid input received: consumer {specs['consumer']!r} is not one of "
                         f"{', '.join(CONSUMERS)}.")
    return check_metadata(specs, "qos_specs")


async def create_qos(request: Request) -> Response:
    enforce(request, "volume_extension:qos_specs_manage:create")
    specs = _specs(await json_body(request), "qos_specs")
    name = specs.pop("name", "").strip()
    if not name:
        raise BadRequest("Invalid input received: Please specify a name for QoS specs.")
    qos = await store.create_qos(state(request).db, name, specs.pop("consumer", "back-end"), specs)
    return json_response({"qos_specs": _view(qos), "links": links(request, "qos-specs", qos.id)})


async def list_qos(request: Request) -> Response:
    enforce(request, "volume_extension:qos_specs_manage:get_all")
    return json_response({"qos_specs": [_view(q) for q in await store.list_qos(state(request).db)]})


async def show_qos(request: Request, qos_id: str) -> Response:
    enforce(request, "volume_extension:qos_specs_manage:get")
    qos = await store.get_qos(state(request).db, qos_id)
    return json_response({"qos_specs": _view(qos), "links": links(request, "qos-specs", qos.id)})


async def set_qos_keys(request: Request, qos_id: str) -> Response:
    enforce(request, "volume_extension:qos_specs_manage:update")
    specs = _specs(await json_body(request), "qos_specs")
    if "name" in specs:
        raise BadRequest("Invalid input received: the name of QoS specs cannot be changed.")
    await store.set_keys(state(request).db, qos_id, specs)
    return json_response({"qos_specs": specs})


async def delete_qos_keys(request: Request, qos_id: str) -> Response:
    enforce(request, "volume_extension:qos_specs_manage:update")
    raw = await json_body(request)
    keys = raw.get("keys") if isinstance(raw, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise BadRequest("Missing required element 'keys' (a list of spec names) in request body.")
    await store.delete_keys(state(request).db, qos_id, keys)
    return Response(status_code=202)


async def delete_qos(request: Request, qos_id: str) -> Response:
    enforce(request, "volume_extension:qos_specs_manage:delete")
    force = bool_param(request.query_params.get("force", "false"), "force")
    await store.delete_qos(state(request).db, qos_id, force)
    return Response(status_code=202)


async def list_associations(request: Request, qos_id: str) -> Response:
    enforce(request, "volume_extension:qos_specs_manage:get")
    types = await store.associations(state(request).db, qos_id)
    return json_response({"qos_associations": [{"association_type": "volume_type", "name": t.name, "id": t.id}
                                               for t in types]})


def _type_param(request: Request) -> str:
    type_id = request.query_params.get("vol_type_id")
    if not type_id:
        raise BadRequest("Invalid input received: the vol_type_id query parameter is required.")
    return type_id


async def associate(request: Request, qos_id: str) -> Response:
    enforce(request, "volume_extension:qos_specs_manage:update")
    await store.associate(state(request).db, qos_id, _type_param(request))
    return Response(status_code=202)


async def disassociate(request: Request, qos_id: str) -> Response:
    enforce(request, "volume_extension:qos_specs_manage:update")
    await store.disassociate(state(request).db, qos_id, _type_param(request))
    return Response(status_code=202)


async def disassociate_all(request: Request, qos_id: str) -> Response:
    enforce(request, "volume_extension:qos_specs_manage:update")
    await store.disassociate(state(request).db, qos_id, None)
    return Response(status_code=202)


# ----- encryption --------------------------------------------------------------------------------------------------
def _encryption_view(enc: VolumeTypeEncryption) -> dict[str, Any]:
    return {"volume_type_id": enc.volume_type_id, "encryption_id": enc.encryption_id, "provider": enc.provider,
            "cipher": enc.cipher, "key_size": enc.key_size, "control_location": enc.control_location}


def _encryption_fields(raw: Any, *, create: bool) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("encryption"), dict):
        raise BadRequest("Missing required element 'encryption' in request body.")
    body = raw["encryption"]
    unknown = set(body) - {"provider", "cipher", "key_size", "control_location"}
    if unknown:
        raise BadRequest(f"Invalid input received: Additional properties are not allowed ({', '.join(unknown)}).")
    if create and not body.get("provider"):
        raise BadRequest("Invalid input received: provider must be specified.")
    if "provider" in body and (not isinstance(body["provider"], str) or not body["provider"].strip()):
        raise BadRequest("Invalid input received: provider must be a non-empty string.")
    if body.get("cipher") is not None and not isinstance(body["cipher"], str):
        raise BadRequest("Invalid input received: cipher must be a string.")
    key_size = body.get("key_size")
    if key_size is not None and (isinstance(key_size, bool) or not isinstance(key_size, int) or key_size < 0):
        raise BadRequest("Invalid input received: key_size must be a non-negative integer.")
    if "control_location" in body and body["control_location"] not in CONTROL_LOCATIONS:
        raise BadRequest("Invalid input received: Valid control location are: front-end, back-end.")
    fields = dict(body)
    if create:
        fields.setdefault("control_location", "front-end")
    return fields


async def show_encryption(request: Request, type_id: str) -> Response:
    enforce(request, "volume_extension:volume_type_encryption:get")
    enc = await store.get_encryption(state(request).db, type_id)
    return json_response({} if enc is None else {
        **_encryption_view(enc), "deleted": False, "created_at": enc.created_at.isoformat(),
        "updated_at": enc.updated_at.isoformat() if enc.updated_at else None, "deleted_at": None})


async def show_encryption_item(request: Request, type_id: str, key: str) -> Response:
    enforce(request, "volume_extension:volume_type_encryption:get")
    enc = await store.get_encryption(state(request).db, type_id)
    view = _encryption_view(enc) if enc is not None else {}
    if key not in view:
        raise NotFound(f"Volume type encryption for type {type_id} has no {key}.")
    return json_response({key: view[key]})


async def create_encryption(request: Request, type_id: str) -> Response:
    enforce(request, "volume_extension:volume_type_encryption:create")
    fields = _encryption_fields(await json_body(request), create=True)
    enc = await store.create_encryption(state(request).db, type_id, fields)
    return json_response({"encryption": _encryption_view(enc)})


async def update_encryption(request: Request, type_id: str, key: str) -> Response:
    """PUT `/encryption/{encryption_id}` (the path's last part is the encryption id here)."""
    enforce(request, "volume_extension:volume_type_encryption:update")
    fields = _encryption_fields(await json_body(request), create=False)
    await store.update_encryption(state(request).db, type_id, key, fields)
    return json_response({"encryption": fields})


async def delete_encryption(request: Request, type_id: str, key: str) -> Response:
    enforce(request, "volume_extension:volume_type_encryption:delete")
    await store.delete_encryption(state(request).db, type_id, key)
    return Response(status_code=202)
