#!/usr/bin/env python3
"""greet-server instances behind real HAProxy and nginx (Debian's packages), on loopback.

  front_door_test.py BIN_DIR CASE     CASE: haproxy nginx haproxy_drain nginx_drain

Each case starts two `greet-server --proxy-protocol --metrics 127.0.0.1:0 --stop-delay 2`
instances on ports they pick (port 0), then the front door with deploy/haproxy.cfg (PROXY v2,
health checks on /healthz at each metrics port) or deploy/nginx.conf (PROXY v1), its addresses
changed to those ports and to a free one for itself, from a temporary directory.
- haproxy, nginx: every client gets its reply, and the instance that served it logs the
  client's own address and port (not the front door's).
- *_drain: greet-bench through the front door for 10 s; at second 3 one instance gets SIGTERM
  (its /healthz says 503 at once, its listener closes 2 s later) and must exit 0; no greeting
  may fail, and the other instance serves all the rest. Prints
  the figures (greetings/s through the front door and straight to an instance).
Every wait is bounded; nothing asserts how long anything took. Exit 0 pass, 1 fail, 77
skipped (haproxy or nginx missing: scripts/deps.sh installs them).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import processes

TIMEOUT = 60  # seconds any one wait may take; never reached when all is well
STOP_DELAY = 2  # seconds: longer than deploy/haproxy.cfg's checks take to mark one down
SKIP = 77
CLIENTS = 32  # greet-bench's connections
STARTED = []  # every process a case starts; none outlives the script, whatever fails
DEPLOY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy")


def wait_for(what, check, limit=TIMEOUT):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def free_port():
    # The front doors cannot say which port they got, so one is chosen here and handed over.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Instance:
    """greet-server --proxy-protocol with metrics and a stop delay (or plain, for a direct
    figure), its stdout (one line per client) in a file."""

    def __init__(self, bin_dir, tmp, name, proxy=True):
        self.out_path = os.path.join(tmp, name + ".out")
        self.err_path = os.path.join(tmp, name + ".err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [os.path.join(bin_dir, "greet-server"), "--host", "127.0.0.1", "--port", "0",
                 "--threads", "1"]
                + (["--proxy-protocol", "--metrics", "127.0.0.1:0", "--stop-delay",
                    str(STOP_DELAY)] if proxy else []),
                stdout=out, stderr=err)
        STARTED.append(self.proc)
        lines = 2 if proxy else 1  # "listening on ADDRESS", then "metrics on http://ADDRESS/..."
        wait_for(f"{name} to listen", lambda: self.out().startswith("listening on ")
                 and self.out().count("\n") >= lines)
        head = self.out().split("\n")
        self.port = int(head[0].rsplit(":", 1)[1])
        if proxy:
            m = re.fullmatch(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", head[1])
            assert m, f"no metrics line: {head[1]!r}"
            self.metrics_port = int(m.group(1))

    def out(self):
        with open(self.out_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def err(self):
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def welcomed(self):
        """The clients this instance welcomed, as its log names them."""
        return re.findall(r'^(\S+): "1" -> welcome to server!$', self.out(), re.M)

    def stop(self):
        return processes.stop(self.proc, TIMEOUT)


class FrontDoor:
    """HAProxy or nginx from deploy/, listening on a free port, in front of the instances."""

    def __init__(self, kind, tmp, instances):
        self.port = free_port()
        source = "haproxy.cfg" if kind == "haproxy" else "nginx.conf"
        with open(os.path.join(DEPLOY, source), encoding="utf-8") as f:
            cfg = f.read()
        replacements = {"127.0.0.1:8001": f"127.0.0.1:{self.port}",
                        "127.0.0.1:8011": f"127.0.0.1:{instances[0].port}",
                        "127.0.0.1:8012": f"127.0.0.1:{instances[1].port}"}
        if kind == "haproxy":  # its health checks, on each instance's metrics port
            replacements.update({"check port 9111": f"check port {instances[0].metrics_port}",
                                 "check port 9112": f"check port {instances[1].metrics_port}"})
        for old, new in replacements.items():
            if old not in cfg:
                raise AssertionError(f"deploy/{source} has no {old}")
            cfg = cfg.replace(old, new)
        path = os.path.join(tmp, source)
        with open(path, "w", encoding="utf-8") as f:
            f.write(cfg)
        if kind == "haproxy":
            argv = ["haproxy", "-f", path, "-db"]
        else:
            argv = ["nginx", "-p", tmp, "-c", path, "-e", "stderr", "-g", "daemon off;"]
        self.log_path = os.path.join(tmp, kind + ".log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        STARTED.append(self.proc)
        wait_for(f"{kind} to listen", self._listening)

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"front door exited {self.proc.returncode}: {self.log()}")
        # Not by connecting: through the front door, a probe that leaves at once can reach an
        # instance as a client that reset, which it logs as an error (and case_replies fails).
        return processes.listening(self.port)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        processes.stop(self.proc, TIMEOUT)  # both stop at once on SIGTERM


def greet(port, message=b"1"):
    """One client: returns (its own address as a log shows it, the whole reply)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        me = "%s:%d" % s.getsockname()[:2]
        s.sendall(message)
        reply = b""
        while True:
            part = s.recv(1024)
            if not part:
                return me, reply
            reply += part


