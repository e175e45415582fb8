"""The fake LLM server speaks OpenAI's wire format: the real ``openai`` client reads it."""

import http.client
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import openai
import pytest

from tests.fake_openai import FakeOpenAI, Reply, ToolCall

WEATHER = ToolCall("get_weather", {"city": "Paris"})


def client(llm: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="test-key", max_retries=0)


def test_a_chat_script_plays_a_tool_call_then_the_answer():
    with FakeOpenAI([Reply(tool_calls=[WEATHER]), Reply(text="Sunny in Paris.")]) as llm:
        first = client(llm).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather in Paris?"}]
        )
        call = first.choices[0].message.tool_calls[0]
        second = client(llm).chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
            ],
        )
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )
    assert second.choices[0].message.content == "Sunny in Paris."
    assert second.usage.total_tokens == 34
    assert llm.requests[1].body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "sunny",
    }
    assert llm.requests[0].headers["authorization"] == "Bearer test-key"


def test_a_streamed_chat_arrives_in_deltas_with_usage_and_tool_calls():
    with FakeOpenAI([Reply(text="It is sunny in Paris today.", tool_calls=[WEATHER])]) as llm:
        stream = client(llm).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Weather?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    arguments = "".join(
        call.function.arguments or ""
        for c in chunks
        if c.choices
        for call in c.choices[0].delta.tool_calls or []
    )
    assert text == "It is sunny in Paris today."
    assert json.loads(arguments) == {"city": "Paris"}
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert chunks[-1].usage.completion_tokens == 9
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_the_responses_api_answers_output_text_and_function_calls():
    with FakeOpenAI([Reply(tool_calls=[WEATHER]), Reply(text="Sunny.")]) as llm:
        first = client(llm).responses.create(
            model="gpt-4o-mini", instructions="Be brief.", input="Weather?"
        )
        second = client(llm).responses.create(
            model="gpt-4o-mini",
            input=[
                {
                    "type": "function_call_output",
                    "call_id": first.output[0].call_id,
                    "output": "sunny",
                }
            ],
        )
    assert first.output[0].type == "function_call" and first.output[0].name == "get_weather"
    assert second.output_text == "Sunny."
    assert second.usage.input_tokens == 25
    assert first.instructions == "Be brief."


def test_a_streamed_response_sends_typed_events_to_completion():
    with (
        FakeOpenAI([Reply(text="It is sunny in Paris today.")]) as llm,
        client(llm).responses.stream(model="gpt-4o-mini", input="Weather?") as stream,
    ):
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") > 1
    assert final.output_text == "It is sunny in Paris today."
    assert final.usage.total_tokens == 34


def test_a_scripted_error_status_reaches_the_client():
    with FakeOpenAI([Reply(status=429)]) as llm, pytest.raises(openai.RateLimitError):
        client(llm).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])


def test_it_runs_as_a_process_for_clients_in_other_languages():
    script = Path(__file__).with_name("fake_openai.py")
    process = subprocess.Popen(
        [sys.executable, str(script), "Hello from the script."],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        answer = openai.OpenAI(base_url=base_url, api_key="k").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == "Hello from the script."
        origin = base_url.removesuffix("/v1")
        with urllib.request.urlopen(f"{origin}/_fake/requests", timeout=5) as response:
            received = json.load(response)
        assert received[0]["path"] == "/v1/chat/completions"
        assert received[0]["body"]["messages"] == [{"role": "user", "content": "hi"}]
    finally:
        process.stdin.close()
        process.wait(timeout=10)


def test_a_chunked_request_body_is_read_whole():
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    with FakeOpenAI([Reply(text="Read it all.")]) as llm:
        connection = http.client.HTTPConnection("127.0.0.1", llm.httpd.server_address[1], timeout=5)
        connection.request(
            "POST",
            "/v1/chat/completions",
            body=iter([body[:10], body[10:]]),
            headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        answer = json.load(connection.getresponse())
        connection.close()
    assert answer["choices"][0]["message"]["content"] == "Read it all."
    assert llm.requests[0].body["messages"] == [{"role": "user", "content": "hi"}]
