#!/usr/bin/env python3
"""System calls per TLS operation: a W6/W6r/W7 server under `strace -f -c`, as run.py runs it.

  python3 bench/tls_syscalls.py [--bin-dir build-bench/bin] [--workload W6|W6r|W7]
                                [--servers sock,floor,asio] [--connections N] [--seconds S]

Starts each server (run.py's argv: greet-server or echo-server with --threads 1, the floor,
Asio) pinned to CPU 0 under `strace -f -c`, drives it with peer-tls-load on CPU 1 (W6: full
handshakes and a greeting, 64 clients; W6r: the same resumed; W7: 16 KiB echo, 1
connection), stops it with SIGTERM, and prints each system call's count over the operations
peer-tls-load completed (greetings or messages), then the total. strace slows the server, so
the counts are what matter here, not the rates. Needs strace and the openssl CLI.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (run.py's server lines and certificates)

LOAD = {"W6": ["--mode", "greet"], "W6r": ["--mode", "greet", "--resume"],
        "W7": ["--mode", "echo", "--size", "16384"]}
DEFAULT_CONNECTIONS = {"W6": 64, "W6r": 64, "W7": 1}


def count(server, bin_dir, certs, workload, connections, seconds):
    out = Path(certs) / f"strace-{server.key}.txt"
    proc = subprocess.Popen(["taskset", "-c", "0", "strace", "-f", "-c", "-o", str(out), *server.argv],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline().strip()
        m = re.search(r"(\d+)\s*$", line)
        if not m:
            raise SystemExit(f"tls_syscalls.py: {server.key} printed {line!r}, not its port")
        load = subprocess.run(["taskset", "-c", "1", str(bin_dir / "peer-tls-load"), "--json", "--ca",
                               str(Path(certs) / "ca.pem"), "--host", "127.0.0.1", "--port", m.group(1),
                               "--connections", str(connections), "--duration", str(seconds), *LOAD[workload]],
                              capture_output=True, text=True, timeout=seconds + 60)
        done = json.loads(load.stdout).get("completed", 0)
    finally:
        # SIGTERM to strace would only detach it: the server is strace's child.
        for child in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split():
            subprocess.run(["kill", "-TERM", child], check=False)
        proc.wait(timeout=30)
    calls = {}
    for row in out.read_text().splitlines():
        f = row.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            calls[f[-1]] = int(f[3])
    return done, calls


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin-dir", type=Path, default=run.ROOT / "build-bench" / "bin")
    p.add_argument("--workload", choices=sorted(LOAD), default="W6")
    p.add_argument("--servers", default="sock,floor")
    p.add_argument("--connections", type=int)
    p.add_argument("--seconds", type=float, default=3)
    args = p.parse_args()
    bin_dir = args.bin_dir.resolve()
    connections = args.connections or DEFAULT_CONNECTIONS[args.workload]
    with tempfile.TemporaryDirectory() as certs:
        problem = run.make_certs(Path(certs))
        if problem:
            raise SystemExit(f"tls_syscalls.py: {problem}")
        pick = run.tls_echo_servers if args.workload == "W7" else run.tls_greet_servers
        servers = {s.key: s for s in pick(bin_dir, Path(certs), "")}
        for key in args.servers.split(","):
            s = servers.get(key)
            if s is None or s.unavailable:
                print(f"{key}: {s.unavailable if s else 'not a server of ' + args.workload}")
                continue
            done, calls = count(s, bin_dir, certs, args.workload, connections, args.seconds)
            if not done:
                print(f"{key}: nothing completed")
                continue
            print(f"{key} ({s.label}), {args.workload}, {connections} connections: {done} completed; per one:")
            for name, n in sorted(calls.items(), key=lambda kv: -kv[1]):
                if n / done >= 0.005:
                    print(f"  {name:14} {n / done:6.2f}")
            print(f"  {'total':14} {sum(calls.values()) / done:6.2f}")
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
