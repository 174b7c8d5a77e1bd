"""Snapshot of the synthesized template: any change to what would be deployed shows in review.

After an intended change, refresh the snapshot and commit it with the change:

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/template/test_stack_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).parent / "snapshots" / "BlueskyPds.template.json"
# Asset hashes change with any byte of an asset (handler code, the backup image context).
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")
MASK = "<asset-hash>"


def masked(template: dict[str, Any]) -> str:
    text = json.dumps(template, indent=1, sort_keys=True)
    return _ASSET_HASH.sub(MASK, text) + "\n"


def test_masking_hides_asset_hashes_only() -> None:
    sample = {"S3Key": "a" * 64 + ".zip", "Name": "pds"}
    assert json.loads(masked(sample)) == {"S3Key": f"{MASK}.zip", "Name": "pds"}


def test_template_matches_the_snapshot(stack_template: dict[str, Any]) -> None:
    current = masked(stack_template)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(current, encoding="utf-8")
    assert SNAPSHOT.is_file(), f"no snapshot at {SNAPSHOT}; create it with UPDATE_SNAPSHOTS=1"
    expected = SNAPSHOT.read_text(encoding="utf-8")
    if current != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                current.splitlines(keepends=True),
                "snapshot",
                "synthesized",
                n=2,
            )
        )
        raise AssertionError(
            "the template differs from tests/template/snapshots (if intended: UPDATE_SNAPSHOTS=1 "
            f"pytest tests/template/test_stack_snapshot.py):\n{diff[:6000]}"
        )
