"""`pds-aws upgrade` checks its input before it acts: a bad tag or a stopped runtime stops it
with the reason, and nothing is drilled, stopped or deployed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pds_aws.cli import main
from pds_aws.names import LocalState


def _state(tmp_path: Path) -> Path:
    path = tmp_path / ".local" / "state.json"
    # A runtime that is not running (no supervisor), at image 0.4.5026.
    LocalState(
        url="http://127.0.0.1:1",
        admin_password="x",
        backup_url="s3://b/pds",
        image_tag="0.4.5026",
    ).write(path)
    return path


def test_unknown_tag_is_refused_naming_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["upgrade", "--to", "0.4.9999", "--local", "--state", str(_state(tmp_path))])
    err = capsys.readouterr().err
    assert code == 1
    assert "--to: image tag '0.4.9999' is not in the version table" in err
    assert "0.4.5035 (@atproto/pds 0.5.35)" in err
    assert "[drill]" not in err


def test_a_stopped_runtime_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["upgrade", "--to", "0.4.5035", "--local", "--state", str(_state(tmp_path))])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot upgrade" in err and "is not running: start it (`make run`)" in err
    assert "[drill]" not in err and "[deploy]" not in err


def test_the_same_tag_is_nothing_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["upgrade", "--to", "0.4.5026", "--local", "--state", str(_state(tmp_path))])
    assert code == 1 and "already deployed" in capsys.readouterr().err


def test_to_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["upgrade", "--local"])
    assert exited.value.code == 2 and "--to" in capsys.readouterr().err


class _Deployment:
    """A deployment at image 0.4.5026 whose drill is recorded."""

    name = "the test deployment"

    def __init__(self, drill_fails: bool = False) -> None:
        self.drills = 0
        self.drill_fails = drill_fails

    def current_tag(self) -> str:
        return "0.4.5026"

    def drill(self, say: object) -> None:
        self.drills += 1
        if self.drill_fails:
            raise RuntimeError("the restore drill failed")


def test_drill_if_current_drills_only_when_the_tag_already_runs() -> None:
    from pds_aws.ops.upgrade_commands import drill_if_current

    same = _Deployment()
    assert drill_if_current(same, "0.4.5026") is True  # type: ignore[arg-type]
    assert same.drills == 1
    other = _Deployment()
    assert drill_if_current(other, "0.4.5035") is False  # type: ignore[arg-type]
    assert other.drills == 0  # the upgrade proceeds and drills itself
    failing = _Deployment(drill_fails=True)
    with pytest.raises(RuntimeError, match="drill failed"):
        drill_if_current(failing, "0.4.5026")  # type: ignore[arg-type]


def test_drill_if_current_still_checks_a_stopped_runtime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "upgrade",
            "--to",
            "0.4.5035",
            "--drill-if-current",
            "--local",
            "--state",
            str(_state(tmp_path)),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "cannot upgrade" in err and "[drill]" not in err
