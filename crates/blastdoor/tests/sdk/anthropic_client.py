"""The official Anthropic Python SDK as a caller of the gateway.

Run by tests/sdk.rs with BLASTDOOR_BASE_URL (the service's base URL; the SDK
appends /v1/messages) and BLASTDOOR_KEY (a gateway API key, sent as
x-api-key). Makes streamed and non-streamed calls, each with its own
x-request-id, and prints one JSON line per call with what the SDK parsed.
"""

import json
import os
import sys

import anthropic

client = anthropic.Anthropic(
    api_key=os.environ["BLASTDOOR_KEY"],
    base_url=os.environ["BLASTDOOR_BASE_URL"],
    max_retries=0,
    timeout=30.0,
)


def emit(call, request_id, **fields):
    print(json.dumps({"call": call, "request_id": request_id, **fields}), flush=True)


def headers(request_id):
    return {"x-request-id": request_id}


def dump(usage):
    return usage.model_dump(mode="json") if usage is not None else None


def text_of(message):
    return "".join(b.text for b in message.content if b.type == "text")


def whole(request_id, model, prompt):
    raw = client.messages.with_raw_response.create(
        model=model,
        max_tokens=256,
        system="You are a door.",
        messages=[{"role": "user", "content": prompt}],
        extra_headers=headers(request_id),
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    emit(
        "messages",
        request_id,
        requested=model,
        stream=False,
        text=text_of(message),
        stop_reason=message.stop_reason,
        model=message.model,
        usage=dump(message.usage),
        cost_header=raw.headers.get("x-blastdoor-cost-usd"),
        response_request_id=raw.headers.get("x-request-id"),
    )


def raw_stream(request_id, model, prompt):
    """stream=True: the raw events, as the SDK parses them."""
    stream = client.messages.create(
        model=model,
        max_tokens=256,
        messages=[{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        stream=True,
        extra_headers=headers(request_id),
    )
    text, types, start_usage, delta_usage, seen_model, stop = "", [], None, None, None, None
    for event in stream:
        types.append(event.type)
        if event.type == "message_start":
            start_usage = event.message.usage
            seen_model = event.message.model
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            text += event.delta.text
        elif event.type == "message_delta":
            delta_usage = event.usage
            stop = event.delta.stop_reason
    emit(
        "messages",
        request_id,
        requested=model,
        stream=True,
        text=text,
        stop_reason=stop,
        model=seen_model,
        start_usage=dump(start_usage),
        delta_usage=dump(delta_usage),
        event_types=types,
    )


def helper_stream(request_id, model, prompt):
    """messages.stream(): the SDK accumulates the events into a message."""
    with client.messages.stream(
        model=model,
        max_tokens=256,
        messages=[{"role": "user", "content": prompt}],
        extra_headers=headers(request_id),
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text_of(final) == streamed, (text_of(final), streamed)
    emit(
        "messages",
        request_id,
        requested=model,
        stream=True,
        helper=True,
        text=streamed,
        stop_reason=final.stop_reason,
        model=final.model,
        usage=dump(final.usage),
    )


def main():
    print(json.dumps({"sdk": "anthropic", "version": anthropic.__version__}), flush=True)
    whole("an-whole", "claude-sonnet-4-5", "Hello, door. Who goes there?")
    whole("an-whole-haiku", "claude-haiku-4-5", "A short one.")
    raw_stream("an-stream", "claude-sonnet-4-5", "Stream me the message events, please.")
    helper_stream("an-helper", "claude-haiku-4-5", "Accumulate this stream into a message!")
    helper_stream("an-helper-odd", "claude-sonnet-4-5", "And one more, of odd length!!")


if __name__ == "__main__":
    try:
        main()
    except anthropic.APIStatusError as e:
        print(f"HTTP {e.status_code}: {e.response.text}", file=sys.stderr)
        raise
