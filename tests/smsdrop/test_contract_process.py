"""The contract checked beside preparation, in a real process of its own: the same counts
as the contract after it, the files' final names, the opt-outs that arrived meanwhile, a
bad file named, and no process left behind whatever happens."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from smsdrop.contract_process import ContractFailed, ContractProcess, _write_numbers, serve
from smsdrop.errors import InputError
from smsdrop.prepare import prepare
from smsdrop.record_rules import Rules
from smsdrop.upload_contract import check_files
from tests.campaigns import campaign_spec
from tests.smsdrop.test_upload_contract import broken, good_rows, send_file

NO_OPTOUTS = pd.Series([], dtype="string")


def counts(result: dict | object) -> dict:
    items = result["expectations"] if isinstance(result, dict) else result.expectations
    return {(e["file"], e["expectation"], e["column"]): (e["element_count"], e["unexpected_count"])
            for e in items}  # fmt: skip


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:  # reaped, or a zombie nobody waits for
        return stat.read().split()[2] == "Z"


def test_the_process_finds_what_the_contract_after_preparation_finds(tmp_path: Path) -> None:
    rows = good_rows(6)
    rows[2] = ("C2", "0612345602", "SHOP", "Hello")  # not E.164
    first = send_file(tmp_path, ".part-00000.partial", rows)
    second = send_file(tmp_path, ".part-00001.partial", good_rows(4, start=5))  # C5 again
    optouts = pd.Series(["+33612345603"])
    after = check_files([first, second], Rules(), optouts, batch_rows=4)
    with ContractProcess(Rules(), optouts, batch_rows=4) as process:
        process.submit(first)
        process.submit(second)
        process.files_done()
        beside = process.result([".part-00000.partial", ".part-00001.partial"])
    later = ("*", "expect_msisdn_not_in_later_optouts", "msisdn")
    assert counts(beside) == {**counts(after), later: (10, 0)}  # none arrived meanwhile
    assert (
        broken(beside)
        == broken(after)
        == {
            (".part-00000.partial", "expect_column_values_to_match_regex", "msisdn"): 1,
            (".part-00000.partial", "expect_column_values_to_not_be_in_set", "msisdn"): 1,
            ("*", "expect_msisdn_unique_across_files", "msisdn"): 1,
        }
    )
    assert beside.rows == 10 and beside.files == 2 and not beside.success
    assert process.usage["cpu_seconds"] > 0 and process.usage["peak_mb"] > 0


def test_the_opt_out_list_goes_over_as_a_private_file_removed_at_the_end(tmp_path: Path) -> None:
    part = send_file(tmp_path, "a.csv", good_rows(3))
    folder = tmp_path / "staging"
    folder.mkdir()
    with ContractProcess(Rules(), pd.Series(["+33612345601", None]), folder=folder) as process:
        (given,) = folder.iterdir()
        assert oct(given.stat().st_mode & 0o777) == "0o600"
        process.submit(part)
        process.files_done()
        result = process.result(["a.csv"])
    assert broken(result) == {("a.csv", "expect_column_values_to_not_be_in_set", "msisdn"): 1}
    assert not list(folder.iterdir())


def test_the_files_get_their_final_names_in_the_result(tmp_path: Path) -> None:
    parts = [send_file(tmp_path, f".part-{i:05d}.partial", good_rows(2, 2 * i)) for i in (0, 1)]
    with ContractProcess(Rules(), NO_OPTOUTS) as process:
        for part in parts:
            process.submit(part)
        process.files_done()
        with pytest.raises(ValueError, match="2 files checked, 1 names given"):
            process.result(["SEND-1.csv"])
        result = process.result(["SEND-1.csv", "SEND-2.csv"])
    assert result.success
    assert {e["file"] for e in result.expectations} == {"SEND-1.csv", "SEND-2.csv", "*"}


def test_an_opt_out_that_arrived_meanwhile_breaks_the_contract(tmp_path: Path) -> None:
    part = send_file(tmp_path, "a.csv", good_rows(5))
    with ContractProcess(Rules(), NO_OPTOUTS) as process:
        process.submit(part)
        process.files_done()
        later = pd.Series(["+33612345603", "+33699999999", None, "not a number"])
        result = process.result(["a.csv"], later)
    assert broken(result) == {("*", "expect_msisdn_not_in_later_optouts", "msisdn"): 1}
    assert not result.success


def test_a_file_it_cannot_read_is_named_and_the_process_ends(tmp_path: Path) -> None:
    bad = tmp_path / ".part-00000.partial"
    bad.write_bytes(b"C1;+33612345601;SHOP;\xff\xfe bad bytes\r\n")
    process = ContractProcess(Rules(), NO_OPTOUTS)
    with process, pytest.raises(InputError, match="not a readable SEND file") as raised:
        process.submit(bad)
        process.files_done()
    assert raised.value.file == str(bad)
    assert gone(process._process.pid)


def test_leaving_early_stops_the_process_at_once(tmp_path: Path) -> None:
    part = send_file(tmp_path, "a.csv", good_rows(3))
    with (
        pytest.raises(RuntimeError, match="preparation failed"),
        ContractProcess(Rules(), NO_OPTOUTS) as process,
    ):
        process.submit(part)
        raise RuntimeError("preparation failed")
    assert gone(process._process.pid)


def test_a_process_that_dies_is_a_contract_failure_not_a_hang(tmp_path: Path) -> None:
    part = send_file(tmp_path, "a.csv", good_rows(3))
    with ContractProcess(Rules(), NO_OPTOUTS) as process:
        process._process.kill()
        process._process.wait()
        with pytest.raises(ContractFailed, match="ended"):
            process.submit(part)
            process.files_done()


def test_without_its_end_the_process_answers_nothing_and_fails(tmp_path: Path) -> None:
    part = send_file(tmp_path, "a.csv", good_rows(3))
    numbers = _write_numbers(pd.Series(["+33612345603"]), tmp_path)
    settings = {"long_sms": False, "encoding": "utf-8", "batch_rows": 2, "optouts": str(numbers)}
    requests = io.StringIO(f"{json.dumps(settings)}\n{json.dumps({'file': str(part)})}\n")
    answers = io.StringIO()
    assert serve(requests, answers) == 1
    assert answers.getvalue() == ""
    assert serve(io.StringIO(""), answers) == 1


class Recorder:
    """A file check that notes what it was given and when."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, int]] = []  # name, records in the file then
        self.batches_then: list[int] = []
        self.done_with: list[str] | None = None
        self.batches = 0

    def submit(self, path: Path) -> None:
        self.submitted.append((path.name, path.read_bytes().count(b"\r\n")))
        self.batches_then.append(self.batches)

    def files_done(self) -> None:
        self.done_with = sorted(p.name for p in self._folder.iterdir() if p.suffix == ".partial")


