#!/usr/bin/env python3
"""chat-server with real clients, on loopback, port 0.

  chat_test.py BIN_DIR CASE    CASE: readline socat line_client hundred long_line slow_reader
                               stop busy_port

Each case starts build/bin/chat-server, learns its port from "listening on ADDR", and
checks what clients receive. Every wait is bounded by a socket timeout or a count; nothing
asserts how long anything took. Exit 0 pass, 1 fail, 77 skipped (socat missing).
"""

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading

import processes

TIMEOUT = 60  # seconds any one wait may take (sanitizer builds are slow); never reached when all is well
SKIP = 77


class Server:
    def __init__(self, bin_dir, *args):
        self.proc = subprocess.Popen([os.path.join(bin_dir, "chat-server"), "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = self.proc.stdout.readline().decode()
        if not first.startswith("listening on "):
            self.proc.kill()
            raise AssertionError(f"no 'listening on' line: {first!r} {self.proc.stderr.read()!r}")
        self.port = int(first.rsplit(":", 1)[1])
        self.clients = []  # closed before the stop, so that it need not wait for them
        self.log = queue.Queue()  # stderr lines, as they come
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for raw in self.proc.stderr:
            self.log.put(raw.decode())
        self.log.put(None)

    def connect(self, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(TIMEOUT)
        s.connect(("127.0.0.1", self.port))
        return s

    def stop(self):
        for c in self.clients:
            c.close()
        return processes.stop(self.proc, TIMEOUT)


class Client:
    """A socket with Python's own buffered line reading: makefile().readline()."""

    def __init__(self, server, **kw):
        self.sock = server.connect(**kw)
        server.clients.append(self)
        self.r = self.sock.makefile("rb")
        self.w = self.sock.makefile("wb")

    def send(self, text):
        self.w.write(text.encode() if isinstance(text, str) else text)
        self.w.flush()

    def line(self):
        return self.r.readline().decode()

    def close(self):
        self.r.close()
        self.w.close()
        self.sock.close()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def joined(speaker, listeners):
    """Returns once every listener is in the room: `speaker` says numbered pings ("ping 0",
    "ping 1"...) until each listener has heard one (one that joined late misses the first
    ones); more may still be on their way to each. Returns how many were said."""
    heard = [threading.Event() for _ in listeners]
    errors = []

    def wait(i, c):
        line = c.line()
        if line.startswith("ping "):
            heard[i].set()
        else:
            errors.append(f"listener {i} got {line!r} while waiting for a ping")

    threads = [threading.Thread(target=wait, args=(i, c)) for i, c in enumerate(listeners)]
    for t in threads:
        t.start()
    sent = 0
    while not all(e.is_set() for e in heard) and not errors:
        check(sent < 2000, "listeners never heard a ping: not in the room?")
        speaker.send(f"ping {sent}\n")
        sent += 1
        for e in heard:
            e.wait(0.01)
            if not e.is_set():
                break
    for t in threads:
        t.join()
    check(not errors, errors[:3])
    return sent


def skip_pings(c, first):
    """The next line that is not a ping, `first` being a line already read."""
    line = first
    while line.startswith("ping "):
        line = c.line()
    return line


# -- cases -----------------------------------------------------------------------------------

def case_readline(bin_dir):
    """Python's socket.makefile().readline() gets another client's lines exactly, not its own."""
    srv = Server(bin_dir, "--threads", "2")
    a, b, c = Client(srv), Client(srv), Client(srv)
    joined(a, [b, c])
    lines = ["hello\n", "  spaces and\ttabs  \n", "\n", "ünïcode ✓\n", "x" * 5000 + "\n",
             "last\n"]
    for text in lines:
        a.send(text)
    for who in (b, c):
        got = [skip_pings(who, who.line())]
        while len(got) < len(lines):
            got.append(who.line())
        check(got == lines, f"got {got!r}")
    # a hears b, and not its own lines (a's next line is b's).
    b.send("from b\n")
    check(a.line() == "from b\n", "a did not get b's line next")
    check(skip_pings(c, c.line()) == "from b\n", "c did not get b's line")
    # A last line without "\n" is not a line: nobody gets it.
    a.send("unfinished")
    a.close()
    b.send("after\n")
    check(c.line() == "after\n", "c got something else than b's line after a left")
    check(srv.stop() == 0, "did not exit 0 on SIGTERM")


def talk_through(argv, name, srv):
    """A program that copies stdin to the server and the server to stdout, against a Python
    client: both ways, then the end of its stdin ends it."""
    a = Client(srv)
    joined(Client(srv), [a])  # a is in the room before the program speaks
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        p.stdin.write(f"from {name}\n".encode())
        p.stdin.flush()
        check(skip_pings(a, a.line()) == f"from {name}\n", f"a did not get {name}'s line")
        a.send(f"to {name}\n")
        printed = p.stdout.readline()
        while printed.startswith(b"ping "):  # joined before the last pings were relayed
            printed = p.stdout.readline()
        check(printed == f"to {name}\n".encode(), f"{name} printed {printed!r}, not a's line")
        p.stdin.close()  # it shuts down its side; the server ends the connection
        check(p.stdout.read() == b"", f"{name} printed more")
        check(p.wait(TIMEOUT) == 0, f"{name} failed")
    finally:
        if p.poll() is None:
            p.kill()
    check(srv.stop() == 0, "did not exit 0 on SIGTERM")


def case_socat(bin_dir):
    """socat as a real client, both ways."""
    if shutil.which("socat") is None:
        print("socat is not installed (scripts/deps.sh installs it)")
        sys.exit(SKIP)
    srv = Server(bin_dir, "--threads", "2")
    talk_through(["socat", "-", f"TCP:127.0.0.1:{srv.port}"], "socat", srv)


def case_line_client(bin_dir):
    """examples/line_client.cpp against chat-server, and against line-echo."""
    srv = Server(bin_dir, "--threads", "2")
    talk_through([os.path.join(bin_dir, "line-client"), "--port", str(srv.port)], "line-client",
                 srv)

    echo = subprocess.Popen([os.path.join(bin_dir, "line-echo"), "0"], stdout=subprocess.PIPE)
    try:
        port = echo.stdout.readline().decode().rsplit(":", 1)[1].strip()
        r = subprocess.run([os.path.join(bin_dir, "line-client"), "--port", port],
                           input=b"one\ntwo\n", capture_output=True, timeout=TIMEOUT)
        check(r.returncode == 0 and r.stdout == b"one\ntwo\n", f"line-echo via line-client: {r}")
    finally:
        echo.kill()
        echo.wait()


def case_hundred(bin_dir):
    """100 clients over two loops, 5 lines each: each gets exactly the others' 495, in order
    per sender, and none of its own."""
    n, per = 100, 5
    srv = Server(bin_dir, "--threads", "2")
    coordinator = Client(srv)
    clients = [Client(srv) for _ in range(n)]
    joined(coordinator, clients)
    go = threading.Barrier(n)
    errors = []

    def run(i, c):
        try:
            go.wait(TIMEOUT)
            for j in range(per):
                c.send(f"client {i} line {j}\n")
            got = {}
            total = 0
            while total < (n - 1) * per:
                line = c.line()
                check(line != "", f"client {i}: end of stream after {total} lines")
                if line.startswith("ping "):
                    continue
                who, _, j = line.split()[1:4]
                who, j = int(who), int(j)
                check(who != i, f"client {i} got its own line {line!r}")
                check(got.get(who, -1) == j - 1, f"client {i}: {line!r} out of order")
                got[who] = j
                total += 1
            check(len(got) == n - 1 and all(v == per - 1 for v in got.values()),
                  f"client {i}: {got}")
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, f"{len(errors)} clients failed, e.g. {errors[:3]}")
    # Nothing more for anyone: a line from one more client is the next thing each hears.
    coordinator.send("the end\n")
    for i, c in enumerate(clients):
        check(skip_pings(c, c.line()) == "the end\n", f"client {i} got more lines")
    check(srv.stop() == 0, "did not exit 0 on SIGTERM")


def case_long_line(bin_dir):
    """A line over 64 KiB gets the error line, then end of stream; nobody gets any of it. A
    line of exactly 64 KiB, "\n" included, goes through."""
    srv = Server(bin_dir, "--threads", "2")
    a, b, c = Client(srv), Client(srv), Client(srv)
    joined(c, [a, b])
    c.send("sync\n")  # after this, a and b have no ping left to read
    check(skip_pings(a, a.line()) == "sync\n" and skip_pings(b, b.line()) == "sync\n", "sync")
    exact = "y" * (64 * 1024 - 1) + "\n"
    a.send(exact)
    check(b.line() == exact, "a 64 KiB line did not reach b whole")
    a.send("z" * (64 * 1024 + 100) + "\n")
    check(a.line() == "error: line longer than 65536 bytes\n", "no error line")
    check(a.r.readline() == b"", "no end of stream after the error line")
    c.send("after\n")
    check(b.line() == "after\n", "b got some of the long line")
    a.close()
    # A long line sent in pieces, and the client going on sending afterwards, ends the same.
    d = Client(srv)
    joined(c, [d])
    c.send("sync 2\n")
    check(skip_pings(d, d.line()) == "sync 2\n", "d is not in the room")
    check(skip_pings(b, b.line()) == "sync 2\n", "sync 2")
    for _ in range(20):
        d.send("w" * 4096)
    check(d.line() == "error: line longer than 65536 bytes\n", "no error line in pieces")
    try:
        d.send("more\n" * 1000)
    except OSError:
        pass  # the server may have closed already
    check(d.r.readline() == b"", "no end of stream after the error line")
    c.send("after 2\n")
    check(b.line() == "after 2\n", "b got some of d's long line")
    check(srv.stop() == 0, "did not exit 0 on SIGTERM")


def case_slow_reader(bin_dir):
    """A client that never reads is disconnected once more than --max-backlog waits for it; the
    others get every line all along."""
    bound = 256 * 1024
    srv = Server(bin_dir, "--threads", "2", "--max-backlog", str(bound))
    sleeper = Client(srv, rcvbuf=4096)
    sender, reader = Client(srv), Client(srv)
    pings = joined(sender, [reader])
    sleeper.send("sleeper here\n")  # in the room: the others hear it
    check(skip_pings(reader, reader.line()) == "sleeper here\n", "reader missed the sleeper")
    check(skip_pings(sender, sender.line()) == "sleeper here\n", "sender missed the sleeper")

    # The sender says 16 lines at a time and the reader takes them before the next 16: the
    # reader never falls behind, the sleeper falls further behind with each batch.
    payload = "p" * 1000
    sent = []
    kicked = None
    limit = 64 * 1024  # lines: 64 MB, far more than the kernel buffers of one connection

    def batch(text):
        lines = [f"{len(sent) + k} {text}\n" for k in range(16)]
        sender.send("".join(lines))
        sent.extend(lines)
        for expected in lines:
            got = skip_pings(reader, reader.line())  # the sender's pings may still come first
            check(got == expected, f"the reader got {got[:40]!r}, not {expected[:40]!r}")

    while kicked is None and len(sent) < limit:
        batch(payload)
        try:
            while kicked is None:
                entry = srv.log.get_nowait()
                if entry is not None and "waiting for it: disconnected" in entry:
                    kicked = entry
        except queue.Empty:
            pass
    check(kicked is not None, f"the sleeper was not disconnected after {len(sent)} lines")
    check(kicked.startswith("127.0.0.1:") and f"more than {bound} bytes" in kicked, kicked)
    print(f"the sleeper was disconnected after {len(sent)} lines")
    for _ in range(4):  # the room goes on
        batch("after")
    # The sleeper got a part of the stream, then a reset or end of stream: nothing more.
    got = b""
    try:
        while True:
            chunk = sleeper.sock.recv(1 << 16)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass
    said = ("".join(f"ping {k}\n" for k in range(pings)) + "".join(sent)).encode()
    # (It may have joined after the first pings: a part, not always the start.)
    check(len(got) < len(said) and got in said,
          f"the sleeper got {len(got)} bytes, not a part of the {len(said)} said")
    check(srv.stop() == 0, "did not exit 0 on SIGTERM")


def case_stop(bin_dir):
    """SIGTERM with clients connected: they are let go within the grace period, exit 0."""
    srv = Server(bin_dir, "--threads", "2")
    a, b = Client(srv), Client(srv)
    joined(a, [b])
    srv.proc.send_signal(signal.SIGTERM)
    check(srv.proc.wait(TIMEOUT) == 0, "did not exit 0 on SIGTERM")
    for _ in range(3000):  # pings still on their way, then the end
        line = b.line()
        if not line.startswith("ping "):
            break
    check(line == "", f"b got {line!r}, not the end of stream")
    log = []
    while True:
        entry = srv.log.get(timeout=TIMEOUT)
        if entry is None:
            break
        log.append(entry)
    check(any("stopping gracefully" in e for e in log), f"log: {log}")


def case_busy_port(bin_dir):
    """A port in use: one line on stderr, exit 1."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    r = subprocess.run([os.path.join(bin_dir, "chat-server"), "--port", str(port)],
                       capture_output=True, timeout=TIMEOUT)
    check(r.returncode == 1, f"exit {r.returncode}")
    check(r.stdout == b"", f"stdout {r.stdout!r}")
    check(r.stderr == f"chat-server: bind 127.0.0.1:{port}: Address already in use\n".encode(),
          f"stderr {r.stderr!r}")


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        sys.exit(__doc__)
    try:
        CASES[sys.argv[2]](sys.argv[1])
    except AssertionError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
