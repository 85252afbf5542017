#!/usr/bin/env python3
"""How fast the chat relays messages with many visitors connected at once.

    chat_relay.py BASE_URL SESSION_COOKIE VISITORS SECONDS

Opens one operator console (with the signed-in session's cookie) and VISITORS widget
sockets, each from an address of its own (X-Forwarded-For; the server runs with
TRUST_PROXY=true). Every visitor starts a chat; the operator answers every message at
once. Then, for SECONDS, each visitor writes every five seconds (at a random phase), and
the time from a visitor's send to the console's receipt, and from the operator's answer
to the visitor's receipt, is measured on this one clock. Prints p50, p99 and max of each.

The WebSocket client is written out here (RFC 6455, text frames only), so the bench
needs nothing beyond Python's standard library.
"""
import asyncio
import base64
import json
import os
import random
import struct
import sys
import time
import urllib.parse


class Socket:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, base, path, origin, headers=()):
        url = urllib.parse.urlparse(base)
        reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n{extra}\r\n"
            ).encode()
        )
        status = await reader.readline()
        if b" 101 " not in status:
            raise RuntimeError(f"handshake refused: {status!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        return cls(reader, writer)

    def send(self, message):
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        head = bytes([0x81])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    async def recv(self):
        while True:
            first, second = await self.reader.readexactly(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack(">H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", await self.reader.readexactly(8))[0]
            payload = await self.reader.readexactly(n)
            opcode = first & 0x0F
            if opcode == 1:
                return json.loads(payload)
            if opcode == 8:
                raise ConnectionError("closed by the server")
            if opcode == 9:
                mask = os.urandom(4)
                self.writer.write(bytes([0x8A, 0x80 | n]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def next_of(self, kind):
        while True:
            message = await self.recv()
            if message.get("t") == kind:
                return message


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


async def main(base, cookie, visitors, seconds):
    to_operator, to_visitor = [], []
    measuring = False
    console = await Socket.open(base, "/chat/console/ws", base, [("Cookie", cookie)])
    await console.next_of("live")

    async def operator():
        # Answers every visitor message at once, carrying the send time of its answer.
        while True:
            message = await console.recv()
            if message.get("t") != "message" or message.get("from") != "visitor":
                continue
            sent = float(message["text"].split(":")[1])
            if measuring:
                to_operator.append(time.perf_counter() - sent)
            console.send({"t": "say", "conversation": message["conversation"], "text": f"o:{time.perf_counter()}"})

    answering = asyncio.create_task(operator())

    async def visitor(n, ready, go):
        ip = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256 + 1}"
        socket = await Socket.open(base, "/chat/ws?lang=en", base, [("X-Forwarded-For", ip)])
        socket.send({"t": "hello", "token": None, "page": f"https://www.example.test/page/{n}"})
        await socket.next_of("state")
        ready.set_result(True)
        await go.wait()
        await asyncio.sleep(random.random() * 5)
        socket.send({"t": "start", "name": f"Visitor {n}", "text": f"v:{time.perf_counter()}", "page": "https://www.example.test/"})
        await socket.next_of("started")

        async def reader():
            while True:
                message = await socket.recv()
                if message.get("t") == "message" and message.get("from") == "operator" and measuring:
                    to_visitor.append(time.perf_counter() - float(message["text"].split(":")[1]))

        reading = asyncio.create_task(reader())
        await asyncio.sleep(random.random() * 5)
        while True:
            socket.send({"t": "say", "text": f"v:{time.perf_counter()}"})
            await asyncio.sleep(5)
        reading.cancel()

    go = asyncio.Event()
    loop = asyncio.get_running_loop()
    ready = [loop.create_future() for _ in range(visitors)]
    tasks = []
    for n in range(visitors):
        tasks.append(asyncio.create_task(visitor(n, ready[n], go)))
        if n % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.gather(*ready)
    print(f"{visitors} visitors connected")
    go.set()
    await asyncio.sleep(10)  # every chat started and answered once
    open_chats = visitors
    measuring = True
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    measuring = False
    elapsed = time.perf_counter() - started
    for task in tasks:
        task.cancel()
    answering.cancel()
    for name, values in (("visitor->operator", to_operator), ("operator->visitor", to_visitor)):
        ms = [v * 1000 for v in values]
        print(
            f"RESULT {name}: n={len(ms)} rate={len(ms) / elapsed:.0f}/s "
            f"p50_ms={percentile(ms, 50):.1f} p99_ms={percentile(ms, 99):.1f} max_ms={max(ms, default=float('nan')):.1f} "
            f"(chats open: {open_chats})"
        )
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
    if failed:
        print(f"{len(failed)} visitors failed: {failed[0].exception()!r}")


if __name__ == "__main__":
    base, cookie, visitors, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    asyncio.run(main(base, cookie, visitors, seconds))
