"""Where a campaign run stages its files: an ``ObjectStoragePath`` per run.

Local by default (``$AIRFLOW_HOME/var/staging``); set ``SMSDROP_STAGING`` to any fsspec URL
(``s3://bucket/smsdrop``, ``gs://…``, with ``conn_id`` in the URL's user part as Airflow
allows) when tasks run on several workers. The domain code works on local paths: with a
remote staging area a task works in a local temporary folder and copies in or out.
Staged files hold personal data: the DAG removes a run's folder once it has served.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airflow.sdk import ObjectStoragePath

from smsdrop.airflow.warehouse import airflow_home

STAGING_ENV = "SMSDROP_STAGING"


def staging_root() -> ObjectStoragePath:
    url = os.environ.get(STAGING_ENV) or (airflow_home() / "var" / "staging").as_uri()
    return ObjectStoragePath(url)


def run_folder(campaign_id: str, run_id: str) -> ObjectStoragePath:
    """The run's own folder: ``<root>/<campaign id>/<run id, made file-name safe>``."""
    return staging_root() / campaign_id / re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)


def is_local(path: ObjectStoragePath) -> bool:
    return path.protocol in ("file", "local", "")


@contextmanager
def working_dir(folder: ObjectStoragePath, *, fetch: bool = False) -> Iterator[Path]:
    """A local folder standing for ``folder``: the folder itself when local; otherwise a
    temporary one (filled from ``folder`` when ``fetch``), copied back on success."""
    if is_local(folder):
        local = private_dir(Path(folder.path))
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="smsdrop-") as temp:
        local = Path(temp)
        if fetch and folder.exists():
            for item in folder.iterdir():
                if item.is_file():
                    with item.open("rb") as source, open(local / item.name, "wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
        yield local
        folder.mkdir(parents=True, exist_ok=True)
        for item in local.iterdir():
            if item.is_file():
                with open(item, "rb") as source, (folder / item.name).open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)


@contextmanager
def local_file(url: str) -> Iterator[Path]:
    """A local path for one staged file (a temporary copy when the staging is remote)."""
    path = ObjectStoragePath(url)
    if is_local(path):
        yield Path(path.path)
        return
    with tempfile.TemporaryDirectory(prefix="smsdrop-") as temp:
        local = Path(temp) / path.name
        with path.open("rb") as source, open(local, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        yield local


@contextmanager
def editable(url: str, companions: tuple[str, ...] = ()) -> Iterator[Path]:
    """A local path for a staged file to change in place, with its companion files (the
    same name plus each suffix): the file itself when local; otherwise temporary copies,
    written back when the block succeeds."""
    path = ObjectStoragePath(url)
    if is_local(path):
        yield Path(path.path)
        return
    with tempfile.TemporaryDirectory(prefix="smsdrop-") as temp:
        pairs = [(path, Path(temp) / path.name)]
        pairs += [(ObjectStoragePath(url + c), Path(temp) / (path.name + c)) for c in companions]
        for remote, local in pairs:
            if remote.exists():
                with remote.open("rb") as source, open(local, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
        yield pairs[0][1]
        for remote, local in pairs:
            if local.exists():
                with open(local, "rb") as source, remote.open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)


def private_dir(path: Path) -> Path:
    """``path`` and the folders above it that this call creates, mode 0700 (staged files
    hold personal data; ``mkdir(parents=True)`` would give the parents the umask's mode)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)
    return path


def remove(folder: ObjectStoragePath) -> bool:
    """Remove a run's folder and everything in it; False when there was none."""
    if is_local(folder):
        local = Path(folder.path)
        if not local.exists():
            return False
        shutil.rmtree(local)
        return True
    if not folder.exists():
        return False
    folder.fs.rm(folder.path, recursive=True)
    return True
