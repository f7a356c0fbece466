"""Python's WebSocket echo with the `websockets` package on asyncio, the peer of
ws_turbo.c for bench/ws.py: ws://127.0.0.1:PORT/echo sends every message back as
it came. One process, websockets' defaults (its keepalive pings included).

    PORT=8080 /usr/bin/python3 ws_python.py     (Debian's python3-websockets)
"""
import asyncio
import os
import signal

import websockets


async def echo(ws, path=None):
    if (path or ws.path) != "/echo":
        await ws.close(1008, "no such path")
        return
    async for message in ws:
        await ws.send(message)


async def main():
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(echo, "127.0.0.1", int(os.environ.get("PORT", "8080")),
                                backlog=4096):
        await stop


if __name__ == "__main__":
    asyncio.run(main())
