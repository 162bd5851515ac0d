#!/usr/bin/env python3
"""The programs over TLS, on loopback, port 0, with the TLS tests' certificates.

  tls_programs_test.py BIN_DIR CERTS_DIR CASE

  CASE: client        greet-client --tls: welcome; a wrong --server-name and an untrusted CA
                      each fail with one line, exit 1
        usage         option mistakes exit 2, unusable files exit 1, one line each
        client_ca     --tls-client-ca: a client without a certificate fails (one line on each
                      side), one with a certificate is served
        python        Python's ssl module and `openssl s_client -verify_return_error` greet
        reload        SIGHUP rotates the certificate for new clients, a held connection still
                      gets its welcome, a bad file keeps the current certificate
        bad_input     plaintext to the TLS port, TLS to a plaintext port, garbage after a
                      ClientHello, a client that leaves mid-handshake: one line each, served
                      after each, failures counted by reason (promtool checks the scrape)
        stalled       1,000 clients stall mid-handshake; a good client is served while they
                      are still open; they then time out and are counted
        bench         greet-bench --tls --resume: resumed handshakes, counted by the server
        echo          echo-server --tls through Python's ssl and `openssl s_client`
        nginx         deploy/nginx-tls.conf: nginx ends TLS in front of a plaintext instance
                      and opens TLS to a TLS instance (PROXY v1 to both); clients are
                      welcomed and named, and nginx resumes its sessions with the instance

Every wait is bounded by a timeout or a count; nothing asserts how long anything took.
Exit 0 pass, 1 fail, 77 skipped (promtool or nginx missing: scripts/deps.sh installs them).
"""

import json
import os
import queue
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import processes

TIMEOUT = 60  # seconds any one wait may take (sanitizer builds are slow); never reached when all is well
SKIP = 77

BIN = ""
CERTS = ""
DEPLOY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy")


def cert(name):
    return os.path.join(CERTS, name)


class Server:
    """A server program with its stdout's first lines read and its stderr pumped into a queue."""

    def __init__(self, program, *args, metrics=False):
        argv = [os.path.join(BIN, program), "--port", "0", "--threads", "2", *args]
        if metrics:
            argv += ["--metrics", "127.0.0.1:0"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = self.proc.stdout.readline().decode()
        if not first.startswith("listening on "):
            self.proc.kill()
            raise AssertionError(f"no 'listening on' line: {first!r} {self.proc.stderr.read()!r}")
        self.port = int(first.rsplit(":", 1)[1])
        self.metrics_url = None
        if metrics:
            line = self.proc.stdout.readline().decode().strip()
            assert line.startswith("metrics on "), line
            self.metrics_url = line.split(" ", 2)[2]
        self.log = queue.Queue()
        self.served = []  # stdout's lines after the first: one per client, unless --quiet
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._drain_stdout, daemon=True).start()

    def _pump(self):
        for raw in self.proc.stderr:
            self.log.put(raw.decode().rstrip("\n"))
        self.log.put(None)

    def _drain_stdout(self):
        for raw in self.proc.stdout:
            self.served.append(raw.decode().rstrip("\n"))

    def wait_log(self, pattern):
        """The next stderr line matching pattern (lines before it are returned too)."""
        seen = []
        while True:
            line = self.log.get(timeout=TIMEOUT)
            assert line is not None, f"server ended before a line matching {pattern!r}: {seen}"
            seen.append(line)
            if re.search(pattern, line):
                return line, seen

    def scrape(self):
        with urllib.request.urlopen(self.metrics_url, timeout=TIMEOUT) as r:
            return r.read().decode()

    def stop(self):
        assert processes.stop(self.proc, TIMEOUT) == 0


def sample(text, name, labels=""):
    m = re.search(r"^" + re.escape(name + labels) + r" (\S+)$", text, re.M)
    assert m, f"no {name}{labels} in the scrape"
    return float(m.group(1))


def tls_server(*args, metrics=False):
    return Server("greet-server", "--tls-cert", cert("server.crt"), "--tls-key", cert("server.key"),
                  *args, metrics=metrics)


def client_context(ca="ca.crt", client=None):
    ctx = ssl.create_default_context(cafile=cert(ca))
    if client:
        ctx.load_cert_chain(cert(client + ".crt"), cert(client + ".key"))
    return ctx


