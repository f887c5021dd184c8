"""The smallest server that can send a payload: the bar /metrics is measured against.

Usage: python benchmarks/baseline_server.py PORT BODY_FILE CONTENT_TYPE [ENCODING]
Answers every request on a keep-alive connection with the same bytes from memory.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


class Baseline(asyncio.Protocol):
    response = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(self.response)  # type: ignore[attr-defined]


async def main(port: int, body: bytes, content_type: str, encoding: str) -> None:
    headers = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    if encoding:
        headers += f"Content-Encoding: {encoding}\r\n"
    Baseline.response = (headers + "\r\n").encode() + body
    server = await asyncio.get_running_loop().create_server(Baseline, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]).read_bytes(), sys.argv[3],
                     sys.argv[4] if len(sys.argv) > 4 else ""))
