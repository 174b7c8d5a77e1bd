"""The local runtime's small parts: ports, prerequisites, the SMTP sink, the edge's routing."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pds_aws.local import paths as local_paths
from pds_aws.local import proxy as local_proxy
from pds_aws.local import runtime
from pds_aws.local.commands import ready_message
from pds_aws.local.runtime import LocalPaths, check_prerequisites, choose_public_port
from pds_aws.local.smtp_sink import MailDirHandler, read_messages
from pds_aws.names import LocalState
from pds_aws.routes import ROBOTS_TXT


def test_public_port_is_kept_across_runs_while_free(tmp_path: Path) -> None:
    paths = LocalPaths(tmp_path)
    first, warning = choose_public_port(paths)
    assert warning is None
    assert json.loads(paths.ports.read_text()) == {"public_port": first}
    again, warning = choose_public_port(paths)
    assert (again, warning) == (first, None)


def test_taken_public_port_moves_with_a_warning(tmp_path: Path) -> None:
    paths = LocalPaths(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        paths.ports.parent.mkdir(parents=True)
        paths.ports.write_text(json.dumps({"public_port": taken}))
        port, warning = choose_public_port(paths)
    assert port != taken
    assert warning is not None and str(taken) in warning and "DID documents" in warning


def test_missing_node_packages_say_run_make_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_paths, "PROJECT_ROOT", tmp_path)
    problems = check_prerequisites(LocalPaths(tmp_path))
    assert any("@atproto/pds" in p and "make install" in p for p in problems)
    assert any("@did-plc/server" in p for p in problems)


def test_installed_checkout_has_every_prerequisite() -> None:
    assert check_prerequisites(LocalPaths(runtime.PROJECT_ROOT)) == []


def test_ready_message_tells_how_to_use_the_pds() -> None:
    state = LocalState(
        url="http://127.0.0.1:5000",
        admin_password="pw",
        mail_dir="/m",
        logs_dir="/l",
        warnings=("differs",),
    )
    text = ready_message(state, Path("/w/.local/state.json"))
    assert "PDS ready at http://127.0.0.1:5000" in text
    assert "admin password:  pw" in text
    assert "/m/" in text
    assert "/w/.local/state.json" in text
    assert "pds-aws admin account create" in text and "--local" in text
    assert "WARNING: differs" in text


def test_smtp_sink_files_each_message(tmp_path: Path) -> None:
    handler = MailDirHandler(tmp_path)
    for n in (1, 2):
        envelope = SimpleNamespace(
            original_content=f"To: a@example.com\r\nSubject: code {n}\r\n\r\nbody {n}\r\n".encode(),
            content=None,
        )
        assert asyncio.run(handler.handle_DATA(None, None, envelope)).startswith("250")
    messages = read_messages(tmp_path)
    assert [m["Subject"] for m in messages] == ["code 1", "code 2"]
    assert not list(tmp_path.glob(".*partial"))


def test_edge_applies_the_route_table() -> None:
    async def scenario() -> None:
        upstream = web.Application()

        async def echo(request: web.Request) -> web.Response:
            body = await request.read()
            return web.json_response({"path": request.path_qs, "body": body.decode()})

        upstream.router.add_route("*", "/{tail:.*}", echo)
        async with TestServer(upstream) as pds:
            proxy = local_proxy.build_app(str(pds.make_url("")))
            async with TestClient(TestServer(proxy)) as client:
                ok = await client.post("/xrpc/com.atproto.repo.createRecord?x=1", data=b"{}")
                assert ok.status == 200
                assert await ok.json() == {
                    "path": "/xrpc/com.atproto.repo.createRecord?x=1",
                    "body": "{}",
                }
                assert (await client.get("/.well-known/atproto-did")).status == 200
                denied = await client.get("/wp-admin/setup.php")
                assert denied.status == 403
                robots = await client.get("/robots.txt")
                assert (robots.status, await robots.text()) == (200, ROBOTS_TXT)

    asyncio.run(scenario())


def test_cli_registers_the_local_commands(tmp_path: Path) -> None:
    from pds_aws.cli import build_parser, main

    parser = build_parser()
    for action in ("up", "down", "status", "crash"):
        args = parser.parse_args(["local", action, "--workdir", str(tmp_path)])
        assert callable(args.handler)
    # Nothing runs in an empty work directory: status says so and fails.
    assert main(["local", "status", "--workdir", str(tmp_path)]) == 1
    assert main(["local", "crash", "--workdir", str(tmp_path)]) == 1


def test_processes_left_by_a_dead_supervisor_are_ended_and_only_those(tmp_path: Path) -> None:
    import subprocess
    import sys

    from pds_aws.local.earlier_run import refuse_if_running

    sleep = "import time; time.sleep(120)"
    ours = subprocess.Popen(
        [sys.executable, "-c", sleep, "pds_aws.local.proxy"], start_new_session=True
    )
    other = subprocess.Popen([sys.executable, "-c", sleep, "unrelated"], start_new_session=True)
    try:
        paths = LocalPaths(tmp_path)
        paths.local.mkdir()
        dead_supervisor = subprocess.Popen([sys.executable, "-c", "pass"])
        dead_supervisor.wait()
        LocalState(
            url="http://127.0.0.1:1",
            admin_password="pw",
            supervisor_pid=dead_supervisor.pid,
            pids={"edge": ours.pid, "aws": other.pid},
        ).write(paths.state)
        warnings: list[str] = []
        refuse_if_running(paths, warnings.append)
        assert ours.wait(timeout=10) == -9
        assert other.poll() is None
        assert any("edge" in w and "killed" in w for w in warnings)
    finally:
        for process in (ours, other):
            process.kill()
            process.wait()
