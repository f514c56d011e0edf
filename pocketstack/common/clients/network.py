"""Client of the network service for the compute side (FLOW.md steps 23-25): ports, networks, subnets."""

from __future__ import annotations

from typing import Any

from pocketstack.common.clients.base import ServiceClient


class NetworkClient(ServiceClient):
    """Typed calls to the Networking API v2.0; the caller's token and request id travel with each call."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, "network")

    async def create_port(self, network_id: str, *, token: str | None = None, **attrs: Any) -> dict[str, Any]:
        """Create a port (attrs use API names: fixed_ips, device_id, device_owner, `binding:host_id`, ...)."""
        _, body, _ = await self.request("POST", "/v2.0/ports", token=token,
                                        json={"port": {"network_id": network_id, **attrs}})
        return body["port"]

    async def update_port(self, port_id: str, *, token: str | None = None, **attrs: Any) -> dict[str, Any]:
        _, body, _ = await self.request("PUT", f"/v2.0/ports/{port_id}", token=token, json={"port": attrs})
        return body["port"]

    async def bind_port(self, port_id: str, host: str, device_id: str, *, token: str | None = None,
                        device_owner: str = "compute:nova") -> dict[str, Any]:
        """What compute does before plugging a VIF: bind the port to its host and its server."""
        return await self.update_port(port_id, token=token, **{"binding:host_id": host, "device_id": device_id,
                                                               "device_owner": device_owner})

    async def delete_port(self, port_id: str, *, token: str | None = None) -> None:
        await self.request("DELETE", f"/v2.0/ports/{port_id}", token=token)

    async def get_port(self, port_id: str, *, token: str | None = None) -> dict[str, Any]:
        _, body, _ = await self.request("GET", f"/v2.0/ports/{port_id}", token=token)
        return body["port"]

    async def list_ports(self, *, token: str | None = None, **filters: str | list[str]) -> list[dict[str, Any]]:
        """Ports matching the filters (e.g. device_id=SERVER_ID); follows pagination links."""
        params = [(k, v) for k, values in filters.items()
                  for v in (values if isinstance(values, list) else [values])]
        ports: list[dict[str, Any]] = []
        path: str | None = "/v2.0/ports"
        while path is not None:
            _, body, _ = await self.request("GET", path, token=token, params=params or None)
            ports.extend(body["ports"])
            next_link = next((link["href"] for link in body.get("ports_links", []) if link["rel"] == "next"), None)
            path, params = (next_link.split(self.base_url, 1)[-1], []) if next_link else (None, [])
        return ports

    async def get_network(self, network_id: str, *, token: str | None = None) -> dict[str, Any]:
        _, body, _ = await self.request("GET", f"/v2.0/networks/{network_id}", token=token)
        return body["network"]

    async def get_subnet(self, subnet_id: str, *, token: str | None = None) -> dict[str, Any]:
        _, body, _ = await self.request("GET", f"/v2.0/subnets/{subnet_id}", token=token)
        return body["subnet"]
