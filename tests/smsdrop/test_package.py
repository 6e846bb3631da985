"""Package-level promises: the domain library imports no Airflow, and nothing heavy."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import smsdrop


def domain_modules() -> list[str]:
    return sorted(
        f"smsdrop.{info.name}"
        for info in pkgutil.iter_modules(smsdrop.__path__)
        if info.name not in ("airflow", "__main__", "demo")
    )


def test_domain_library_does_not_import_airflow() -> None:
    modules = domain_modules()
    assert len(modules) >= 10
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
