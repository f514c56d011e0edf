"""`/servers`: create (FLOW.md steps 3-8), list, show, update, delete."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import uuid as uuidlib
from collections import defaultdict
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from pocketstack.common import tracing
from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import APIError, BadRequest, Conflict, Forbidden, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute import states
from pocketstack.compute.api import block_devices
from pocketstack.compute.api.common import (
    enforce,
    isotime,
    isotime_micro,
    limit_param,
    links,
    next_link,
    state,
    version,
)
from pocketstack.compute.quotas import project_limits_sync
from pocketstack.compute.store.instances import mark_deleted, usage_dict, usage_query

log = logging.getLogger("pocketstack.compute.api")

router = APIRouter(prefix="/v2.1")

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def is_uuid(value: str) -> bool:
    return bool(UUID_RE.match(value))


# ----- request schema --------------------------------------------------------------------------------------
class NetworkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uuid: str | None = None
    port: str | None = None
    fixed_ip: str | None = None
    tag: str | None = None


class SecurityGroupRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)


class ServerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    imageRef: str = ""
    flavorRef: str | int
    networks: Literal["auto", "none"] | list[NetworkRequest] | None = None
    key_name: str | None = Field(None, min_length=1, max_length=255)
    user_data: str | None = Field(None, max_length=65535)
    metadata: dict[str, str] = {}
    availability_zone: str | None = Field(None, min_length=1, max_length=255)
    security_groups: list[SecurityGroupRef] | None = None
    config_drive: bool | str | None = None
    min_count: int = Field(1, ge=1)
    max_count: int | None = Field(None, ge=1)
    return_reservation_id: bool = False
    description: str | None = Field(None, max_length=255)
    tags: list[str] = []
    adminPass: str | None = None
    accessIPv4: str | None = None
    accessIPv6: str | None = None
    block_device_mapping_v2: list[dict[str, Any]] | None = None
    hostname: str | None = None
    OS_DCF_diskConfig: str | None = Field(None, alias="OS-DCF:diskConfig")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value.strip() != value:
            raise ValueError("name may not have leading or trailing whitespace")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not 1 <= len(key) <= 255 or len(item) > 255:
                raise ValueError("metadata keys must be 1-255 characters and values at most 255")
        return value


class ServerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=255)
    accessIPv4: str | None = None
    accessIPv6: str | None = None
    hostname: str | None = None


# ----- view --------------------------------------------------------------------------------------------------
def host_id(project_id: str, host: str | None) -> str:
    """Nova's hostId: hides the host name but lets a project see which of its servers share a host."""
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def addresses(network_info: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {}
    for vif in network_info or []:
        entries = result.setdefault(vif.get("network_name") or vif["network_id"], [])
        for ip in vif.get("fixed_ips", []):
            entries.append({"version": 6 if ":" in ip["ip_address"] else 4, "addr": ip["ip_address"],
                            "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": vif["mac_address"]})
        for fip in vif.get("floating_ips", []):
            entries.append({"version": 4, "addr": fip, "OS-EXT-IPS:type": "floating",
                            "OS-EXT-IPS-MAC:mac_addr": vif["mac_address"]})
    return result


def server_view(request: Request, inst: m.Instance, *, metadata: dict[str, str], tags: list[str],
                fault: m.InstanceFault | None, ctx: RequestContext) -> dict[str, Any]:
    api = version(request)
    ver = (api.major, api.minor)  # a tuple: compared many times per server of a list
    status = states.api_status(inst.vm_state, inst.task_state)
    body: dict[str, Any] = {
        "id": inst.uuid, "name": inst.display_name, "status": status, "tenant_id": inst.project_id,
        "user_id": inst.user_id, "metadata": metadata, "hostId": host_id(inst.project_id, inst.host),
        "image": ({"id": inst.image_ref, "links": [{"rel": "bookmark", "href":
                   f"{request.url.scheme}://{request.url.netloc}/images/{inst.image_ref}"}]}
                  if inst.image_ref else ""),
        "created": isotime(inst.created_at), "updated": isotime(inst.updated_at or inst.created_at),
        "addresses": addresses(inst.network_info), "accessIPv4": inst.access_ip_v4 or "",
        "accessIPv6": inst.access_ip_v6 or "", "links": links(request, "servers", inst.uuid),
        "OS-DCF:diskConfig": "MANUAL", "OS-EXT-AZ:availability_zone": inst.availability_zone or "",
        "config_drive": "True" if inst.config_drive else "", "key_name": inst.key_name,
        "OS-SRV-USG:launched_at": isotime_micro(inst.launched_at),
        "OS-SRV-USG:terminated_at": isotime_micro(inst.terminated_at),
        "OS-EXT-STS:task_state": inst.task_state, "OS-EXT-STS:vm_state": inst.vm_state,
        "OS-EXT-STS:power_state": inst.power_state,
        "os-extended-volumes:volumes_attached": [
            {"id": b.volume_id, "delete_on_termination": b.delete_on_termination}
            for b in inst.block_devices if b.volume_id],
        "security_groups": [{"name": sg["name"]} for sg in inst.security_groups or [{"name": "default"}]],
    }
    if status in ("ACTIVE", "BUILD", "REBOOT", "HARD_REBOOT"):
        body["progress"] = 100 if status == "ACTIVE" else inst.progress
    flavor = inst.flavor
    if ver >= (2, 47):
        body["flavor"] = {"vcpus": flavor["vcpus"], "ram": flavor["ram"], "disk": flavor["disk"],
                          "ephemeral": flavor.get("ephemeral", 0), "swap": flavor.get("swap", 0),
                          "original_name": flavor["name"], "extra_specs": flavor.get("extra_specs", {})}
    else:
        body["flavor"] = {"id": flavor["id"], "links": [{"rel": "bookmark", "href":
                          f"{request.url.scheme}://{request.url.netloc}/flavors/{flavor['id']}"}]}
    if ver >= (2, 9):
        body["locked"] = inst.locked
    if ver >= (2, 73):
        body["locked_reason"] = inst.locked_reason
    if ver >= (2, 19):
        body["description"] = inst.description
    if ver >= (2, 26):
        body["tags"] = tags
    if ver >= (2, 63):
        body["trusted_image_certificates"] = None
    if ctx.is_admin:
        body["OS-EXT-SRV-ATTR:host"] = inst.host
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = inst.node
        body["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{inst.uuid[:8]}"
        if ver >= (2, 3):
            body.update({"OS-EXT-SRV-ATTR:reservation_id": inst.reservation_id,
                         "OS-EXT-SRV-ATTR:launch_index": inst.launch_index,
                         "OS-EXT-SRV-ATTR:hostname": inst.hostname, "OS-EXT-SRV-ATTR:kernel_id": "",
                         "OS-EXT-SRV-ATTR:ramdisk_id": "", "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                         "OS-EXT-SRV-ATTR:user_data": inst.user_data})
        if ver >= (2, 16):
            body["host_status"] = "UP" if inst.host else ""
    if fault is not None and inst.vm_state in (states.ERROR, states.DELETED):
        body["fault"] = {"code": fault.code, "created": isotime(fault.created_at), "message": fault.message}
        if ctx.is_admin and fault.details:
            body["fault"]["details"] = fault.details
    return body


def load_extras(session: Session, uuids: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, list[str]],
                                                             dict[str, m.InstanceFault]]:
    """Metadata, tags and latest fault of many instances in three queries."""
    metadata: dict[str, dict[str, str]] = {u: {} for u in uuids}
    tags: dict[str, list[str]] = {u: [] for u in uuids}
    faults: dict[str, m.InstanceFault] = {}
    if not uuids:
        return metadata, tags, faults
    for row in session.scalars(select(m.InstanceMetadata).where(m.InstanceMetadata.instance_uuid.in_(uuids))).all():
        metadata[row.instance_uuid][row.key] = row.value
    for row in session.scalars(select(m.InstanceTag).where(m.InstanceTag.instance_uuid.in_(uuids))
                               .order_by(m.InstanceTag.tag)).all():
        tags[row.instance_uuid].append(row.tag)
    for row in session.scalars(select(m.InstanceFault).where(m.InstanceFault.instance_uuid.in_(uuids))
                               .order_by(m.InstanceFault.id)).all():
        faults[row.instance_uuid] = row
    return metadata, tags, faults


def visible_instance(session: Session, server_id: str, ctx: RequestContext) -> m.Instance:
    """The server, or 404 when it does not exist or belongs to another project (for non-admins)."""
    inst = session.get(m.Instance, server_id) if is_uuid(server_id) else None
    if inst is None or inst.deleted or (not ctx.is_admin and inst.project_id != ctx.project_id):
        raise NotFound(f"Instance {server_id} could not be found.")
    return inst


async def get_instance(session: Any, request: Request, server_id: str, ctx: RequestContext) -> m.Instance:
    """`visible_instance` on an async session."""
    return await session.run_sync(visible_instance, server_id, ctx)


async def show_body(request: Request, session: Any, inst: m.Instance, ctx: RequestContext) -> dict[str, Any]:
    metadata, tags, faults = await session.run_sync(load_extras, [inst.uuid])
    return server_view(request, inst, metadata=metadata[inst.uuid], tags=tags[inst.uuid],
                       fault=faults.get(inst.uuid), ctx=ctx)


# ----- create (steps 3-8) ------------------------------------------------------------------------------------
def _resolve_flavor(session: Session, flavor_ref: str | int, ctx: RequestContext) -> m.Flavor:
    ref = str(flavor_ref).rstrip("/").rsplit("/", 1)[-1]
    flavor = session.scalar(select(m.Flavor).where(m.Flavor.flavorid == ref))
    if flavor is None or flavor.disabled:
        raise BadRequest(f"Flavor {ref} could not be found.")
    if not flavor.is_public and not ctx.is_admin:
        allowed = session.get(m.FlavorProject, (flavor.id, ctx.project_id))
        if allowed is None:
            raise BadRequest(f"Flavor {ref} could not be found.")
    return flavor


async def _resolve_image(request: Request, image_ref: str, flavor: m.Flavor) -> dict[str, Any]:
    image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
    if not is_uuid(image_id):
        raise BadRequest(f"Invalid input for field/attribute imageRef. Value: {image_ref}. "
                         f"'{image_ref}' is not a 'uuid'")
    try:
        image = await state(request).image.get_image(image_id)
    except NotFound:
        raise BadRequest(f"Image {image_id} could not be found.")
    if image.get("status") != "active":
        raise BadRequest(f"Image {image_id} is not active.")
    if (image.get("min_ram") or 0) > flavor.memory_mb:
        raise BadRequest("Flavor's memory is too small for requested image.")
    if (image.get("min_disk") or 0) > flavor.root_gb or (image.get("size") or 0) > flavor.root_gb * (1 << 30):
        raise BadRequest("Flavor's disk is too small for requested image.")
    return image


async def _resolve_networks(request: Request, networks: Any, ctx: RequestContext) -> list[dict[str, Any]] | str:
    api = state(request).network
    if networks == "none":
        return "none"
    if networks is None or networks == "auto":
        visible = [n for n in await _list_networks(request) if not n.get("router:external")]
        if not visible:
            if networks == "auto":
                raise BadRequest(f"Unable to automatically allocate a network for project {ctx.project_id}")
            return "none"
        if len(visible) > 1:
            raise Conflict("Multiple possible networks found, use a Network ID to be more specific.")
        return [{"uuid": visible[0]["id"]}]
    result = []
    for net in networks:
        if net.port:
            if not is_uuid(net.port):
                raise BadRequest(f"Bad networks format: port uuid ({net.port}) is not in proper format")
            try:
                port = await api.get_port(net.port)
            except NotFound:
                raise BadRequest(f"Port id {net.port} could not be found.")
            if port.get("device_id"):
                raise Conflict(f"Port {net.port} is still in use.")
            result.append({"port": net.port})
            continue
        if not net.uuid:
            raise BadRequest("Bad network format: a network needs a 'uuid' or a 'port'.")
        if not is_uuid(net.uuid):
            raise BadRequest(f"Bad networks format: network uuid is not in proper format ({net.uuid})")
        try:
            network = await api.get_network(net.uuid)
        except NotFound:
            raise BadRequest(f"Network {net.uuid} could not be found.")
        if network.get("router:external") and not network.get("shared") and not ctx.is_admin:
            raise Forbidden(f"It is not allowed to create an interface on external network {net.uuid}")
        result.append({"uuid": net.uuid, "fixed_ip": net.fixed_ip})
    return result


async def _list_networks(request: Request) -> list[dict[str, Any]]:
    _, body, _ = await state(request).network.request("GET", "/v2.0/networks")
    return body["networks"]


async def _resolve_security_groups(request: Request, refs: list[SecurityGroupRef] | None) -> list[dict[str, str]]:
    if not refs:
        return []
    api = state(request).network
    _, body, _ = await api.request("GET", "/v2.0/security-groups",
                                   params={"project_id": request_context(request).project_id})
    groups = body["security_groups"]
    result = []
    for ref in refs:
        match = [g for g in groups if g["name"] == ref.name or g["id"] == ref.name]
        if not match:
            raise BadRequest(f"Unable to find security_group with name or id '{ref.name}'")
        if len(match) > 1:
            raise Conflict(f"Multiple security_group matches found for name '{ref.name}', use an ID to be more "
                           "specific.")
        result.append({"id": match[0]["id"], "name": match[0]["name"]})
    return result


def _quota_message(resource: str, requested: int, used: int, limit: int) -> str:
    return f"Quota exceeded for {resource}: Requested {requested}, but already used {used} of {limit} {resource}"


@router.post("/servers")
async def create_server(request: Request) -> Response:
    ctx = enforce(request, "os_compute_api:servers:create")
    raw = await json_body(request)
    if not isinstance(raw, dict) or not isinstance(raw.get("server"), dict):
        raise BadRequest("Invalid input: 'server' is a required property.")
    unknown = set(raw) - {"server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"}
    if unknown:
        raise BadRequest(f"Invalid input for field/attribute. Additional properties are not allowed "
                         f"({', '.join(sorted(unknown))} was unexpected)")
    body = ServerCreate.model_validate(raw["server"])
    hints = raw.get("os:scheduler_hints") or raw.get("OS-SCH-HNT:scheduler_hints") or {}
    if not isinstance(hints, dict):
        raise BadRequest("Invalid input: 'os:scheduler_hints' must be an object.")
    ver = version(request)
    if body.networks is None and ver >= "2.37":
        raise BadRequest("Invalid input for field/attribute networks: 'networks' is a required property")
    max_count = body.max_count or body.min_count
    if max_count < body.min_count:
        raise BadRequest("min_count must be <= max_count")
    devices = await block_devices.plan(request, body.block_device_mapping_v2 or [], body.imageRef, max_count)
    if not devices.image_ref and not devices.volume_root:
        raise BadRequest("Invalid input for field/attribute imageRef: an image is required.")
    user_data = body.user_data
    if user_data is not None:
        try:
            base64.b64decode(user_data, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("User data needs to be valid base 64.")
    settings = state(request).settings
    zone = body.availability_zone
    if zone and ":" in zone:
        raise BadRequest("Forcing a host with availability_zone 'zone:host' is not supported.")
    db = state(request).db

    def read(session: Session) -> tuple[m.Flavor, str | None, m.ServerGroup | None, dict[str, str]]:
        flavor = _resolve_flavor(session, body.flavorRef, ctx)
        key_data = None
        if body.key_name:
            keypair = session.scalar(select(m.KeyPair).where(m.KeyPair.user_id == ctx.user_id,
                                                             m.KeyPair.name == body.key_name))
            if keypair is None:
                raise BadRequest("Invalid key_name provided.")
            key_data = keypair.public_key
        group = None
        group_uuid = hints.get("group")
        if group_uuid is not None:
            if not isinstance(group_uuid, str) or not is_uuid(group_uuid):
                raise BadRequest(f"Invalid input for field/attribute group. Value: {group_uuid}. "
                                 f"'{group_uuid}' is not a 'uuid'")
            group = session.get(m.ServerGroup, group_uuid)
            if group is None or (group.project_id != ctx.project_id and not ctx.is_admin):
                raise BadRequest(f"Server group {group_uuid} could not be found.")
        extra_specs = {s.key: s.value for s in session.scalars(
            select(m.FlavorExtraSpec).where(m.FlavorExtraSpec.flavor_id == flavor.id)).all()}
        if zone:
            zones = set(session.scalars(select(m.ComputeService.availability_zone).where(
                m.ComputeService.binary == "nova-compute")).all())
            if zone not in zones:
                raise BadRequest(f"The requested availability zone is not available: {zone}")
        return flavor, key_data, group, extra_specs

    flavor, key_data, group, extra_specs = await db.run(read, write=False)  # one hop for the API's reads
    # a volume root needs no local disk: only the image properties matter (scheduling)
    image = devices.root_image if devices.volume_root else await _resolve_image(request, devices.image_ref, flavor)
    if devices.volume_root and int(image.get("min_ram") or 0) > flavor.memory_mb:
        raise BadRequest("Flavor's memory is too small for requested image.")
    requested_networks = await _resolve_networks(request, body.networks, ctx)
    if isinstance(requested_networks, list) and max_count > 1 and any(n.get("port") or n.get("fixed_ip")
                                                                      for n in requested_networks):
        raise BadRequest("Multiple instances cannot share a port or a fixed IP.")
    security_groups = await _resolve_security_groups(request, body.security_groups)

    flavor_snapshot = {"id": flavor.flavorid, "name": flavor.name, "vcpus": flavor.vcpus, "ram": flavor.memory_mb,
                       "disk": flavor.root_gb, "ephemeral": flavor.ephemeral_gb, "swap": flavor.swap,
                       "extra_specs": extra_specs}
    now = utcnow()
    reservation_id = f"r-{uuidlib.uuid4().hex[:8]}"
    request_spec: dict[str, Any] = {
        "project_id": ctx.project_id, "flavor": flavor_snapshot, "image_id": image.get("id") or "",
        "image_properties": {k: v for k, v in image.items() if isinstance(v, str | int | float | bool)},
        "availability_zone": zone, "scheduler_hints": hints, "request_id": ctx.request_id,
        "group": ({"uuid": group.uuid, "policy": group.policy, "rules": group.rules or {}} if group else None),
    }
    uuids = [str(uuidlib.uuid4()) for _ in range(max_count)]

    def write_instances(session: Session) -> None:
        with tracing.sync_span("DB", "quota check", step="6"):
            limits = project_limits_sync(session, settings, ctx.project_id)
            used = usage_dict(session.execute(usage_query(ctx.project_id)).one())
            for resource, per_instance in (("instances", 1), ("cores", flavor.vcpus), ("ram", flavor.memory_mb)):
                limit = limits[resource]
                if limit >= 0 and used[resource] + per_instance * max_count > limit:
                    raise Forbidden(_quota_message(resource, per_instance * max_count, used[resource], limit))
        with tracing.sync_span("DB", "write instance records (building/scheduling)", step="7"):
            if group is not None:
                members = session.scalar(select(func.count()).select_from(m.ServerGroupMember).where(
                    m.ServerGroupMember.group_uuid == group.uuid))
                limit = settings.compute.quota_server_group_members
                if limit >= 0 and members + max_count > limit:
                    raise Forbidden(_quota_message("server_group_members", max_count, members, limit))
            for index, instance_uuid in enumerate(uuids):
                name = body.name if max_count == 1 else f"{body.name}-{index + 1}"
                session.add(m.Instance(
                    uuid=instance_uuid, display_name=name, hostname=_hostname(body.hostname or name),
                    description=body.description, project_id=ctx.project_id, user_id=ctx.user_id,
                    image_ref=devices.image_ref, flavor=flavor_snapshot, vcpus=flavor.vcpus, memory_mb=flavor.memory_mb,
                    root_gb=flavor.root_gb, vm_state=states.BUILDING, task_state=states.SCHEDULING,
                    power_state=states.NOSTATE, availability_zone=zone or settings.compute.default_availability_zone,
                    key_name=body.key_name, key_data=key_data, user_data=user_data,
                    config_drive=str(body.config_drive).lower() in ("true", "1", "yes"),
                    access_ip_v4=body.accessIPv4, access_ip_v6=body.accessIPv6, request_id=ctx.request_id,
                    reservation_id=reservation_id, launch_index=index, requested_networks=requested_networks,
                    security_groups=security_groups, scheduler_hints=hints,
                    network_info=[], retry={}, request_spec=request_spec, created_at=now, updated_at=now))
                for mapping in devices.mappings:
                    session.add(m.BlockDeviceMapping(instance_uuid=instance_uuid, created_at=now, **mapping))
                for key, value in body.metadata.items():
                    session.add(m.InstanceMetadata(instance_uuid=instance_uuid, key=key, value=value))
                for tag in dict.fromkeys(body.tags):
                    session.add(m.InstanceTag(instance_uuid=instance_uuid, tag=tag))
                session.add(m.InstanceAction(instance_uuid=instance_uuid, action="create", request_id=ctx.request_id,
                                             project_id=ctx.project_id, user_id=ctx.user_id, start_time=now))
                if group is not None:
                    session.add(m.ServerGroupMember(group_uuid=group.uuid, instance_uuid=instance_uuid))
            session.flush()

    await db.run(write_instances, write=True)
    try:
        await state(request).conductor.build_instances(uuids, request_spec)  # step 8
    except Exception as exc:
        log.exception("could not hand the build to the conductor")
        reason = f"The conductor could not be reached: {exc}"

        def fail(session: Session) -> None:
            for instance_uuid in uuids:
                inst = session.get(m.Instance, instance_uuid)
                inst.vm_state, inst.task_state = states.ERROR, None
                session.add(m.InstanceFault(instance_uuid=instance_uuid, code=503, created_at=utcnow(),
                                            message=reason))

        await db.run(fail, write=True)
        raise APIError("The build could not be handed to the conductor; the servers are in ERROR.")
    if body.return_reservation_id:
        return json_response({"reservation_id": reservation_id}, status=202)
    result: dict[str, Any] = {"id": uuids[0], "links": links(request, "servers", uuids[0]),
                              "OS-DCF:diskConfig": "MANUAL",
                              "security_groups": [{"name": sg["name"]} for sg in security_groups or
                                                  [{"name": "default"}]]}
    if body.adminPass:
        result["adminPass"] = body.adminPass
    return json_response({"server": result}, status=202,
                         headers={"Location": links(request, "servers", uuids[0])[0]["href"]})


def _hostname(name: str) -> str:
    """A DNS label from a display name, as Nova sanitizes it."""
    label = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-.")
    return (label or "server")[:63]


# ----- list, show, update, delete ---------------------------------------------------------------------------
def _parse_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters changes-since. Value: {value}. "
                         f"'{value}' is not a 'date-time'")


_STATUS_FILTER = {"ACTIVE": (states.ACTIVE, None), "BUILD": (states.BUILDING, None),
                  "SHUTOFF": (states.STOPPED, None), "PAUSED": (states.PAUSED, None),
                  "SUSPENDED": (states.SUSPENDED, None), "ERROR": (states.ERROR, None),
                  "DELETED": (states.DELETED, None), "REBOOT": (states.ACTIVE, states.REBOOTING),
                  "HARD_REBOOT": (states.ACTIVE, states.REBOOTING_HARD)}


# a server list reads plain rows of the columns views show (no ORM objects: building them cost most of a list)
_NOT_LISTED = {"request_spec", "scheduler_hints", "requested_networks", "retry", "key_data"}
_LISTED = [c for c in m.Instance.__table__.c if c.key not in _NOT_LISTED]


async def _list(request: Request, detail: bool) -> Response:
    ctx = enforce(request, "os_compute_api:servers:detail" if detail else "os_compute_api:servers:index")
    q = request.query_params
    query = select(m.Instance)
    all_tenants = "all_tenants" in q and q.get("all_tenants", "").lower() not in ("0", "false", "off", "no")
    if all_tenants:
        state(request).policy.enforce("os_compute_api:servers:index:get_all_tenants", ctx, {})
        project = q.get("project_id") or q.get("tenant_id")
        if project:
            query = query.where(m.Instance.project_id == project)
    else:
        query = query.where(m.Instance.project_id == ctx.project_id)
    show_deleted = ctx.is_admin and q.get("deleted", "").lower() in ("true", "1")
    if not show_deleted:
        query = query.where(m.Instance.deleted.is_(False))
    if "changes-since" in q:
        since = _parse_time(q["changes-since"])
        query = query.where(or_(m.Instance.updated_at >= since, m.Instance.created_at >= since))
    if q.get("name"):
        try:
            pattern = re.compile(q["name"])
        except re.error:
            raise BadRequest(f"Invalid input for query parameters name. Value: {q['name']}.")
    else:
        pattern = None
    if q.get("status"):
        status = q["status"].upper()
        if status not in _STATUS_FILTER:
            return json_response({"servers": []})
        vm_state, task_state = _STATUS_FILTER[status]
        query = query.where(m.Instance.vm_state == vm_state)
        if task_state:
            query = query.where(m.Instance.task_state == task_state)
    if q.get("host") and ctx.is_admin:
        query = query.where(m.Instance.host == q["host"])
    if q.get("image"):
        query = query.where(m.Instance.image_ref == q["image"].rsplit("/", 1)[-1])
    if q.get("flavor"):
        flavor_ref = q["flavor"].rsplit("/", 1)[-1]
        query = query.where(func.json_extract(m.Instance.flavor, "$.id") == flavor_ref
                            if state(request).db.is_sqlite else m.Instance.flavor["id"].as_string() == flavor_ref)
    if q.get("availability_zone"):
        query = query.where(m.Instance.availability_zone == q["availability_zone"])
    if q.get("reservation_id"):
        query = query.where(m.Instance.reservation_id == q["reservation_id"])
    if q.get("locked"):
        query = query.where(m.Instance.locked.is_(q["locked"].lower() in ("true", "1")))
    for tag in (q.get("tags") or "").split(","):
        if tag:
            query = query.where(m.Instance.uuid.in_(select(m.InstanceTag.instance_uuid).where(
                m.InstanceTag.tag == tag)))
    if q.get("tags-any"):
        query = query.where(m.Instance.uuid.in_(select(m.InstanceTag.instance_uuid).where(
            m.InstanceTag.tag.in_(q["tags-any"].split(",")))))
    sort_dir = q.get("sort_dir", "desc")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid input for query parameters sort_dir. Value: {sort_dir}.")
    sort_keys = {"created_at": m.Instance.created_at, "display_name": m.Instance.display_name,
                 "updated_at": m.Instance.updated_at, "uuid": m.Instance.uuid, "vm_state": m.Instance.vm_state}
    sort_key = q.get("sort_key", "created_at")
    if sort_key not in sort_keys:
        raise BadRequest(f"Invalid input for query parameters sort_key. Value: {sort_key}.")
    column = sort_keys[sort_key]
    limit = limit_param(request)

    def read(session: Session) -> list[dict[str, Any]]:
        nonlocal query
        if q.get("marker"):
            marker = session.get(m.Instance, q["marker"])
            if marker is None:
                raise BadRequest(f"marker [{q['marker']}] not found")
            mval = getattr(marker, column.key)
            cmp = column < mval if sort_dir == "desc" else column > mval
            tie = and_(column == mval, m.Instance.uuid < marker.uuid if sort_dir == "desc"
                       else m.Instance.uuid > marker.uuid)
            query = query.where(or_(cmp, tie))
        order = (column.desc(), m.Instance.uuid.desc()) if sort_dir == "desc" else (column.asc(),
                                                                                    m.Instance.uuid.asc())
        query = query.order_by(*order)
        query = query.with_only_columns(*_LISTED)
        if pattern is None:
            rows = session.execute(query.limit(limit)).all()
        else:
            rows = [i for i in session.execute(query).all() if pattern.search(i.display_name)][:limit]
        if not detail:
            return [{"id": i.uuid, "name": i.display_name, "links": links(request, "servers", i.uuid)} for i in rows]
        uuids = [i.uuid for i in rows]
        metadata, tags, faults = load_extras(session, uuids)
        volumes: dict[str, list[SimpleNamespace]] = defaultdict(list)
        for uuid, volume_id, delete_on_termination in session.execute(
                select(m.BlockDeviceMapping.instance_uuid, m.BlockDeviceMapping.volume_id,
                       m.BlockDeviceMapping.delete_on_termination).where(
                    m.BlockDeviceMapping.instance_uuid.in_(uuids), m.BlockDeviceMapping.volume_id.is_not(None))
                .order_by(m.BlockDeviceMapping.id)):
            volumes[uuid].append(SimpleNamespace(volume_id=volume_id, delete_on_termination=delete_on_termination))
        return [server_view(request, SimpleNamespace(**i._mapping, block_devices=volumes[i.uuid]),  # type: ignore[arg-type]
                            metadata=metadata[i.uuid], tags=tags[i.uuid], fault=faults.get(i.uuid), ctx=ctx)
                for i in rows]

    items = await state(request).db.run(read, write=False)  # one hop: polled often, and lists are long
    result: dict[str, Any] = {"servers": items}
    more = next_link(request, "servers", items, limit)
    if more:
        result["servers_links"] = more
    return json_response(result)


@router.get("/servers")
async def list_servers(request: Request) -> Response:
    return await _list(request, detail=False)


@router.get("/servers/detail")
async def list_servers_detail(request: Request) -> Response:
    return await _list(request, detail=True)


@router.get("/servers/{server_id}")
async def show_server(request: Request, server_id: str) -> Response:
    ctx = enforce(request, "os_compute_api:servers:show")

    def read(session: Session) -> tuple[m.Instance, Any]:
        inst = visible_instance(session, server_id, ctx)
        return inst, load_extras(session, [inst.uuid])

    inst, (metadata, tags, faults) = await state(request).db.run(read, write=False)  # one hop: polled often
    return json_response({"server": server_view(request, inst, metadata=metadata[inst.uuid], tags=tags[inst.uuid],
                                                fault=faults.get(inst.uuid), ctx=ctx)})


@router.put("/servers/{server_id}")
async def update_server(request: Request, server_id: str) -> Response:
    ctx = request_context(request)
    raw = await json_body(request)
    if not isinstance(raw, dict) or not isinstance(raw.get("server"), dict):
        raise BadRequest("Invalid input: 'server' is a required property.")
    body = ServerUpdate.model_validate(raw["server"])
    if body.description is not None and version(request) < "2.19":
        raise BadRequest("Invalid input: 'description' needs microversion 2.19 or later.")
    async with state(request).db.session(write=True) as session:
        inst = await get_instance(session, request, server_id, ctx)
        state(request).policy.enforce("os_compute_api:servers:update", ctx, {"project_id": inst.project_id})
        if body.name is not None:
            inst.display_name = body.name
        if "description" in body.model_fields_set:
            inst.description = body.description
        if body.accessIPv4 is not None:
            inst.access_ip_v4 = body.accessIPv4
        if body.accessIPv6 is not None:
            inst.access_ip_v6 = body.accessIPv6
        inst.updated_at = utcnow()
        await session.flush()
        return json_response({"server": await show_body(request, session, inst, ctx)})


@router.delete("/servers/{server_id}")
async def delete_server(request: Request, server_id: str) -> Response:
    ctx = request_context(request)
    db = state(request).db
    async with db.session(write=False) as session:
        inst = await get_instance(session, request, server_id, ctx)
    state(request).policy.enforce("os_compute_api:servers:delete", ctx, {"project_id": inst.project_id})
    if inst.locked and not ctx.is_admin:
        raise Conflict(f"Instance {inst.uuid} is locked")

    def start_delete(session: Session) -> str | None:
        row = session.get(m.Instance, inst.uuid)
        if row is None or row.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        session.add(m.InstanceAction(instance_uuid=row.uuid, action="delete", request_id=ctx.request_id,
                                     project_id=ctx.project_id or row.project_id, user_id=ctx.user_id or "",
                                     start_time=utcnow()))
        if row.host is None:
            # never reached a host (scheduling failed, or still scheduling): nothing to tear down there
            mark_deleted(session, row.uuid)
            return None
        row.task_state = states.DELETING
        row.updated_at = utcnow()
        return row.host

    host = await db.run(start_delete, write=True)
    if host is None:
        return Response(status_code=204)
    await state(request).agents.terminate_instance(host, server_id)
    return Response(status_code=204)

