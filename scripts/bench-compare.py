#!/usr/bin/env python3
"""Oxydra's guest against the provider alone, driven from an outside client.

`scripts/bench.sh compare` builds the release binaries and runs this. It starts a scripted
OpenAI-compatible server (its own process: HTTP/1.1 keep-alive, chunked SSE, a 50-token answer or
one `file_read` tool call), starts the example user's guest with `runner start` (process tier), and
drives the guest's WebSocket gateway with the `websockets` library, as any outside client would:

  (a) sequential fresh-session turns: connect, hello with a new session, one turn, close;
  (s) steady turns: turns in a row on one session (the history grows; a new session every 50);
  (b) tool round trips: a fresh session, the model asks for `file_read`, the guest runs it and
      calls the model again;
  (c) 50 sessions x 5 turns at once (each session keeps its history);
  (d) cold start: `runner start` -> the first answer byte of a first turn.

Next to each, the provider-alone floor measured by this client in the same run: the same requests
straight to the scripted server, on a fresh connection (raw HTTP, the least a client can do) and
through the `openai` SDK (what a bare agent loop does). Guest CPU is the CPU time of a cgroup the
guest's processes are moved into (nanoseconds; needs the right to create one, as root has), else
/proc's user + system time of the guest's processes (10 ms ticks: over 150 operations one tick is
0.067 ms each); client CPU comes from this process; memory is USS/PSS/RSS from
smaps_rollup. Every figure is min/median/max over --samples samples (>= 5).
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ANSWER_TOKENS = 50
TOOL_PROMPT = "[tool] Read /shared/notes.txt"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# The scripted provider (runs in its own process: `bench-compare.py --serve`)


def sse_chunk(delta, finish=None, usage=None):
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "scripted-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return ("data: " + json.dumps(body, separators=(",", ":")) + "\n\n").encode()


def scripted_events(request):
    """The SSE events answering one chat completions request."""
    messages = request.get("messages", [])
    last = messages[-1] if messages else {}
    wants_tool = last.get("role") == "user" and TOOL_PROMPT in json.dumps(last.get("content", ""))
    events = [sse_chunk({"role": "assistant", "content": ""})]
    if wants_tool:
        call = {
            "index": 0,
            "id": "call_bench",
            "type": "function",
            "function": {"name": "file_read", "arguments": json.dumps({"path": "/shared/notes.txt"})},
        }
        events.append(sse_chunk({"tool_calls": [call]}))
        finish = "tool_calls"
    else:
        for _ in range(ANSWER_TOKENS):
            events.append(sse_chunk({"content": "token "}))
        finish = "stop"
    usage = {"prompt_tokens": 100, "completion_tokens": ANSWER_TOKENS, "total_tokens": 100 + ANSWER_TOKENS}
    events.append(sse_chunk({}, finish=finish, usage=usage))
    events.append(b"data: [DONE]\n\n")
    return events


async def serve_connection(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "POST" and path.endswith("/chat/completions"):
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                    b"cache-control: no-cache\r\n\r\n"
                )
                for event in scripted_events(json.loads(body or b"{}")):
                    writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                writer.write(b"0\r\n\r\n")
            else:
                message = b'{"error":{"message":"not found"}}'
                writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(message), message))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve():
    server = await asyncio.start_server(serve_connection, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------------------------------------
# Measuring


def spread(values, scale=1.0, digits=2):
    values = sorted(v * scale for v in values)
    return "%.*f/%.*f/%.*f" % (digits, values[0], digits, statistics.median(values), digits, values[-1])


def median(values):
    return statistics.median(values)


def process_tree(root):
    """`root` and its descendants (pids)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except OSError:
            continue
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids):
    """User + system time of `pids` (live threads and exited ones), in clock ticks."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / CLOCK_TICKS


class CPUGroup:
    """A cgroup of the guest's own, for its CPU time in nanoseconds rather than /proc's 10 ms
    ticks (one tick is 0.067 ms per turn over 150 turns). cgroup v2 (`cpu.stat` usage_usec) or
    v1 (`cpuacct.usage`); None when this user may not create one (then /proc is used). Processes
    the guest starts later are born in it; time of threads that ended stays counted."""

    CANDIDATES = (
        ("/sys/fs/cgroup", "cpu.stat"),
        ("/sys/fs/cgroup/unified", "cpu.stat"),
        ("/sys/fs/cgroup/cpuacct", "cpuacct.usage"),
        ("/sys/fs/cgroup/cpu,cpuacct", "cpuacct.usage"),
    )

    def __init__(self, path, counter):
        self.path, self.counter = path, counter

    @classmethod
    def create(cls):
        for root, counter in cls.CANDIDATES:
            if not os.path.exists(os.path.join(root, "cgroup.procs")):
                continue
            path = os.path.join(root, "oxydra-bench-%d-%d" % (os.getpid(), time.monotonic_ns()))
            try:
                os.mkdir(path)
            except OSError:
                continue
            if os.path.exists(os.path.join(path, counter)) and os.access(os.path.join(path, "cgroup.procs"), os.W_OK):
                return cls(path, counter)
            os.rmdir(path)
        return None

    def add(self, pids):
        for pid in pids:
            try:
                with open(os.path.join(self.path, "cgroup.procs"), "w") as procs:
                    procs.write(str(pid))
            except ProcessLookupError:
                continue

    def seconds(self):
        with open(os.path.join(self.path, self.counter)) as counter:
            if self.counter == "cpuacct.usage":
                return int(counter.read()) / 1e9
            for line in counter:
                name, value = line.split()
                if name == "usage_usec":
                    return int(value) / 1e6
        raise SystemExit("%s has no usage_usec" % self.path)

    def remove(self):
        try:
            os.rmdir(self.path)
        except OSError:
            pass


def memory_kib(pids):
    """USS, PSS and RSS in KiB, summed over `pids`."""
    uss = pss = rss = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as rollup:
                fields = {}
                for line in rollup:
                    parts = line.split()
                    if len(parts) >= 2 and parts[1].isdigit():
                        fields[parts[0].rstrip(":")] = int(parts[1])
        except OSError:
            continue
        uss += fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
        pss += fields.get("Pss", 0)
        rss += fields.get("Rss", 0)
    return uss, pss, rss


def describe_memory(pids):
    uss, pss, rss = memory_kib(pids)
    return "USS %.1f / PSS %.1f / RSS %.1f MiB" % (uss / 1024, pss / 1024, rss / 1024), {
        "uss_kib": uss,
        "pss_kib": pss,
        "rss_kib": rss,
    }


class Guest:
    """The example user's guest, started with the release `runner` in a scratch project."""

    def __init__(self, binaries, provider_url, cpu_group=False):
        self.binaries = binaries
        self.root = tempfile.mkdtemp(prefix="oxydra-compare-")
        os.makedirs(self.root + "/.oxydra/users")
        os.makedirs(self.root + "/home")
        os.makedirs(self.root + "/etc-oxydra")
        self.workspace = self.root + "/.oxydra/workspaces/alice"
        self.config = self.root + "/.oxydra/runner.toml"
        write(
            self.config,
            'config_version = "1.0.0"\nworkspace_root = ".oxydra/workspaces"\ndefault_tier = "process"\n'
            '[users.alice]\nconfig_path = ".oxydra/users/alice.toml"\n',
        )
        write(
            self.root + "/.oxydra/users/alice.toml",
            'config_version = "1.0.0"\n[behavior]\nsandbox_tier = "process"\nshell_enabled = true\n',
        )
        write(
            self.root + "/.oxydra/agent.toml",
            '[selection]\nprovider = "local"\nmodel = "scripted-model"\n'
            '[providers.registry.local]\nprovider_type = "openai"\nbase_url = "%s"\nskip_catalog_validation = true\n'
            "[reliability]\nmax_attempts = 1\n"
            "[gateway]\nmax_sessions_per_user = 5000\nmax_concurrent_turns_per_user = 50\nmax_queued_turns_per_user = 100\n"
            % provider_url,
        )
        self.environment = {
            "HOME": self.root + "/home",
            "OXYDRA_SYSTEM_CONFIG_DIR": self.root + "/etc-oxydra",
            "PATH": "/usr/bin:/bin",
        }
        self.environment.update({k: v for k, v in os.environ.items() if k.startswith("OXYDRA_") and not k.startswith("OXYDRA_BENCH")})
        self.pid = None
        # Only the comparison reads CPU time: the smoke test and the instruction count make no cgroup.
        self.cpu_group = CPUGroup.create() if cpu_group else None

    def runner(self, *arguments, check=True):
        result = subprocess.run(
            [self.binaries + "/runner", *arguments, "--config", self.config, "--user", "alice"],
            cwd=self.root,
            env=self.environment,
            capture_output=True,
            text=True,
        )
        if check and result.returncode != 0:
            raise SystemExit("runner %s failed (%d): %s%s" % (" ".join(arguments), result.returncode, result.stdout, result.stderr))
        return result

    def start(self):
        # Only `runner start` (what a user runs): the guest's pid is looked up when first needed,
        # so a cold start is not charged for a second `runner` process.
        os.makedirs(self.workspace + "/shared", exist_ok=True)
        write(self.workspace + "/shared/notes.txt", "Buy milk.\nCall the plumber on Tuesday.\n")
        self.runner("start")
        self.pid = None

    def stop(self):
        self.runner("stop", check=False)
        self.pid = None

    @property
    def access(self):
        with open(self.workspace + "/ipc/gateway-endpoint") as marker:
            endpoint = marker.read().strip()
        with open(self.workspace + "/ipc/gateway-token") as token:
            return endpoint, token.read().strip()

    def pids(self):
        if self.pid is None:
            self.pid = int(json.loads(self.runner("status", "--json").stdout)["pid"])
            if self.cpu_group is not None:
                try:
                    self.cpu_group.add(process_tree(self.pid))
                except OSError as error:
                    # Made but not ours to fill (a cgroup tree delegated elsewhere): /proc instead.
                    print("compare: cannot move the guest into %s (%s); guest CPU from /proc" % (self.cpu_group.path, error))
                    self.cpu_group.remove()
                    self.cpu_group = None
        return process_tree(self.pid)

    def cpu_seconds(self):
        """The guest's CPU time so far (user + system), from its cgroup when it has one."""
        pids = self.pids()
        return self.cpu_group.seconds() if self.cpu_group is not None else cpu_seconds(pids)

    @property
    def cpu_clock(self):
        if self.cpu_group is None:
            return "/proc user + system time (%d ticks a second)" % CLOCK_TICKS
        return "%s of a cgroup of its own" % self.cpu_group.counter

    def remove(self, keep_files=False):
        if not keep_files:
            shutil.rmtree(self.root, ignore_errors=True)
        if self.cpu_group is not None:
            self.cpu_group.remove()