def greet(port, ctx=None, message=b"1"):
    """The seed's exchange over TLS with Python's ssl: send, read to the end. Returns
    (reply, peer certificate)."""
    ctx = ctx or client_context()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(message)
            return read_to_end(s).decode(), s.getpeercert()


def greet_client(port, *args):
    return subprocess.run([os.path.join(BIN, "greet-client"), "--host", "127.0.0.1", "--port", str(port),
                           *args], capture_output=True, text=True, timeout=TIMEOUT)


def one_line(text):
    lines = text.splitlines()
    assert len(lines) == 1, f"not one line: {text!r}"
    return lines[0]


def assert_served(port):
    reply, _ = greet(port)
    assert reply == "welcome to server!", reply


# -- cases -------------------------------------------------------------------------------------

def case_client():
    srv = tls_server("--quiet")
    ok = greet_client(srv.port, "--tls", "--cafile", cert("ca.crt"), "--server-name", "localhost")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "welcome to server!\n", ""), ok
    wrong = greet_client(srv.port, "--tls", "--cafile", cert("ca.crt"), "--server-name", "other.test")
    line = one_line(wrong.stderr)
    assert wrong.returncode == 1 and line.startswith("greet-client: handshake 127.0.0.1:"), wrong
    assert "certificate verify failed" in line and "other.test" in line, line
    untrusted = greet_client(srv.port, "--tls", "--cafile", cert("other-ca.crt"), "--server-name", "localhost")
    line = one_line(untrusted.stderr)
    assert untrusted.returncode == 1 and "certificate verify failed" in line, untrusted
    # --host is the default name: 127.0.0.1 is in the certificate's IP entries.
    by_ip = greet_client(srv.port, "--tls", "--cafile", cert("ca.crt"))
    assert by_ip.returncode == 0, by_ip
    assert_served(srv.port)
    srv.stop()


def case_usage():
    server = os.path.join(BIN, "greet-server")

    def run(*args):
        return subprocess.run([server, "--port", "0", *args], capture_output=True, text=True, timeout=TIMEOUT)

    for args in (["--tls-cert", cert("server.crt")], ["--tls-key", cert("server.key")],
                 ["--tls-client-ca", cert("ca.crt")],
                 ["--udp", "--tls-cert", cert("server.crt"), "--tls-key", cert("server.key")]):
        r = run(*args)
        assert r.returncode == 2 and one_line(r.stderr).startswith("greet-server: "), (args, r)
    missing = run("--tls-cert", "/nonexistent/cert.pem", "--tls-key", cert("server.key"))
    assert missing.returncode == 1, missing
    assert one_line(missing.stderr).startswith("greet-server: load_cert_chain /nonexistent/cert.pem: "), missing
    mismatch = run("--tls-cert", cert("server.crt"), "--tls-key", cert("client.key"))
    assert mismatch.returncode == 1 and "key does not match certificate" in one_line(mismatch.stderr), mismatch
    echo = subprocess.run([os.path.join(BIN, "echo-server"), "--port", "0", "--tls"], capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert echo.returncode == 2 and one_line(echo.stderr).startswith("echo-server: "), echo
    for args in (["--cafile", cert("ca.crt")], ["--tls", "--udp"]):
        r = greet_client(1, *args)
        assert r.returncode == 2 and one_line(r.stderr).startswith("greet-client: "), (args, r)


def case_client_ca():
    srv = tls_server("--quiet", "--tls-client-ca", cert("ca.crt"))
    bare = greet_client(srv.port, "--tls", "--cafile", cert("ca.crt"))
    assert bare.returncode == 1 and one_line(bare.stderr).startswith("greet-client: "), bare
    line, _ = srv.wait_log(r": handshake: ")
    assert line.startswith("127.0.0.1:") and "certificate" in line, line
    reply, _ = greet(srv.port, client_context(client="client"))
    assert reply == "welcome to server!", reply
    srv.stop()


def case_python():
    srv = tls_server()
    reply, peer = greet(srv.port)
    assert reply == "welcome to server!", reply
    assert ("commonName", "localhost") in peer["subject"][0], peer
    reply, _ = greet(srv.port, message=b"2")
    assert reply == "please go out!", reply
    s_client = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}", "-CAfile", cert("ca.crt"),
         "-verify_return_error", "-verify_hostname", "localhost", "-quiet"],
        input=b"1", capture_output=True, timeout=TIMEOUT)
    assert s_client.stdout.decode() == "welcome to server!", s_client
    srv.stop()


