#!/usr/bin/env python3
"""Refused logins from one client at a steady rate, as an attacker would send them.

    login_flood.py BASE_URL RATE SECONDS

Fetches the login page once (its cookies and CSRF token), then keeps sending wrong
passwords for one account over 32 keep-alive connections, paced to RATE requests a
second in all, and prints how many were sent and what the server answered.
"""
import asyncio
import re
import sys
import time
import urllib.parse
from collections import Counter


async def request(reader, writer, head, body=b""):
    writer.write(head + body)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    cookies = []
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
        if name.lower() == "set-cookie":
            cookies.append(value.strip().split(";")[0])
    payload = await reader.readexactly(length) if length else b""
    return int(status_line.split()[1]), cookies, payload


async def main(base, rate, seconds):
    url = urllib.parse.urlparse(base)
    host, port = url.hostname, url.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    _, cookies, page = await request(
        reader, writer, f"GET /login HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    )
    writer.close()
    token = re.search(rb'name="csrf-token" content="([^"]*)"', page).group(1).decode()
    body = urllib.parse.urlencode(
        {"email": "victim@btb.test", "password": "wrong guess", "csrf_token": token}
    ).encode()
    head = (
        f"POST /login HTTP/1.1\r\nHost: {host}\r\nCookie: {'; '.join(cookies)}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    statuses = Counter()
    connections = 32
    interval = connections / rate
    deadline = time.monotonic() + seconds

    async def sender():
        reader, writer = await asyncio.open_connection(host, port)
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            status, _, _ = await request(reader, writer, head, body)
            statuses[status] += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        writer.close()

    await asyncio.gather(*(sender() for _ in range(connections)))
    sent = sum(statuses.values())
    answers = " ".join(f"{k}:{v}" for k, v in sorted(statuses.items()))
    print(f"RESULT sent={sent} rate={sent / seconds:.0f}/s answers {answers}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))
