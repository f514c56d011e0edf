"""OpenTelemetry export: the spans of a boot arrive at an OTLP/HTTP receiver started here (no collector needed),
as one trace with the W3C parent links carried across REST and RPC, one resource per component."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import Cloud, make_settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class Receiver:
    """An OTLP/HTTP endpoint (protobuf on POST /v1/traces) that keeps what it receives."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.paths.append(self.path)
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            receiver.spans.append({
                                "trace": span.trace_id.hex(), "id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(), "name": span.name,
                                "service": resource["service.name"],
                                "attributes": {a.key: a.value.string_value for a in span.attributes}})
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_the_spans_of_a_boot_arrive_as_one_trace(tmp_path: Path, receiver: Receiver, prefix: str) -> None:
    cloud = Cloud(make_settings(tmp_path, trace={"otlp_endpoint": receiver.url})).start()
    try:
        conn = cloud.conn()
        image = conn.image.create_image(name=f"{prefix}-img", disk_format="raw", container_format="bare",
                                        data=b"\0" * 4096)
        network = conn.network.create_network(name=f"{prefix}-net")
        conn.network.create_subnet(network_id=network.id, cidr="10.79.0.0/24", ip_version=4)
        server = conn.compute.create_server(name=f"{prefix}-vm", image_id=image.id, flavor_id="1",
                                            networks=[{"uuid": network.id}])
        conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
        request_id = conn.compute.get(f"/servers/{server.id}/os-instance-actions").json()[
            "instanceActions"][0]["request_id"]
        deadline = time.monotonic() + 30
        boot: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            boot = [s for s in receiver.spans if s["attributes"].get("openstack.request_id") == request_id]
            if {"compute-api", "conductor", "scheduler", "compute"} <= {s["service"] for s in boot} and any(
                    s["attributes"].get("pocketstack.flow_step") == "29" for s in boot):
                break
            time.sleep(0.2)
    finally:
        cloud.stop()
    assert set(receiver.paths) == {"/v1/traces"}
    services = {s["service"] for s in boot}
    assert {"client", "compute-api", "conductor", "scheduler", "compute"} <= services, services
    assert len({s["trace"] for s in boot}) == 1  # one trace id across the services of the boot
    assert boot[0]["trace"] == request_id.removeprefix("req-").replace("-", "")
    # the parent links form one tree: the client's POST /servers is the root, every other span has its parent in
    # the trace (REST hops through traceparent, RPC calls and casts through the message)
    ids = {s["id"] for s in boot}
    roots = [s for s in boot if not s["parent"]]
    assert [r["name"] for r in roots] == ["REST POST /v2.1/servers"], roots
    assert all(s["parent"] in ids for s in boot if s["parent"]), [s for s in boot if s["parent"] not in ids]
    by_id = {s["id"]: s for s in boot}
    spawn = next(s for s in boot if s["attributes"].get("pocketstack.flow_step") == "29")

    def chain(span: dict[str, Any]) -> list[str]:
        names = [span["service"]]
        while span["parent"]:
            span = by_id[span["parent"]]
            names.append(span["service"])
        return names

    # the spawn on the compute host descends from the API's request through the conductor's casts
    assert chain(spawn)[0] == "compute" and chain(spawn)[-1] == "client" and "conductor" in chain(spawn)
