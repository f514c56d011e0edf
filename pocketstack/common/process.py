"""Running a host command from the event loop (ip, nft, sysctl, qemu-img...): the one helper every module uses."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Mapping


class CommandError(RuntimeError):
    """A host command that is missing, failed or took too long; the message says which and why."""


async def run_command(*args: str, within: float = 120.0, check: bool = True, stdin: bytes | None = None,
                      env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run `args`; returns (exit status, stdout and stderr as text). CommandError when the program is missing,
    runs longer than `within` seconds (it is killed), or, with `check`, exits non-zero."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
    except FileNotFoundError:
        raise CommandError(f"{args[0]} is not installed on this host") from None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin), within)
    except BaseException as exc:  # timed out or cancelled: do not leave it running
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        if isinstance(exc, TimeoutError):
            raise CommandError(f"{shlex.join(args[:3])} did not finish within {within:g} s") from None
        raise
    text = out.decode(errors="replace").strip()
    if check and proc.returncode != 0:
        raise CommandError(f"{shlex.join(args[:4])} failed: {text[-500:]}")
    return proc.returncode or 0, text
