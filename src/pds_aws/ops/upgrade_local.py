"""The local runtime as an upgrade's `Deployment`: a deploy is what ECS does with one task.

The running `pds-aws local up` is stopped (PDS first, then the backup sidecar after its final
sync, which releases the lease) and a new one is started in the background with
`--image-tag TAG`, which runs the @atproto/pds version that tag carries; the new sidecar
restores from the backup. The restore point is read from the lease right after the stop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from pds_aws.errors import LocalStateError, OperationError
from pds_aws.names import HEALTH_CHECK_PATH, LocalState
from pds_aws.ops.backup_commands import (
    local_backup_env,
    restore_command,
    run_backup_program,
    stop_local_runtime,
    with_local_aws,
)
from pds_aws.ops.target import Target, local_target
from pds_aws.ops.upgrade import Deployed, Say
from pds_aws.ops.upgrade_data import RestorePoint, lease_holder, read_lease, restore_point_from
from pds_aws.procs import pid_alive
from pds_aws.versions import UnknownImageTag, local_package_for

_T = TypeVar("_T")
START_TIMEOUT_S = 300.0


class LocalDeployment:
    """The local runtime of `state_file` (started from `config_path`)."""

    def __init__(
        self,
        state_file: Path,
        config_path: str,
        *,
        launchers: Mapping[str, tuple[str, Path]] | None = None,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        self.state_file = state_file.resolve()
        self.workdir = self.state_file.parent.parent
        self.config_path = config_path
        # Test-only: a made-up tag -> the real tag it runs and a launcher wrapper standing in
        # for a broken release of it.
        self.launchers = dict(launchers or {})
        self.start_timeout = start_timeout
        self.name = f"the local runtime in {self.workdir}"
        try:
            self.state = LocalState.read(self.state_file)
        except LocalStateError as exc:
            raise OperationError(str(exc)) from None

    def _progress(self, say: Say, step: str) -> Callable[[str], None]:
        return lambda message: say(step, message)

    def current_tag(self) -> str:
        if self.state.image_tag:
            return self.state.image_tag
        from pds_aws.config import load_config

        return load_config(self.config_path).pds.image_version_tag

    def problems(self, target_tag: str) -> list[str]:
        from pds_aws.local.paths import LocalPaths

        problems = []
        if not (self.state.supervisor_pid and pid_alive(self.state.supervisor_pid)):
            problems.append(
                f"the local runtime of {self.state_file} is not running: start it (`make run`)"
            )
        if not self.state.backup_url:
            problems.append("the local runtime has no backup: an upgrade needs one to roll back")
        try:
            package = local_package_for(self.launchers.get(target_tag, (target_tag, None))[0])
        except UnknownImageTag as exc:
            if target_tag not in self.launchers:
                problems.append(str(exc))
        else:
            if not (LocalPaths(self.workdir).node_modules / package / "package.json").is_file():
                problems.append(f"{package} (image {target_tag}) is not installed: `make install`")
        return problems

    def url(self) -> str:
        return self.state.url

    def target(self) -> Target:
        return local_target(self.state)

    def backup_env(self) -> dict[str, str]:
        return local_backup_env(self.state)

    def drill(self, say: Say) -> None:
        result = run_backup_program(["drill"], self.backup_env())
        summary = result.summary or {}
        if result.code != 0 or not summary.get("ok"):
            why = "; ".join(summary.get("problems") or []) or f"exit {result.code}"
            raise OperationError(
                f"the restore drill failed ({why}): nothing was deployed; fix the backup first"
            )
        say(
            "drill",
            f"passed: {summary.get('accounts')} accounts, {summary.get('databases')} "
            f"databases restored in {summary.get('seconds')} s",
        )

    def deploy(self, tag: str, say: Say) -> Deployed:
        old_holder = lease_holder(read_lease(self.backup_env()))
        self.stop(say)
        lease = self.with_backup(read_lease, say)
        point = restore_point_from(lease, old_holder)
        try:
            self.start(tag, say)
        except OperationError as exc:
            return Deployed(False, str(exc), point)
        return Deployed(
            True, f"{self.state.url} answers, @atproto/pds {self.state.pds_version}", point
        )

    def stop(self, say: Say) -> None:
        stop_local_runtime(self.state, self._progress(say, "stop"))

    def with_backup(self, work: Callable[[dict[str, str]], _T], say: Say) -> _T:
        return with_local_aws(self.state, work, self._progress(say, "backup"))

    def restore_to(self, point: RestorePoint, say: Say) -> None:
        at = point.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        command = restore_command(at, None)
        say("restore", f"running `pds-aws-backup {' '.join(command[1:])}`")
        result = self.with_backup(lambda env: run_backup_program(command[1:], env), say)
        if result.code != 0:
            raise OperationError(
                f"restore-at {at} failed (exit {result.code}); the local runtime is stopped. "
                f"Retry with `pds-aws backup restore --at {at} --local`"
            )

    def start(self, tag: str, say: Say) -> None:
        """`pds-aws local up --image-tag TAG` in the background; wait until it is ready."""
        image_tag, launcher = self.launchers.get(tag, (tag, None))
        argv = [
            sys.executable,
            "-m",
            "pds_aws.cli",
            "local",
            "up",
            "-c",
            self.config_path,
            "--workdir",
            str(self.workdir),
            "--image-tag",
            image_tag,
        ]
        if launcher is not None:
            argv += ["--pds-launcher", str(launcher)]
        from pds_aws.local.paths import LocalPaths

        template = LocalPaths(self.workdir).template
        if template.is_file():
            # The task the old version ran, unchanged but for the image (as on ECS).
            argv += ["--template", str(template)]
        log = self.workdir / ".local" / "logs" / "local-up.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        say("start", f"starting the local runtime with image {tag} (log: {log})")
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=dict(os.environ),
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise OperationError(
                    f"the local runtime with image {tag} stopped before it was ready "
                    f"(exit {process.returncode}); see {log}"
                )
            state = self._ready_state(process.pid)
            if state is not None:
                self.state = state
                say("start", f"ready at {state.url}: @atproto/pds {state.pds_version}")
                return
            time.sleep(0.5)
        raise OperationError(f"the local runtime with image {tag} was not ready in time; see {log}")

    def _ready_state(self, pid: int) -> LocalState | None:
        try:
            state = LocalState.read(self.state_file)
        except LocalStateError:
            return None
        if state.supervisor_pid != pid:
            return None
        try:
            with urllib.request.urlopen(state.url + HEALTH_CHECK_PATH, timeout=5) as response:
                json.loads(response.read() or b"{}")
        except (OSError, ValueError):
            return None
        return state
