"""An independent WebSocket client for tests/test_websocket.py: Debian's
python3-websockets (10.4, installed for /usr/bin/python3 only) against
tests/ws_server.c. Prints "ok NAME" or "FAIL NAME: why" for each check and
exits 1 if one failed; the suite then reads the server's /counts for the
close codes, under ids that start with ID_PREFIX.

Usage: /usr/bin/python3 tests/ws_client.py PORT ID_PREFIX
"""
import asyncio
import sys

import websockets


class Failed(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Failed(msg)


def connect(url, **kw):
    # turbo offers no extension: the client's permessage-deflate offer is left unanswered
    return websockets.connect(url, max_size=None, ping_interval=None, open_timeout=5, close_timeout=5, **kw)


async def echo(base, prefix):
    async with connect(base + "/echo?id=%s-echo" % prefix, subprotocols=["superchat", "chat"]) as ws:
        expect(ws.subprotocol == "chat", "subprotocol %r" % ws.subprotocol)
        for msg in ("h\u00e9llo \U0001F600", "", b"\x00\xff" * 100, b""):
            await ws.send(msg)
            got = await ws.recv()
            expect(got == msg, "sent %r, got %r" % (msg[:20], got[:20]))


async def fragments(base, prefix):
    async with connect(base + "/echo?id=%s-fragments" % prefix) as ws:
        await ws.send(["frag", "", "mented ", "\U0001F600"])
        got = await ws.recv()
        expect(got == "fragmented \U0001F600", "text fragments came back as %r" % got)
        await ws.send([b"a", b"", b"bc" * 40000])
        got = await ws.recv()
        expect(got == b"a" + b"bc" * 40000, "binary fragments came back as %d bytes" % len(got))


async def ping(base, prefix):
    async with connect(base + "/echo?id=%s-ping" % prefix) as ws:
        for data in (b"", b"ping data", b"x" * 125):
            pong = await ws.ping(data)
            await asyncio.wait_for(pong, 5)


async def large(base, prefix):
    async with connect(base + "/echo?id=%s-large" % prefix) as ws:
        for msg in (bytes(range(256)) * 4096, "\u00e9" * (1 << 19)):  # 1 MiB each
            await ws.send(msg)
            got = await ws.recv()
            expect(got == msg, "1 MiB %s message damaged (%d back)" % (type(msg).__name__, len(got)))


async def client_close(base, prefix):
    async with connect(base + "/echo?id=%s-client-close" % prefix) as ws:
        await ws.close(4001, "client bye")
        expect(ws.close_code == 4001, "server answered the close with %r" % ws.close_code)


async def server_close(base, prefix):
    async with connect(base + "/close/4002?id=%s-server-close" % prefix) as ws:
        await ws.send("close, please")
        try:
            got = await ws.recv()
            raise Failed("a message %r instead of the close" % got)
        except websockets.ConnectionClosed:
            pass
        expect(ws.close_code == 4002 and ws.close_reason == "bye",
               "closed with %r %r" % (ws.close_code, ws.close_reason))


async def push(base, prefix):
    async with connect(base + "/push?n=20&size=100000&id=%s-push" % prefix) as ws:
        for i in range(20):
            got = await ws.recv()
            want = i.to_bytes(4, "big") + bytes([i]) * (100000 - 4)
            expect(got == want, "message %d damaged" % i)
        try:
            got = await ws.recv()
            raise Failed("a 21st message")
        except websockets.ConnectionClosed:
            pass
        expect(ws.close_code == 1000, "closed with %r" % ws.close_code)


async def deferred(base, prefix):
    async with connect(base + "/deferred?id=%s-deferred" % prefix) as ws:
        await ws.send("from a resumed answer")
        expect(await ws.recv() == "from a resumed answer", "no echo")


async def main(port, prefix):
    base = "ws://127.0.0.1:%s" % port
    failed = 0
    for check in (echo, fragments, ping, large, client_close, server_close, push, deferred):
        try:
            await asyncio.wait_for(check(base, prefix), 20)
            print("ok %s" % check.__name__)
        except Exception as e:  # noqa: BLE001 - every check is reported
            failed += 1
            print("FAIL %s: %s: %s" % (check.__name__, type(e).__name__, e))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