def write(path, text):
    with open(path, "w") as file:
        file.write(text)


# ---------------------------------------------------------------------------------------------
# Clients: the gateway over WebSocket, and the provider alone


class GatewayClient:
    def __init__(self, connection):
        self.connection = connection
        self.counter = 0

    @classmethod
    async def connect(cls, access, new_session=True):
        from websockets.asyncio.client import connect

        endpoint, token = access
        connection = await connect(
            endpoint, additional_headers={"Authorization": "Bearer " + token}, max_size=16 << 20, compression=None
        )
        client = cls(connection)
        await client.send("hello", {"request_id": "h", "protocol_version": 1, "create_new_session": new_session})
        await client.wait("hello_ack")
        return client

    async def send(self, kind, payload):
        await self.connection.send(json.dumps({"type": kind, "payload": payload}))

    async def wait(self, kind, first_delta=None):
        while True:
            frame = json.loads(await self.connection.recv())
            if frame["type"] == "assistant_delta" and first_delta is not None and not first_delta:
                first_delta.append(time.perf_counter())
            if frame["type"] == kind:
                return frame
            if frame["type"] in ("error", "turn_failed", "turn_cancelled"):
                raise SystemExit("the gateway answered %s while waiting for %s" % (json.dumps(frame)[:400], kind))

    async def turn(self, prompt="Hi", first_delta=None):
        self.counter += 1
        turn_id = "t%d" % self.counter
        await self.send("send_turn", {"request_id": "r" + turn_id, "turn_id": turn_id, "prompt": prompt})
        frame = await self.wait("turn_completed", first_delta)
        message = frame["payload"]["response"]["message"]
        if message.count("token") != ANSWER_TOKENS:
            raise SystemExit("unexpected answer: %r" % message[:200])
        return frame

    async def close(self):
        await self.connection.close()