def bench(bin_dir, port, seconds):
    proc = subprocess.run([os.path.join(bin_dir, "greet-bench"), "--host", "127.0.0.1", "--port",
                           str(port), "--duration", str(seconds), "--connections", str(CLIENTS), "--json"],
                          capture_output=True, timeout=seconds + TIMEOUT, check=False)
    return proc.returncode, json.loads(proc.stdout.decode()) if proc.stdout else {}, proc.stderr


def case_replies(bin_dir, tmp, kind):
    instances = [Instance(bin_dir, tmp, "greet1"), Instance(bin_dir, tmp, "greet2")]
    door = FrontDoor(kind, tmp, instances)
    try:
        clients = []
        for _ in range(20):
            me, reply = greet(door.port)
            assert reply == b"welcome to server!", f"reply {reply!r}"
            clients.append(me)
        me, reply = greet(door.port, b"hello")
        assert reply == b"please go out!", f"reply {reply!r}"
        logged = [set(i.welcomed()) for i in instances]
        for me in clients:
            assert me in logged[0] | logged[1], f"{me} in no instance's log: {logged}"
        # Round robin: each instance served some, and named them as the clients saw themselves.
        assert logged[0] and logged[1], f"an instance served no one: {logged}"
        assert logged[0] | logged[1] == set(clients), f"{logged} != {clients}"
    finally:
        door.stop()
        for i in instances:
            assert i.stop() == 0, f"instance exited non-zero: {i.err()}"
    # Nothing went wrong, and the front door's health checks are not logged as failures.
    for i in instances:
        errors = [l for l in i.err().splitlines() if not l.startswith("received SIGTERM")]
        assert not errors, f"an instance logged errors: {errors}"
    print(f"{kind}: 20 clients, each logged by its own address "
          f"({len(logged[0])} by one instance, {len(logged[1])} by the other)")


def case_drain(bin_dir, tmp, kind):
    instances = [Instance(bin_dir, tmp, "greet1"), Instance(bin_dir, tmp, "greet2")]
    door = FrontDoor(kind, tmp, instances)
    try:
        plain = Instance(bin_dir, tmp, "plain", proxy=False)  # the figure without a front door
        code, direct, _ = bench(bin_dir, plain.port, 3)
        plain.stop()
        assert code == 0, f"direct run failed: {direct}"
        served_before = [len(i.welcomed()) for i in instances]
        proc = subprocess.Popen([os.path.join(bin_dir, "greet-bench"), "--host", "127.0.0.1",
                                 "--port", str(door.port), "--duration", "10", "--connections",
                                 str(CLIENTS), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        STARTED.append(proc)
        time.sleep(3)
        instances[0].proc.send_signal(signal.SIGTERM)
        drained = instances[0].proc.wait(TIMEOUT)
        out, err = proc.communicate(timeout=TIMEOUT)
        result = json.loads(out.decode())
        assert drained == 0, f"the drained instance exited {drained}: {instances[0].err()}"
        assert proc.returncode == 0 and result["errors"] == 0, \
            f"greetings failed: {result} {err.decode()}\ndrained instance's stderr:\n" \
            f"{instances[0].err()[-3000:]}\nother's:\n{instances[1].err()[-3000:]}\n" \
            f"front door's log:\n{door.log()[-3000:]}"
        served = [len(i.welcomed()) - b for i, b in zip(instances, served_before)]
        # Served and counted, or served as the run ended (each client's last, not counted).
        assert 0 <= sum(served) - result["completed"] <= CLIENTS, \
            f"served {served}, completed {result['completed']}"
        assert served[1] > served[0], f"the other instance did not carry the rest: {served}"
    finally:
        door.stop()
        for i in instances:
            i.stop()
    print(f"{kind} drain: {result['completed']} greetings, {result['errors']} failed, "
          f"{result['rate']:.0f}/s through {kind} (direct to a plain instance: "
          f"{direct['rate']:.0f}/s); served {served[0]} by the drained instance, "
          f"{served[1]} by the other")


def main():
    bin_dir, case = sys.argv[1], sys.argv[2]
    kind = case.split("_")[0]
    if shutil.which(kind) is None and not os.path.exists(f"/usr/sbin/{kind}"):
        print(f"{kind} is not installed (scripts/deps.sh installs it)")
        sys.exit(SKIP)
    os.environ["PATH"] += ":/usr/sbin"
    with tempfile.TemporaryDirectory(prefix="front-door-") as tmp:
        os.chmod(tmp, 0o755)  # nginx's workers run as another user
        try:
            if case.endswith("_drain"):
                case_drain(bin_dir, tmp, kind)
            else:
                case_replies(bin_dir, tmp, kind)
        finally:
            for proc in STARTED:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


if __name__ == "__main__":
    main()
