"""Errors of the MTarget integration, split by what a retry can do about them.

Airflow retries a task that raises :class:`~airflow.sdk.exceptions.AirflowException` and
fails at once, retries or not, on :class:`~airflow.sdk.exceptions.AirflowFailException`.
So every error here is one or the other on purpose:

* **retrying cannot help** (:class:`MTargetFailure` and its subclasses): a refused host key
  or login, a bad connection setting, a file the provider rejected, a name off the pattern.
  Retrying them would only hammer the provider's server (an account can be locked after a
  few failed logins) or, worse for a rejected file, invite somebody to "fix" it by
  uploading again;
* **a retry may help** (:class:`MTargetTransferError`): the connection dropped, the server
  went away, a size did not match. The upload operator's retry reads the remote state
  first, so retrying such a failure never submits a file twice.

Messages say which host, which key fingerprint, which login method, which file: what a
person on call needs, and never a password, a private key or a phone number.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException

__all__ = [
    "MTargetAuthError",
    "MTargetConfigError",
    "MTargetFailure",
    "MTargetHostKeyError",
    "MTargetRejectedError",
    "MTargetTransferError",
]


class MTargetFailure(AirflowFailException):
    """A failure that no retry can fix: the task fails at once."""


class MTargetConfigError(MTargetFailure):
    """The connection or the task is set up wrongly (extras, file name, local file)."""


class MTargetHostKeyError(MTargetFailure):
    """The server's host key is not the pinned one, or none is pinned."""


class MTargetAuthError(MTargetFailure):
    """The server refused the login (wrong key, wrong password, method not allowed)."""


class MTargetRejectedError(MTargetFailure):
    """The provider renamed the SEND file ``.reject``: nothing was sent, nothing will be."""


class MTargetTransferError(AirflowException):
    """A transfer or a remote operation failed in a way a retry may fix."""
