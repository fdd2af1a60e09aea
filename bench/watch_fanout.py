"""Watch fan-out: `streams` PolicySync.Watch streams at once, as that many new authz_server
replicas would open them, but lightweight: one asyncio gRPC client in this process holds
them all and only reads the events (it builds no index), so what is timed is admin_api's
side and the transport. Streams are spread round robin over the admin_api replicas given.

- snapshot: every stream opens from revision 0 at the same moment; the time from then to
  each stream's SnapshotEnd (p50, and max = the last of them).
- change latency: then one write at a time (an application created through replica 0);
  from just before the write to each stream's first change event after it (heartbeats not
  counted); the next write waits until every stream has had the previous one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import grpc
import httpx
from portcullis.sync.v1 import sync_pb2, sync_pb2_grpc

from bench.admin_writes import _percentile

SNAPSHOT_TIMEOUT_SECONDS = 300.0
CHANGE_TIMEOUT_SECONDS = 30.0


class _Stream:
    def __init__(self, channel: grpc.aio.Channel, token: str, name: str) -> None:
        self.call = sync_pb2_grpc.PolicySyncStub(channel).Watch(
            sync_pb2.WatchRequest(from_revision=0, replica=name), metadata=(("authorization", f"Bearer {token}"),))
        self.entities = 0
        self.snapshot_done = asyncio.get_running_loop().create_future()
        self.changes: asyncio.Queue[float] = asyncio.Queue()

    async def read(self, opened: float) -> None:
        async for event in self.call:
            which = event.WhichOneof("event")
            if which == "snapshot_chunk":
                self.entities += len(event.snapshot_chunk.entities)
            elif which == "snapshot_end" and not self.snapshot_done.done():
                self.snapshot_done.set_result(time.perf_counter() - opened)
            elif which in ("upsert", "delete"):
                self.changes.put_nowait(time.perf_counter())


async def _run(targets: list[str], rest_base: str, admin_token: str, sync_token: str, streams: int,
               changes: int) -> dict[str, Any]:
    channels = [grpc.aio.insecure_channel(target) for target in targets]
    readers: list[asyncio.Task[None]] = []
    try:
        opened = time.perf_counter()
        watches = [_Stream(channels[index % len(channels)], sync_token, f"bench-fanout-{index}")
                   for index in range(streams)]
        readers = [asyncio.create_task(each.read(opened)) for each in watches]
        snapshot = await asyncio.wait_for(asyncio.gather(*(each.snapshot_done for each in watches)),
                                          SNAPSHOT_TIMEOUT_SECONDS)
        latencies: list[float] = []
        every_stream: list[float] = []
        prefix = uuid.uuid4().hex[:6]
        async with httpx.AsyncClient(base_url=rest_base, headers={"authorization": f"Bearer {admin_token}"},
                                     timeout=30.0, trust_env=False) as admin:
            for n in range(changes):
                for each in watches:      # anything still queued belongs to an earlier change
                    while not each.changes.empty():
                        each.changes.get_nowait()
                started = time.perf_counter()
                response = await admin.post("/v1/applications", json={"name": f"fanout-{prefix}-{n}"})
                response.raise_for_status()
                arrived = await asyncio.wait_for(asyncio.gather(*(each.changes.get() for each in watches)),
                                                 CHANGE_TIMEOUT_SECONDS)
                seen = [(at - started) * 1000 for at in arrived]
                latencies += seen
                every_stream.append(max(seen))
        return {"streams": streams, "admin_replicas": len(targets), "snapshot_entities": watches[0].entities,
                "snapshot_p50_ms": _percentile([s * 1000 for s in snapshot], 0.5),
                "snapshot_all_ms": round(max(snapshot) * 1000, 1),
                "changes": changes,
                "change_p50_ms": _percentile(latencies, 0.5), "change_p99_ms": _percentile(latencies, 0.99),
                "change_to_every_stream_p50_ms": _percentile(every_stream, 0.5),
                "change_to_every_stream_p99_ms": _percentile(every_stream, 0.99)}
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for channel in channels:
            await channel.close()


def run(targets: list[str], rest_base: str, admin_token: str, sync_token: str, *, streams: int,
        changes: int = 20) -> dict[str, Any]:
    """`targets`: admin_api replicas' gRPC host:port; the writes go to `rest_base`."""
    return asyncio.run(_run(targets, rest_base, admin_token, sync_token, streams, changes))
