"""OpenTelemetry export of the spans `pocketstack trace` shows: OTLP over HTTP to `trace.otlp_endpoint`.

Each hop becomes an OpenTelemetry span of the trace its global request id names (`tracing.trace_id`), with the
parent that the W3C trace context carried across REST (`traceparent`) and RPC, and a resource per component
(`service.name` compute-api, conductor, scheduler, compute, ...), so Jaeger or any OTLP backend draws the same
boot flow. Batches are exported off the event loop; a collector that is down costs a warning, not the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from pocketstack.common import tracing

KINDS = {"REST": SpanKind.CLIENT, "CALL": SpanKind.CLIENT, "CAST": SpanKind.PRODUCER, "DB": SpanKind.INTERNAL,
         "WORK": SpanKind.INTERNAL}
SCOPE = InstrumentationScope("pocketstack")


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector endpoint (`http://host:4318` or the full `/v1/traces` URL)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def failed(outcome: str) -> bool:
    return outcome.startswith("error") or outcome == "unreachable" or (outcome.isdigit() and int(outcome) >= 500)


class OtlpExport:
    def __init__(self, endpoint: str, timeout: float = 10.0) -> None:
        self.exporter = OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=timeout)
        self._resources: dict[str, Resource] = {}

    def resource(self, component: str) -> Resource:
        if component not in self._resources:
            service, _, host = component.partition("@")
            attributes = {"service.name": service, "service.namespace": "pocketstack",
                          "pocketstack.component": component}
            if host:
                attributes["host.name"] = host
            self._resources[component] = Resource.create(attributes)
        return self._resources[component]

    def convert(self, span: tracing.Span) -> ReadableSpan:
        trace = int(tracing.trace_id(span.request_id), 16)
        context = SpanContext(trace, int(span.span_id or tracing.new_span_id(), 16), is_remote=False,
                              trace_flags=TraceFlags(TraceFlags.SAMPLED))
        parent = SpanContext(trace, int(span.parent_id, 16), is_remote=True,
                             trace_flags=TraceFlags(TraceFlags.SAMPLED)) if span.parent_id else None
        attributes = {"pocketstack.kind": span.kind, "pocketstack.target": span.target, "peer.service": span.target,
                      "pocketstack.outcome": span.outcome, "openstack.request_id": span.request_id}
        if span.step:
            attributes["pocketstack.flow_step"] = span.step
        if span.process:
            attributes["process.name"] = span.process
        start = int(span.start * 1e9)
        return ReadableSpan(
            name=f"{span.kind} {span.operation}", context=context, parent=parent,
            resource=self.resource(span.source), attributes=attributes, kind=KINDS.get(span.kind, SpanKind.INTERNAL),
            start_time=start, end_time=start + int(span.duration * 1e9), instrumentation_scope=SCOPE,
            status=Status(StatusCode.ERROR, span.outcome) if failed(span.outcome) else Status(StatusCode.OK))

    async def export(self, spans: Sequence[tracing.Span]) -> None:
        converted = [self.convert(span) for span in spans]
        result = await asyncio.to_thread(self.exporter.export, converted)
        if result.name != "SUCCESS":
            raise RuntimeError(f"the collector at {self.exporter._endpoint} refused {len(converted)} spans")

    def shutdown(self) -> None:
        self.exporter.shutdown()
