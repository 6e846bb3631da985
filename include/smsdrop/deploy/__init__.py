"""smsdrop as a deployed Airflow service on one machine.

:mod:`smsdrop.deploy.stack` starts and stops Airflow's own components (api-server,
scheduler, dag-processor, triggerer, Celery workers) as separate processes with the settings
they must share; ``python -m smsdrop.deploy`` (``make airflow``) runs them with the provider
sandbox and a seeded demo audience. The same launcher runs the executor tests
(``tests/deploy/``). No Airflow import here: components are started as ``airflow …``
commands, and talked to over the REST API.
"""
