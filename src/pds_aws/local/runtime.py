"""The local runtime: the synthesized Fargate task and its AWS stand-ins on one machine.

Start order: the local AWS (moto + journal) -> its buckets, keys and secrets -> the PLC
directory and the SMTP sink -> the task's containers in dependsOn order (backup, then the PDS
once backup is HEALTHY by its own health-check command) -> the edge proxy. Stop is the reverse,
so the backup sidecar stops after the PDS (final sync) and the local AWS stops last.

Like a replacement Fargate task, every start gets an empty data volume (the previous one is
kept in `.local/data.previous` for inspection): the PDS's state comes back from the backup.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pds_aws.config import Config
from pds_aws.local import direct_edge, stack_resources, taskdef
from pds_aws.local.earlier_run import clear_own_state, refuse_if_running
from pds_aws.local.paths import (
    PACKAGE_DIR,
    LocalPaths,
    check_prerequisites,
    choose_public_port,
    installed_pds_version,
)
from pds_aws.local.paths import PROJECT_ROOT as PROJECT_ROOT  # re-exported
from pds_aws.local.processes import (
    Process,
    StartError,
    command_ok,
    free_port,
    http_ok,
    start_process,
    tcp_open,
    wait_until,
)
from pds_aws.names import (
    BACKUP_CONTAINER,
    HEALTH_CHECK_PATH,
    PDS_CONTAINER,
    LocalState,
)
from pds_aws.versions import UnknownImageTag, local_package_for, local_pds_mismatch

if TYPE_CHECKING:
    from pds_aws.local.provision import LocalAwsState

# Locally a health check runs every HEALTH_POLL_SECONDS instead of its Interval: the same
# command decides, startup is just not slowed by 15 s steps.
HEALTH_POLL_SECONDS = 0.5
START_TIMEOUT_SECONDS = 180.0
INFRA_START_TIMEOUT_SECONDS = 60.0
DEFAULT_STOP_TIMEOUT_SECONDS = 30.0
CONTAINER_START_ATTEMPTS = 3

Progress = Callable[[str], None]


def _stderr_progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class _Ports:
    """The ports of one run: the edge's (kept across runs) and free ones for the rest."""

    public: int
    aws: int
    plc: int
    smtp: int
    pds: int

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.aws}"

    @property
    def plc_url(self) -> str:
        return f"http://localhost:{self.plc}"


