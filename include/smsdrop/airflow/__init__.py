"""Airflow glue for the provider's SFTP drop-box: the only part of smsdrop importing Airflow.

* :mod:`~smsdrop.airflow.hooks` — :class:`MTargetHook` (remote state of a SEND name,
  atomic upload, reports) on :mod:`~smsdrop.airflow.sftp_session`'s ``PinnedSFTPHook``
  (pinned host key, explained refusals, fast transfers); :mod:`~smsdrop.airflow.ssh_rules`
  (the algorithms and extras both hooks refuse), :mod:`~smsdrop.airflow.async_hook` (the
  asyncssh hook the triggers poll with);
* :mod:`~smsdrop.airflow.operators` — :class:`MTargetUploadOperator` (exactly-once upload);
* :mod:`~smsdrop.airflow.sensors` — :class:`MTargetFileStatusSensor` (``.done``/``.reject``)
  and :class:`MTargetReportSensor` (the ACK), deferrable by default;
* :mod:`~smsdrop.airflow.triggers` — the triggers they defer to; what a look at the folders
  means is :mod:`smsdrop.dropbox`'s verdict, for the sensors and the triggers alike;
* :mod:`~smsdrop.airflow.exceptions` — errors split by what a retry can do.

Nothing is imported here, so importing one module does not load the others. docs/AIRFLOW.md
shows a DAG, the connection and the guarantees.
"""
