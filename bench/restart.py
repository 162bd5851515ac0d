#!/usr/bin/env python3
"""Restarting greet-server under load: how many greetings are lost, and why.

    python3 bench/restart.py [--bin build/bin] [--rounds 5] [--duration 6] [--connections 32]

greet-bench runs a closed loop of greetings for --duration seconds against 127.0.0.1 while
greet-server is restarted once, a second in, in one of three ways:

  held        the listening socket is held by this script (as systemd holds greet-server.socket)
              and passed to each instance at fd 3 with LISTEN_FDS; the first instance gets
              SIGTERM (graceful stop), then the second starts on the same socket
  reuse-port  both instances bind with --reuse-port: the second starts, then the first gets
              SIGTERM (the overlap restart)
  reuse-port+migrate
              the same with net.ipv4.tcp_migrate_req=1, which lets the kernel move connections
              queued on a closing SO_REUSEPORT listener to another one in its group

Each round runs in a network namespace of its own (unshare -n, so root), where the sysctl can
be set without touching the machine's. Prints one line per round and a table of totals.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = ("held", "reuse-port", "reuse-port+migrate")


def wait_line(proc, prefix, limit=10.0):
    """The first stdout line of proc starting with prefix (others are skipped)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line.strip()
    raise RuntimeError(f"no '{prefix}' line: {proc.stderr.read() if proc.poll() is not None else ''}")


def greet_server(bin_dir, args, listen_fd=None, notify=None):
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    if notify:
        env["NOTIFY_SOCKET"] = notify
    argv = [str(bin_dir / "greet-server"), "--quiet", "--threads", "2", *args]
    preexec = None
    if listen_fd is not None:
        # As a service manager does it: the socket at fd 3, LISTEN_PID the program's own
        # (the shell's, which exec keeps).
        env["LISTEN_FDS"] = "1"
        argv = ["/bin/sh", "-c", 'export LISTEN_PID=$$; exec "$0" "$@"', *argv]
        # dup2 makes fd 3 inheritable, unless the socket is fd 3 already: copy it elsewhere first.
        preexec = lambda: os.dup2(os.dup(listen_fd), 3)  # noqa: E731
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=preexec, close_fds=preexec is None)


def stop(proc):
    proc.send_signal(15)
    out, err = proc.communicate(timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"greet-server exited {proc.returncode}: {err}")


def last_accepted(sock):
    """The highest "N accepted" in the notifications waiting on sock."""
    best = 0
    while True:
        try:
            got = sock.recv(4096).decode()
        except BlockingIOError:
            return best
        m = re.search(r"(\d+) accepted", got)
        if m:
            best = max(best, int(m.group(1)))


def one_round(variant, bin_dir, duration, connections):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"@greet-restart-{os.getpid()}"
    notify.bind("\0" + name[1:])
    notify.setblocking(False)
    held = None
    if variant == "held":
        held = socket.socket()
        held.bind(("127.0.0.1", 0))
        held.listen(4096)
        port = held.getsockname()[1]
        first = greet_server(bin_dir, [], listen_fd=held.fileno())
        wait_line(first, "listening on")
    else:
        first = greet_server(bin_dir, ["--host", "127.0.0.1", "--port", "0", "--reuse-port"])
        port = int(wait_line(first, "listening on").rsplit(":", 1)[1])
    bench = subprocess.Popen([str(bin_dir / "greet-bench"), "--port", str(port), "--duration",
                              str(duration), "--connections", str(connections), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    began = time.monotonic()
    if variant == "held":
        stop(first)
        exited = time.monotonic()
        second = greet_server(bin_dir, [], listen_fd=held.fileno(), notify=name)
        wait_line(second, "listening on")
        gap = time.monotonic() - exited
    else:
        second = greet_server(bin_dir, ["--host", "127.0.0.1", "--port", str(port), "--reuse-port"],
                              notify=name)
        wait_line(second, "listening on")
        stop(first)
        gap = 0.0
    restart_s = time.monotonic() - began
    out, err = bench.communicate(timeout=duration + 60)
    result = json.loads(out) if out.strip() else {"completed": 0, "errors": -1, "errors_by_kind": {}}
    time.sleep(1.1)  # the second instance's next STATUS= line
    served_after = last_accepted(notify)
    stop(second)
    return {"variant": variant, "completed": result["completed"], "errors": result["errors"],
            "by_kind": {k: v for k, v in result.get("errors_by_kind", {}).items() if v},
            "served_by_second": served_after, "gap_ms": gap * 1000, "restart_ms": restart_s * 1000}


def inside(args):
    """Runs in a fresh network namespace: loopback up, the sysctl set, one round."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    migrate = "1" if args.inside.endswith("+migrate") else "0"
    Path("/proc/sys/net/ipv4/tcp_migrate_req").write_text(migrate)
    print(json.dumps(one_round(args.inside, args.bin, args.duration, args.connections)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=HERE.parent / "build" / "bin")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=6)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--inside", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.bin = args.bin.resolve()
    if args.inside:
        return inside(args)
    rows = []
    for r in range(args.rounds):
        for variant in args.variants.split(","):
            cmd = ["unshare", "-n", sys.executable, __file__, "--inside", variant, "--bin", str(args.bin),
                   "--duration", str(args.duration), "--connections", str(args.connections)]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 120)
            if done.returncode != 0:
                sys.exit(f"restart.py: {variant} round {r + 1} failed: {done.stderr.strip()}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"round {r + 1} {variant:20} {row['completed']:7} greetings, {row['errors']} errors "
                  f"{row['by_kind'] or ''}; second instance served {row['served_by_second']}; "
                  f"gap {row['gap_ms']:.0f} ms", flush=True)
    print("\n| restart | rounds | greetings | errors (by kind) | rounds with errors | gap between instances (median) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for variant in args.variants.split(","):
        mine = [r for r in rows if r["variant"] == variant]
        kinds = {}
        for r in mine:
            for k, v in r["by_kind"].items():
                kinds[k] = kinds.get(k, 0) + v
        gaps = sorted(r["gap_ms"] for r in mine)
        print(f"| {variant} | {len(mine)} | {sum(r['completed'] for r in mine):,} | "
              f"{sum(r['errors'] for r in mine)} {kinds or ''} | {sum(1 for r in mine if r['errors'])} | "
              f"{gaps[len(gaps) // 2]:.0f} ms |")


if __name__ == "__main__":
    main()
