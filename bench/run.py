#!/usr/bin/env python3
"""The side-by-side benchmark: greet-server against its peers, echo-server and line-echo against theirs, and the same over TLS.

    python3 bench/run.py           # full run: bench/RESULTS.md, bench/results.json, bench/results.png
    python3 bench/run.py --smoke   # every workload for about a second (the ctest bench_smoke)

It installs the Debian packages it needs when run as root (nginx-light,
libnginx-mod-stream, libasio-dev, gnuplot-nox, libssl-dev, openssl), builds the
project in Release into build-bench/, then runs W1-W8 on loopback with the server
pinned to CPU 0 and the load generator (greet-bench; peer-line-load for W5,
peer-tls-load for W6-W8) to CPU 1, a fresh server process per run, rounds
interleaved. W6-W8 (TLS, issue 9) use a test CA and certificate made for the run
by bench/peers/make_tls_certs.sh.
Standard library only. See bench/README.md for the workloads and the output.
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import datetime
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
SERVER_CPU, BENCH_CPU = "0", "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PACKAGES = {  # Debian package: what shows it is there
    "nginx-light": lambda: shutil.which("nginx") or Path("/usr/sbin/nginx").exists(),
    "libnginx-mod-stream": lambda: Path("/usr/lib/nginx/modules/ngx_stream_module.so").exists(),
    "libasio-dev": lambda: Path("/usr/include/asio.hpp").exists(),
    "gnuplot-nox": lambda: shutil.which("gnuplot"),
    "libssl-dev": lambda: Path("/usr/include/openssl/ssl.h").exists(),  # W6-W8's peers (OpenSSL 3)
    "openssl": lambda: shutil.which("openssl"),  # W6-W8's test certificates
}
START_TIMEOUT_S = 15  # run_nginx.sh alone may take 10 s to give up
STOP_GRACE_S = 8  # greet-server lets in-flight clients finish for up to 5 s
SCRAPE_INTERVAL_S = 1.0  # sock-metrics is scraped this often during the load (Prometheus: 15 s or more)


@dataclass
class Plan:
    """How long and how hard each workload runs."""
    runs: int
    w1_connections: int
    w1_duration: float
    w2_clients: int
    w2_delay: float
    w2_cap: float  # duration cap for the seed's one-at-a-time server
    w3_rate: int
    w3_duration: float
    w3_inflight: int
    w4_connections: tuple[int, ...]
    w4_sizes: tuple[int, ...]
    w4_duration: float
    w5_connections: int
    w5_lines: int  # lines per batch: sent in one write, all read back before the next batch
    w5_size: int  # bytes per line, with its "\n"
    w5_duration: float
    w6_connections: int  # concurrent clients, each a TLS handshake and a greeting at a time
    w6_duration: float
    w7_connections: tuple[int, ...]
    w7_size: int
    w7_duration: float
    w8_connections: int  # idle TLS connections held
    w8_inflight: int  # handshakes at a time while they are opened
    w8_hold: float  # seconds they are held (the server's RSS is read in the middle)
    quiet_wait: float  # most seconds to wait before a run for other work on its CPUs to calm down


FULL = Plan(runs=5, w1_connections=64, w1_duration=5, w2_clients=10000, w2_delay=2, w2_cap=10,
            w3_rate=10000, w3_duration=5, w3_inflight=1000, w4_connections=(1, 100, 1000),
            w4_sizes=(16, 16384), w4_duration=3, w5_connections=100, w5_lines=16, w5_size=64,
            w5_duration=3, w6_connections=64, w6_duration=5, w7_connections=(1, 100), w7_size=16384,
            w7_duration=3, w8_connections=10000, w8_inflight=64, w8_hold=2, quiet_wait=3)
SMOKE = Plan(runs=1, w1_connections=8, w1_duration=1, w2_clients=200, w2_delay=0.2, w2_cap=2,
             w3_rate=500, w3_duration=1, w3_inflight=100, w4_connections=(1, 10),
             w4_sizes=(16, 16384), w4_duration=1, w5_connections=10, w5_lines=16, w5_size=64,
             w5_duration=1, w6_connections=8, w6_duration=1, w7_connections=(1, 10), w7_size=16384,
             w7_duration=1, w8_connections=200, w8_inflight=32, w8_hold=0.5, quiet_wait=0)
TLS_WORKLOADS = ("W6", "W6r", "W7", "W7p", "W8")
# --workloads W6 runs both handshake kinds, W7 its plaintext baseline too (their ratios need them).
WORKLOAD_ALIASES = {"W6": ("W6", "W6r"), "W7": ("W7", "W7p")}


@dataclass
class Server:
    key: str
    label: str
    argv: list[str]
    ours: bool = False
    unavailable: str = ""  # why it can't run, when it can't
    metrics: bool = False  # prints "metrics on URL" second, and is scraped during the load
    only: tuple[str, ...] = ()  # the workloads it runs, if not all of its group's
    plain_argv: list[str] = field(default_factory=list)  # W7p: the same server without TLS


@dataclass
class Run:
    """One server process under one load: what we asked and what we measured."""
    workload: str
    server: str
    params: dict
    round: int
    status: str = "ok"  # ok | failed | unavailable
    note: str = ""
    bench: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


# ---------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def child_setup() -> None:
    """In each child before exec: all the descriptors the hard limit allows (W2 needs 10k+),
    and death with this script, so no server outlives it even if it is killed."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_live: dict[int, subprocess.Popen] = {}  # every child still running, killed on the way out


def spawn(argv: list[str], cpu: str, stdout, stderr) -> subprocess.Popen:
    proc = subprocess.Popen(["taskset", "-c", cpu, *argv], stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=stderr, preexec_fn=child_setup,
                            start_new_session=True, cwd=ROOT)
    _live[proc.pid] = proc
    return proc


def stop(proc: subprocess.Popen) -> int | None:
    """SIGTERM, then SIGKILL after a grace period; then whatever is left of its process
    group (run_nginx.sh's helper). Returns the exit status (negative: killed by signal)."""
    code = proc.poll()
    if code is None:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    deadline = time.monotonic() + 2  # run_nginx.sh's helper notices within 0.2 s, then cleans up
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _live.pop(proc.pid, None)
    return code


def stop_all() -> None:
    for proc in list(_live.values()):
        try:
            stop(proc)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


def tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


LISTENING = re.compile(r"^(?:listening on (\S+):)?(\d+)\s*$")
METRICS_LINE = re.compile(r"^metrics on (http://\S+)\s*$")


def start_server(server: Server, tmp: Path) -> tuple[subprocess.Popen, str, int, str | None]:
    """Starts it on CPU 0 and waits for its `listening on HOST:PORT` line (the seed's
    server prints the bare port), and for a metrics server its `metrics on URL` line."""
    out, err = tmp / f"{server.key}.out", tmp / f"{server.key}.err"
    with open(out, "w") as o, open(err, "w") as e:
        proc = spawn(server.argv, SERVER_CPU, o, e)
    deadline = time.monotonic() + START_TIMEOUT_S
    wanted = 2 if server.metrics else 1
    while time.monotonic() < deadline:
        lines = out.read_text(errors="replace").split("\n")
        if len(lines) > wanted:
            m = LISTENING.match(lines[0])
            url = METRICS_LINE.match(lines[1]) if server.metrics else None
            if not m or (server.metrics and not url):
                stop(proc)
                raise RuntimeError(f"unexpected first lines {lines[:wanted]!r}")
            return proc, m.group(1) or "127.0.0.1", int(m.group(2)), url.group(1) if url else None
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    code = stop(proc)
    raise RuntimeError(f"did not start (exit {code}): {tail(err)}")


def cpu_us(pid: int) -> float:
    """utime+stime+cutime+cstime from /proc/PID/stat, in microseconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) * 1e6 / CLK_TCK


def vm_hwm_kib(pid: int, name: str = "VmHWM") -> int | None:
    """VmHWM (peak RSS) or another field of /proc/PID/status, in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def busy_us() -> float:
    """CPU time spent on the two benchmark CPUs so far (user, nice, system, steal; interrupt
    time is left out, as it is from a process's own figures), from /proc/stat."""
    total = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *ticks = line.split()
            if name in (f"cpu{SERVER_CPU}", f"cpu{BENCH_CPU}"):
                user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(t) for t in ticks[:8])
                total += user + nice + system + steal
    return total * 1e6 / CLK_TCK


