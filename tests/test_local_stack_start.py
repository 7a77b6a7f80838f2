"""Starting the local runtime: ports that no other start takes meanwhile, and a stack whose start fails leaves
nothing running (a leftover connector would take messages from the shared Redis for a broken gateway)."""

from __future__ import annotations

import socket
import textwrap

import pytest
import yaml

from openfaas.local.runtime import LocalStack
from openfaas.local.services import free_port
from openfaas.local.stack import DEFAULT_STACK


def test_ports_handed_out_are_distinct_bindable_and_skipped_by_other_binds_to_port_zero():
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50

    others = []
    try:
        for _ in range(2000):  # held open, so each takes another port; without the hold ~3 would collide
            other = socket.socket()
            other.bind(("127.0.0.1", 0))
            others.append(other)
        assert not {other.getsockname()[1] for other in others} & set(ports)
    finally:
        for other in others:
            other.close()

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as every server we start sets it
    server.bind(("127.0.0.1", ports[0]))
    server.close()


def _stack_with_a_broken_function(folder) -> tuple:
    shipped = yaml.safe_load(DEFAULT_STACK.read_text())
    api = shipped["functions"]["api"]
    broken = folder / "broken"
    broken.mkdir()
    (broken / "main.py").write_text(
        textwrap.dedent(
            """
            raise RuntimeError("this function cannot start")
            """
        )
    )
    stack = {
        "version": shipped["version"],
        "provider": shipped["provider"],
        "functions": {
            "api": {**api, "handler": str(DEFAULT_STACK.parent / api["handler"])},
            "broken": {
                "lang": api["lang"],
                "handler": str(broken),
                "environment": api.get("environment", {}),
            },
        },
    }
    path = folder / "stack.yml"
    path.write_text(yaml.safe_dump(stack))
    return path


def test_a_stack_whose_function_cannot_start_names_it_and_leaves_no_process_behind(infra, tmp_path):
    stack = LocalStack(
        env={"SC_ALLOW_ANONYMOUS_LOCAL": "true"},
        log_dir=tmp_path / "logs",
        gateway_port=free_port(),
        with_cron=False,
        stack_file=_stack_with_a_broken_function(tmp_path),
    )
    with pytest.raises(RuntimeError) as failure:
        stack.start()
    assert "broken did not start" in str(failure.value)
    assert "this function cannot start" in str(failure.value)  # its log's end, to see why without digging
    assert set(stack.children) == {"api", "broken", "gateway", "connector"}
    assert not [child.name for child in stack.children.values() if child.alive()]