def test_prepare_gives_each_file_once_whole_before_the_files_are_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audience = tmp_path / "audience.csv"
    lines = ["msisdn,idremote"] + [f"+336123456{i:02d},C{i}" for i in range(11)]
    audience.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    recorder = Recorder()
    recorder._folder = out  # type: ignore[attr-defined]
    from smsdrop import prepare as prepare_module

    real = prepare_module.check_batch

    def counting(*args: object, **kwargs: object) -> object:
        recorder.batches += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(prepare_module, "check_batch", counting)
    summary = prepare(audience, campaign_spec(), out, batch_size=2, max_records=3, check=recorder)
    parts = [f".part-{i:05d}.partial" for i in range(4)]
    assert recorder.submitted == [(parts[0], 3), (parts[1], 3), (parts[2], 3), (parts[3], 2)]
    # the first file went while the audience was still being read (6 batches of 2)
    assert recorder.batches_then[0] < 6
    assert recorder.done_with == parts  # every file checked before any is renamed
    assert [f["rows"] for f in summary.files] == [3, 3, 3, 2]
    assert not list(out.glob("*.partial"))


def test_a_killed_preparation_leaves_no_contract_process_behind(tmp_path: Path) -> None:
    """A worker killed mid-preparation (SIGKILL: no ``finally`` runs): the contract process
    sees its stdin close and ends by itself."""
    import signal
    import subprocess
    import sys
    import time

    part = send_file(tmp_path, "a.csv", good_rows(3))
    script = (
        "import sys, time, pandas as pd\n"
        "from pathlib import Path\n"
        "from smsdrop.contract_process import ContractProcess\n"
        "from smsdrop.record_rules import Rules\n"
        "process = ContractProcess(Rules(), pd.Series([], dtype='string'))\n"
        f"process.submit(Path({str(part)!r}))\n"
        "print(process._process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        assert not gone(child)
        parent.send_signal(signal.SIGKILL)  # the parent only: its child lives on, orphaned
        parent.wait(10)
        deadline = time.monotonic() + 60
        while not gone(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gone(child)
    finally:  # whatever is left of its process group (the child too, had it lived on)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait(10)
        parent.stdout.close()  # type: ignore[union-attr]


def test_a_process_that_answered_ends_by_itself(tmp_path: Path) -> None:
    part = send_file(tmp_path, "a.csv", good_rows(2))
    with ContractProcess(Rules(), NO_OPTOUTS) as process:
        process.submit(part)
        process.files_done()
        assert process.result(["a.csv"]).success
    assert process._process.returncode == 0  # it returned, it was not killed
