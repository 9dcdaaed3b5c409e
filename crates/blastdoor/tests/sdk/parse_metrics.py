"""Parses a /metrics scrape from stdin with the official Prometheus
client's parser for its content type (argv[1]): OpenMetrics or the classic
text format. Prints each family as a JSON line: name, type, samples."""
import json
import sys

from prometheus_client import parser as classic
from prometheus_client.openmetrics import parser as openmetrics

content_type = sys.argv[1] if len(sys.argv) > 1 else ""
is_openmetrics = content_type.startswith("application/openmetrics-text")
parse = (openmetrics if is_openmetrics else classic).text_string_to_metric_families

for family in parse(sys.stdin.read()):
    print(json.dumps({
        "name": family.name,
        "type": family.type,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples],
    }))