QUIET_BELOW_PCT = 20  # of one CPU: what other work on the two CPUs may use before a run starts


def wait_for_quiet(most: float) -> tuple[float, float]:
    """Waits (a little) for other work on the benchmark's CPUs to calm down, since this
    machine may be shared. Returns (seconds waited, their busy % over the last sample)."""
    start = time.monotonic()
    while True:
        b0, t0 = busy_us(), time.monotonic()
        time.sleep(0.25)
        pct = 100 * (busy_us() - b0) / ((time.monotonic() - t0) * 1e6)
        waited = time.monotonic() - start
        if pct < QUIET_BELOW_PCT or waited >= most:
            return waited, pct


def run_bench(argv: list[str], timeout: float, tmp: Path, on_line=None) -> dict:
    """Runs the load generator (greet-bench, or peer-line-load for W5, peer-tls-load for W6-W8)
    on CPU 1 to completion (killed past `timeout`); returns its JSON plus its own CPU time and
    wall time, so a saturated load generator shows. on_line, (prefix, function): the function
    is called once, while the generator still runs, when it prints a line with that prefix
    (W8's "holding N")."""
    out, err = tmp / "bench.out", tmp / "bench.err"
    start = time.monotonic()
    with open(out, "w") as o, open(err, "w") as e:
        proc = spawn(argv, BENCH_CPU, o, e)
    timed_out = False
    while True:
        if on_line and any(line.startswith(on_line[0]) for line in out.read_text(errors="replace").splitlines()):
            on_line[1]()
            on_line = None
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - start > timeout:
            timed_out = True
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    _live.pop(proc.pid, None)
    result = None
    for line in reversed(out.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except ValueError:
                pass
            break
    if timed_out:
        raise RuntimeError(f"{Path(argv[0]).name} ran past its {timeout:.0f} s bound and was killed")
    if result is None:
        raise RuntimeError(f"{Path(argv[0]).name} exit {proc.returncode}, no JSON: {tail(err)}")
    result["exit"] = proc.returncode
    result["bench_cpu_us"] = (usage.ru_utime + usage.ru_stime) * 1e6
    result["bench_wall_s"] = wall
    return result


class Scraper:
    """Scrapes a metrics URL every SCRAPE_INTERVAL_S on a thread while the load runs, as
    Prometheus would (more often): scraping under load is part of what is measured."""

    def __init__(self, url: str):
        self.url, self.scrapes, self.failures, self.last = url, 0, 0, ""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def scrape(self) -> str:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as r:
                self.last = r.read().decode()
            self.scrapes += 1
        except OSError:
            self.failures += 1
        return self.last

    def _loop(self) -> None:
        while not self._done.wait(SCRAPE_INTERVAL_S):
            self.scrape()

    def finish(self) -> dict:
        self._done.set()
        self._thread.join()
        final = self.scrape()  # after the load: every greeting is counted by now
        replies = sum(float(m.group(1)) for m in re.finditer(r"^greet_replies_total\{[^}]*\} (\S+)$", final, re.M))
        return {"scrapes_during_load": self.scrapes - 1, "scrape_failures": self.failures,
                "replies_counted": replies}


def measure(server: Server, bench_argv: list[str], timeout: float, quiet_wait: float, run: Run,
            hold_probe: float | None = None) -> None:
    """One run: a fresh server, CPU sampled right before and after the load, peak RSS at
    the end, then the server stopped whatever happened. hold_probe (W8): the server's VmRSS
    is read before the load and again that many seconds after the generator says it holds
    its connections."""
    with tempfile.TemporaryDirectory(prefix="sock-bench-") as tmpname:
        tmp = Path(tmpname)
        proc = None
        try:
            proc, host, port, metrics_url = start_server(server, tmp)
            waited, busy_before = wait_for_quiet(quiet_wait)  # also lets the server settle into its loop
            held = {}
            on_line = None
            if hold_probe is not None:
                held["rss_before_kib"] = vm_hwm_kib(proc.pid, "VmRSS")

                def sample_held(pid=proc.pid):
                    time.sleep(hold_probe)  # the last handshakes' leftovers settle
                    held["rss_held_kib"] = vm_hwm_kib(pid, "VmRSS")
                on_line = ("holding", sample_held)
            cpu0, busy0, t0 = cpu_us(proc.pid), busy_us(), time.monotonic()
            scraper = Scraper(metrics_url) if metrics_url else None
            try:
                res = run_bench([*bench_argv, "--host", host, "--port", str(port)], timeout, tmp, on_line)
            finally:
                scraped = scraper.finish() if scraper else {}
            cpu1, busy1, t1 = cpu_us(proc.pid), busy_us(), time.monotonic()
            rss = vm_hwm_kib(proc.pid)
            crashed = proc.poll()
            run.bench = res
            # Others' CPU: what the two CPUs did beyond the server and greet-bench (other
            # processes on a shared machine); it disturbs the figures when it is high.
            others = busy1 - busy0 - (cpu1 - cpu0) - res["bench_cpu_us"]
            run.metrics = {"server_cpu_us": cpu1 - cpu0, "server_wall_s": t1 - t0, "rss_kib": rss,
                           "others_cpu_pct": max(0.0, 100 * others / ((t1 - t0) * 1e6)),
                           "quiet_wait_s": waited, "busy_before_pct": busy_before, **scraped, **held}
            if crashed is not None:
                run.status, run.note = "failed", f"server exited ({crashed}) during the load: {tail(tmp / (server.key + '.err'))}"
        except (RuntimeError, OSError) as e:
            run.status, run.note = "failed", str(e)
        finally:
            if proc is not None:
                code = stop(proc)
                run.metrics["server_exit"] = code
                if server.ours and code != 0 and run.status == "ok":
                    run.status, run.note = "failed", f"exit status {code} after SIGTERM: {tail(tmp / (server.key + '.err'))}"


# ---------------------------------------------------------------- workloads

def greet_servers(bin_dir: Path) -> list[Server]:
    nginx_missing = [p for p in ("nginx-light", "libnginx-mod-stream") if not PACKAGES[p]()]
    servers = [
        Server("sock", "greet-server", [str(bin_dir / "greet-server"), "--host", "127.0.0.1",
                                        "--port", "0", "--quiet", "--threads", "1"], ours=True),
        # The same with --metrics on, scraped during the load: W1 only, for issue 8's target.
        Server("sock-metrics", "greet-server --metrics", [str(bin_dir / "greet-server"), "--host", "127.0.0.1",
                                                          "--port", "0", "--quiet", "--threads", "1",
                                                          "--metrics", "127.0.0.1:0"],
               ours=True, metrics=True, only=("W1",)),
        Server("floor", "floor (C epoll)", [str(bin_dir / "peer-floor-greet"), "0"]),
        Server("nginx", "nginx stream", ["bash", str(BENCH_DIR / "peers/run_nginx.sh"), "0"],
               unavailable=f"{' and '.join(nginx_missing)} not installed" if nginx_missing else ""),
        Server("asio", "Asio coroutines", [str(bin_dir / "peer-asio-greet"), "0"]),
        Server("asyncio", "Python asyncio", [sys.executable, str(BENCH_DIR / "peers/asyncio_greet.py"), "0"]),
        Server("seed", "seed server.py", [sys.executable, str(ROOT / "tests/python/seed_server.py"), "0"]),
    ]
    return mark_missing(servers)


def echo_servers(bin_dir: Path) -> list[Server]:
    return mark_missing([
        Server("sock", "echo-server", [str(bin_dir / "echo-server"), "--port", "0", "--threads", "1"], ours=True),
        Server("floor", "floor (C epoll)", [str(bin_dir / "peer-floor-echo"), "0"]),
        Server("asio", "Asio coroutines", [str(bin_dir / "peer-asio-echo"), "0"]),
    ])


def line_servers(bin_dir: Path) -> list[Server]:
    return mark_missing([
        Server("sock", "line-echo", [str(bin_dir / "line-echo"), "0", "--threads", "1"], ours=True),
        Server("floor", "floor (C epoll)", [str(bin_dir / "peer-floor-lines"), "0"]),
        Server("asio", "Asio read_until", [str(bin_dir / "peer-asio-lines"), "0"]),
        Server("asyncio", "Python asyncio", [sys.executable, str(BENCH_DIR / "peers/asyncio_lines.py"), "0"]),
    ])


def make_certs(where: Path) -> str:
    """The TLS workloads' test CA and server certificate (ECDSA P-256, localhost and
    127.0.0.1) in `where`, made by bench/peers/make_tls_certs.sh with the openssl CLI.
    Returns '' or why they could not be made."""
    if not shutil.which("openssl"):
        return "the openssl CLI is not installed (Debian: openssl)"
    res = subprocess.run(["bash", str(BENCH_DIR / "peers/make_tls_certs.sh"), str(where)],
                         capture_output=True, text=True, timeout=60)
    return "" if res.returncode == 0 else f"make_tls_certs.sh failed: {res.stderr.strip()[-300:]}"


def lacks_option(exe: Path, option: str) -> str:
    """'' if `exe --help` mentions option, else why our TLS server can't run yet: the sock
    entries of W6-W8 switch themselves on once greet-server and echo-server have TLS."""
    if not exe.exists():
        return f"{exe.name} not built"
    try:
        res = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{exe.name} --help failed: {e}"
    return "" if option in res.stdout + res.stderr else f"not built yet: {exe.name} --help has no {option}"


def tls_greet_servers(bin_dir: Path, certs: Path, cert_problem: str) -> list[Server]:
    """W6's servers: the TLS greeting, with the same certificate and key."""
    cert, key = str(certs / "server.pem"), str(certs / "server.key")
    nginx_missing = [p for p in ("nginx-light", "libnginx-mod-stream") if not PACKAGES[p]()]
    servers = [
        Server("sock", "greet-server --tls-cert", [str(bin_dir / "greet-server"), "--host", "127.0.0.1", "--port", "0",
                                                   "--quiet", "--threads", "1", "--tls-cert", cert, "--tls-key", key],
               ours=True, unavailable=lacks_option(bin_dir / "greet-server", "--tls-cert")),
        Server("floor", "floor (C epoll, OpenSSL BIO pair)", [str(bin_dir / "peer-floor-tls"), "0", cert, key, "greet"]),
        Server("nginx", "nginx stream ssl", ["bash", str(BENCH_DIR / "peers/run_nginx.sh"), "0", cert, key],
               unavailable=f"{' and '.join(nginx_missing)} not installed" if nginx_missing else ""),
        Server("asio", "Asio ssl::stream", [str(bin_dir / "peer-asio-tls"), "0", cert, key, "greet"]),
    ]
    return mark_missing(servers, cert_problem)


def tls_echo_servers(bin_dir: Path, certs: Path, cert_problem: str) -> list[Server]:
    """W7's and W8's servers: echo over TLS, and the same servers without it (W7p)."""
    cert, key = str(certs / "server.pem"), str(certs / "server.key")
    echo = str(bin_dir / "echo-server")
    servers = [
        Server("sock", "echo-server --tls", [echo, "--port", "0", "--threads", "1", "--tls", "--tls-cert", cert,
                                             "--tls-key", key],
               ours=True, unavailable=lacks_option(bin_dir / "echo-server", "--tls-cert"),
               plain_argv=[echo, "--port", "0", "--threads", "1"]),
        Server("floor", "floor (C epoll, OpenSSL BIO pair)", [str(bin_dir / "peer-floor-tls"), "0", cert, key, "echo"],
               plain_argv=[str(bin_dir / "peer-floor-echo"), "0"]),
        Server("asio", "Asio ssl::stream", [str(bin_dir / "peer-asio-tls"), "0", cert, key, "echo"],
               plain_argv=[str(bin_dir / "peer-asio-echo"), "0"]),
    ]
    return mark_missing(servers, cert_problem)


def mark_missing(servers: list[Server], problem: str = "") -> list[Server]:
    """Marks unavailable what is not built, or every server when `problem` (shared by all) is set."""
    for s in servers:
        exe = Path(s.argv[0])
        if exe.is_absolute() and not exe.exists() and not s.unavailable:
            s.unavailable = f"{exe.name} not built" + (" (libasio-dev missing?)" if "asio" in exe.name else "") \
                + (" (libssl-dev missing?)" if "tls" in exe.name else "")
        s.unavailable = s.unavailable or problem
    return servers


def workloads(plan: Plan, program: str, line_load: str, tls_load: str = "",
              ca: str = "") -> list[tuple[str, str, dict, list[str], float]]:
    """(workload, server group, params, load generator arguments, time bound) for one round."""
    cases = []
    bench = [program, "--json"]
    w1 = [*bench, "--mode", "greet", "--message", "1", "--connections", str(plan.w1_connections),
          "--duration", str(plan.w1_duration)]
    cases.append(("W1", "greet", {}, w1, plan.w1_duration + 30))
    w2 = [*bench, "--mode", "greet", "--message", "1", "--connections", str(plan.w2_clients),
          "--count", str(plan.w2_clients), "--delay", str(plan.w2_delay), "--timeout", str(plan.w2_delay + 8)]
    cases.append(("W2", "greet", {}, w2, plan.w2_delay + 60))
    w3 = [*bench, "--mode", "greet", "--message", "1", "--rate", str(plan.w3_rate),
          "--connections", str(plan.w3_inflight), "--duration", str(plan.w3_duration)]
    cases.append(("W3", "greet", {}, w3, plan.w3_duration + 30))
    for conns in plan.w4_connections:
        for size in plan.w4_sizes:
            w4 = [*bench, "--mode", "echo", "--size", str(size), "--connections", str(conns),
                  "--duration", str(plan.w4_duration)]
            cases.append(("W4", "echo", {"connections": conns, "size": size}, w4, plan.w4_duration + 30))
    w5 = [line_load, "--json", "--connections", str(plan.w5_connections), "--lines", str(plan.w5_lines),
          "--size", str(plan.w5_size), "--duration", str(plan.w5_duration)]
    cases.append(("W5", "lines", {}, w5, plan.w5_duration + 30))
    tls = [tls_load, "--json", "--ca", ca]
    w6 = [*tls, "--mode", "greet", "--connections", str(plan.w6_connections), "--duration", str(plan.w6_duration)]
    cases.append(("W6", "tls_greet", {}, w6, plan.w6_duration + 30))
    cases.append(("W6r", "tls_greet", {}, [*w6, "--resume"], plan.w6_duration + 30))
    for conns in plan.w7_connections:
        w7 = [*tls, "--mode", "echo", "--size", str(plan.w7_size), "--connections", str(conns),
              "--duration", str(plan.w7_duration)]
        cases.append(("W7", "tls_echo", {"connections": conns, "size": plan.w7_size}, w7, plan.w7_duration + 30))
        cases.append(("W7p", "tls_echo", {"connections": conns, "size": plan.w7_size}, [*w7, "--plain"],
                      plan.w7_duration + 30))
    setup_bound = 120  # seconds to open them all; about 15 s at this machine's handshake rate
    w8 = [*tls, "--mode", "idle", "--connections", str(plan.w8_connections), "--inflight", str(plan.w8_inflight),
          "--hold", str(plan.w8_hold), "--duration", str(setup_bound)]
    cases.append(("W8", "tls_echo", {}, w8, setup_bound + plan.w8_hold + 30))
    return cases


def derive(run: Run, plan: Plan) -> None:
    """The workload's figures from the load generator's JSON and the /proc samples (W5:
    "completed" counts lines, so CPU per op is per line)."""
    b, m = run.bench, run.metrics
    done, wall = b.get("completed", 0), m["server_wall_s"]
    cpu = m["server_cpu_us"]
    lat = b.get("latency_us") or {}
    m.update(completed=done, errors=b.get("errors", 0), rate=b.get("rate", 0.0),
             server_cpu_pct=100 * cpu / (wall * 1e6), bench_cpu_pct=100 * b["bench_cpu_us"] / (b["bench_wall_s"] * 1e6),
             cpu_us_per_op=cpu / done if done else None)
    if run.workload == "W2":
        p99 = lat.get("p99")
        m["p99_beyond_delay_us"] = p99 - plan.w2_delay * 1e6 if p99 is not None and done else None
    if run.workload in ("W3", "W5", "W6", "W6r", "W7", "W7p"):
        m.update({k: lat.get(k) for k in ("p50", "p99", "p999")})
    if run.workload in ("W4", "W7", "W7p"):
        m["mib_per_s"] = m["rate"] * run.params["size"] / 2**20
    if run.workload in ("W6", "W6r"):  # CPU per op is per handshake: each greeting is one
        m["resumed_pct"] = 100 * b.get("resumed", 0) / b["handshakes"] if b.get("handshakes") else None
    if run.workload == "W8":  # "completed" counts the connections held; CPU per op, per handshake
        m["cpu_us_per_op"] = cpu / b["handshakes"] if b.get("handshakes") else None
        before, held = m.get("rss_before_kib"), m.get("rss_held_kib")
        m["rss_per_conn_kib"] = (held - before) / done if done and before is not None and held is not None else None


def execute(plan: Plan, bin_dir: Path, only: set[str] | None, keys: set[str] | None,
            certs: Path) -> tuple[list[Run], dict]:
    groups = {"greet": greet_servers(bin_dir), "echo": echo_servers(bin_dir), "lines": line_servers(bin_dir),
              "tls_greet": [], "tls_echo": []}
    tls_load = bin_dir / "peer-tls-load"
    if not only or any(w in only for w in TLS_WORKLOADS):
        problem = make_certs(certs)
        if not problem and not tls_load.exists():  # W6-W8's load generator is built with the peers
            problem = f"{tls_load.name} (W6-W8's load generator) not built (libssl-dev missing?)"
        groups["tls_greet"] = tls_greet_servers(bin_dir, certs, problem)
        groups["tls_echo"] = tls_echo_servers(bin_dir, certs, problem)
    if keys:
        for servers in groups.values():
            servers[:] = [s for s in servers if s.key in keys]
    bench = str(bin_dir / "greet-bench")
    if not Path(bench).exists():
        raise SystemExit(f"run.py: {bench} not found; build the project first")
    line_load = bin_dir / "peer-line-load"
    cases = [c for c in workloads(plan, bench, str(line_load), str(tls_load), str(certs / "ca.pem"))
             if not only or c[0] in only]
    if not line_load.exists():  # W5's load generator is built with the peers
        for s in groups["lines"]:
            s.unavailable = s.unavailable or f"{line_load.name} (W5's load generator) not built"
    runs: list[Run] = []
    total = plan.runs * sum(len([s for s in groups[c[1]] if not s.only or c[0] in s.only]) for c in cases)
    began = time.monotonic()
    for rnd in range(plan.runs):
        for workload, group, params, argv, bound in cases:
            servers = [s for s in groups[group] if not s.only or workload in s.only]
            shift = rnd % len(servers)  # rotate who goes first, so no server always follows another
            for server in servers[shift:] + servers[:shift]:
                run = Run(workload, server.key, params, rnd)
                runs.append(run)
                argv_here = list(argv)
                if workload == "W2" and server.key == "seed":
                    # The seed serves one client at a time: cap by time alone instead of by
                    # count (requests still waiting at the cap are cut off, not counted as
                    # errors).
                    i = argv_here.index("--count")
                    argv_here[i:i + 2] = ["--duration", str(plan.w2_cap)]
                    i = argv_here.index("--timeout")
                    argv_here[i + 1] = str(plan.w2_cap + 5)
                    run.note = f"capped at {plan.w2_cap:g} s: serves one client at a time"
                if server.unavailable:
                    run.status, run.note = "unavailable", server.unavailable
                    continue
                here = server
                if workload == "W7p":  # the plaintext baseline: the same server without TLS
                    here = dataclasses.replace(server, argv=server.plain_argv)
                    if not Path(here.argv[0]).exists():
                        run.status, run.note = "unavailable", f"{Path(here.argv[0]).name} not built"
                        continue
                measure(here, argv_here, bound, plan.quiet_wait, run,
                        hold_probe=min(0.5, plan.w8_hold / 2) if workload == "W8" else None)
                if run.status == "ok":
                    derive(run, plan)
                elif not server.ours and rnd == 0 and "did not start" in run.note and here is server:
                    server.unavailable = run.note  # a peer that can't start won't on the next run either
                progress(len(runs), total, began, run, groups)
    # W7 over W7p: what TLS costs each server against its own plaintext echo, same round.
    for r in runs:
        plain = [p for p in by_case(runs, "W7p", r.server, **r.params) if p.round == r.round and p.status == "ok"]
        if r.workload == "W7" and r.status == "ok" and plain:
            p = plain[0].metrics
            if p.get("rate"):
                r.metrics["tls_over_plain_rate"] = r.metrics["rate"] / p["rate"]
            if p.get("cpu_us_per_op") and r.metrics.get("cpu_us_per_op"):
                r.metrics["tls_over_plain_cpu"] = r.metrics["cpu_us_per_op"] / p["cpu_us_per_op"]
    return runs, {g: [s.__dict__ for s in servers] for g, servers in groups.items()}


def progress(done: int, total: int, began: float, run: Run, groups: dict) -> None:
    m = run.metrics
    desc = f"{run.workload} {run.server}" + "".join(f" {k}={v}" for k, v in run.params.items())
    if run.status != "ok":
        what = f"{run.status}: {run.note}"
    else:
        what = (f"completed={m['completed']} errors={m['errors']} rate={m['rate']:.0f}/s "
                f"server_cpu={m['server_cpu_pct']:.0f}% bench_cpu={m['bench_cpu_pct']:.0f}%")
    print(f"[{done}/{total} {time.monotonic() - began:5.0f}s] round {run.round + 1} {desc}: {what}", flush=True)


# ---------------------------------------------------------------- aggregation

def med(runs: list[Run], key: str):
    values = [r.metrics.get(key) for r in runs if r.status == "ok" and r.metrics.get(key) is not None]
    return statistics.median(values) if values else None


def by_case(runs: list[Run], workload: str, server: str, **params) -> list[Run]:
    return [r for r in runs if r.workload == workload and r.server == server
            and all(r.params.get(k) == v for k, v in params.items())]


def summarize(runs: list[Run], plan: Plan, groups: dict) -> dict:
    """Medians per case, keyed 'W1/sock', 'W4/floor/100x16'."""
    summary = {}
    for r in runs:
        key = "/".join([r.workload, r.server] + ([f"{r.params['connections']}x{r.params['size']}"] if r.params else []))
        if key in summary:
            continue
        case = by_case(runs, r.workload, r.server, **r.params)
        ok = [c for c in case if c.status == "ok"]
        entry = {"workload": r.workload, "server": r.server, "params": r.params,
                 "runs": len(case), "ok_runs": len(ok),
                 "status": "ok" if ok else case[0].status, "note": next((c.note for c in case if c.note), "")}
        for k in ("completed", "errors", "rate", "cpu_us_per_op", "server_cpu_pct", "bench_cpu_pct",
                  "rss_kib", "p99_beyond_delay_us", "p50", "p99", "p999", "mib_per_s", "others_cpu_pct",
                  "scrapes_during_load", "scrape_failures", "replies_counted", "resumed_pct",
                  "tls_over_plain_rate", "tls_over_plain_cpu", "rss_before_kib", "rss_held_kib", "rss_per_conn_kib"):
            v = med(case, k)
            if v is not None:
                entry[k] = v
        if ok:
            entry["min_completed"] = min(c.metrics["completed"] for c in ok)
            entry["max_errors"] = max(c.metrics["errors"] for c in ok)
        summary[key] = entry
    return summary


def targets(runs: list[Run], summary: dict, plan: Plan) -> list[dict]:
    """Issue 3 section 4 (W1-W4), issue 7 section 7 (W5) and issue 9 (W6-W8, TLS): our
    medians over the floor's (and Asio's, for RSS and W5; nginx's and Asio's too, for W6-W8),
    same run."""
    rows = []

    def paired(workload, metric, ref, params, ours="sock"):
        """Median over rounds of ours ÷ the reference in the same round: runs next to each
        other in time share the machine's state, so this cancels most of its drift."""
        qs = []
        for mine in by_case(runs, workload, ours, **params):
            theirs = [r for r in by_case(runs, workload, ref, **params) if r.round == mine.round]
            if mine.status == "ok" and theirs and theirs[0].status == "ok":
                a, b = mine.metrics.get(metric), theirs[0].metrics.get(metric)
                if a is not None and b:
                    qs.append(a / b)
        return statistics.median(qs) if qs else None

    def ratio(workload, metric, label, op, limit, ref="floor", suffix="", mine="sock", ref_label=""):
        ours, other = summary.get(f"{workload}/{mine}{suffix}", {}), summary.get(f"{workload}/{ref}{suffix}", {})
        a, b = ours.get(metric), other.get(metric)
        params = {}
        if suffix:
            conns, size = suffix[1:].split("x")
            params = {"connections": int(conns), "size": int(size)}
        q = paired(workload, metric, ref, params, mine)
        name = workload
        if suffix:
            conns, size = suffix[1:].split("x")
            name += f" {int(conns):,} conn × {size_name(int(size))}"
        row = {"workload": name,
               "what": label, "ours": a, "ref": b, "ref_name": ref_label or ref, "target": f"{op} {limit:g}×"}
        if q is None:
            row.update(ratio=None, result="n/a", why=f"{ref} unavailable" if b is None else
                       f"{mine}: {ours['note']}" if a is None and ours.get("note") else "no data")
        else:
            good = {"≤": q <= limit, "<": q < limit, "≥": q >= limit}[op]
            row.update(ratio=q, result="PASS" if good else "MISS",
                       why="" if good else f"{abs(q / limit - 1) * 100:.1f}% {'over' if op in '≤<' else 'under'} the target")
        rows.append(row)

    ratio("W1", "cpu_us_per_op", "server CPU µs per greeting", "≤", 1.05)
    ratio("W1", "rate", "greetings/s", "≥", 0.97)
    if "W1/sock-metrics" in summary:  # issue 8 section 3: scraped under load, within 2% of off
        ratio("W1", "cpu_us_per_op", "server CPU µs per greeting, --metrics on (scraped)", "≤", 1.02,
              ref="sock", mine="sock-metrics", ref_label="--metrics off")
    ours = summary.get("W2/sock", {})
    served = ours.get("ok_runs") and ours.get("ok_runs") == ours.get("runs") \
        and ours.get("min_completed") == plan.w2_clients and ours.get("max_errors") == 0
    rows.append({"workload": "W2", "what": f"all {plan.w2_clients} served, 0 errors, in every run",
                 "ours": ours.get("min_completed"), "ref": None, "ref_name": "", "target": "all, 0 errors",
                 "ratio": None, "result": "PASS" if served else "MISS",
                 "why": "" if served else f"fewest completed {ours.get('min_completed')}, most errors {ours.get('max_errors')}"})
    ratio("W2", "p99_beyond_delay_us", "p99 beyond the delay", "≤", 1.1)
    ratio("W2", "rss_kib", "server peak RSS", "≤", 0.5, ref="asio")
    ratio("W3", "p99", "p99 latency", "≤", 1.1)
    for conns in plan.w4_connections:
        for size in plan.w4_sizes:
            ratio("W4", "rate", "messages/s", "≥", 0.97, suffix=f"/{conns}x{size}")
            ratio("W4", "cpu_us_per_op", "server CPU µs per message", "≤", 1.05, suffix=f"/{conns}x{size}")
    ratio("W5", "cpu_us_per_op", "server CPU µs per line", "≤", 1.1)
    ratio("W5", "cpu_us_per_op", "server CPU µs per line", "≤", 0.7, ref="asio")
    for w, kind in (("W6", "full"), ("W6r", "resumed")):
        label = f"server CPU µs per {kind} TLS handshake + greeting"
        ratio(w, "cpu_us_per_op", label, "≤", 1.05)
        ratio(w, "cpu_us_per_op", label, "<", 1, ref="nginx")
        ratio(w, "cpu_us_per_op", label, "<", 1, ref="asio")
    for conns in plan.w7_connections:
        suffix = f"/{conns}x{plan.w7_size}"
        ratio("W7", "rate", "TLS messages/s", "≥", 1, ref="asio", suffix=suffix)
        ratio("W7", "cpu_us_per_op", "server CPU µs per TLS message", "≤", 0.9, ref="asio", suffix=suffix)
        mine = summary.get(f"W7/sock{suffix}", {})  # reported, no target: what TLS costs us
        for metric, what in (("tls_over_plain_rate", "messages/s"), ("tls_over_plain_cpu", "server CPU µs per message")):
            rows.append({"workload": f"W7 {conns:,} conn × {size_name(plan.w7_size)}",
                         "what": f"{what}, TLS ÷ our plaintext echo (same round)", "ours": mine.get(metric), "ref": None,
                         "ref_name": "", "target": "reported", "ratio": mine.get(metric),
                         "result": "info" if mine.get(metric) is not None else "n/a",
                         "why": "" if mine.get(metric) is not None else f"sock: {mine.get('note') or 'no data'}"})
    ratio("W8", "rss_per_conn_kib", f"server RSS per idle TLS connection ({plan.w8_connections:,} held)", "≤", 0.5,
          ref="asio")
    ran = {r.workload for r in runs}  # --workloads: only the targets of what ran
    return [row for row in rows if row["workload"].split()[0] in ran]


# ---------------------------------------------------------------- report

def num(v, digits: int = 3) -> str:
    """A figure with about `digits` significant digits and thousands separators."""
    if v is None:
        return "–"
    if isinstance(v, int) or abs(v) >= 10 ** (digits - 1):
        return f"{round(v):,}"
    return f"{v:.{max(0, digits - 1 - len(str(int(abs(v)))) + (1 if abs(v) < 1 else 0))}f}"


def size_name(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def status_cells(entry: dict, width: int) -> list[str] | None:
    """A row's cells when the case has no figures to show."""
    if entry.get("ok_runs"):
        return None
    return [entry["status"] + (f": {entry['note']}" if entry["note"] else "")] + ["–"] * (width - 1)


def paced_by(e: dict, load: str = "greet-bench") -> str:
    server, bench = e.get("server_cpu_pct") or 0, e.get("bench_cpu_pct") or 0
    if server >= 85:
        return "server"
    return load if bench >= 85 else "neither (latency)"


def report(runs: list[Run], summary: dict, rows: list[dict], plan: Plan, groups: dict, meta: dict) -> str:
    labels = {g: {s["key"]: s["label"] for s in servers} for g, servers in groups.items()}
    out = [f"# Benchmark results{' (smoke)' if meta['smoke'] else ''}", "",
           f"Every figure here comes from `{meta['command']}`, run {meta['date']} on the machine "
           "below; none is written by hand. Run it again to reproduce them. "
           f"Raw per-run data: `{meta['json_name']}`; chart: `{meta['png_name']}`.", "",
           f"- Machine: {meta['machine']['nproc']} CPUs ({meta['machine']['cpu']}), Linux "
           f"{meta['machine']['kernel']}, Python {meta['machine']['python']}",
           f"- Build: `{meta['build']}`",
           f"- {plan.runs} interleaved round{'s' if plan.runs > 1 else ''}: each round runs every workload "
           "against every server in turn (starting with a different server each round); "
           "tables show medians over the rounds. A fresh server process per run.",
           f"- Server pinned to CPU {SERVER_CPU} (`taskset -c {SERVER_CPU}`), single-threaded "
           f"(`--threads 1`); the load generator (`greet-bench`; W5: `peer-line-load`; W6-W8: `peer-tls-load`) pinned to CPU "
           f"{BENCH_CPU}; loopback TCP.",
           "- Server CPU: utime+stime (+ children) from `/proc/PID/stat`, sampled right before and "
           f"after the load (clock ticks of {1e6 / CLK_TCK:g} µs). Peak RSS: `VmHWM` from "
           "`/proc/PID/status` at the end of the run. greet-bench CPU: its own rusage, to show "
           "whether the load generator was the bottleneck (near 100% means it was).",
           f"- Total time: {meta['elapsed_s'] / 60:.1f} min. Load average (1, 5, 15 min) before the build: "
           f"{' '.join(meta['loadavg']['before_build'])}; at the end: {' '.join(meta['loadavg']['after'])} "
           "(other work on the machine shows here).", ""]

    out += ["## Targets (issue 3, section 4; W5: issue 7, section 7; metrics on vs off: issue 8, section 3; "
            "W6-W8, TLS: issue 9)", "",
            "Ratio: ours over the floor's (RSS, W5's second row, W7 and W8: over Asio's; W6: over the floor's, "
            "nginx's and Asio's) in the same round, median over the rounds "
            "(runs next to each other in time share the machine's state, so pairing them cancels most "
            "of its drift). The ours and reference columns are the medians of the tables below.", ""]
    out.append(table(["workload", "metric", "ours", "reference", "ratio", "target", "result"],
                     [[r["workload"], r["what"], num(r["ours"]), (f"{num(r['ref'])} ({r['ref_name']})" if r["ref_name"] else "–"),
                       (f"{r['ratio']:.3f}×" if r["ratio"] is not None else "–"), r["target"],
                       f"**{r['result']}**" + (f" ({r['why']})" if r["why"] else "")] for r in rows]))
    out.append("")

    def section(workload: str, group: str, title: str, header: list[str], cells) -> None:
        body = []
        for s in groups[group]:
            e = summary.get(f"{workload}/{s['key']}")
            if e is None:
                continue
            body.append([labels[group][s["key"]]] + (status_cells(e, len(header) - 1) or cells(e)))
        if body:  # --workloads: no section for what did not run
            out.extend([f"## {title}", "", table(header, body), ""])

    p = plan
    section("W1", "greet", f"W1 saturation: {p.w1_connections} concurrent fast clients, {p.w1_duration:g} s",
            ["server", "greetings/s", "server CPU µs/greeting", "server CPU %", "greet-bench CPU %", "paced by",
             "others' CPU %", "errors (median)", "ok runs"],
            lambda e: [num(e.get("rate")), num(e.get("cpu_us_per_op")), num(e.get("server_cpu_pct")),
                       num(e.get("bench_cpu_pct")), paced_by(e), num(e.get("others_cpu_pct")), num(e.get("errors")),
                       f"{e['ok_runs']}/{e['runs']}"])
    if any(k.startswith("W1/") for k in summary):
        out.extend(["\"Paced by\" names whichever side used 85% of its CPU or more (greet-bench: the load "
                    "generator, not the server, set the rate, so greetings/s compares the generator's "
                    "work with each server more than the servers alone; CPU per greeting still compares "
                    "the servers). \"Others' CPU %\": what other processes used of the two benchmark "
                    "CPUs during the load, in % of one CPU.", ""])
        scraped = summary.get("W1/sock-metrics", {})
        if scraped.get("ok_runs"):
            out.extend([f"greet-server --metrics is the same server with `--metrics 127.0.0.1:0`, its /metrics "
                        f"fetched every {SCRAPE_INTERVAL_S:g} s during the load (median "
                        f"{num(scraped.get('scrapes_during_load'))} scrapes per run, "
                        f"{num(scraped.get('scrape_failures'))} failed); after the load its replies counted "
                        f"(median {num(scraped.get('replies_counted'))}) against greet-bench's completed greetings "
                        f"(median {num(scraped.get('completed'))}; a reply sent as the load stops is counted by the "
                        "server only).", ""])
    section("W2", "greet", f"W2 slow clients: {p.w2_clients:,} concurrent, each waits {p.w2_delay:g} s before sending",
            ["server", "completed (median; fewest)", "errors (median; most)", "p99 beyond the delay µs", "peak RSS KiB", "note"],
            lambda e: [f"{num(e.get('completed'))}; {num(e.get('min_completed'))}", f"{num(e.get('errors'))}; {num(e.get('max_errors'))}",
                       num(e.get("p99_beyond_delay_us")), num(e.get("rss_kib")), e["note"]])
    beyond = summary.get("W2/sock", {}).get("p99_beyond_delay_us")
    if beyond is not None:
        bucket_ms = 2 ** (int(math.log2(p.w2_delay * 1e6 + beyond)) - 6) / 1000
        out.extend([f"greet-bench's latency histogram keeps 64 buckets per power of two, so at "
                    f"greet-server's p99 ({num((p.w2_delay * 1e6 + beyond) / 1e6)} s from the start of connect) a latency "
                    f"is known to within {bucket_ms:g} ms: the p99 beyond the delay moves in steps that size.", ""])
    section("W3", "greet", f"W3 open loop: {p.w3_rate:,} greetings/s offered for {p.w3_duration:g} s "
            f"(at most {p.w3_inflight:,} in flight; latency from the scheduled start)",
            ["server", "achieved/s", "p50 µs", "p99 µs", "p99.9 µs", "server CPU %", "others' CPU %", "errors (median)"],
            lambda e: [num(e.get("rate")), num(e.get("p50")), num(e.get("p99")), num(e.get("p999")),
                       num(e.get("server_cpu_pct")), num(e.get("others_cpu_pct")), num(e.get("errors"))])

    body = []
    for conns in p.w4_connections:
        for size in p.w4_sizes:
            for s in groups["echo"]:
                e = summary.get(f"W4/{s['key']}/{conns}x{size}")
                if e is None:
                    continue
                first = [f"{conns:,}", size_name(size), labels["echo"][s["key"]]]
                body.append(first + (status_cells(e, 7) or [
                    num(e.get("rate")), num(e.get("mib_per_s")), num(e.get("cpu_us_per_op")),
                    num(e.get("server_cpu_pct")), num(e.get("bench_cpu_pct")), num(e.get("others_cpu_pct")),
                    num(e.get("errors"))]))
    if body:
        out.extend([f"## W4 echo ping-pong: one message in flight per connection, {p.w4_duration:g} s", "",
                    table(["connections", "message", "server", "messages/s", "MiB/s (each way)", "server CPU µs/message",
                           "server CPU %", "greet-bench CPU %", "others' CPU %", "errors"], body), ""])
    if any(k.startswith("W5/") for k in summary):
        floor_cpu = summary.get("W5/floor", {}).get("cpu_us_per_op")
        section("W5", "lines", f"W5 line echo: {p.w5_connections} connections, each sends {p.w5_lines} lines of "
                f"{p.w5_size} B in one write and reads all {p.w5_lines} back before the next batch, {p.w5_duration:g} s",
                ["server", "lines/s", "server CPU µs/line", "÷ floor's (medians)", "server CPU %", "peer-line-load CPU %",
                 "paced by", "batch p50 µs", "batch p99 µs", "others' CPU %", "errors (median)", "ok runs"],
                lambda e: [num(e.get("rate")), num(e.get("cpu_us_per_op"), 4),
                           (f"{e['cpu_us_per_op'] / floor_cpu:.2f}×" if e.get("cpu_us_per_op") and floor_cpu else "–"),
                           num(e.get("server_cpu_pct")), num(e.get("bench_cpu_pct")), paced_by(e, "peer-line-load"),
                           num(e.get("p50")), num(e.get("p99")), num(e.get("others_cpu_pct")), num(e.get("errors")),
                           f"{e['ok_runs']}/{e['runs']}"])
        out.extend(["Lines/s counts lines echoed and checked byte for byte by `peer-line-load` "
                    "(bench/peers/line_load.c, C epoll, not a system under test); batches still in flight at "
                    "the end are not counted. Latency: from a batch's write to its last byte back. The "
                    "targets compare CPU per line (server CPU time over lines echoed), paired by round.", ""])
    for w, kind in (("W6", "full handshakes"), ("W6r", "resumed handshakes")):
        floor_cpu = summary.get(f"{w}/floor", {}).get("cpu_us_per_op")
        section(w, "tls_greet", f"{w} TLS {kind}: {p.w6_connections} concurrent clients, each connects, does a "
                f"TLS 1.3 {'full' if w == 'W6' else 'resumed'} handshake, sends `1`, reads the greeting to the end, "
                f"{p.w6_duration:g} s",
                ["server", "greetings/s", "server CPU µs/handshake", "÷ floor's (medians)", "server CPU %",
                 "peer-tls-load CPU %", "paced by", "resumed %", "p50 µs", "p99 µs", "others' CPU %",
                 "errors (median)", "ok runs"],
                lambda e: [num(e.get("rate")), num(e.get("cpu_us_per_op")),
                           (f"{e['cpu_us_per_op'] / floor_cpu:.2f}×" if e.get("cpu_us_per_op") and floor_cpu else "–"),
                           num(e.get("server_cpu_pct")), num(e.get("bench_cpu_pct")), paced_by(e, "peer-tls-load"),
                           num(e.get("resumed_pct")), num(e.get("p50")), num(e.get("p99")), num(e.get("others_cpu_pct")),
                           num(e.get("errors")), f"{e['ok_runs']}/{e['runs']}"])
    if any(k.startswith("W6") for k in summary):
        out.extend(["`peer-tls-load` (bench/peers/tls_load.c, C epoll, OpenSSL, not a system under test) is a "
                    "client like any other: TLS 1.3, TLS_AES_128_GCM_SHA256, X25519, ECDSA P-256 with SHA-256, the "
                    "server's certificate verified against the run's test CA for `localhost` (also its SNI). W6r "
                    "offers each client slot's last session ticket (TLS 1.3 PSK, still with an X25519 exchange); "
                    "\"resumed %\" is the share of handshakes the server resumed. Server CPU per handshake is the "
                    "server's CPU time over the greetings completed (one handshake each). A client's side of a full "
                    "handshake (two ECDSA verifications) costs more than the server's, so peer-tls-load, not the "
                    "server, usually sets the pace: compare CPU per handshake, not greetings/s. nginx's `return` "
                    "never reads the request: it answers after the handshake whatever the client sends, and its "
                    "close with the `1` unread often reaches the client as a reset after the whole answer (counted "
                    "as success, as in W1).", ""])
    body = []
    for conns in p.w7_connections:
        for s in groups["tls_echo"]:
            e, plain = summary.get(f"W7/{s['key']}/{conns}x{p.w7_size}"), summary.get(f"W7p/{s['key']}/{conns}x{p.w7_size}", {})
            if e is None:
                continue
            body.append([f"{conns:,}", labels["tls_echo"][s["key"]]] + (status_cells(e, 11) or [
                num(e.get("rate")), num(e.get("mib_per_s")), num(e.get("cpu_us_per_op")),
                num(plain.get("rate")), num(plain.get("cpu_us_per_op")),
                (f"{e['tls_over_plain_rate']:.2f}×" if e.get("tls_over_plain_rate") else "–"),
                (f"{e['tls_over_plain_cpu']:.2f}×" if e.get("tls_over_plain_cpu") else "–"),
                num(e.get("server_cpu_pct")), num(e.get("bench_cpu_pct")), num(e.get("others_cpu_pct")),
                num(e.get("errors"))]))
    if body:
        out.extend([f"## W7 TLS echo ping-pong: {size_name(p.w7_size)} messages, one in flight per connection, "
                    f"AES-128-GCM, {p.w7_duration:g} s", "",
                    table(["connections", "server", "TLS messages/s", "MiB/s (each way)", "server CPU µs/message",
                           "plaintext messages/s", "plaintext CPU µs/message", "TLS ÷ plaintext messages/s",
                           "TLS ÷ plaintext CPU", "server CPU %", "peer-tls-load CPU %", "others' CPU %", "errors"], body),
                    "", "Plaintext: the same server without TLS (echo-server without --tls, peer-floor-echo, "
                    "peer-asio-echo) under the same generator with `--plain`, in the same round (W7p); the ratios "
                    "pair the two runs of a round. Messages are checked byte for byte. nginx is not in W7 or W8: "
                    "its stream module cannot echo (`return` sends a fixed string and closes; echoing needs "
                    "`proxy_pass` to a backend, which would measure the backend too).", ""])
    section("W8", "tls_echo", f"W8 memory: {p.w8_connections:,} idle TLS connections after their handshakes "
            f"(echo servers; opened {p.w8_inflight} handshakes at a time, held {p.w8_hold:g} s)",
            ["server", "connections held", "VmRSS before KiB", "VmRSS held KiB", "KiB per connection",
             "handshakes/s while opening", "server CPU µs/handshake", "errors (median)", "ok runs"],
            lambda e: [num(e.get("completed")), num(e.get("rss_before_kib")), num(e.get("rss_held_kib")),
                       num(e.get("rss_per_conn_kib")), num(e.get("rate")), num(e.get("cpu_us_per_op")),
                       num(e.get("errors")), f"{e['ok_runs']}/{e['runs']}"])
    if any(k.startswith("W8/") for k in summary):
        out.extend(["KiB per connection: (VmRSS while held − VmRSS of the fresh server) ÷ connections held. A "
                    "connection counts as established once the server's session ticket reaches the client (the "
                    "server sends it after the client's Finished, so its handshake is over); VmRSS is read "
                    f"{min(0.5, p.w8_hold / 2):g} s after the last one, while all are held and silent.", ""])
    unavailable = sorted({f"{r.server} ({r.note})" for r in runs if r.status == "unavailable"})
    failed = [f"{r.workload} {r.server}" + "".join(f" {k}={v}" for k, v in r.params.items())
              + f" round {r.round + 1}: {r.note}" for r in runs if r.status == "failed"]
    if unavailable or failed:
        out.extend(["## Unavailable and failed runs", ""] + [f"- unavailable: {u}" for u in unavailable]
                   + [f"- failed: {f}" for f in failed] + [""])
    return "\n".join(out)


def chart(summary: dict, plan: Plan, groups: dict, png: Path, tmp: Path) -> str:
    """results.png with gnuplot: W1 rate and CPU per greeting, W2 and W3 latency, W4 messages/s,
    W5 lines/s and CPU per line."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot not installed: no chart"
    labels = {g: {s["key"]: s["label"] for s in servers} for g, servers in groups.items()}

    def bars(title: str, workload: str, metric: str, color: str, group: str = "greet") -> str:
        """One panel of bars, one per server of the group; an empty slot when there is no data."""
        rows = [(labels[group][s["key"]], summary.get(f"{workload}/{s['key']}", {}).get(metric))
                for s in groups[group] if not (workload == "W2" and s["key"] == "seed")]  # seed: capped
        rows = [(label, v) for label, v in rows if v is not None and v > 0]
        if not rows:
            return "set multiplot next"
        path = tmp / f"{workload}_{metric}.dat"
        path.write_text("".join(f"\"{label}\" {v}\n" for label, v in rows))
        return f"unset key\nset title '{title}'\nplot '{path}' using 2:xtic(1) lc rgb '{color}'"

    w4 = tmp / "w4.dat"
    w4_panel = "set multiplot next"
    with open(w4, "w") as f:
        f.write("case " + " ".join(f"\"{labels['echo'][s['key']]}\"" for s in groups["echo"]) + "\n")
        for conns in plan.w4_connections:
            for size in plan.w4_sizes:
                vals = [summary.get(f"W4/{s['key']}/{conns}x{size}", {}).get("rate") for s in groups["echo"]]
                f.write(f"\"{conns}×{size_name(size)}\" " + " ".join(str(v) if v else "NaN" for v in vals) + "\n")
                if any(vals):
                    w4_panel = ("set title 'W4 echo messages/s (connections × message size)'\nset key top left\n"
                                f"plot for [i=2:{1 + len(groups['echo'])}] '{w4}' using i:xtic(1) title columnheader(i)")
    terms = subprocess.run([gnuplot, "-e", "set terminal"], capture_output=True, text=True).stderr \
        + subprocess.run([gnuplot, "-e", "set terminal"], capture_output=True, text=True).stdout
    term = "pngcairo size 1900,950 font ',10'" if "pngcairo" in terms else "png size 1900,950"
    panel = ("set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1; "
             "set boxwidth 0.8; set grid ytics; set logscale y; set format y '%.0s%c'; set xtics rotate by -25 scale 0; unset key; ")
    script = f"""
set terminal {term}
set output '{png}'
set multiplot layout 2,4 title 'sock benchmark: medians of {plan.runs} interleaved runs (server on CPU {SERVER_CPU}, load on CPU {BENCH_CPU})'
{panel}
{bars(f"W1 greetings/s ({plan.w1_connections} clients)", "W1", "rate", "#4472c4")}
{bars("W1 server CPU µs per greeting", "W1", "cpu_us_per_op", "#ed7d31")}
{bars(f"W2 p99 beyond the {plan.w2_delay:g} s delay, µs ({plan.w2_clients} slow clients)", "W2", "p99_beyond_delay_us", "#a5a5a5")}
{bars("W2 server peak RSS, KiB", "W2", "rss_kib", "#70ad47")}
{bars(f"W3 p99 latency, µs ({plan.w3_rate}/s offered)", "W3", "p99", "#5b9bd5")}
{w4_panel}
{bars(f"W5 lines/s ({plan.w5_connections} conn × {plan.w5_lines} lines of {plan.w5_size} B)", "W5", "rate", "#4472c4", "lines")}
{bars("W5 server CPU µs per line", "W5", "cpu_us_per_op", "#ed7d31", "lines")}
unset multiplot
"""
    (tmp / "chart.gp").write_text(script)
    res = subprocess.run([gnuplot, str(tmp / "chart.gp")], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        return f"gnuplot failed: {res.stderr.strip()[-300:]}"
    return ""


README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"


def update_readme(rows: list[dict], meta: dict) -> None:
    """Refreshes the generated summary between the markers in bench/README.md and README.md."""
    for readme in (BENCH_DIR / "README.md", BENCH_DIR.parent / "README.md"):
        update_summary(readme, rows, meta)


def update_summary(readme: Path, rows: list[dict], meta: dict) -> None:
    if not readme.exists():
        return
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        return
    body = [README_BEGIN, f"_Generated by `{meta['command']}` on {meta['date']}; details in RESULTS.md._", "",
            table(["workload", "metric", "ratio (ours ÷ reference)", "target", "result"],
                  [[r["workload"], r["what"] + (f" vs {r['ref_name']}" if r["ref_name"] else ""),
                    f"{r['ratio']:.3f}×" if r["ratio"] is not None else num(r["ours"]), r["target"], r["result"]]
                   for r in rows]), README_END]
    head, rest = text.split(README_BEGIN, 1)
    readme.write_text(head + "\n".join(body) + rest.split(README_END, 1)[1])


# ---------------------------------------------------------------- set-up

def ensure_packages(install: bool) -> None:
    missing = [p for p, present in PACKAGES.items() if not present()]
    if not missing or not install:
        for p in missing:
            print(f"run.py: {p} is not installed: what needs it is skipped", file=sys.stderr)
        return
    command = f"apt-get install -y --no-install-recommends {' '.join(missing)}"
    if os.geteuid() != 0:
        print(f"run.py: missing Debian packages; run:\n  sudo {command}\n(or pass --no-install to skip what needs them)",
              file=sys.stderr)
        raise SystemExit(1)
    print(f"run.py: installing {' '.join(missing)}", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    ok = subprocess.run(["apt-get", "update", "-qq"], env=env).returncode == 0 \
        and subprocess.run(shlex.split(command) + ["-qq"], env=env).returncode == 0
    if not ok:
        print("run.py: apt-get failed; peers that need those packages are reported unavailable", file=sys.stderr)


def build(build_dir: Path) -> None:
    configure = ["cmake", "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                 "-DSOCK_BUILD_TESTS=OFF", "-USOCK_PEERS_HAVE_ASIO*"]
    for argv in (configure, ["cmake", "--build", str(build_dir), f"-j{os.cpu_count() or 2}"]):
        print("run.py: " + shlex.join(argv), flush=True)
        if subprocess.run(argv, stdout=subprocess.DEVNULL).returncode != 0:
            raise SystemExit(f"run.py: build failed: {shlex.join(argv)}")


def cache_entry(build_dir: Path, name: str) -> str:
    """NAME=value from the build's CMakeCache.txt, or NAME unknown."""
    try:
        for line in (build_dir / "CMakeCache.txt").read_text().splitlines():
            if line.startswith(name + ":"):
                return f"{name}={line.split('=', 1)[1] or '(empty)'}"
    except OSError:
        pass
    return f"{name} unknown"


def source_revision() -> str:
    """The checkout's commit, and whether its tracked files had changes (what was built)."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--",
                                "src", "include", "apps", "examples", "bench/peers", "CMakeLists.txt"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {head}" + (" with uncommitted changes to the code" if dirty else "")


def machine() -> dict:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "python": platform.python_version(),
            "nofile_hard": resource.getrlimit(resource.RLIMIT_NOFILE)[1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="each workload for about a second, light load, 1 round")
    ap.add_argument("--runs", type=int, help="interleaved rounds (default 5; smoke 1)")
    ap.add_argument("--build-dir", type=Path,
                    help="use the programs already built in DIR/bin instead of building into build-bench/")
    ap.add_argument("--no-install", action="store_true", help="never run apt-get; skip what is missing")
    ap.add_argument("--out", type=Path, default=BENCH_DIR,
                    help="where RESULTS.md, results.json and results.png go (default bench/)")
    ap.add_argument("--workloads", help="comma-separated subset, e.g. W1,W4 (for development); W6 runs W6 and W6r "
                    "(resumed), W7 runs W7 and W7p (its plaintext baseline)")
    ap.add_argument("--servers", help="comma-separated subset of sock,sock-metrics,floor,nginx,asio,asyncio,seed (for development)")
    args = ap.parse_args()

    plan = SMOKE if args.smoke else FULL
    if args.runs:
        plan.runs = args.runs
    began = time.monotonic()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    ensure_packages(not args.no_install)
    if args.build_dir:
        build_dir = args.build_dir.resolve()
        build_desc = f"programs of the existing build {args.build_dir} ({cache_entry(build_dir, 'CMAKE_BUILD_TYPE')})"
    else:
        build_dir = ROOT / "build-bench"
        build(build_dir)
        build_desc = "cmake -DCMAKE_BUILD_TYPE=Release into build-bench/ (peers: -O2)"
    build_desc += f", source {source_revision()}"
    args.out.mkdir(parents=True, exist_ok=True)

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < plan.w2_clients + 100:
        print(f"run.py: RLIMIT_NOFILE hard limit {hard} is below W2's {plan.w2_clients} clients: expect errors",
              file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    only = None
    if args.workloads:
        only = {w for name in args.workloads.split(",") for w in WORKLOAD_ALIASES.get(name, (name,))}
    try:
        with tempfile.TemporaryDirectory(prefix="sock-bench-tls-") as certs:  # W6-W8's test CA and certificate
            runs, groups = execute(plan, build_dir / "bin", only, set(args.servers.split(",")) if args.servers else None,
                                   Path(certs))
    finally:
        stop_all()

    summary = summarize(runs, plan, groups)
    rows = targets(runs, summary, plan)
    argv = [a for a in sys.argv[1:]]
    meta = {"command": shlex.join(["python3", "bench/run.py", *argv]), "smoke": args.smoke,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "build": build_desc, "elapsed_s": time.monotonic() - began,
            "json_name": "results.json", "png_name": "results.png",
            "loadavg": {"before_build": load_before, "after": Path("/proc/loadavg").read_text().split()[:3]}}
    with tempfile.TemporaryDirectory(prefix="sock-chart-") as tmp:
        chart_note = chart(summary, plan, groups, args.out / "results.png", Path(tmp))
    if chart_note:
        print(f"run.py: {chart_note}", file=sys.stderr)
    meta["elapsed_s"] = time.monotonic() - began
    # Why a target is missed comes from profiles, written by hand in NOTES.md: kept apart
    # from the generated figures, and carried into every report.
    notes = BENCH_DIR / "NOTES.md"
    (args.out / "RESULTS.md").write_text(report(runs, summary, rows, plan, groups, meta)
                                         + (f"\n_Chart: {chart_note}._\n" if chart_note else "")
                                         + ("\n" + notes.read_text() if notes.exists() else ""))
    (args.out / "results.json").write_text(json.dumps(
        {"meta": meta, "plan": plan.__dict__, "servers": groups, "summary": summary, "targets": rows,
         "runs": [r.__dict__ for r in runs]}, indent=1, default=str) + "\n")
    if args.out.resolve() == BENCH_DIR.resolve():
        update_readme(rows, meta)

    for r in rows:
        print(f"{r['result']:4}  {r['workload']}: {r['what']}" + (f" = {r['ratio']:.3f}× {r['ref_name']}" if r["ratio"] else ""))
    print(f"run.py: wrote {args.out / 'RESULTS.md'} in {meta['elapsed_s'] / 60:.1f} min")

    # Exit status: our own servers must work. Ratios never fail the run; errors fail the smoke.
    # W5's peers and load generator are this project's own code, built with it: in the smoke,
    # one that was built and fails (or errs) fails the run too, so a broken one is caught; the
    # same for W6-W8's (peer-floor-tls, peer-asio-tls, peer-tls-load, and the nginx template).
    # Our TLS servers are skipped, not failed, until greet-server and echo-server have TLS.
    ours = [r for r in runs
            if (r.server == "sock" and not (r.workload in TLS_WORKLOADS and r.status == "unavailable"))
            or (args.smoke and r.workload in ("W5", *TLS_WORKLOADS) and r.status != "unavailable")]
    broken = [r for r in ours if r.status != "ok" or not r.metrics.get("completed")
              or (args.smoke and r.metrics.get("errors"))]
    for r in broken:
        print(f"run.py: FAILED {r.workload} {r.server} {r.params or ''} round {r.round + 1}: "
              f"{r.note or 'completed %s, errors %s %s' % (r.metrics.get('completed'), r.metrics.get('errors'), r.bench.get('errors_by_kind'))}",
              file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