class LocalRuntime:
    """The local task. `start()` blocks until healthy and returns the state (also written to
    `.local/state.json`); `stop()` stops in order; `kill()` SIGKILLs everything (a crash)."""

    def __init__(
        self,
        workdir: Path,
        config: Config,
        *,
        progress: Progress = _stderr_progress,
        template: dict[str, Any] | None = None,
        image_tag: str | None = None,
        pds_launcher: Path | None = None,
    ) -> None:
        self.paths = LocalPaths(Path(workdir).resolve())
        self.config = config
        # The image tag to stand in for (an upgrade deploys another than the config's) and
        # the launcher of the `pds` container (tests substitute a wrapper around ours).
        self.image_tag = image_tag or config.pds.image_version_tag
        self.pds_launcher = pds_launcher or PACKAGE_DIR / "pds_launcher.cjs"
        self.pds_package = "@atproto/pds"  # chosen from image_tag at start
        self.progress = progress
        self._template = template
        self.processes: dict[str, Process] = {}
        self.container_order: list[str] = []
        self.task: taskdef.TaskDefinition | None = None
        self.state: LocalState | None = None
        self.warnings: list[str] = []
        # Each container's local environment, as started (for tools run beside it, e.g.
        # `pds-aws-backup status` with the sidecar's settings).
        self.container_envs: dict[str, dict[str, str]] = {}
        # Exit code of each process stopped by stop(), by name.
        self.exit_codes: dict[str, int | None] = {}
        # Seconds from start() to each milestone (aws_ready, <container>_healthy).
        self.timings: dict[str, float] = {}
        self._t0 = time.monotonic()

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- start ----------------------------------------------------------------------
    def start(self) -> LocalState:
        try:
            return self._start()
        except BaseException:
            self.stop(quiet=True)
            raise

    def _start(self) -> LocalState:
        self._t0 = time.monotonic()
        self._check_can_start()
        template = self._synthesize()
        ports = self._choose_ports()
        aws, plc, smtp = self._start_stand_ins(ports)
        local = self._provision(template, aws, ports)
        wait_until(
            plc,
            http_ok(f"{ports.plc_url}/_health"),
            timeout=INFRA_START_TIMEOUT_SECONDS,
            what="healthy",
        )
        wait_until(
            smtp, tcp_open(ports.smtp), timeout=INFRA_START_TIMEOUT_SECONDS, what="listening"
        )
        task = self._read_task(template, local)
        self._fresh_volume()
        endpoints = self._endpoints(task, ports)
        envs = self._start_containers(task, endpoints, local.secret_strings)
        if endpoints.direct is None:
            url = self._start_edge(ports)
        else:
            url = direct_edge.wait_serving(
                self.processes, self.config, endpoints.direct, self.progress
            )
            self._mark("proxy_ready")
        return self._write_state(url, ports, endpoints, envs)

    def _check_can_start(self) -> None:
        """Everything installed, no other run active; the PDS version difference noted."""
        problems = check_prerequisites(self.paths)
        try:
            self.pds_package = local_package_for(self.image_tag)
        except UnknownImageTag as exc:
            if self.image_tag != self.config.pds.image_version_tag:
                problems.append(str(exc))
            self.pds_package = "@atproto/pds"
        if not (self.paths.node_modules / self.pds_package / "package.json").is_file():
            problems.append(
                f"{self.paths.node_modules / self.pds_package} is missing: run `make install`"
            )
        if not self.pds_launcher.is_file():
            problems.append(f"the PDS launcher {self.pds_launcher} does not exist")
        if problems:
            raise StartError("cannot start the local runtime:\n  - " + "\n  - ".join(problems))
        refuse_if_running(self.paths, self.warn)
        mismatch = local_pds_mismatch(self.image_tag)
        if mismatch:
            self.warn(mismatch)

    def _synthesize(self) -> dict[str, Any]:
        """The template `cdk deploy` would use (or the one given to the constructor)."""
        if self._template is not None:
            template = self._template
        else:
            self.progress("synthesizing the stack (the template cdk deploy would use)")
            from pds_aws.infra.synth import synthesize

            template = synthesize(self.config)
            self._mark("synthesized")
        self.paths.template.parent.mkdir(parents=True, exist_ok=True)
        self.paths.template.write_text(json.dumps(template))
        return template

    def _choose_ports(self) -> _Ports:
        public_port, port_warning = choose_public_port(self.paths)
        if port_warning:
            self.warn(port_warning)
        aws, plc, smtp, pds = (free_port() for _ in range(4))
        return _Ports(public=public_port, aws=aws, plc=plc, smtp=smtp, pds=pds)

    def _start_stand_ins(self, ports: _Ports) -> tuple[Process, Process, Process]:
        """The local AWS (moto), the PLC directory and the SMTP sink, started together."""
        paths = self.paths
        self.progress(f"local AWS (moto: S3, KMS, Secrets Manager) on {ports.aws_url}")
        aws = self._spawn_module(
            "aws", "aws_emulator", "--port", str(ports.aws), "--state-dir", str(paths.aws)
        )
        self.progress("local PLC directory and SMTP sink")
        plc = self._spawn(
            "plc",
            [
                str(paths.node),
                str(PACKAGE_DIR / "plc_launcher.cjs"),
                str(ports.plc),
                str(paths.plc_journal),
            ],
            {**self._tool_env(), "NODE_PATH": str(paths.node_modules)},
        )
        paths.plc_journal.parent.mkdir(parents=True, exist_ok=True)
        smtp = self._spawn_module(
            "smtp", "smtp_sink", "--port", str(ports.smtp), "--mail-dir", str(paths.mail)
        )
        return aws, plc, smtp

    def _provision(self, template: dict[str, Any], aws: Process, ports: _Ports) -> LocalAwsState:
        """The stack's buckets, keys and secrets, created in the local AWS once it listens."""
        wait_until(aws, tcp_open(ports.aws), timeout=INFRA_START_TIMEOUT_SECONDS, what="listening")
        self._mark("aws_ready")
        from pds_aws.local.provision import provision

        local = provision(
            stack_resources.read_aws_resources(template),
            endpoint=ports.aws_url,
            region=self.config.aws.region,
            stack_name=self.config.aws.stack_name,
        )
        self.progress(
            f"  buckets {', '.join(local.aws.bucket_names.values())}; "
            f"{len(local.aws.kms_key_ids)} KMS key(s); {len(local.aws.secret_arns)} secret(s)"
        )
        return local

    def _read_task(self, template: dict[str, Any], local: LocalAwsState) -> taskdef.TaskDefinition:
        task = taskdef.read_task_definition(template, local.aws)
        self.task = task
        if BACKUP_CONTAINER not in task.containers:
            self.warn(
                "the task definition has no backup container: nothing is backed up, and the "
                "next start begins with an empty PDS"
            )
        return task

    def _endpoints(self, task: taskdef.TaskDefinition, ports: _Ports) -> taskdef.LocalEndpoints:
        """Where the task's containers find AWS, the PLC, SMTP and each other here."""
        return taskdef.LocalEndpoints(
            aws_url=ports.aws_url,
            plc_url=ports.plc_url,
            smtp_url=f"smtp://127.0.0.1:{ports.smtp}",
            public_port=ports.public,
            pds_listen_port=ports.pds,
            region=self.config.aws.region,
            volumes={name: self.paths.data for name in task.volumes},
            bin_dir=self.paths.bin_dir,
            direct=direct_edge.local_ports(self.config, self.paths.local, ports.public),
        )

    def _start_containers(
        self,
        task: taskdef.TaskDefinition,
        endpoints: taskdef.LocalEndpoints,
        secret_strings: Mapping[str, str],
    ) -> dict[str, dict[str, str]]:
        """Each container in dependsOn order with its local environment; returns those."""
        envs: dict[str, dict[str, str]] = {}
        for name in task.start_order():
            container = task.containers[name]
            values = {
                env_name: taskdef.secret_value(secret_strings[ref.secret_id], ref)
                for env_name, ref in container.secrets.items()
            }
            envs[name] = taskdef.container_environment(
                container,
                secret_values=values,
                endpoints=endpoints,
                task_ports=taskdef.task_local_ports(task, endpoints),
            )
            self.container_envs[name] = envs[name]
            self._start_container(container, envs[name], endpoints)
        self.container_order = task.start_order()
        return envs

    def _start_edge(self, ports: _Ports) -> str:
        """The edge proxy (the ALB's route table) in front of the PDS; returns its URL."""
        self.progress(f"edge proxy (the ALB's route table) on http://127.0.0.1:{ports.public}")
        edge = self._spawn_module(
            "edge",
            "proxy",
            "--port",
            str(ports.public),
            "--upstream",
            f"http://127.0.0.1:{ports.pds}",
        )
        url = f"http://127.0.0.1:{ports.public}"
        wait_until(
            edge,
            http_ok(url + HEALTH_CHECK_PATH),
            timeout=INFRA_START_TIMEOUT_SECONDS,
            what="healthy",
        )
        return url

    def _write_state(
        self,
        url: str,
        ports: _Ports,
        endpoints: taskdef.LocalEndpoints,
        envs: Mapping[str, Mapping[str, str]],
    ) -> LocalState:
        """The state the operator commands read, written to `.local/state.json`."""
        paths = self.paths
        pds_env = envs.get(PDS_CONTAINER, {})
        backup_env = envs.get(BACKUP_CONTAINER, {})
        self.state = LocalState(
            url=url,
            public_url=url if endpoints.direct else f"http://localhost:{ports.public}",
            pds_url=f"http://127.0.0.1:{ports.pds}",
            admin_password=pds_env.get("PDS_ADMIN_PASSWORD", ""),
            rate_limit_bypass_key=pds_env.get("PDS_RATE_LIMIT_BYPASS_KEY", ""),
            handle_domain=(
                f".{self.config.pds.domain}" if endpoints.direct else taskdef.LOCAL_HANDLE_DOMAIN
            ),
            mail_dir=str(paths.mail),
            moto_url=ports.aws_url,
            region=self.config.aws.region,
            plc_url=ports.plc_url,
            smtp_url=endpoints.smtp_url,
            backup_url=backup_env.get("BACKUP_URL", ""),
            blob_bucket=pds_env.get("PDS_BLOBSTORE_S3_BUCKET", ""),
            rotation_key_id=pds_env.get("PDS_PLC_ROTATION_KEY_KMS_KEY_ID", ""),
            data_dir=str(paths.data),
            logs_dir=str(paths.logs),
            pds_version=installed_pds_version(paths, self.pds_package),
            image_tag=self.image_tag,
            warnings=tuple(self.warnings),
            pids={name: proc.pid for name, proc in self.processes.items()},
            supervisor_pid=os.getpid(),
            started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            startup_seconds={**self.timings, "ready": round(time.monotonic() - self._t0, 2)},
        )
        self.state.write(paths.state)
        return self.state

    def _start_container(
        self,
        container: taskdef.ContainerDefinition,
        env: dict[str, str],
        endpoints: taskdef.LocalEndpoints,
    ) -> None:
        assert self.task is not None
        for dependency, condition in container.depends_on:
            self._wait_dependency(dependency, condition, container.name)
        argv = direct_edge.local_command(container, env, endpoints) or taskdef.local_command(
            container, node=self.paths.node, launcher=self.pds_launcher
        )
        if container.name == PDS_CONTAINER:
            env = {
                **env,
                "NODE_PATH": str(self.paths.node_modules),
                "PDS_LOCAL_PACKAGE": self.pds_package,
            }
            self.progress(
                f"container pds: image {self.image_tag} = @atproto/pds "
                f"{installed_pds_version(self.paths, self.pds_package)} "
                f"on 127.0.0.1:{endpoints.pds_listen_port}"
            )
        else:
            self.progress(f"container {container.name}: {' '.join(argv)}")
        needed_healthy = container.name == PDS_CONTAINER or any(
            dep == container.name and cond == "HEALTHY"
            for other in self.task.containers.values()
            for dep, cond in other.depends_on
        )
        for attempt in range(1, CONTAINER_START_ATTEMPTS + 1):
            process = self._spawn(container.name, argv, env)
            if not needed_healthy:
                return
            try:
                self._wait_healthy(container, process, env, endpoints)
                return
            except StartError as exc:
                if process.alive() or attempt == CONTAINER_START_ATTEMPTS:
                    raise
                # ECS replaces a task whose essential container exits; locally the container
                # is started again (seen: the PDS's first-boot migration meeting Litestream's
                # lock on a brand-new database, SQLITE_BUSY).
                self.warn(f"{exc}\n  starting {container.name} again ({attempt + 1})")

    def _wait_healthy(
        self,
        container: taskdef.ContainerDefinition,
        process: Process,
        env: dict[str, str],
        endpoints: taskdef.LocalEndpoints,
    ) -> None:
        if container.health_check is None:
            if container.name == PDS_CONTAINER:
                check = http_ok(f"http://127.0.0.1:{endpoints.pds_listen_port}{HEALTH_CHECK_PATH}")
            else:
                raise StartError(
                    f"a container depends on {container.name!r} being HEALTHY but the task "
                    f"definition gives it no health check"
                )
        else:
            argv = container.health_check.argv(taskdef.local_ports(container, endpoints))
            check = command_ok(
                argv, env=env, cwd=self.paths.root, timeout=container.health_check.timeout
            )
        started = time.monotonic()
        self.progress(f"  waiting for {container.name} to be healthy (its task health check)")
        wait_until(
            process, check, timeout=START_TIMEOUT_SECONDS, what="healthy", every=HEALTH_POLL_SECONDS
        )
        self.progress(f"  {container.name} healthy after {time.monotonic() - started:.1f} s")
        self._mark(f"{container.name}_healthy")

    def _wait_dependency(self, dependency: str, condition: str, dependent: str) -> None:
        process = self.processes.get(dependency)
        if process is None:
            raise StartError(f"{dependent} depends on {dependency}, which was not started")
        if condition in ("COMPLETE", "SUCCESS"):
            process.popen.wait(timeout=START_TIMEOUT_SECONDS)
            if condition == "SUCCESS" and process.popen.returncode != 0:
                raise process.failure(f"exited with {process.popen.returncode}")
        # START and HEALTHY were waited for when the dependency started.

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        process = start_process(
            name, argv, env=env, log=self.paths.logs / f"{name}.log", cwd=self.paths.root
        )
        self.processes[name] = process
        return process

    def _spawn_module(self, name: str, module: str, *args: str) -> Process:
        """One of our Python helpers: `python -m pds_aws.local.<module> ARGS`."""
        argv = [sys.executable, "-m", f"pds_aws.local.{module}", *args]
        return self._spawn(name, argv, self._tool_env())

    def _tool_env(self) -> dict[str, str]:
        """The environment of our own helper processes: explicit, no AWS_CA_BUNDLE."""
        env = {
            "PATH": f"{self.paths.bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "HOME": os.environ.get("HOME", str(self.paths.root)),
        }
        src = str(PACKAGE_DIR.parent.parent)
        env["PYTHONPATH"] = src
        return env

    def _fresh_volume(self) -> None:
        paths = self.paths
        if paths.data.exists():
            shutil.rmtree(paths.previous_data, ignore_errors=True)
            paths.data.rename(paths.previous_data)
        paths.data.mkdir(parents=True)

    def _mark(self, milestone: str) -> None:
        self.timings[milestone] = round(time.monotonic() - self._t0, 2)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.progress(f"WARNING: {message}")

    # -- stop -----------------------------------------------------------------------
    def stop(self, *, quiet: bool = False) -> None:
        """Stop in order: edge, containers in reverse start order, PLC + SMTP, AWS last."""
        order = ["edge", *reversed(self.container_order or self._started_containers())]
        order += ["plc", "smtp", "aws"]
        for name in order:
            process = self.processes.pop(name, None)
            if process is None:
                continue
            timeout = DEFAULT_STOP_TIMEOUT_SECONDS
            if self.task and name in self.task.containers:
                timeout = float(self.task.containers[name].stop_timeout or timeout)
            if not quiet:
                self.progress(f"stopping {name}")
            code = process.stop(timeout)
            self.exit_codes[name] = code
            if not quiet and code not in (0, None, -15):
                self.progress(f"  {name} exited with {code} (log: {process.log})")
        for process in self.processes.values():
            process.stop(DEFAULT_STOP_TIMEOUT_SECONDS)
        self.processes.clear()
        clear_own_state(self.paths)

    def _started_containers(self) -> list[str]:
        return [n for n in self.processes if n not in ("edge", "plc", "smtp", "aws")]

    def kill(self) -> None:
        """SIGKILL every process and its children at once: a crashed task."""
        for process in list(self.processes.values()):
            process.kill_group()
        for process in list(self.processes.values()):
            process.kill()
        self.processes.clear()

    def exited(self) -> list[str]:
        """Names of processes that have stopped on their own (the task is unhealthy)."""
        return [name for name, process in self.processes.items() if not process.alive()]
