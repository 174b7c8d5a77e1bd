"""The default template deploys image 0.4.5026, the image that carries @atproto/pds 0.5.26, the
package the local runtime runs (bluesky-social/pds PR #364 "Update PDS to 0.5.26"; versions.py).

The tag appears only in the build that copies it into the stack's ECR (the container's own
`Image` names that repository: tests/template/test_first_deploy.py); here the literal pair is
checked on the synthesized template and on the installed package, so a change of either side
alone fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pds_aws.versions import local_pds_mismatch

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_template_copies_image_0_4_5026(stack_template: dict[str, Any]) -> None:
    builds = [
        r["Properties"]["buildCommand"]
        for r in stack_template["Resources"].values()
        if r["Type"] == "Custom::CDKContainerImageBuild"
        and "PDS_IMAGE=" in r["Properties"]["buildCommand"]
    ]
    (command,) = builds
    assert "--build-arg PDS_IMAGE=ghcr.io/bluesky-social/pds:0.4.5026" in command


def test_the_local_runtime_installs_the_package_that_image_carries() -> None:
    installed = json.loads((ROOT / "node_modules/@atproto/pds/package.json").read_text())
    assert installed["version"] == "0.5.26"
    assert local_pds_mismatch("0.4.5026") is None
    assert local_pds_mismatch("0.4.219") is not None  # another tag would warn
