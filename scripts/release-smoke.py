#!/usr/bin/env python3
"""Release smoke test: the optimized build's guest, driven the way the benchmarks drive it.

The test suite runs debug builds; an optimized build can fail where they pass (a guest once
crashed on its first tool call in release only). This starts the example user's guest with the
release binaries (`runner start`, process tier, shell sandbox, durable memory) against the
scripted OpenAI-compatible server of `bench-compare.py`, and runs steady turns on one session,
fresh-session turns, tool turns and concurrent sessions. It fails when a turn fails, an answer is
not the scripted one, or the guest process changed (it crashed and was restarted).

    python3 scripts/release-smoke.py --bin .build/release
"""

import argparse
import asyncio
import importlib.util
import os
import signal
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_compare", os.path.join(here, "bench-compare.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


async def smoke(binaries):
    server = subprocess.Popen([sys.executable, os.path.join(here, "bench-compare.py"), "--serve"], stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    guest = bench.Guest(binaries, "http://127.0.0.1:%d" % port)
    try:
        guest.start()
        pid = guest.pids()[0]
        access = guest.access
        steady = await bench.GatewayClient.connect(access)
        for _ in range(30):
            await steady.turn()
        await steady.close()
        print("release smoke: 30 turns on one session", flush=True)
        for _ in range(10):
            fresh = await bench.GatewayClient.connect(access)
            await fresh.turn()
            await fresh.close()
        print("release smoke: 10 fresh-session turns", flush=True)
        for index in range(10):
            client = await bench.GatewayClient.connect(access)
            await client.send("send_turn", {"request_id": "r%d" % index, "turn_id": "t%d" % index, "prompt": bench.TOOL_PROMPT})
            frame = await client.wait("turn_completed")
            if frame["payload"]["response"].get("provider_calls") != 2:
                raise SystemExit("a tool turn took %r provider calls, not 2" % frame["payload"]["response"].get("provider_calls"))
            await client.close()
        print("release smoke: 10 one-tool turns", flush=True)
        clients = await asyncio.gather(*(bench.GatewayClient.connect(access) for _ in range(20)))
        for _ in range(3):
            await asyncio.gather(*(client.turn() for client in clients))
        await asyncio.gather(*(client.close() for client in clients))
        print("release smoke: 20 sessions x 3 turns at once", flush=True)
        guest.pid = None
        if guest.pids()[0] != pid:
            raise SystemExit("the guest process changed during the smoke test (it crashed and was restarted)")
        print("release smoke: passed (one guest process throughout)")
    finally:
        guest.stop()
        server.send_signal(signal.SIGTERM)
        server.wait()
        guest.remove()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=".build/release", help="directory with runner, oxydra-vm and shell-daemon")
    options = parser.parse_args()
    asyncio.run(smoke(os.path.abspath(options.bin)))
