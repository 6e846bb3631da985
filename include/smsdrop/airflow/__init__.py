"""Airflow glue for the provider's SFTP drop-box: the only part of smsdrop importing Airflow.

* :mod:`~smsdrop.airflow.hooks` — :class:`MTargetHook` (pinned host key, remote state of a
  SEND name, atomic upload, reports, fast transfers);
* :mod:`~smsdrop.airflow.operators` — :class:`MTargetUploadOperator` (exactly-once upload);
* :mod:`~smsdrop.airflow.sensors` — :class:`MTargetFileStatusSensor` (``.done``/``.reject``)
  and :class:`MTargetReportSensor` (the ACK), deferrable by default;
* :mod:`~smsdrop.airflow.triggers` — the triggers they defer to (provider's async SFTP hook);
* :mod:`~smsdrop.airflow.exceptions` — errors split by what a retry can do.

Nothing is imported here, so importing one module does not load the others. docs/AIRFLOW.md
shows a DAG, the connection and the guarantees.
"""
