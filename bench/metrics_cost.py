#!/usr/bin/env python3
"""What greet-server --metrics costs per greeting, in user-space instructions (callgrind's Ir).

    python3 bench/metrics_cost.py [BIN_DIR]     # default build-bench/bin (run.py's build)

W1's CPU per greeting on a shared 2-CPU machine moves by 10-20% from run to run, more than
the 2% the metrics may cost, so this counts instructions instead, which do not depend on
the machine's load: greet-server with --threads 1, with and without --metrics (scraped every
second), each run under callgrind for N1 and for N2 greetings of greet-bench; the difference
over N2 - N1 cancels start-up and stop. It prints Ir per greeting and the functions whose
share changed most. Kernel time, most of a greeting's cost, is not counted: the metrics add
no system call per greeting. Needs valgrind (scripts/deps.sh installs it).
"""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

N1, N2 = 2000, 12000


def profile(bin_dir: Path, tmp: Path, n: int, metrics: bool) -> dict[str, int]:
    """Self Ir per function of one greet-server run serving n greetings."""
    out = tmp / f"callgrind-{int(metrics)}-{n}.out"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(bin_dir / "greet-server"),
            "--host", "127.0.0.1", "--port", "0", "--quiet", "--threads", "1"]
    if metrics:
        argv += ["--metrics", "127.0.0.1:0"]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = server.stdout.readline().rsplit(":", 1)[1].strip()
        url = server.stdout.readline().split()[-1] if metrics else None
        done = threading.Event()

        def scrape() -> None:
            while not done.wait(1.0):
                urllib.request.urlopen(url, timeout=10).read()

        scraper = threading.Thread(target=scrape) if url else None
        if scraper:
            scraper.start()
        load = subprocess.run([str(bin_dir / "greet-bench"), "--host", "127.0.0.1", "--port", port,
                               "--count", str(n), "--connections", "8", "--timeout", "30"],
                              capture_output=True, text=True, timeout=600)
        done.set()
        if scraper:
            scraper.join()
        if load.returncode != 0:
            raise SystemExit(f"metrics_cost.py: greet-bench failed: {load.stderr.strip()}")
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    finally:
        if server.poll() is None:
            server.kill()
    annotated = subprocess.run(["callgrind_annotate", "--threshold=100", str(out)],
                               capture_output=True, text=True, check=True).stdout
    costs: dict[str, int] = {}
    for m in re.finditer(r"^\s*([\d,]+) \([^)]*\)\s+(.*)$", annotated, re.M):
        costs[m.group(2).strip()] = costs.get(m.group(2).strip(), 0) + int(m.group(1).replace(",", ""))
    return costs


def main() -> int:
    bin_dir = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "build-bench/bin")
    with tempfile.TemporaryDirectory(prefix="sock-metrics-cost-") as tmpname:
        per = {}
        for metrics in (False, True):
            small, large = (profile(bin_dir, Path(tmpname), n, metrics) for n in (N1, N2))
            per[metrics] = {k: (large.get(k, 0) - small.get(k, 0)) / (N2 - N1) for k in set(small) | set(large)}
    total = {m: per[m].pop("PROGRAM TOTALS", 0) for m in per}
    print(f"user-space instructions per greeting: --metrics off {total[False]:.0f}, on {total[True]:.0f} "
          f"({total[True] / total[False]:.3f}x)")
    print("largest changes per greeting (on - off, off, on, function):")
    deltas = sorted(((per[True].get(k, 0) - per[False].get(k, 0), k) for k in set(per[True]) | set(per[False])),
                    reverse=True)
    for d, k in deltas[:12]:
        print(f"  {d:+7.1f} {per[False].get(k, 0):7.1f} {per[True].get(k, 0):7.1f}  {k[:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
