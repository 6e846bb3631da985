"""Numbers read from the environment: refused in one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsdrop.errors import InputError
from smsdrop.settings import number_setting

NAME = "SMSDROP_TEST_SECONDS"


@pytest.mark.parametrize(("value", "expected"), [(None, 30), ("", 30), (" 2.5 ", 2.5), ("0", 0)])
def test_a_number_or_the_default(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: float
) -> None:
    if value is None:
        monkeypatch.delenv(NAME, raising=False)
    else:
        monkeypatch.setenv(NAME, value)
    assert number_setting(NAME, 30, minimum=0) == expected


@pytest.mark.parametrize(
    ("value", "says"),
    [("abc", "must be a number, at least 0; not 'abc'"), ("nan", "must be a number"),
     ("inf", "must be a number"), ("-1", "must be at least 0, not -1"),
     ("1e3\x1b[2J", "not '1e3\\\\x1b[2J'")],
)  # fmt: skip
def test_a_bad_value_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv(NAME, value)
    with pytest.raises(InputError) as error:
        number_setting(NAME, 30, minimum=0)
    assert str(error.value).startswith(f"field {NAME}: "), error.value
    assert says in str(error.value), error.value


@pytest.mark.parametrize(
    ("value", "says"),
    [("2.5", "must be a whole number, 1..10; not '2.5'"), ("11", "must be 1..10, not 11"),
     ("0", "must be 1..10, not 0")],
)  # fmt: skip
def test_a_whole_number_within_bounds(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv(NAME, "10")
    assert number_setting(NAME, 5, minimum=1, maximum=10, whole=True) == 10
    assert isinstance(number_setting(NAME, 5, minimum=1, maximum=10, whole=True), int)
    monkeypatch.setenv(NAME, value)
    with pytest.raises(InputError, match="field SMSDROP_TEST_SECONDS: ") as error:
        number_setting(NAME, 5, minimum=1, maximum=10, whole=True)
    assert says in str(error.value), error.value


def test_the_duckdb_lock_wait_is_refused_when_bad(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from smsdrop.warehouse.duckdb_engine import LOCK_TIMEOUT_ENV, connect

    path = str(tmp_path / "warehouse.duckdb")
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "soon")
    with pytest.raises(InputError, match=f"field {LOCK_TIMEOUT_ENV}: must be a number"):
        connect(path, read_only=False)
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "0.5")
    connect(path, read_only=False).close()
