"""Decodes OTLP/HTTP trace exports (ExportTraceServiceRequest, protobuf) with the OpenTelemetry project's
own generated types (PyPI opentelemetry-proto) and prints their spans as JSON, one list:
[{"name", "kind", "trace_id", "span_id", "parent_span_id", "status", "attributes": {...}, "service",
  "start_ns", "end_ns", "events": [{"name", "attributes"}], "links": [{"trace_id", "span_id"}]}]."""
import json
import sys

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


spans = []
for path in sys.argv[1:]:
    request = trace_service_pb2.ExportTraceServiceRequest()
    with open(path, "rb") as body:
        request.ParseFromString(body.read())
    for resource_spans in request.resource_spans:
        resource = {a.key: value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append({
                    "name": span.name,
                    "kind": span.kind,
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "status": span.status.code,
                    "attributes": {a.key: value(a.value) for a in span.attributes},
                    "service": resource.get("service.name"),
                    "start_ns": span.start_time_unix_nano,
                    "end_ns": span.end_time_unix_nano,
                    "events": [{"name": e.name, "attributes": {a.key: value(a.value) for a in e.attributes}} for e in span.events],
                    "links": [{"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex()} for l in span.links],
                })
json.dump(spans, sys.stdout)
