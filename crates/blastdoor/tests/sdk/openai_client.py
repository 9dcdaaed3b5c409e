"""The official OpenAI Python SDK as a caller of the gateway.

Run by tests/sdk.rs with BLASTDOOR_BASE_URL (the service's base URL, ending
in /v1) and BLASTDOOR_KEY (a gateway API key). Makes streamed and
non-streamed calls, each with its own x-request-id, and prints one JSON line
per call with what the SDK parsed: the text, the model, the usage and, where
the SDK shows response headers, the gateway's cost header.
"""

import json
import os
import sys

import openai

client = openai.OpenAI(
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


def chat_whole(request_id, model, prompt):
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are a door."},
            {"role": "user", "content": prompt},
        ],
        extra_headers=headers(request_id),
    )
    completion = raw.parse()
    assert completion.object == "chat.completion", completion.object
    emit(
        "chat",
        request_id,
        requested=model,
        stream=False,
        text=completion.choices[0].message.content,
        finish_reason=completion.choices[0].finish_reason,
        model=completion.model,
        usage=dump(completion.usage),
        cost_header=raw.headers.get("x-blastdoor-cost-usd"),
        response_request_id=raw.headers.get("x-request-id"),
    )


def chat_stream(request_id, model, prompt, include_usage):
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        extra_headers=headers(request_id),
        **options,
    )
    text, usage, chunks, finish, seen_model = "", None, 0, None, None
    for chunk in stream:
        chunks += 1
        assert chunk.object == "chat.completion.chunk", chunk.object
        seen_model = chunk.model
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        if chunk.usage is not None:
            assert chunk.choices == [], "usage comes in its own final chunk"
            usage = chunk.usage
    emit(
        "chat",
        request_id,
        requested=model,
        stream=True,
        asked_for_usage=include_usage,
        text=text,
        finish_reason=finish,
        chunks=chunks,
        model=seen_model,
        usage=dump(usage),
    )


def responses_whole(request_id, model, prompt):
    raw = client.responses.with_raw_response.create(
        model=model,
        instructions="Answer briefly.",
        input=prompt,
        extra_headers=headers(request_id),
    )
    response = raw.parse()
    assert response.status == "completed", response.status
    emit(
        "responses",
        request_id,
        requested=model,
        stream=False,
        text=response.output_text,
        model=response.model,
        usage=dump(response.usage),
        cost_header=raw.headers.get("x-blastdoor-cost-usd"),
        response_request_id=raw.headers.get("x-request-id"),
    )


def responses_stream(request_id, model, prompt):
    stream = client.responses.create(
        model=model,
        input=[{"role": "user", "content": [{"type": "input_text", "text": prompt}]}],
        stream=True,
        extra_headers=headers(request_id),
    )
    text, usage, types, seen_model = "", None, [], None
    for event in stream:
        types.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        elif event.type == "response.completed":
            usage = event.response.usage
            seen_model = event.response.model
    emit(
        "responses",
        request_id,
        requested=model,
        stream=True,
        text=text,
        model=seen_model,
        usage=dump(usage),
        event_types=types,
    )


def responses_stream_helper(request_id, model, prompt):
    """The SDK's own stream accumulator: it rebuilds the response from the
    events, so it only works if the events are faithful."""
    with client.responses.stream(
        model=model, input=prompt, extra_headers=headers(request_id)
    ) as stream:
        deltas = "".join(
            e.delta for e in stream if e.type == "response.output_text.delta"
        )
        final = stream.get_final_response()
    assert final.output_text == deltas, (final.output_text, deltas)
    emit(
        "responses",
        request_id,
        requested=model,
        stream=True,
        helper=True,
        text=final.output_text,
        model=final.model,
        usage=dump(final.usage),
    )


def embeddings(request_id, model, inputs, encoding_format=None):
    options = {"encoding_format": encoding_format} if encoding_format else {}
    raw = client.embeddings.with_raw_response.create(
        model=model, input=inputs, extra_headers=headers(request_id), **options
    )
    result = raw.parse()
    vectors = [d.embedding for d in result.data]
    assert all(isinstance(x, float) for v in vectors for x in v), "decoded floats"
    emit(
        "embeddings",
        request_id,
        requested=model,
        stream=False,
        encoding_format=encoding_format or "sdk default",
        count=len(vectors),
        dimensions=len(vectors[0]),
        first=[round(x, 6) for x in vectors[0][:3]],
        model=result.model,
        usage=dump(result.usage),
        cost_header=raw.headers.get("x-blastdoor-cost-usd"),
        response_request_id=raw.headers.get("x-request-id"),
    )


def main():
    print(json.dumps({"sdk": "openai", "version": openai.__version__}), flush=True)
    chat_whole("oa-chat-whole", "gpt-4o-mini", "Hello, door. Who goes there?")
    chat_whole("oa-chat-whole-o4", "o4-mini", "Think hard: how many doors does a blastdoor have?")
    chat_stream("oa-chat-stream", "gpt-4o-mini", "Stream me a greeting, please.", True)
    chat_stream(
        "oa-chat-stream-unasked", "gpt-4o-mini", "Stream without asking for usage.", False
    )
    responses_whole("oa-resp-whole", "o4-mini", "What does a gateway meter?")
    responses_stream("oa-resp-stream", "o4-mini", "Stream the Responses API events, one by one.")
    responses_stream_helper("oa-resp-helper", "gpt-4o-mini", "Accumulate this.")
    embeddings(
        "oa-embed-base64", "text-embedding-3-small", ["first text to embed", "second one"]
    )
    embeddings("oa-embed-float", "text-embedding-3-small", "just one text", "float")


if __name__ == "__main__":
    try:
        main()
    except openai.APIStatusError as e:
        print(f"HTTP {e.status_code}: {e.response.text}", file=sys.stderr)
        raise
