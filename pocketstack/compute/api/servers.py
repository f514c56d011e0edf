"""`/servers`: create (FLOW.md steps 3-8), list, show, update, delete."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import logging
import re
import uuid as uuidlib
from datetime import datetime
from typing import Any, Literal

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pocketstack.common import apikit
from pocketstack.common.apikit import is_uuid, iso_micro, iso_seconds
from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import APIError, BadRequest, Conflict, Forbidden, NotFound
from pocketstack.compute import states
from pocketstack.compute.api import block_devices
from pocketstack.compute.api.block_devices import BlockDevicePlan
from pocketstack.compute.api.common import ComputeAPIState, delete_instance, limit_param, links, page_body, state
from pocketstack.compute.build import BuildRequest, FlavorSnapshot
from pocketstack.compute.passwords import generate_password
from pocketstack.compute.store.servers import SORT_KEYS, BuildInputs, NewServers, ServerQuery, ServerRecord

log = logging.getLogger("pocketstack.compute.api")


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


def _access_ip(value: str | None, ip_version: int) -> str | None:
    """An accessIPv4/accessIPv6 in its canonical form (Nova keeps them as IP addresses: '::babe:dc0c:1602')."""
    if value is None:
        return None
    kind = ipaddress.IPv4Address if ip_version == 4 else ipaddress.IPv6Address
    try:
        return str(kind(value))
    except ValueError:
        raise ValueError(f"'{value}' is not a 'ipv{ip_version}'")


class _AccessIPs(BaseModel):
    """accessIPv4 and accessIPv6, validated and canonical, on a create and an update."""
    model_config = ConfigDict(extra="forbid")
    accessIPv4: str | None = None
    accessIPv6: str | None = None
    disk_config: Literal["AUTO", "MANUAL"] | None = Field(None, alias="OS-DCF:diskConfig")

    @field_validator("accessIPv4")
    @classmethod
    def _ipv4(cls, value: str | None) -> str | None:
        return _access_ip(value, 4)

    @field_validator("accessIPv6")
    @classmethod
    def _ipv6(cls, value: str | None) -> str | None:
        return _access_ip(value, 6)


class ServerCreate(_AccessIPs):
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
    block_device_mapping_v2: list[dict[str, Any]] | None = None
    hostname: str | None = None

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


class ServerUpdate(_AccessIPs):
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=255)
    hostname: str | None = None


# ----- view --------------------------------------------------------------------------------------------------
def host_id(project_id: str, host: str | None) -> str:
    """Nova's hostId: hides the host name but lets a project see which of its servers share a host."""
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def addresses(network_info: list[dict[str, Any]], extended: bool = True) -> dict[str, list[dict[str, Any]]]:
    """A server's addresses by network; `extended` adds the OS-EXT-IPS type and MAC (not in an update's body)."""
    result: dict[str, list[dict[str, Any]]] = {}
    for vif in network_info or []:
        entries = result.setdefault(vif.get("network_name") or vif["network_id"], [])
        found = [(ip["ip_address"], "fixed") for ip in vif.get("fixed_ips", [])]
        found += [(fip, "floating") for fip in vif.get("floating_ips", [])]
        for addr, kind in found:
            entry: dict[str, Any] = {"version": 6 if ":" in addr else 4, "addr": addr}
            if extended:
                entry.update({"OS-EXT-IPS:type": kind, "OS-EXT-IPS-MAC:mac_addr": vif["mac_address"]})
            entries.append(entry)
    return result


# keys of a show that Nova leaves out of the body of an update (and a rebuild) before microversion 2.75
_EXTENDED_KEYS = ("OS-EXT-AZ:availability_zone", "config_drive", "key_name", "OS-SRV-USG:launched_at",
                  "OS-SRV-USG:terminated_at", "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state",
                  "OS-EXT-STS:power_state", "os-extended-volumes:volumes_attached", "security_groups")


