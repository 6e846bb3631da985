"""Starting sandboxes in tests: one factory for every test package that needs them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh

from smsdrop.sandbox import Sandbox, SandboxConfig

MakeSandbox = Callable[..., Sandbox]


class SandboxFactory:
    """Starts sandboxes on free ports under ``root`` with a test package's defaults;
    ``factory(**changes)`` overrides them. :meth:`stop` stops every one it started."""

    def __init__(self, root: Path, **defaults: Any) -> None:
        self.root = root
        # fsync off: a test's "crash" kills a process, never the machine (docs/SANDBOX.md).
        self.defaults = {"port": 0, "seed": 7, "poll_interval": 0.05, "fsync": False, **defaults}
        self.started: list[Sandbox] = []

    def __call__(self, **changes: Any) -> Sandbox:
        settings = {"root": self.root / f"sandbox{len(self.started)}", **self.defaults, **changes}
        sandbox = Sandbox(SandboxConfig(**settings)).start()
        self.started.append(sandbox)
        return sandbox

    def stop(self) -> None:
        for sandbox in self.started:
            sandbox.stop()


def write_key(folder: Path, name: str, algorithm: str = "ssh-ed25519") -> Path:
    """A private key ``folder/id_<name>`` (mode 0600) and its ``.pub``, OpenSSH format."""
    options = {"key_size": 2048} if algorithm == "ssh-rsa" else {}
    key = asyncssh.generate_private_key(algorithm, comment=f"smsdrop-test-{name}", **options)
    path = folder / f"id_{name}"
    key.write_private_key(str(path))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")
    return path
