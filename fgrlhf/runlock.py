"""One run per output folder: a lock file holding the owner's process id.

``RunLock(folder, app)`` creates ``folder/.fgrlhf.lock`` atomically (``O_EXCL``). A second run
aimed at the same folder refuses with a message naming the folder and the run that holds it.
A lock left by a process that is no longer running (killed, crashed) is taken over, with a
note on stderr. The lock is removed when the run ends, also when it fails.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from fgrlhf.errors import OutputError

LOCK_NAME = ".fgrlhf.lock"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def check_writable(folder: str | Path, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and prove a file can be written there, before any work."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".fgrlhf-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file" if blocker is not None else (err.strerror or str(err))
        raise OutputError(f"the {what} {folder} is not writable ({reason}); "
                          f"choose another one (e.g. hydra.run.dir=...)") from None
    return folder


def holder(folder: str | Path) -> dict[str, Any] | None:
    """The live run that holds ``folder``'s lock (its lock record), or ``None``."""
    other = RunLock(folder, "")._read()
    return other if is_live(other) else None


def is_live(owner: dict[str, Any]) -> bool:
    """Whether a lock record belongs to another process still running on this machine."""
    pid = owner.get("pid")
    return (isinstance(pid, int) and owner.get("host") == socket.gethostname() and pid_alive(pid)
            and pid != os.getpid())


def in_use_message(folder: str | Path, other: dict[str, Any]) -> str:
    return (f"the output folder {folder} is in use by another run: {other.get('app', '?')} "
            f"(process {other.get('pid')}, started {other.get('started', '?')}: {other.get('command', '?')}); "
            "wait for it to finish or choose another folder")


class RunLock:
    """Held while a run writes into ``folder`` (a context manager)."""

    def __init__(self, folder: str | Path, app: str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.app = app
        self.held = False

    def _owner(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "app": self.app,
                "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def acquire(self) -> RunLock:
        check_writable(self.folder)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                other = self._read()
                if is_live(other):
                    raise OutputError(in_use_message(self.folder, other)) from None
                print(f"{self.app}: note: taking over the stale lock of {self.folder} "
                      f"(process {other.get('pid')} of {other.get('app', '?')} is no longer running)",
                      file=sys.stderr)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(self._owner(), f)
            self.held = True
            return self
        raise OutputError(f"could not lock the output folder {self.folder}")

    def release(self) -> None:
        if self.held and self._read().get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
