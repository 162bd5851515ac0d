#!/usr/bin/env python3
"""What the PROXY protocol costs greet-server per greeting, behind a real HAProxy.

  python3 bench/proxy_cost.py [--bin-dir build-bench/bin] [--runs 3] [--seconds 5] [--stop-delay 2]

Each run starts greet-server (--threads 1 --quiet, pinned to CPU 0) behind HAProxy (TCP mode,
one server, no health checks) and drives greet-bench (32 connections) through HAProxy, both
on CPU 1, either plainly or with `send-proxy-v2` and `--proxy-protocol`, alternating, so
that drift of a shared machine falls on both. Prints, per mode, the medians of greetings/s
and of greet-server's CPU (utime + stime from /proc) per greeting, and their ratio.
The proxied server gets `--stop-delay` as deploy/ runs it (2 s; it changes nothing here but
TCP_DEFER_ACCEPT, which greet-server keeps on under --proxy-protocol only with a stop delay).
Needs haproxy (scripts/deps.sh installs it) and a built greet-server and greet-bench.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, limit=10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"proxy_cost.py: nothing listens on {port}")


def one_run(bin_dir, tmp, proxied, seconds, stop_delay):
    server = subprocess.Popen(
        ["taskset", "-c", "0", os.path.join(bin_dir, "greet-server"), "--host", "127.0.0.1",
         "--port", "0", "--threads", "1", "--quiet"]
        + (["--proxy-protocol", "--stop-delay", str(stop_delay)] if proxied else []),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = int(server.stdout.readline().decode().rsplit(":", 1)[1])
    front = free_port()
    cfg = os.path.join(tmp, "haproxy.cfg")
    with open(cfg, "w", encoding="ascii") as f:
        f.write(f"""global
    maxconn 4096
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend f
    bind 127.0.0.1:{front}
    default_backend b
backend b
    server s 127.0.0.1:{port}{" send-proxy-v2" if proxied else ""}
""")
    door = subprocess.Popen(["taskset", "-c", "1", "haproxy", "-f", cfg, "-db"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(front)
        before = cpu_seconds(server.pid)
        load = subprocess.run(["taskset", "-c", "1", os.path.join(bin_dir, "greet-bench"),
                               "--host", "127.0.0.1", "--port", str(front), "--duration",
                               str(seconds), "--connections", "32", "--json"],
                              capture_output=True, timeout=seconds + 60, check=False)
        used = cpu_seconds(server.pid) - before
        result = json.loads(load.stdout.decode())
        if result["errors"] != 0 or result["completed"] == 0:
            raise SystemExit(f"proxy_cost.py: failed greetings: {result}")
        return result["rate"], used / result["completed"] * 1e6
    finally:
        for p in (door, server):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin-dir", default="build-bench/bin")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--stop-delay", type=float, default=2,
                    help="the proxied server's --stop-delay (0: TCP_DEFER_ACCEPT off)")
    args = ap.parse_args()
    figures = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="proxy-cost-") as tmp:
        for i in range(args.runs):
            for proxied in ((False, True) if i % 2 == 0 else (True, False)):
                figures[proxied].append(one_run(args.bin_dir, tmp, proxied, args.seconds, args.stop_delay))
                rate, us = figures[proxied][-1]
                print(f"run {i + 1} {'proxy v2' if proxied else 'plain   '}: {rate:9.0f} greetings/s, "
                      f"{us:.2f} us server CPU per greeting", flush=True)
    med = {k: (statistics.median(r for r, _ in v), statistics.median(u for _, u in v))
           for k, v in figures.items()}
    print(f"median plain:    {med[False][0]:.0f}/s, {med[False][1]:.2f} us/greeting")
    print(f"median proxy v2: {med[True][0]:.0f}/s, {med[True][1]:.2f} us/greeting "
          f"({med[True][1] / med[False][1]:.3f}x the plain CPU per greeting)")


if __name__ == "__main__":
    sys.exit(main())
