"""The backup-errors alarm counts real faults only: its metric filter over the real sidecar's logs.

The pattern is the stack's own (the `BackupErrors` metric filter of the synthesized template),
applied with CloudWatch's term semantics (`pds_aws.infra.filter_pattern`; moto has no
TestMetricFilter). Each line the sidecar writes is one log event, as the awslogs driver sends
it. A quiet start, a restart that restores, and an operator's restore-at followed by a start
must count zero; a store that disappears mid-run must count at least one. The stops come a
moment after each start on purpose: that is when Litestream 0.5.17's shutdown race used to
log `compaction failed level=9 error="invalid argument"` (see `litestream.SHUTDOWN_MARK`).
"""

from __future__ import annotations

from typing import Any

import pytest
import test_backup_sidecar as sidecar_tests
from test_backup_sidecar import WAIT_S, Case, FakePds, Sidecar

from helpers import wait_until
from pds_aws.infra.filter_pattern import matching_events

pytestmark = pytest.mark.integration

# The sidecar tests' fixtures: one moto server per module, one bucket per test.
moto = sidecar_tests.moto
case = sidecar_tests.case


@pytest.fixture(scope="module")
def backup_error_pattern(stack_template: dict[str, Any]) -> str:
    filters = [
        resource["Properties"]
        for resource in stack_template["Resources"].values()
        if resource["Type"] == "AWS::Logs::MetricFilter"
        and resource["Properties"]["MetricTransformations"][0]["MetricName"] == "BackupErrors"
    ]
    assert len(filters) == 1
    return str(filters[0]["FilterPattern"])


def alarm_matches(pattern: str, *logs: str) -> list[str]:
    return matching_events(pattern, [line for log in logs for line in log.splitlines()])


def start_write_stop(case: Case, name: str, accounts: range) -> Sidecar:
    sidecar = case.start(name)
    sidecar.wait_healthy()
    if accounts:
        pds = FakePds(case.data(name))
        dids = [pds.create_account(n) for n in accounts]
        pds.close()
        wait_until(
            lambda: all(any(k.endswith(f"{did}/key") for k in case.objects()) for did in dids),
            WAIT_S,
            "key uploads",
        )
    assert sidecar.stop() == 0, sidecar.log()
    return sidecar


def test_quiet_start_restart_and_restore_log_nothing_the_alarm_counts(
    case: Case, backup_error_pattern: str
) -> None:
    first = start_write_stop(case, "first", range(3))  # first boot, accounts created, stop
    restarted = start_write_stop(case, "restarted", range(3, 4))  # restores, writes, stops
    restore_at = case.cli("restore-at", "latest")
    assert restore_at.returncode == 0, restore_at.stderr
    restored = start_write_stop(case, "restored", range(0))  # restores the new CURRENT
    drill = case.cli("drill")
    assert drill.returncode == 0, drill.stderr

    logs = [first.log(), restarted.log(), restore_at.stderr, restored.log(), drill.stderr]
    assert "litestream: " in first.log()  # Litestream's own lines are in what we count
    assert alarm_matches(backup_error_pattern, *logs) == []


def test_a_store_gone_mid_run_is_counted(case: Case, backup_error_pattern: str) -> None:
    sidecar = case.start("data")
    sidecar.wait_healthy()
    pds = FakePds(case.data("data"))
    did = pds.create_account(1)
    wait_until(lambda: any(k.endswith(f"{did}/key") for k in case.objects()), WAIT_S, "key upload")

    s3 = case.moto.s3()

    def bucket_deleted() -> bool:
        # Every object, the lease too (case.objects() leaves the lease out). The running
        # sidecar may store one more between the listing and the delete: then again.
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=case.bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=case.bucket, Key=item["Key"])
        try:
            s3.delete_bucket(Bucket=case.bucket)
        except s3.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] != "BucketNotEmpty":
                raise
            return False
        return True

    wait_until(bucket_deleted, WAIT_S, "the bucket deleted")
    pds.create_account(2)  # a new database and a new key file, neither can be stored now
    pds.post(did, 1)
    pds.close()
    wait_until(lambda: alarm_matches(backup_error_pattern, sidecar.log()), WAIT_S, "an error line")
    # A graceful stop would retry the vanished store for minutes; the count is what matters.
    sidecar.process.kill()
    sidecar.wait_exit()
    matches = alarm_matches(backup_error_pattern, sidecar.log())
    assert matches and all(line.startswith("ERROR ") for line in matches), matches
