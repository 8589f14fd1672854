"""A loopback TCP proxy that breaks connections on purpose, for fault-injection tests.

    client (DataWorks) ──► FaultProxy 127.0.0.1:<port> ──► real server

It runs its own event loop in a daemon thread, so sync tests, async tests and subprocesses
can all point at `proxy.uri` while the test pulls the plug:

- `cut_all()`: reset (RST) every open connection now, wherever the bytes are;
- `cut_after_bytes(low, high)`: each new connection is reset after a random number of
  forwarded bytes in [low, high], usually in the middle of a reply or an insert;
- `chaos(every_s)`: `cut_all()` every `every_s` seconds until `calm()`;
- `delay(seconds)`: wait before forwarding each chunk (a slow link);
- `refuse_for(seconds)`: stop listening (connection refused) and cut everything, then listen
  again on the same port: a server that went away for a while.

Only loopback addresses are used. Counters (`accepted`, `cuts`) let a test prove that faults
really happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

CHUNK = 64 * 1024


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    budget: int | None  # bytes left before this link is cut; None = unlimited
    closed: bool = False


@dataclass
class FaultProxy:
    upstream_port: int
    upstream_host: str = "127.0.0.1"
    port: int = 0
    seed: int = 1
    accepted: int = 0
    cuts: int = 0
    _delay_s: float = 0.0
    _budget: tuple[int, int] | None = None
    _links: set[Any] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None
    _chaos: asyncio.Task[None] | None = None
    _reopen: asyncio.TimerHandle | None = None

    def __post_init__(self) -> None:
        if self.upstream_host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("FaultProxy only forwards to loopback addresses")
        self._rng = random.Random(self.seed)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> FaultProxy:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._listen())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- faults (call from any thread) ----------------------------------------------------

    def cut_all(self) -> int:
        """Reset every open connection; returns how many were cut."""
        return int(self._call(self._cut_all()))

    def cut_after_bytes(self, low: int, high: int | None = None) -> None:
        self._budget = (low, high or low)

    def delay(self, seconds: float) -> None:
        self._delay_s = seconds

    def chaos(self, every_s: float) -> None:
        self._call(self._start_chaos(every_s))

    def calm(self) -> None:
        """Stop every fault: no more periodic cuts, byte budgets or delay."""
        self._budget = None
        self._delay_s = 0.0
        self._call(self._stop_chaos())

    def refuse_for(self, seconds: float) -> None:
        self._call(self._refuse_for(seconds))

    # -- inside the proxy's loop ----------------------------------------------------------

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None, "proxy not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port or 0, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            _reset(client_w)
            return
        self.accepted += 1
        budget = self._rng.randint(*self._budget) if self._budget else None
        link = _Link(client_w, up_w, budget)
        self._links.add(link)
        try:
            await asyncio.gather(self._pump(link, client_r, up_w), self._pump(link, up_r, client_w))
        finally:
            self._links.discard(link)
            self._close(link)

    async def _pump(self, link: _Link, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        try:
            while not link.closed:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if self._delay_s:
                    await asyncio.sleep(self._delay_s)
                if link.budget is not None and len(data) >= link.budget:
                    writer.write(data[: link.budget])  # part of a message, then the cut
                    with contextlib.suppress(OSError):
                        await writer.drain()
                    self._cut(link)
                    return
                if link.budget is not None:
                    link.budget -= len(data)
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._close(link)

    def _cut(self, link: _Link) -> None:
        if link.closed:
            return
        self.cuts += 1
        link.closed = True
        _reset(link.client)
        _reset(link.upstream)

    def _close(self, link: _Link) -> None:
        if link.closed:
            return
        link.closed = True
        link.client.close()
        link.upstream.close()

    async def _cut_all(self) -> int:
        links = [link for link in self._links if not link.closed]
        for link in links:
            self._cut(link)
        return len(links)

    async def _start_chaos(self, every_s: float) -> None:
        await self._stop_chaos()

        async def loop() -> None:
            while True:
                await asyncio.sleep(every_s * self._rng.uniform(0.5, 1.5))
                await self._cut_all()

        self._chaos = asyncio.get_running_loop().create_task(loop())

    async def _stop_chaos(self) -> None:
        if self._chaos is not None:
            self._chaos.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._chaos
            self._chaos = None

    async def _refuse_for(self, seconds: float) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._cut_all()
        loop = asyncio.get_running_loop()
        self._reopen = loop.call_later(seconds, lambda: loop.create_task(self._listen()))

    async def _shutdown(self) -> None:
        await self._stop_chaos()
        if self._reopen is not None:
            self._reopen.cancel()
        if self._server is not None:
            self._server.close()
        await self._cut_all()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), like a dropped network path or a killed server."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