class ProviderClient:
    """A turn straight to the provider: the request, and when the model asks for the file, the
    file read here and a second request with its content. Returns the history with the answer."""

    async def turn(self, prompt="Hi", history=None):
        messages = (history if history is not None else [{"role": "system", "content": "x"}]) + [{"role": "user", "content": prompt}]
        reply = await self.request(messages)
        if reply["tool"]:
            with open(SCRATCH_NOTES) as notes:
                result = notes.read()
            messages += [
                {"role": "assistant", "tool_calls": [{"id": "call_bench", "type": "function", "function": {"name": "file_read", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_bench", "content": result},
            ]
            reply = await self.request(messages)
        messages.append({"role": "assistant", "content": reply["content"]})
        return messages


class RawProvider(ProviderClient):
    """The least a client can do: a fresh HTTP connection, one streamed request, read to [DONE]."""

    def __init__(self, port):
        self.port = port

    async def request(self, messages):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        body = json.dumps({"model": "scripted-model", "stream": True, "messages": messages}).encode()
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"authorization: Bearer x\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )
        data = await reader.read()
        writer.close()
        text = data.decode()
        if "[DONE]" not in text:
            raise SystemExit("the scripted server's answer was cut short")
        if '"tool_calls":[' in text:
            return {"tool": True, "content": ""}
        content = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content", "") for line in text.split("\n") if line.startswith("data: {"))
        return {"tool": False, "content": content}


class SDKProvider(ProviderClient):
    """A bare agent loop on the `openai` SDK (one client, keep-alive, streamed)."""

    def __init__(self, port):
        import openai

        self.client = openai.AsyncOpenAI(base_url="http://127.0.0.1:%d/v1" % port, api_key="x", max_retries=0)

    async def request(self, messages):
        stream = await self.client.chat.completions.create(model="scripted-model", messages=messages, stream=True)
        content, tool = [], False
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                content.append(chunk.choices[0].delta.content)
            if chunk.choices and chunk.choices[0].delta.tool_calls:
                tool = True
        return {"tool": tool, "content": "".join(content)}



SCRATCH_NOTES = None


# ---------------------------------------------------------------------------------------------
# The shapes


class Series:
    """Per-sample figures: wall seconds per operation, guest and client CPU seconds per operation."""

    def __init__(self):
        self.wall, self.guest_cpu, self.client_cpu = [], [], []

    def line(self):
        return "wall %s ms, guest CPU %s ms, client CPU %s ms" % (
            spread(self.wall, 1000),
            spread(self.guest_cpu, 1000),
            spread(self.client_cpu, 1000),
        )

    def data(self):
        return {"wall_ms": ms(self.wall), "guest_cpu_ms": ms(self.guest_cpu), "client_cpu_ms": ms(self.client_cpu)}


def ms(values, scale=1000):
    """min/median/max of `values` (seconds) times `scale` (default: milliseconds), for --json."""
    values = sorted(v * scale for v in values)
    return {"min": round(values[0], 3), "median": round(statistics.median(values), 3), "max": round(values[-1], 3)}


async def timed(guest, count, operation):
    """Runs `operation` `count` times; per-operation median wall, guest CPU and client CPU."""
    cpu_before, client_before = guest.cpu_seconds(), time.process_time()
    walls = []
    for index in range(count):
        start = time.perf_counter()
        await operation(index)
        walls.append(time.perf_counter() - start)
    return median(walls), (guest.cpu_seconds() - cpu_before) / count, (time.process_time() - client_before) / count


async def sequential_shapes(guest, raw, sdk, samples, count, report):
    access = guest.access

    async def fresh_turn(_):
        client = await GatewayClient.connect(access)
        await client.turn()
        await client.close()

    async def tool_turn(_):
        client = await GatewayClient.connect(access)
        frame = await client.turn(TOOL_PROMPT)
        if frame["payload"]["response"].get("provider_calls") != 2:
            raise SystemExit("the tool turn did not call the provider twice: %s" % json.dumps(frame)[:400])
        await client.close()

    for operation in (fresh_turn, tool_turn):  # warm-up
        for index in range(20):
            await operation(index)

    shapes = {
        "fresh": ("(a) fresh-session turn", fresh_turn, lambda _: raw.turn(), lambda _: sdk.turn()),
        "tool": ("(b) one-tool turn", tool_turn, lambda _: raw.turn(TOOL_PROMPT), lambda _: sdk.turn(TOOL_PROMPT)),
    }
    for key, (title, through, alone_raw, alone_sdk) in shapes.items():
        gateway, floor_raw, floor_sdk = Series(), Series(), Series()
        for _ in range(samples):
            # Interleaved, so all three see the same machine.
            for series, operation in ((gateway, through), (floor_raw, alone_raw), (floor_sdk, alone_sdk)):
                wall, guest_cpu, client_cpu = await timed(guest, count, operation)
                series.wall.append(wall)
                series.guest_cpu.append(guest_cpu)
                series.client_cpu.append(client_cpu)
        ratio_raw = median(gateway.wall) / median(floor_raw.wall)
        ratio_sdk = median(gateway.wall) / median(floor_sdk.wall)
        print("compare: %s through the gateway: %s" % (title, gateway.line()))
        print("compare: %s provider alone, raw HTTP (fresh connection): wall %s ms, client CPU %s ms" % (title, spread(floor_raw.wall, 1000), spread(floor_raw.client_cpu, 1000)))
        print("compare: %s provider alone, openai SDK: wall %s ms, client CPU %s ms" % (title, spread(floor_sdk.wall, 1000), spread(floor_sdk.client_cpu, 1000)))
        print("compare: %s latency ratio of medians: %.2fx the raw-HTTP floor, %.2fx the openai SDK floor" % (title, ratio_raw, ratio_sdk))
        report[key] = {
            "gateway": gateway.data(),
            "provider_raw_http": {"wall_ms": ms(floor_raw.wall), "client_cpu_ms": ms(floor_raw.client_cpu)},
            "provider_openai_sdk": {"wall_ms": ms(floor_sdk.wall), "client_cpu_ms": ms(floor_sdk.client_cpu)},
            "ratio_raw_http": round(ratio_raw, 3),
            "ratio_openai_sdk": round(ratio_sdk, 3),
        }

    # Steady: turns in a row on one session whose history grows, a new session every 50 turns.
    steady, floor = Series(), Series()
    for _ in range(samples):
        client = [None]

        async def steady_turn(index):
            if index % 50 == 0:
                if client[0] is not None:
                    await client[0].close()
                client[0] = await GatewayClient.connect(access)
            await client[0].turn()

        wall, guest_cpu, client_cpu = await timed(guest, count, steady_turn)
        await client[0].close()
        steady.wall.append(wall)
        steady.guest_cpu.append(guest_cpu)
        steady.client_cpu.append(client_cpu)
        history = [None]

        async def sdk_steady(index):
            if index % 50 == 0:
                history[0] = [{"role": "system", "content": "x"}]
            history[0] = await sdk.turn(history=history[0])

        wall, _, client_cpu = await timed(guest, count, sdk_steady)
        floor.wall.append(wall)
        floor.client_cpu.append(client_cpu)
    print("compare: (s) steady turn (50 in a row on each session) through the gateway: %s" % steady.line())
    print("compare: (s) steady turn provider alone, openai SDK with the same history: wall %s ms, client CPU %s ms; ratio of medians %.2fx" % (spread(floor.wall, 1000), spread(floor.client_cpu, 1000), median(steady.wall) / median(floor.wall)))
    report["steady"] = {
        "gateway": steady.data(),
        "provider_openai_sdk": {"wall_ms": ms(floor.wall), "client_cpu_ms": ms(floor.client_cpu)},
        "ratio_openai_sdk": round(median(steady.wall) / median(floor.wall), 3),
    }


async def concurrent_shape(guest, sdk, samples, report):
    access = guest.access
    gateway_walls, guest_cpus, floor_walls = [], [], []
    for _ in range(samples):
        clients = await asyncio.gather(*(GatewayClient.connect(access) for _ in range(50)))
        pids = guest.pids()
        before = guest.cpu_seconds()
        start = time.perf_counter()

        async def five(client):
            for _ in range(5):
                await client.turn()

        await asyncio.gather(*(five(client) for client in clients))
        gateway_walls.append(time.perf_counter() - start)
        guest_cpus.append((guest.cpu_seconds() - before) / 250)
        memory_line, memory = describe_memory(pids)
        await asyncio.gather(*(client.close() for client in clients))

        async def five_alone():
            history = [{"role": "system", "content": "x"}]
            for _ in range(5):
                history = await sdk.turn(history=history)

        start = time.perf_counter()
        await asyncio.gather(*(five_alone() for _ in range(50)))
        floor_walls.append(time.perf_counter() - start)
    print("compare: (c) 50 sessions x 5 turns at once through the gateway: wall %s s, guest CPU per turn %s ms; provider alone (openai SDK, same concurrency and history) %s s; ratio of medians %.2fx" % (spread(gateway_walls, 1, 3), spread(guest_cpus, 1000), spread(floor_walls, 1, 3), median(gateway_walls) / median(floor_walls)))
    print("compare: guest memory with 50 sessions open: %s" % memory_line)
    report["concurrent"] = {
        "gateway_wall_s": ms(gateway_walls, scale=1),
        "guest_cpu_per_turn_ms": ms(guest_cpus),
        "provider_openai_sdk_wall_s": ms(floor_walls, scale=1),
        "memory_50_sessions": memory,
    }


async def cold_start_shape(guest, raw, samples, report):
    totals, starts, floors = [], [], []
    for _ in range(samples):
        guest.stop()
        begin = time.perf_counter()
        guest.start()
        started = time.perf_counter()
        client = await GatewayClient.connect(guest.access)
        first = []
        await client.turn(first_delta=first)
        await client.close()
        totals.append(first[0] - begin)
        starts.append(started - begin)
        floor_begin = time.perf_counter()
        await raw.turn()
        floors.append(time.perf_counter() - floor_begin)
    print("compare: (d) runner start -> first answer byte %s ms (runner start returning %s ms); provider alone, fresh connection, whole answer %s ms" % (spread(totals, 1000), spread(starts, 1000), spread(floors, 1000)))
    report["cold_start"] = {"first_byte_ms": ms(totals), "runner_start_ms": ms(starts), "provider_raw_http_ms": ms(floors)}


async def main(arguments):
    global SCRATCH_NOTES
    server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"], stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    provider_url = "http://127.0.0.1:%d" % port
    guest = Guest(arguments.bin, provider_url, cpu_group=True)
    SCRATCH_NOTES = guest.root + "/notes.txt"
    write(SCRATCH_NOTES, "Buy milk.\nCall the plumber on Tuesday.\n")
    report = {"samples": arguments.samples, "turns_per_sample": arguments.turns, "answer_tokens": ANSWER_TOKENS}
    try:
        guest.start()
        time.sleep(1)
        line, report["idle_memory"] = describe_memory(guest.pids())
        print("compare: guest idle after start: %s" % line)
        print("compare: guest CPU time from %s" % guest.cpu_clock)
        report["guest_cpu_clock"] = guest.cpu_clock
        raw, sdk = RawProvider(port), SDKProvider(port)
        await sequential_shapes(guest, raw, sdk, arguments.samples, arguments.turns, report)
        line, report["memory_after_sequential"] = describe_memory(guest.pids())
        print("compare: guest after the sequential shapes: %s" % line)
        await concurrent_shape(guest, sdk, arguments.samples, report)
        await cold_start_shape(guest, raw, arguments.samples, report)
    finally:
        guest.stop()
        server.send_signal(signal.SIGTERM)
        server.wait()
        guest.remove(keep_files=arguments.keep)
    if arguments.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=".build/release", help="directory with runner, oxydra-vm and shell-daemon")
    parser.add_argument("--samples", type=int, default=5, help="samples per figure (at least 5)")
    parser.add_argument("--turns", type=int, default=150, help="operations per sample in the sequential shapes")
    parser.add_argument("--json", action="store_true", help="also print every figure as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch project")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        asyncio.run(serve())
    else:
        if options.samples < 5:
            parser.error("--samples must be at least 5")
        options.bin = os.path.abspath(options.bin)
        asyncio.run(main(options))