def _copy(src, dst):
    shutil.copyfile(src, dst + ".new")
    os.replace(dst + ".new", dst)


def case_reload(tmp):
    cert_file, key_file = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    _copy(cert("server.crt"), cert_file)
    _copy(cert("server.key"), key_file)
    srv = Server("greet-server", "--tls-cert", cert_file, "--tls-key", key_file, "--timeout", "30", "--quiet")
    _, a = greet(srv.port)
    # A connection held mid-greeting: handshake done, "1" not yet sent.
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT)
    held = client_context().wrap_socket(raw, server_hostname="localhost")
    assert held.getpeercert()["serialNumber"] == a["serialNumber"]
    _copy(cert("server-rsa.crt"), cert_file)
    _copy(cert("server-rsa.key"), key_file)
    srv.proc.send_signal(signal.SIGHUP)
    line, _ = srv.wait_log(r"^SIGHUP: ")
    assert line.startswith("SIGHUP: reloaded certificate CN=localhost (serial "), line
    _, b = greet(srv.port)
    assert b["serialNumber"] != a["serialNumber"], (a, b)
    assert b["serialNumber"] in line.replace(":", ""), (line, b)
    held.sendall(b"1")
    assert held.recv(1024) == b"welcome to server!"
    held.close()
    # A bad key: logged, and the current certificate stays.
    with open(key_file, "w") as f:
        f.write("not a key\n")
    srv.proc.send_signal(signal.SIGHUP)
    line, _ = srv.wait_log(r"^SIGHUP: ")
    assert re.fullmatch(f"SIGHUP: reload failed: load_cert_chain {re.escape(key_file)}: .+; "
                        "keeping the current certificate", line), line
    reply, c = greet(srv.port)
    assert reply == "welcome to server!" and c["serialNumber"] == b["serialNumber"], (reply, c)
    srv.stop()


