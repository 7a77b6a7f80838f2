"""The local runtime's replicas: the gateway spreads a function's requests over its processes in turn, as the
OpenFaaS gateway spreads them over a function's pods (bench/pipeline_throughput.py --replicas)."""

from __future__ import annotations

import httpx

from openfaas.local.gateway import Gateway
from tests.servers import LoopbackHttpServer


def test_requests_to_a_function_with_replicas_take_each_replica_in_turn(aio):
    replicas = [LoopbackHttpServer(body=f"replica {n}".encode()).start() for n in range(3)]
    single = LoopbackHttpServer(body=b"single").start()
    try:
        gateway = Gateway({"check-http": [server.url.rstrip("/") for server in replicas], "api": single.url})

        async def call(path: str) -> str:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=gateway), base_url="http://gw"
            ) as c:
                return (await c.post(path, content=b"{}")).text

        answers = [aio.run(call("/function/check-http")) for _ in range(6)]
        assert answers == ["replica 0", "replica 1", "replica 2"] * 2
        assert aio.run(call("/function/api/monitors")) == "single"
        assert [len(server.requests) for server in replicas] == [2, 2, 2]
    finally:
        for server in [*replicas, single]:
            server.stop()


def test_the_local_stack_starts_each_function_s_openfaas_minimum_unless_told_otherwise(tmp_path):
    """`make run` and the tests run what stack.yml ships: check-http's two processes, one of everything else."""
    from openfaas.local.runtime import LocalStack
    from openfaas.local.stack import stack_functions

    minimums = {function.name: function.min_replicas for function in stack_functions()}
    assert minimums["check-http"] == 2 and minimums["api"] == 1

    shipped = LocalStack(env={}, log_dir=tmp_path)._add_functions({})
    assert {name: len(urls) for name, urls in shipped.items()} == minimums
    assert len(set(shipped["check-http"])) == 2  # two processes, two ports

    told = LocalStack(env={}, log_dir=tmp_path, replicas={"check-http": 3, "api": 2})._add_functions({})
    assert len(told["check-http"]) == 3 and len(told["api"]) == 2 and len(told["schedule"]) == 1
