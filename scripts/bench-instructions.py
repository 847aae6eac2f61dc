#!/usr/bin/env python3
"""User-space instructions per turn of the guest, counted by valgrind's callgrind.

`scripts/bench.sh instructions [steady|fresh|tool|connect] [--turns N] [--runs N]` builds the release
binaries and runs this. The guest (`oxydra-vm`, started by `runner start` as always) runs under
`valgrind --tool=callgrind` with counting off; after warm-up turns the count is switched on for
--turns operations of the shape (the same shapes and client as `bench-compare.py`; `connect` is a
WebSocket connect and close alone, the gateway's per-connection cost), then dumped.
Instructions do not drift with the machine's load the way CPU time does, so two builds can be
compared run after run; what still varies (a few percent) is how many deltas share a frame, which
depends on timing. The kernel's part of a turn (system calls, TCP, fsync) is not counted.
valgrind reads DWARF 4 at most: the guest is copied without its debug information first.
"""

import argparse
import asyncio
import glob
import importlib.util
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_compare", os.path.join(here, "bench-compare.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def control(command, access, pid):
    """Sends `command` to the guest's valgrind (process `pid`: without it callgrind_control waits
    for every callgrind on the machine, a stray one included). Valgrind reads it only while the
    guest runs code: a guest idle in epoll_wait would leave callgrind_control waiting for ever, so
    the gateway's port is knocked on (a TCP connect, closed at once) until the command is taken —
    for at most a minute."""
    endpoint = urllib.parse.urlsplit(access[0])
    sender = subprocess.Popen(["callgrind_control", command, str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while sender.poll() is None:
        if time.monotonic() > deadline:
            sender.kill()
            raise SystemExit("callgrind_control %s: the guest's valgrind (pid %d) did not take it in 60 s" % (command, pid))
        try:
            socket.create_connection((endpoint.hostname, endpoint.port), timeout=1).close()
        except OSError:
            pass
        time.sleep(0.02)
    if sender.returncode != 0:
        raise SystemExit("callgrind_control %s failed: %s" % (command, sender.stderr.read().decode()))


async def count(binaries, shape, turns, scratch, keep=None):
    for old in glob.glob(scratch + "/callgrind.*"):
        os.remove(old)
    server = subprocess.Popen([sys.executable, os.path.join(here, "bench-compare.py"), "--serve"], stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    guest = bench.Guest(binaries, "http://127.0.0.1:%d" % port)
    guest.environment["OXYDRA_VM_PROCESS_EXECUTABLE"] = scratch + "/oxydra-vm-under-callgrind"
    try:
        guest.start()
        access = guest.access
        client = None

        async def operation(index):
            nonlocal client
            if shape == "steady":
                if client is None or index % 50 == 0:
                    if client:
                        await client.close()
                    client = await bench.GatewayClient.connect(access)
                await client.turn()
            elif shape == "fresh":
                fresh = await bench.GatewayClient.connect(access)
                await fresh.turn()
                await fresh.close()
            elif shape == "connect":
                from websockets.asyncio.client import connect

                endpoint, token = access
                connection = await connect(endpoint, additional_headers={"Authorization": "Bearer " + token}, compression=None)
                await connection.close()
            else:
                fresh = await bench.GatewayClient.connect(access)
                await fresh.send("send_turn", {"request_id": "r", "turn_id": "t", "prompt": bench.TOOL_PROMPT})
                await fresh.wait("turn_completed")
                await fresh.close()

        for index in range(30):
            await operation(index)
        control("--instr=on", access, guest.pids()[0])
        for index in range(turns):
            await operation(index)
        control("--dump", access, guest.pids()[0])
        time.sleep(0.5)
    finally:
        guest.stop()
        server.send_signal(signal.SIGTERM)
        server.wait()
        guest.remove()
    totals = []
    for path in glob.glob(scratch + "/callgrind.*"):
        with open(path) as dump:
            total = max([int(line.split()[1]) for line in dump if line.startswith(("summary:", "totals:"))], default=0)
        # The guest's own dump is the largest (other oxydra-vm processes it starts count little).
        if keep and total > max(totals, default=0):
            shutil.copy(path, keep)
        totals.append(total)
    if not any(totals):
        raise SystemExit("callgrind wrote no counts (see the guest's logs)")
    return max(totals) / turns


async def main(options):
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    scratch = tempfile.mkdtemp(prefix="oxydra-instructions-")
    try:
        guest = scratch + "/oxydra-vm"
        subprocess.run(["objcopy", "--strip-debug", options.bin + "/oxydra-vm", guest], check=True)
        with open(scratch + "/oxydra-vm-under-callgrind", "w") as wrapper:
            wrapper.write(
                "#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=%s/callgrind.%%p %s \"$@\"\n"
                % (scratch, guest))
        os.chmod(scratch + "/oxydra-vm-under-callgrind", 0o755)
        counts = []
        for run in range(options.runs):
            keep = None
            if options.keep:
                keep = "%s/callgrind.%s.%d" % (options.keep, options.shape, run + 1)
            counts.append(await count(options.bin, options.shape, options.turns, scratch, keep))
            print("instructions: run %d: %.0f per %s turn" % (run + 1, counts[-1], options.shape), flush=True)
        counts.sort()
        print("instructions: %s turn, %d runs of %d: min/median/max %.0f/%.0f/%.0f per turn"
              % (options.shape, options.runs, options.turns, counts[0], statistics.median(counts), counts[-1]))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shape", nargs="?", default="steady", choices=["steady", "fresh", "tool", "connect"])
    parser.add_argument("--bin", default=".build/release", help="directory with runner, oxydra-vm and shell-daemon")
    parser.add_argument("--turns", type=int, default=100, help="operations counted per run")
    parser.add_argument("--runs", type=int, default=5, help="runs (at least 5 for min/median/max)")
    parser.add_argument("--keep", help="directory to keep each run's callgrind dump in (for callgrind_annotate)")
    options = parser.parse_args()
    options.bin = os.path.abspath(options.bin)
    if options.keep:
        os.makedirs(options.keep, exist_ok=True)
        options.keep = os.path.abspath(options.keep)
    asyncio.run(main(options))
