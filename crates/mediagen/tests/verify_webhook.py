"""Verifies webhook deliveries with the standardwebhooks package (PyPI), an
implementation of the Standard Webhooks specification independent of
mediagen's.

Reads a JSON list of cases on stdin, each {name, secret, headers, body};
prints one JSON object: the package's version and, per case, either
{"ok": true, "type": <the event's type>} or {"ok": false, "error": <why>}.
"""

import json
import sys
from importlib.metadata import version

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

verdicts = {}
for case in json.load(sys.stdin):
    try:
        event = Webhook(case["secret"]).verify(case["body"], case["headers"])
        verdicts[case["name"]] = {"ok": True, "type": event["type"]}
    except WebhookVerificationError as e:
        verdicts[case["name"]] = {"ok": False, "error": str(e)}
print(json.dumps({"version": version("standardwebhooks"), "cases": verdicts}))
