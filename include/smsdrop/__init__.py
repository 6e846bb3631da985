"""smsdrop: mass marketing SMS campaigns through MTarget's SFTP drop-box protocol.

This package is the domain library: it knows the provider's protocol and has no Airflow
import. The Airflow glue lives in :mod:`smsdrop.airflow` only.
"""

__version__ = "0.1.0"
