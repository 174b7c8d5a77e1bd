"""Every `make` command in README.md and guides/*.md names a target the Makefile has.

Each one runs as `make -n` (a dry run: the recipe is printed, never executed) from the
repository root, with the VAR=value arguments the document gives. A target that stops without
a named config (deploy, diff, destroy act on an AWS account) gets `CONFIG=pds.toml`, the name
the guides use, when the document mentions it without one. A renamed or removed target fails
here with the file and the command.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "guides").glob("*.md"))]
# `make target VAR=value ...`: in backticks, or a line of a fenced code block.
_COMMAND = re.compile(r"make((?:\s+[A-Za-z_]+=\S+)*\s+[a-z][a-z0-9-]*(?:\s+[A-Za-z_]+=[^\s`]+)*)")


def documented_make_commands() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for document in DOCUMENTS:
        name = document.relative_to(ROOT).as_posix()
        in_block = False
        for line in document.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith("```"):
                in_block = not in_block
                continue
            if in_block:
                code = line.strip().removeprefix("$ ").split("#", 1)[0]
                candidates = [code] if code.startswith("make ") else []
            else:
                candidates = [m for m in re.findall(r"`([^`]*)`", line) if m.startswith("make ")]
            for candidate in candidates:
                match = _COMMAND.match(candidate.strip())
                if match:
                    found.append((name, "make" + match.group(1)))
    return sorted(set(found))


COMMANDS = documented_make_commands()


def test_the_documents_name_make_targets() -> None:
    # The extraction itself must see the commands the guides are built around.
    commands = {command for _, command in COMMANDS}
    assert {"make run", "make test", "make deploy CONFIG=pds.toml"} <= commands
    assert "make summary CONFIG=pds.toml" in commands


def dry_run(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-n", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("document", "command"), COMMANDS)
def test_documented_make_command_has_its_target(document: str, command: str) -> None:
    arguments = command.split()[1:]
    done = dry_run(arguments)
    names_config = any(a.startswith("CONFIG=") for a in arguments)
    if done.returncode != 0 and not names_config and "CONFIG" in done.stderr:
        done = dry_run([*arguments, "CONFIG=pds.toml"])  # a target that needs a named config
    assert done.returncode == 0, f"{document}: `{command}` fails as `make -n`:\n{done.stderr}"


def test_a_missing_target_fails_the_dry_run() -> None:
    done = dry_run(["no-such-target"])
    assert done.returncode != 0 and "no-such-target" in done.stderr
