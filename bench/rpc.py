"""RPC bus benchmark: call round trips per second and latency on the local and amqp transports; JSON on stdout.

local: caller and server share one process and loop (the all-in-one). amqp: the server runs in a child process
with its own connection to RabbitMQ, as a conductor or compute host would; its queues are deleted at the end.

    .venv/bin/python bench/rpc.py [--calls 5000] [--concurrency 1 10 50] [--transports local amqp]
                                  [--amqp-url amqp://guest:guest@127.0.0.1:5672/] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
import uuid
from typing import Any

import aio_pika

from pocketstack.common.config import RpcSettings
from pocketstack.common.context import RequestContext, current_context
from pocketstack.common.rpc import RPCAPI, RPCEndpoint, RPCServer, Transport, make_transport

PAYLOAD = {"instance_uuid": str(uuid.uuid4()), "flavor": {"vcpus": 1, "memory_mb": 512, "root_gb": 1},
           "image_ref": str(uuid.uuid4()), "networks": [{"uuid": str(uuid.uuid4())}], "metadata": {"k": "v"}}


class EchoEndpoint(RPCEndpoint):
    namespace = "bench"
    version = "1.0"

    async def echo(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload


class EchoAPI(RPCAPI):
    topic = "bench"
    namespace = "bench"
    version = "1.0"


def quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(transport: Transport, topic: str, calls: int, concurrency: int) -> dict[str, Any]:
    client = EchoAPI(transport, topic=topic, timeout=30).prepare()
    current_context.set(RequestContext(user_id="u", project_id="p", roles=["member"], auth_token="t" * 180))
    for _ in range(min(200, calls)):  # warm up: connections, queues, caches
        await client.call("echo", payload=PAYLOAD)
    latencies: list[float] = []
    errors = 0
    per_worker = calls // concurrency

    async def worker() -> None:
        nonlocal errors
        for _ in range(per_worker):
            start = time.perf_counter()
            try:
                await client.call("echo", payload=PAYLOAD)
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {"concurrency": concurrency, "calls": per_worker * concurrency, "errors": errors,
            "calls_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(quantile(latencies, 0.50) * 1000, 3), "p95_ms": round(quantile(latencies, 0.95) * 1000, 3),
            "p99_ms": round(quantile(latencies, 0.99) * 1000, 3)}


async def serve_forever(url: str, topic: str) -> None:
    """The child process of the amqp run: serve the echo endpoint until SIGTERM."""
    transport = make_transport(RpcSettings(transport_url=url))
    server = RPCServer(transport, topic, "bench-server", [EchoEndpoint()], max_concurrency=256)
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await server.stop()
    await transport.close()


async def delete_broker_objects(url: str, topic: str) -> None:
    """Remove what the run declared (the topic exchange only when no one else uses it)."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in (topic, f"{topic}.bench-server"):
            await channel.queue_delete(name)
        await channel.exchange_delete(f"{RpcSettings().exchange}.{topic}_fanout")
        with contextlib.suppress(aio_pika.exceptions.ChannelPreconditionFailed):
            await channel.exchange_delete(RpcSettings().exchange, if_unused=True)


async def run_transport(kind: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    topic = f"bench{uuid.uuid4().hex[:8]}"
    url = "local://" if kind == "local" else args.amqp_url
    transport = make_transport(RpcSettings(transport_url=url))
    child: asyncio.subprocess.Process | None = None
    server: RPCServer | None = None
    try:
        if kind == "local":
            server = RPCServer(transport, topic, "bench-server", [EchoEndpoint()], max_concurrency=256)
            await server.start()
        else:
            child = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--serve", url, topic, *(["--uvloop"] if args.uvloop else []),
                stdout=asyncio.subprocess.PIPE)
            assert child.stdout is not None
            if (await child.stdout.readline()).strip() != b"ready":
                raise RuntimeError("the benchmark's RPC server did not start")
        return [{"transport": kind, **await measure(transport, topic, args.calls, c)} for c in args.concurrency]
    finally:
        if server is not None:
            await server.stop()
        if child is not None:
            child.terminate()
            await asyncio.wait_for(child.wait(), 10)
        await transport.close()
        if kind == "amqp":
            await delete_broker_objects(url, topic)


async def main(args: argparse.Namespace) -> None:
    if args.serve:
        await serve_forever(*args.serve)
        return
    results = []
    for kind in args.transports:
        results.extend(await run_transport(kind, args))
    print(json.dumps({"benchmark": "rpc", "payload_bytes": len(json.dumps(PAYLOAD)),
                      "loop": "uvloop" if args.uvloop else "asyncio", "results": results}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--transports", nargs="+", choices=["local", "amqp"], default=["local", "amqp"])
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as `pocketstack up` does")
    parser.add_argument("--serve", nargs=2, metavar=("URL", "TOPIC"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.uvloop:
        import uvloop

        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))