def client_hello():
    """A real ClientHello's bytes, from Python's ssl over memory BIOs."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def raw_connection(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return s


def read_to_end(s):
    data = b""
    while True:
        try:
            part = s.recv(4096)
        except ConnectionResetError:
            break
        if not part:
            break
        data += part
    return data


def case_bad_input():
    if shutil.which("promtool") is None:
        print("promtool not installed (scripts/deps.sh installs prometheus)")
        sys.exit(SKIP)
    srv = tls_server("--quiet", "--timeout", "5", metrics=True)
    # Plaintext "1" to the TLS port, then the end of what it sends: no greeting, one line.
    s = raw_connection(srv.port)
    s.sendall(b"1")
    s.shutdown(socket.SHUT_WR)
    assert b"welcome" not in read_to_end(s)
    s.close()
    line, _ = srv.wait_log(r": handshake: ")
    assert line.startswith("127.0.0.1:"), line
    assert_served(srv.port)
    # Garbage after a valid ClientHello: a record of random bytes.
    s = raw_connection(srv.port)
    s.sendall(client_hello() + b"\x17\x03\x03\x00\x20" + os.urandom(32))
    read_to_end(s)
    s.close()
    srv.wait_log(r": handshake: ")
    assert_served(srv.port)
    # Garbage instead of TLS.
    s = raw_connection(srv.port)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    read_to_end(s)
    s.close()
    line, _ = srv.wait_log(r": handshake: ")
    assert_served(srv.port)
    # A client that leaves mid-handshake.
    s = raw_connection(srv.port)
    s.sendall(client_hello())
    s.close()
    srv.wait_log(r": handshake: ")
    assert_served(srv.port)
    # A client that does not trust the server: it ends the handshake with an alert.
    try:
        greet(srv.port, client_context(ca="other-ca.crt"))
        raise AssertionError("an untrusted server was accepted")
    except ssl.SSLCertVerificationError:
        pass
    srv.wait_log(r": handshake: ")
    assert_served(srv.port)

    # TLS to a plaintext port: the ClientHello is the plaintext server's message, answered
    # "please go out!", which is no TLS record: one line from greet-client, exit 1.
    plain = Server("greet-server", "--quiet")
    wrong = greet_client(plain.port, "--tls", "--cafile", cert("ca.crt"), "--server-name", "localhost")
    line = one_line(wrong.stderr)
    assert wrong.returncode == 1 and line.startswith(f"greet-client: handshake 127.0.0.1:{plain.port}: "), wrong
    try:
        greet(plain.port)
        raise AssertionError("a handshake with a plaintext server succeeded")
    except ssl.SSLError:
        pass
    served = greet_client(plain.port)
    assert (served.returncode, served.stdout) == (0, "welcome to server!\n"), served
    plain.stop()

    text = srv.scrape()
    failures = {r: sample(text, "sock_tls_handshake_failures_total", f'{{reason="{r}"}}')
                for r in ("timeout", "eof", "protocol", "certificate", "alert", "other")}
    assert sum(failures.values()) == 5, failures
    assert failures["eof"] >= 1 and failures["protocol"] >= 1 and failures["alert"] >= 1, failures
    assert sample(text, "sock_tls_handshakes_total") == 5, text
    assert sample(text, "greet_replies_total", '{kind="welcome"}') == 5, text
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                             timeout=TIMEOUT)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked
    srv.stop()


def case_stalled():
    count = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * count)), hard))
    srv = tls_server("--quiet", "--timeout", "2", metrics=True)
    hello = client_hello()
    stalled = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT)
        s.sendall(hello[:len(hello) // 2])  # half a ClientHello, then nothing
        stalled.append(s)
    assert_served(srv.port)
    # Served while the stalled ones are still open: none of them has been closed yet.
    still_open = 0
    for s in stalled:
        s.settimeout(0)  # a look, no wait
        try:
            s.recv(1)
        except BlockingIOError:
            still_open += 1
        s.settimeout(TIMEOUT)
    assert still_open > 0, "every stalled client was closed before the good one was served"
    for s in stalled:  # each is closed by the server's --timeout
        assert read_to_end(s) == b""
        s.close()
    timeouts = 0
    while timeouts < count:
        line, _ = srv.wait_log(r": handshake: ")
        assert "timed out" in line, line
        timeouts += 1
    text = srv.scrape()
    assert sample(text, "sock_tls_handshake_failures_total", '{reason="timeout"}') == count, text
    assert_served(srv.port)
    srv.stop()


def case_bench():
    srv = tls_server("--quiet", metrics=True)
    bench = subprocess.run(
        [os.path.join(BIN, "greet-bench"), "--port", str(srv.port), "--tls", "--resume", "--cafile", cert("ca.crt"),
         "--server-name", "localhost", "--count", "40", "--connections", "4", "--json"],
        capture_output=True, text=True, timeout=TIMEOUT)
    assert bench.returncode == 0, bench
    result = json.loads(bench.stdout)
    assert result["completed"] == 40 and result["errors"] == 0, result
    assert result["resumed"] >= 30, result  # all but each client's first (and any ticket still on its way)
    text = srv.scrape()
    assert sample(text, "sock_tls_resumed_total") == result["resumed"], (text, result)
    assert sample(text, "sock_tls_handshakes_total") == 40, text
    full = subprocess.run(
        [os.path.join(BIN, "greet-bench"), "--port", str(srv.port), "--tls", "--cafile", cert("ca.crt"),
         "--count", "10", "--connections", "2", "--json"], capture_output=True, text=True, timeout=TIMEOUT)
    assert full.returncode == 0 and json.loads(full.stdout)["resumed"] == 0, full
    srv.stop()


def case_echo():
    srv = Server("echo-server", "--tls", "--tls-cert", cert("server.crt"), "--tls-key", cert("server.key"))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as raw:
        with client_context().wrap_socket(raw, server_hostname="localhost") as s:
            for message in (b"hello", b"x" * 100_000):
                s.sendall(message)
                got = b""
                while len(got) < len(message):
                    got += s.recv(65536)
                assert got == message
    s_client = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}", "-CAfile", cert("ca.crt"),
         "-verify_return_error", "-verify_hostname", "localhost", "-quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        s_client.stdin.write(b"hello over s_client\n")
        s_client.stdin.flush()
        assert s_client.stdout.readline() == b"hello over s_client\n"
    finally:
        s_client.kill()
        s_client.wait(TIMEOUT)
    srv.stop()


def free_port():
    # nginx cannot say which port it got, so one is chosen here and handed over.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, check):
    deadline = time.monotonic() + TIMEOUT
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def greet_as(port, message=b"1"):
    """greet() that also returns the client's own address, as a server behind PROXY logs it."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        me = "%s:%d" % raw.getsockname()[:2]
        with client_context().wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(message)
            return me, read_to_end(s).decode()