def server_view(request: Request, inst: Any, *, metadata: dict[str, str], tags: list[str],
                fault: Any, ctx: RequestContext, extended: bool = True) -> dict[str, Any]:
    """A server's body; `inst` is its row (or a listed row with its volume mappings), `fault` its latest fault.
    `extended=False`: the body of an update or a rebuild, which Nova renders without the extension attributes
    (zone, status, usage, volumes, security groups, key, config drive, admin attributes) before 2.75."""
    api = apikit.version(request)
    ver = (api.major, api.minor)  # a tuple: compared many times per server of a list
    extended = extended or ver >= (2, 75)
    status = states.api_status(inst.vm_state, inst.task_state)
    body: dict[str, Any] = {
        "id": inst.uuid, "name": inst.display_name, "status": status, "tenant_id": inst.project_id,
        "user_id": inst.user_id, "metadata": metadata, "hostId": host_id(inst.project_id, inst.host),
        "image": ({"id": inst.image_ref, "links": [{"rel": "bookmark", "href":
                   f"{request.url.scheme}://{request.url.netloc}/images/{inst.image_ref}"}]}
                  if inst.image_ref else ""),
        "created": iso_seconds(inst.created_at), "updated": iso_seconds(inst.updated_at or inst.created_at),
        "addresses": addresses(inst.network_info, extended), "accessIPv4": inst.access_ip_v4 or "",
        "accessIPv6": inst.access_ip_v6 or "", "links": links(request, "servers", inst.uuid),
        "OS-DCF:diskConfig": disk_config(inst), "OS-EXT-AZ:availability_zone": inst.availability_zone or "",
        "config_drive": "True" if inst.config_drive else "", "key_name": inst.key_name,
        "OS-SRV-USG:launched_at": iso_micro(inst.launched_at),
        "OS-SRV-USG:terminated_at": iso_micro(inst.terminated_at),
        "OS-EXT-STS:task_state": inst.task_state, "OS-EXT-STS:vm_state": inst.vm_state,
        "OS-EXT-STS:power_state": inst.power_state,
        "os-extended-volumes:volumes_attached": [  # delete_on_termination from 2.3
            {"id": b.volume_id, "delete_on_termination": b.delete_on_termination} if ver >= (2, 3) else
            {"id": b.volume_id} for b in inst.block_devices if b.volume_id],
    }
    if inst.security_groups:  # Nova leaves the key out when the server has none
        body["security_groups"] = [{"name": sg["name"]} for sg in inst.security_groups]
    if status in ("ACTIVE", "BUILD", "REBOOT", "HARD_REBOOT"):
        body["progress"] = 100 if status == "ACTIVE" else inst.progress
    body["flavor"] = _flavor_view(request, inst.flavor, ver)
    for since, key, value in (((2, 9), "locked", inst.locked), ((2, 73), "locked_reason", inst.locked_reason),
                              ((2, 19), "description", inst.description), ((2, 26), "tags", tags),
                              ((2, 63), "trusted_image_certificates", None)):
        if ver >= since:
            body[key] = value
    if not extended:
        for key in _EXTENDED_KEYS:
            body.pop(key, None)
    elif ctx.is_admin:
        body.update(_admin_attributes(inst, ver))
    if fault is not None and inst.vm_state in (states.ERROR, states.DELETED):
        body["fault"] = {"code": fault.code, "created": iso_seconds(fault.created_at), "message": fault.message}
        if ctx.is_admin and fault.details:
            body["fault"]["details"] = fault.details
    return body


def _flavor_view(request: Request, flavor: dict[str, Any], ver: tuple[int, int]) -> dict[str, Any]:
    if ver >= (2, 47):
        return {"vcpus": flavor["vcpus"], "ram": flavor["ram"], "disk": flavor["disk"],
                "ephemeral": flavor.get("ephemeral", 0), "swap": flavor.get("swap", 0),
                "original_name": flavor["name"], "extra_specs": flavor.get("extra_specs", {})}
    return {"id": flavor["id"], "links": [{"rel": "bookmark", "href":
                                           f"{request.url.scheme}://{request.url.netloc}/flavors/{flavor['id']}"}]}


