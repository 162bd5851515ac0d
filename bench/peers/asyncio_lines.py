#!/usr/bin/env python3
"""asyncio_lines: the line-echo server in plain asyncio streams, as the W5 baseline.

Per connection: reader.readline(), writer.write(line), await writer.drain(), until
end of stream (or a line over the stream's 64 KiB limit, or an error); then close.
usage: python3 asyncio_lines.py PORT   (0 picks a free port)
"""
import asyncio
import signal
import sys


async def echo_lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
    except (ConnectionError, ValueError):
        pass  # reset, or a line over the limit: close
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(echo_lines, "127.0.0.1", port, backlog=65535,
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
