"""The CLI reports our errors and AWS's in one line; a bug keeps its traceback."""

from __future__ import annotations

import argparse

import pytest
from botocore.exceptions import ClientError

from pds_aws.errors import OperationError
from pds_aws.ops.common import guarded


def _raising(exc: BaseException) -> argparse.Namespace:
    def handler(_args: argparse.Namespace) -> int:
        raise exc

    return argparse.Namespace(run=guarded(handler))


def test_our_failure_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert _raising(OperationError("the drill did not finish")).run(argparse.Namespace()) == 1
    assert capsys.readouterr().err == "error: the drill did not finish\n"


def test_aws_failure_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeStacks")
    assert _raising(denied).run(argparse.Namespace()) == 1
    assert "AccessDenied" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback() -> None:
    with pytest.raises(KeyError):
        _raising(KeyError("a bug")).run(argparse.Namespace())
