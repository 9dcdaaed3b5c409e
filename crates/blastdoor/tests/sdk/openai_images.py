"""The official OpenAI Python SDK's images.generate, through the gateway, to
mediagen.

Run by tests/mediagen.rs with BLASTDOOR_BASE_URL (the service's base URL,
ending in /v1) and BLASTDOOR_KEY (a gateway API key). Prints one JSON line
per call with what the SDK parsed: each picture's PNG signature check and
size (read from its IHDR chunk), the usage mediagen reported, and the
gateway's cost header.
"""

import base64
import json
import os
import struct

import openai

client = openai.OpenAI(
    api_key=os.environ["BLASTDOOR_KEY"],
    base_url=os.environ["BLASTDOOR_BASE_URL"],
    max_retries=0,
    timeout=60.0,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def describe(b64):
    png = base64.b64decode(b64)
    width, height = struct.unpack(">II", png[16:24])
    return {"png": png[:8] == PNG_SIGNATURE, "width": width, "height": height, "bytes": len(png)}


def generate(request_id, **params):
    raw = client.images.with_raw_response.generate(
        extra_headers={"x-request-id": request_id}, **params
    )
    images = raw.parse()
    print(
        json.dumps(
            {
                "request_id": request_id,
                "images": [describe(d.b64_json) for d in images.data],
                "usage": raw.http_response.json()["usage"],
                "cost_header": raw.headers.get("x-blastdoor-cost-usd"),
            }
        ),
        flush=True,
    )


print(json.dumps({"sdk": "openai", "version": openai.__version__}), flush=True)
generate("img-one", prompt="a lighthouse at dusk", size="256x256", response_format="b64_json")
generate("img-two", prompt="a fox in snow", n=2, size="512x512", extra_body={"seed": 42})

# A request the contract refuses never reaches mediagen: the SDK raises.
try:
    client.images.generate(prompt="x", n=9, extra_headers={"x-request-id": "img-refused"})
    print(json.dumps({"request_id": "img-refused", "refused": False}), flush=True)
except openai.BadRequestError as e:
    print(json.dumps({"request_id": "img-refused", "refused": True, "code": e.body.get("code") if isinstance(e.body, dict) else None}), flush=True)
