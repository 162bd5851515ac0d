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
