#!/usr/bin/env python3
"""asyncio_greet: the greeting server in plain asyncio, as a benchmark baseline.

Per connection: read at most 1024 bytes once with a 5 s timeout, reply, close.
usage: python3 asyncio_greet.py PORT   (0 picks a free port)
"""
import asyncio
import signal
import sys

WELCOME = b"welcome to server!"
GO_OUT = b"please go out!"


async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        data = await asyncio.wait_for(reader.read(1024), 5)
        # EOF (b"") counts as "not 1", as in the seed.
        writer.write(WELCOME if data == b"1" else GO_OUT)
    except (asyncio.TimeoutError, ConnectionError):
        pass  # timed out or reset: close without a reply
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(greet, "127.0.0.1", port, backlog=65535,
                                        reuse_address=True)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PORT")
    asyncio.run(main(int(sys.argv[1])))
