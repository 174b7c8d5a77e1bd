"""The shared names and the local runtime's typed state record."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from pds_aws.errors import ConfigError, LocalStateError, PdsAwsError
from pds_aws.names import STATE_FILE, LocalState


def _state() -> LocalState:
    return LocalState(
        url="http://127.0.0.1:8123",
        admin_password="pw",
        warnings=("a warning",),
        pids={"pds": 101, "backup": 102},
        supervisor_pid=100,
        startup_seconds={"ready": 12.5},
    )


def test_state_round_trips_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    _state().write(path)
    assert LocalState.read(path) == _state()
    # The file holds the local admin password: the owner alone may read it.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["pids"] == {"pds": 101, "backup": 102}


def test_state_ignores_fields_it_does_not_know() -> None:
    data = {**_state().to_json(), "written_by_a_newer_version": True}
    assert LocalState.from_json(data) == _state()


def test_state_with_a_wrong_value_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(LocalStateError, match=r"s.json: supervisor_pid .*restart"):
        LocalState.from_json({**_state().to_json(), "supervisor_pid": "x"}, Path("s.json"))


def test_state_file_that_is_not_an_object_says_so(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("[1, 2]")
    with pytest.raises(LocalStateError, match="expected a JSON object"):
        LocalState.read(path)


def test_our_errors_share_one_base() -> None:
    assert issubclass(ConfigError, PdsAwsError) and issubclass(LocalStateError, PdsAwsError)
    assert "pw" not in repr(_state())
