"""Helpers the Python integration tests share for the processes they start."""

import signal


def stop(proc, timeout):
    """SIGTERM (if still running), then its exit code within timeout; killed if it is not done."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()


def listening(port, host="127.0.0.1"):
    """Whether a TCP socket listens on host:port, read from /proc/net/tcp: asking by
    connecting would be a client that leaves without a word, which a server may log."""
    want = "%08X:%04X" % (int.from_bytes(bytes(map(int, host.split("."))), "little"), port)
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        return any(f[1] == want and f[3] == "0A" for f in (line.split() for line in table))