def nginx_up(proc, port):
    if proc.poll() is not None:
        raise AssertionError(f"nginx exited {proc.returncode}")
    return processes.listening(port)


def case_nginx(tmp):
    """deploy/nginx-tls.conf, its ports and paths changed: nginx ends TLS in front of a
    plaintext instance (listen ... ssl), and opens TLS to a TLS instance (proxy_ssl on,
    checking its certificate), each told the client's address by PROXY v1."""
    if shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"):
        print("nginx is not installed (scripts/deps.sh installs it)")
        sys.exit(SKIP)
    plain = Server("greet-server", "--proxy-protocol")
    inner = tls_server("--proxy-protocol", metrics=True)
    outer = {"plain": free_port(), "tls": free_port()}
    with open(os.path.join(DEPLOY, "nginx-tls.conf"), encoding="utf-8") as f:
        cfg = f.read()
    for old, new in {"127.0.0.1:8443": f"127.0.0.1:{outer['plain']}",
                     "127.0.0.1:8444": f"127.0.0.1:{outer['tls']}",
                     "127.0.0.1:8011": f"127.0.0.1:{plain.port}",
                     "127.0.0.1:8021": f"127.0.0.1:{inner.port}",
                     "/etc/greet/tls/server.crt": cert("server.crt"),
                     "/etc/greet/tls/server.key": cert("server.key"),
                     "/etc/greet/tls/internal-ca.crt": cert("ca.crt"),
                     "proxy_ssl_name greet.internal": "proxy_ssl_name example.test"}.items():
        assert old in cfg, f"deploy/nginx-tls.conf has no {old}"
        cfg = cfg.replace(old, new)
    path = os.path.join(tmp, "nginx-tls.conf")
    with open(path, "w", encoding="utf-8") as f:
        f.write(cfg)
    os.chmod(tmp, 0o755)  # nginx's workers run as another user
    nginx_path = shutil.which("nginx") or "/usr/sbin/nginx"
    log_path = os.path.join(tmp, "nginx.log")
    with open(log_path, "wb") as log:
        nginx = subprocess.Popen([nginx_path, "-p", tmp, "-c", path, "-e", "stderr", "-g", "daemon off;"],
                                 stdout=log, stderr=subprocess.STDOUT)
    try:
        for port in outer.values():
            wait_until(f"nginx on {port}", lambda p=port: nginx_up(nginx, p))
        for kind, instance in (("plain", plain), ("tls", inner)):
            port = outer[kind]
            clients = []
            for _ in range(5):
                me, reply = greet_as(port)
                assert reply == "welcome to server!", (kind, reply)
                clients.append(me)
            _, reply = greet_as(port, b"2")
            assert reply == "please go out!", (kind, reply)
            ok = greet_client(port, "--tls", "--cafile", cert("ca.crt"), "--server-name", "localhost")
            assert (ok.returncode, ok.stdout, ok.stderr) == (0, "welcome to server!\n", ""), (kind, ok)
            # Each instance names the clients as they saw themselves, not nginx's address.
            wait_until(f"the {kind} instance's log", lambda i=instance: len(i.served) >= 7)
            logged = {line.split(": ", 1)[0] for line in instance.served}
            assert set(clients) <= logged, (kind, clients, instance.served)
        # nginx's own handshakes with the TLS instance: one per client, most of them resumed.
        text = inner.scrape()
        handshakes = sample(text, "sock_tls_handshakes_total")
        resumed = sample(text, "sock_tls_resumed_total")
        assert handshakes == 7, text
        print(f"nginx to the TLS instance: {handshakes:.0f} handshakes, {resumed:.0f} resumed")
        assert resumed >= 1, "nginx never resumed a session with the TLS instance"
    finally:
        processes.stop(nginx, TIMEOUT)
        with open(log_path, encoding="utf-8", errors="replace") as f:
            problems = [l for l in f if "[emerg]" in l or "[alert]" in l or "[crit]" in l]
        assert not problems, problems
    plain.stop()
    inner.stop()


def main():
    global BIN, CERTS
    BIN, CERTS, case = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
    if case in ("reload", "nginx"):
        with tempfile.TemporaryDirectory(prefix="tls-programs-") as tmp:
            globals()["case_" + case](tmp)
    else:
        globals()["case_" + case]()
    print("ok")


if __name__ == "__main__":
    main()