def _admin_attributes(inst: Any, ver: tuple[int, int]) -> dict[str, Any]:
    body: dict[str, Any] = {"OS-EXT-SRV-ATTR:host": inst.host, "OS-EXT-SRV-ATTR:hypervisor_hostname": inst.node,
                            "OS-EXT-SRV-ATTR:instance_name": f"instance-{inst.uuid[:8]}"}
    if ver >= (2, 3):
        body.update({"OS-EXT-SRV-ATTR:reservation_id": inst.reservation_id,
                     "OS-EXT-SRV-ATTR:launch_index": inst.launch_index,
                     "OS-EXT-SRV-ATTR:hostname": inst.hostname, "OS-EXT-SRV-ATTR:kernel_id": "",
                     "OS-EXT-SRV-ATTR:ramdisk_id": "", "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                     "OS-EXT-SRV-ATTR:user_data": inst.user_data})
    if ver >= (2, 16):
        body["host_status"] = "UP" if inst.host else ""
    return body


def disk_config(inst: Any) -> str:
    """`OS-DCF:diskConfig`: AUTO when the root disk is resized and its partition grown, MANUAL otherwise."""
    return "AUTO" if inst.auto_disk_config else "MANUAL"


def record_view(request: Request, record: ServerRecord, ctx: RequestContext, extended: bool = True) -> dict[str, Any]:
    return server_view(request, record.inst, metadata=record.metadata, tags=record.tags, fault=record.fault,
                       ctx=ctx, extended=extended)


# ----- create (steps 3-8) ------------------------------------------------------------------------------------
async def _resolve_image(request: Request, image_ref: str, flavor: Any) -> dict[str, Any]:
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
    """The groups of a create by id and name; the project's `default` when none is asked for, as Nova."""
    refs = refs or [SecurityGroupRef(name="default")]
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


def _parse_create(raw: Any) -> tuple[ServerCreate, dict[str, Any]]:
    """The `server` of a create body and its scheduler hints."""
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
    return body, hints


def _validate_create(request: Request, body: ServerCreate) -> int:
    """What a create's body must satisfy before anything is looked up; the number of servers to make."""
    if body.networks is None and apikit.version(request) >= "2.37":
        raise BadRequest("Invalid input for field/attribute networks: 'networks' is a required property")
    max_count = body.max_count or body.min_count
    if max_count < body.min_count:
        raise BadRequest("min_count must be <= max_count")
    return max_count


def _validate_details(body: ServerCreate, devices: BlockDevicePlan, hints: dict[str, Any]) -> None:
    """The image or volume root, user data, zone and group hint of a create."""
    if not devices.image_ref and not devices.volume_root:
        raise BadRequest("Invalid input for field/attribute imageRef: an image is required.")
    if body.user_data is not None:
        try:
            base64.b64decode(body.user_data, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("User data needs to be valid base 64.")
    if body.availability_zone and ":" in body.availability_zone:
        raise BadRequest("Forcing a host with availability_zone 'zone:host' is not supported.")
    group_uuid = hints.get("group")
    if group_uuid is not None and (not isinstance(group_uuid, str) or not is_uuid(group_uuid)):
        raise BadRequest(f"Invalid input for field/attribute group. Value: {group_uuid}. "
                         f"'{group_uuid}' is not a 'uuid'")


async def _resolve_root(request: Request, devices: BlockDevicePlan, flavor: Any) -> dict[str, Any]:
    """The image the server boots (for a volume root: only the image properties matter, for scheduling)."""
    if not devices.volume_root:
        return await _resolve_image(request, devices.image_ref, flavor)
    image = devices.root_image or {}
    if int(image.get("min_ram") or 0) > flavor.memory_mb:
        raise BadRequest("Flavor's memory is too small for requested image.")
    return image


def _request_spec(ctx: RequestContext, inputs: BuildInputs, image: dict[str, Any], is_bfv: bool, zone: str | None,
                  hints: dict[str, Any]) -> BuildRequest:
    """What the scheduler needs of a build (also kept on each instance row)."""
    group = inputs.group
    return {
        "project_id": ctx.project_id, "flavor": _flavor_snapshot(inputs), "image_id": image.get("id") or "",
        "image_properties": {k: v for k, v in image.items() if isinstance(v, str | int | float | bool)},
        "is_bfv": is_bfv,
        "availability_zone": zone, "scheduler_hints": hints, "request_id": ctx.request_id,
        "group": ({"uuid": group.uuid, "policy": group.policy, "rules": group.rules or {}} if group else None),
    }


def _flavor_snapshot(inputs: BuildInputs) -> FlavorSnapshot:
    flavor = inputs.flavor
    return {"id": flavor.flavorid, "name": flavor.name, "vcpus": flavor.vcpus, "ram": flavor.memory_mb,
            "disk": flavor.root_gb, "ephemeral": flavor.ephemeral_gb, "swap": flavor.swap,
            "extra_specs": inputs.extra_specs}


def admin_password(api: ComputeAPIState, sent: str | None) -> tuple[str | None, str | None]:
    """The adminPass of a create, rebuild or rescue (generated when none was sent) and its sealed form; both
    None when `enable_instance_password` is off."""
    if not api.settings.compute.enable_instance_password:
        return None, None
    password = sent or generate_password()
    seal = api.password_seal()
    return password, seal.seal(password) if seal is not None else None


def auto_disk_config(requested: str | None, image_properties: dict[str, Any]) -> bool:
    """Whether the server's disk is AUTO: as requested, else the image's `auto_disk_config` property (Nova's
    default: MANUAL); AUTO of an image that says `disabled` is refused."""
    image_value = str(image_properties.get("auto_disk_config", "")).lower()
    if requested is None:
        return image_value in ("true", "1", "yes", "on")
    if requested == "AUTO" and image_value == "disabled":
        raise BadRequest(f"Requested image {image_properties.get('id', '')} has automatic disk resize disabled.")
    return requested == "AUTO"


def _new_servers(api: ComputeAPIState, ctx: RequestContext, body: ServerCreate, count: int, inputs: BuildInputs,
                 devices: BlockDevicePlan, request_spec: BuildRequest, networks: Any,
                 security_groups: list[dict[str, str]], sealed_password: str | None) -> NewServers:
    """The rows of `count` new servers (named NAME-1..N when more than one), building and scheduling."""
    flavor, reservation_id = inputs.flavor, f"r-{uuidlib.uuid4().hex[:8]}"
    zone = body.availability_zone or api.settings.compute.default_availability_zone
    auto_disk = auto_disk_config(body.disk_config, request_spec["image_properties"])
    instances = []
    for index in range(count):
        name = body.name if count == 1 else f"{body.name}-{index + 1}"
        instances.append(dict(
            uuid=str(uuidlib.uuid4()), display_name=name, hostname=_hostname(body.hostname or name),
            description=body.description, project_id=ctx.project_id, user_id=ctx.user_id,
            image_ref=devices.image_ref, flavor=request_spec["flavor"], vcpus=flavor.vcpus,
            memory_mb=flavor.memory_mb, root_gb=flavor.root_gb, vm_state=states.BUILDING,
            task_state=states.SCHEDULING, power_state=states.NOSTATE, availability_zone=zone,
            key_name=body.key_name, key_data=inputs.key_data, user_data=body.user_data,
            config_drive=str(body.config_drive).lower() in ("true", "1", "yes"),
            access_ip_v4=body.accessIPv4, access_ip_v6=body.accessIPv6, auto_disk_config=auto_disk,
            request_id=ctx.request_id,
            reservation_id=reservation_id, launch_index=index, requested_networks=networks,
            security_groups=security_groups, scheduler_hints=request_spec["scheduler_hints"], network_info=[],
            retry={}, request_spec=request_spec, admin_pass_sealed=sealed_password))
    return NewServers(ctx, instances, vcpus=flavor.vcpus, memory_mb=flavor.memory_mb, mappings=devices.mappings,
                      metadata=body.metadata, tags=body.tags,
                      group_uuid=inputs.group.uuid if inputs.group is not None else None)


async def _cast_build(request: Request, uuids: list[str], request_spec: BuildRequest) -> None:
    """Hand the build to the conductor (step 8); when it cannot be reached, the servers go to ERROR (500)."""
    try:
        await state(request).conductor.build_instances(uuids, request_spec)  # step 8
    except Exception as exc:
        log.exception("could not hand the build to the conductor")
        await state(request).servers.fail_build(uuids, 503, f"The conductor could not be reached: {exc}")
        raise APIError("The build could not be handed to the conductor; the servers are in ERROR.")


def _created(request: Request, body: ServerCreate, new: NewServers, password: str | None) -> Response:
    """The 202 of a create: the reservation id, or the first server's id, links and security groups."""
    if body.return_reservation_id:
        return json_response({"reservation_id": new.instances[0]["reservation_id"]}, status=202)
    first = new.instances[0]["uuid"]
    result: dict[str, Any] = {"id": first, "links": links(request, "servers", first), "OS-DCF:diskConfig":
                              "AUTO" if new.instances[0]["auto_disk_config"] else "MANUAL",
                              "security_groups": [{"name": sg["name"]} for sg in
                                                  new.instances[0]["security_groups"]]}
    if password is not None:
        result["adminPass"] = password
    return json_response({"server": result}, status=202,
                         headers={"Location": links(request, "servers", first)[0]["href"]})


async def create_server(request: Request) -> Response:
    ctx = apikit.enforce(request, state(request), "os_compute_api:servers:create")
    body, hints = _parse_create(await json_body(request))
    count = _validate_create(request, body)
    api = state(request)
    devices = await block_devices.plan(api, body.block_device_mapping_v2 or [], body.imageRef, count)
    _validate_details(body, devices, hints)
    flavor_ref = str(body.flavorRef).rstrip("/").rsplit("/", 1)[-1]
    inputs = await api.servers.build_inputs(ctx, flavor_ref, body.key_name, hints.get("group"),
                                            body.availability_zone)
    image = await _resolve_root(request, devices, inputs.flavor)
    networks = await _resolve_networks(request, body.networks, ctx)
    if isinstance(networks, list) and count > 1 and any(n.get("port") or n.get("fixed_ip") for n in networks):
        raise BadRequest("Multiple instances cannot share a port or a fixed IP.")
    security_groups = await _resolve_security_groups(request, body.security_groups)
    request_spec = _request_spec(ctx, inputs, image, devices.volume_root, body.availability_zone, hints)
    password, sealed = admin_password(api, body.adminPass)
    new = _new_servers(api, ctx, body, count, inputs, devices, request_spec, networks, security_groups, sealed)
    await api.servers.create(new)  # steps 6-7
    uuids = [columns["uuid"] for columns in new.instances]
    await _cast_build(request, uuids, request_spec)
    return _created(request, body, new, password)


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


def _list_scope(request: Request, ctx: RequestContext) -> ServerQuery:
    """Whose servers a list reads (all_tenants needs its policy) and whether deleted ones too."""
    q = request.query_params
    all_tenants = "all_tenants" in q and q.get("all_tenants", "").lower() not in ("0", "false", "off", "no")
    if all_tenants:
        state(request).policy.enforce("os_compute_api:servers:index:get_all_tenants", ctx, {})
        project = q.get("project_id") or q.get("tenant_id") or None
    else:
        project = ctx.project_id
    return ServerQuery(project_id=project, all_projects=all_tenants, limit=0,
                       show_deleted=ctx.is_admin and q.get("deleted", "").lower() in ("true", "1"))


def _list_query(request: Request, ctx: RequestContext) -> ServerQuery | None:
    """The server list's query from the request's parameters; None when the status filter can match nothing."""
    q = request.query_params
    query = _list_scope(request, ctx)
    if "changes-since" in q:
        query.changes_since = _parse_time(q["changes-since"])
    for param in ("name", "ip", "ip6"):
        if q.get(param):
            try:
                setattr(query, param, re.compile(q[param]))
            except re.error:
                raise BadRequest(f"Invalid input for query parameters {param}. Value: {q[param]}.")
    if q.get("status"):
        if q["status"].upper() not in _STATUS_FILTER:
            return None
        query.vm_state, query.task_state = _STATUS_FILTER[q["status"].upper()]
    if q.get("host") and ctx.is_admin:
        query.host = q["host"]
    query.image = q["image"].rsplit("/", 1)[-1] if q.get("image") else None
    query.flavor = q["flavor"].rsplit("/", 1)[-1] if q.get("flavor") else None
    query.availability_zone, query.reservation_id = q.get("availability_zone"), q.get("reservation_id")
    if q.get("locked"):
        query.locked = q["locked"].lower() in ("true", "1")
    query.tags = [tag for tag in (q.get("tags") or "").split(",") if tag]
    query.tags_any = q["tags-any"].split(",") if q.get("tags-any") else []
    query.sort_dir = q.get("sort_dir", "desc")
    if query.sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid input for query parameters sort_dir. Value: {query.sort_dir}.")
    query.sort_key = q.get("sort_key", "created_at")
    if query.sort_key not in SORT_KEYS:
        raise BadRequest(f"Invalid input for query parameters sort_key. Value: {query.sort_key}.")
    query.limit = limit_param(request)
    query.marker = q.get("marker") or None
    return query


async def _list(request: Request, detail: bool) -> Response:
    ctx = apikit.enforce(request, state(request),
                         "os_compute_api:servers:detail" if detail else "os_compute_api:servers:index")
    query = _list_query(request, ctx)
    if query is None:
        return json_response({"servers": []})
    found = await state(request).servers.page(query, detail=detail)
    items = ([record_view(request, record, ctx) for record in found] if detail else
             [{"id": i.uuid, "name": i.display_name, "links": links(request, "servers", i.uuid)} for i in found])
    return json_response(page_body(request, "servers", items, query.limit))


async def list_servers(request: Request) -> Response:
    return await _list(request, detail=False)


async def list_servers_detail(request: Request) -> Response:
    return await _list(request, detail=True)


async def show_server(request: Request, server_id: str) -> Response:
    ctx = apikit.enforce(request, state(request), "os_compute_api:servers:show")
    record = await state(request).servers.show(server_id, ctx)  # one hop: polled often
    return json_response({"server": record_view(request, record, ctx)})


async def update_server(request: Request, server_id: str) -> Response:
    ctx = request_context(request)
    raw = await json_body(request)
    if not isinstance(raw, dict) or not isinstance(raw.get("server"), dict):
        raise BadRequest("Invalid input: 'server' is a required property.")
    body = ServerUpdate.model_validate(raw["server"])
    if body.description is not None and apikit.version(request) < "2.19":
        raise BadRequest("Invalid input: 'description' needs microversion 2.19 or later.")
    changes: dict[str, Any] = {column: value for column, value in (
        ("display_name", body.name), ("access_ip_v4", body.accessIPv4), ("access_ip_v6", body.accessIPv6))
        if value is not None}
    if "description" in body.model_fields_set:
        changes["description"] = body.description
    if body.disk_config is not None:
        changes["auto_disk_config"] = body.disk_config == "AUTO"
    policy = state(request).policy
    record = await state(request).servers.update(
        server_id, ctx, lambda inst: policy.enforce("os_compute_api:servers:update", ctx,
                                                    {"project_id": inst.project_id}), changes)
    return json_response({"server": record_view(request, record, ctx, extended=False)})


async def delete_server(request: Request, server_id: str) -> Response:
    await delete_instance(request, server_id, "os_compute_api:servers:delete")
    return Response(status_code=204)
