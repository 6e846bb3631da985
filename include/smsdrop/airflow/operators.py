"""Submit one SEND file to the provider, exactly once: :class:`MTargetUploadOperator`.

The provider processes a file the moment it appears as ``.csv`` and cannot cancel it, so a
second upload is a campaign sent twice. The operator's promise rests on three rules:

1. **The name is an input**, fixed before the first attempt (``remote_name``, or the local
   file's name, itself chosen by the task that wrote it). The operator never reads the
   clock, so a retry a minute later cannot make up a second name.
2. **The remote state is read first, on every attempt.** ``csv``, ``lock``, ``done`` or
   ``reject`` means the name was handed over already: nothing is uploaded, the log says so
   and the task returns the same metadata as the attempt that uploaded. A ``tmp`` is what an
   interrupted attempt left: it is removed, and the upload starts over.
3. **Handing over is one atomic step**: ``name.tmp`` is uploaded and verified, then renamed
   ``name.csv`` (:meth:`MTargetHook.upload_atomic`). Until that rename nothing was
   submitted; after it, rule 2 makes every later attempt a no-op. When the rename's answer
   is lost (connection cut), the state read settles what happened. The ``.csv`` is never
   stat'ed as proof: the provider renames it to ``.lock`` at once.

What is not covered: a provider that deleted the file (its 30-day retention) looks like one
never sent; and two attempts running at the same time (a "zombie" worker still uploading
while its retry starts) could interleave on ``name.tmp`` — Airflow's heartbeat kills a
zombie before its retry runs. (The sandbox ignores a second ``.csv`` of a processed name;
what the real provider does then is not documented, hence all of the above.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko
from airflow.sdk import BaseOperator

from smsdrop.airflow.exceptions import MTargetConfigError, MTargetTransferError
from smsdrop.airflow.hooks import MTargetHook, send_name
from smsdrop.dropbox import RemoteState

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["MTargetUploadOperator"]


class MTargetUploadOperator(BaseOperator):
    """
    Upload one SEND file to the provider's ``Send/`` folder, exactly once.

    Returns (XCom) small metadata, identical whether this attempt uploaded the file or found
    it submitted already: ``name``, ``stem``, ``remote_path``, ``bytes``, ``send_at``
    (ISO 8601, UTC, from the name), ``records`` and ``sha256`` (as given).

    :param local_path: the SEND file to upload: a path, or an ``ObjectStoragePath`` URL
        (``file://…``, ``s3://…``) fetched to a temporary file first (templated)
    :param remote_name: the name to give it; default the local file's name (templated).
        Must be ``SEND-SERVICEID-YYYYMMDD-HHMM-CAMPAIGNID.csv``.
    :param mtarget_conn_id: the provider's SFTP connection (templated)
    :param records: number of records, passed through into the metadata (for the report
        sensor's timeout), e.g. from the writer's manifest (templated)
    :param sha256: the file's SHA-256 from the writer's manifest, passed through (templated)
    """

    template_fields: Sequence[str] = (
        "local_path",
        "remote_name",
        "mtarget_conn_id",
        "records",
        "sha256",
    )
    ui_color = "#e8f4ff"

    def __init__(
        self,
        *,
        local_path: str | os.PathLike[str],
        remote_name: str | None = None,
        mtarget_conn_id: str = MTargetHook.default_conn_name,
        records: int | str | None = None,
        sha256: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.local_path = local_path
        self.remote_name = remote_name
        self.mtarget_conn_id = mtarget_conn_id
        self.records = records
        self.sha256 = sha256

    def execute(self, context: Context) -> dict[str, Any]:
        source = os.fspath(self.local_path)
        if "://" in source:  # a staged file behind an ObjectStoragePath URL
            from smsdrop.airflow.staging import local_file

            with local_file(source) as local:
                return self._submit(local)
        return self._submit(Path(source))

    def _submit(self, local: Path) -> dict[str, Any]:
        name = self.remote_name or local.name
        parsed = send_name(name)
        if not local.is_file():
            raise MTargetConfigError(f"local SEND file {local} does not exist")
        size = local.stat().st_size
        if size == 0:
            raise MTargetConfigError(f"local SEND file {local} is empty: the provider rejects it")
        records = None if self.records in (None, "", "None") else int(self.records)  # type: ignore[arg-type]
        hook = MTargetHook(self.mtarget_conn_id)
        metadata: dict[str, Any] = {
            "name": parsed.name,
            "stem": parsed.stem,
            "remote_path": hook.send_path(parsed.name),
            "bytes": size,
            "send_at": parsed.at.isoformat(),
            "records": records,
            "sha256": self.sha256 or None,
        }
        with hook.get_managed_conn():
            found = hook.remote_state(parsed.name)
            if found.state.submitted:
                self._already_submitted(hook, found.state, found.size, size, parsed.name)
                return metadata
            if found.stale_tmp:
                self.log.info(
                    "Removing %s left by an interrupted attempt (%d bytes); uploading again",
                    hook.send_path(parsed.with_ext(RemoteState.TMP)),
                    found.sizes[RemoteState.TMP.value],
                )
                hook.delete_send_file(parsed.with_ext(RemoteState.TMP))
            try:
                hook.upload_atomic(local, parsed.name)
            except MTargetTransferError:
                raise  # before the rename: nothing was handed over
            except (OSError, EOFError, paramiko.SSHException) as error:
                # Around the rename: it may have happened with only its answer lost. The
                # state decides, never a second upload.
                self._settle_after_error(hook, parsed.name, parsed.stem, error)
        self.log.info("Submitted %s (%d bytes), scheduled for %s", parsed.name, size, parsed.at)
        return metadata

    def _settle_after_error(
        self, hook: MTargetHook, name: str, stem: str, error: BaseException
    ) -> None:
        what = f"{type(error).__name__}: {error}"
        try:
            after = hook.remote_state(name)
        except (OSError, EOFError, paramiko.SSHException, MTargetTransferError):
            raise MTargetTransferError(
                f"handing over {name} failed ({what}) and the connection is gone: "
                "the retry reads the remote state before doing anything"
            ) from error
        if not after.state.submitted:
            raise MTargetTransferError(
                f"handing over {name} failed ({what}); remote state {after.state}: "
                "the retry uploads it again"
            ) from error
        self.log.warning(
            "Handing over %s reported %s, but Send/ holds %s.%s: it was submitted",
            name,
            what,
            stem,
            after.state,
        )

    def _already_submitted(
        self, hook: MTargetHook, state: RemoteState, remote_size: int | None, size: int, name: str
    ) -> None:
        self.log.info(
            "%s is already in Send/ as .%s: it was submitted by an earlier attempt; "
            "NOT uploading it again",
            name,
            state,
        )
        if remote_size is not None and remote_size != size:
            self.log.warning(
                "Send/%s.%s is %d bytes but the local file is %d: the name was submitted "
                "with other content. Nothing is uploaded; check what was sent.",
                name.rsplit(".", 1)[0],
                state,
                remote_size,
                size,
            )
