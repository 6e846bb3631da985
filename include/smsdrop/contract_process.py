"""Runs the upload contract beside ``prepare``, in a process of its own (the DAG's
``prepare`` task starts it; ``python -m smsdrop.contract_process`` is that process).

The contract (:mod:`smsdrop.upload_contract`) checked after preparation cost more than half
of preparation's time at 10,000,000 recipients: importing great-expectations, reading
each SEND file back, eight expectations per batch. Preparation keeps about one core of two
busy, and its SEND files are whole one by one (``SendFileWriter.completed``), so the
contract runs on the other core while the next files are prepared: it imports
great-expectations while the audience is read, checks each file as soon as it is written,
and only the last file's check is left once preparation ends (docs/PERFORMANCE.md).

It is the same contract on the same files, read back from disk by another process; the
opt-outs arrived while the files were prepared are checked once they are all written
(``later_optouts``). The process talks JSON lines: on stdin the settings (the opt-out
list as the path of an Arrow file, removed when the parent closes), then
``{"file": path}`` per file, ``{"files_done": true}`` (answered once every file is
checked) and ``{"end": …}`` with the later opt-outs' file (answered with the result). When
stdin closes before ``end`` (its parent went away), it stops after the file in hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Self

import pandas as pd
import pyarrow as pa

from smsdrop.errors import InputError
from smsdrop.record_rules import Rules
from smsdrop.upload_contract import BATCH_ROWS, Contract, ContractResult

#: How the process is started: this module, with the interpreter that runs ours.
COMMAND = (sys.executable, "-m", "smsdrop.contract_process")


class ContractFailed(RuntimeError):
    """The contract process ended without a result (it crashed, or was killed)."""


class ContractProcess:
    """The parent's side: start it (great-expectations is imported at once), ``submit``
    each SEND file when it is whole, ``files_done`` before the files are renamed, then
    ``result`` with the files' final names. Leaving the ``with`` block stops the process
    whatever happened (a failed preparation leaves no process behind)."""

    def __init__(
        self,
        rules: Rules,
        optouts: pd.Series,
        *,
        encoding: str = "utf-8",
        batch_rows: int = BATCH_ROWS,
        folder: Path | None = None,
    ) -> None:
        self._process = subprocess.Popen(
            COMMAND,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_child_env(),
            text=True,
            encoding="utf-8",
        )
        self._submitted: list[str] = []
        self._answered = False
        self.usage: dict[str, float] = {}  # the process's CPU seconds and peak RSS (MB)
        self._folder = folder
        self._given: list[Path] = []  # the opt-out lists written for it (personal data)
        settings = {"long_sms": rules.long_sms, "encoding": encoding, "batch_rows": batch_rows}
        try:
            self._send({**settings, "optouts": self._numbers_file(optouts)})
        except BaseException:  # not started as it should: no process left behind
            self.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, path: Path) -> None:
        """Check ``path`` (whole, written and closed) next."""
        self._submitted.append(path.name)
        self._send({"file": str(path)})

    def files_done(self) -> None:
        """Return once every submitted file is checked (they may be renamed then)."""
        self._send({"files_done": True})
        self._receive("checked")

    def result(self, names: list[str], later_optouts: pd.Series | None = None) -> ContractResult:
        """The contract's result, each file under its name in ``names`` (in the order the
        files were submitted); ``later_optouts`` are the opt-outs that arrived meanwhile."""
        if len(names) != len(self._submitted):
            raise ValueError(f"{len(self._submitted)} files checked, {len(names)} names given")
        later = later_optouts if later_optouts is not None else pd.Series([], dtype="string")
        self._send({"end": True, "later_optouts": self._numbers_file(later)})
        answer = self._receive("result")
        self._answered = True  # it ends by itself now
        self.usage = answer["usage"]
        result = ContractResult(**answer["result"])
        final = dict(zip(self._submitted, names, strict=True))
        for item in result.expectations:
            item["file"] = final.get(item["file"], item["file"])
        return result

    def close(self) -> None:
        """Stop the process (at once when it is still working), reap it, and remove the
        opt-out lists it was given (personal data)."""
        for path in self._given:
            path.unlink(missing_ok=True)
        process = self._process
        if process.stdin is not None and not process.stdin.closed:
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
        if self._answered:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def _numbers_file(self, numbers: pd.Series) -> str:
        path = _write_numbers(numbers, self._folder)
        self._given.append(path)
        return str(path)

    def _send(self, message: dict[str, Any]) -> None:
        stdin = self._process.stdin
        if stdin is None:
            raise ContractFailed("the contract process has no input")
        try:
            stdin.write(json.dumps(message) + "\n")
            stdin.flush()
        except BrokenPipeError:  # it stopped: its own answer (or exit code) says why
            self._receive("any answer")

    def _receive(self, key: str) -> dict[str, Any]:
        stdout = self._process.stdout
        line = stdout.readline() if stdout is not None else ""
        if not line:
            code = self._process.wait()
            raise ContractFailed(f"the contract process ended (exit code {code}) without {key}")
        answer = json.loads(line)
        if "error" in answer:
            raise InputError(answer["error"], file=answer.get("file"), line=answer.get("line"))
        if key not in answer:
            raise ContractFailed(f"the contract process answered {sorted(answer)}, not {key}")
        return answer


def _write_numbers(numbers: pd.Series, folder: Path | None) -> Path:
    """``numbers`` as an Arrow IPC file (0600) in ``folder`` (the system's temporary one by
    default), for the process to read: millions of opt-outs as a JSON list would cost
    hundreds of MB of Python strings on both sides."""
    handle, name = tempfile.mkstemp(prefix=".contract-optouts-", suffix=".arrow", dir=folder)
    path = Path(name)
    try:
        table = pa.table({"msisdn": pa.array(numbers.dropna(), pa.large_string())})
        with os.fdopen(handle, "wb") as out, pa.ipc.new_file(out, table.schema) as writer:
            writer.write_table(table)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _read_numbers(path: Path) -> pd.Series:
    with pa.OSFile(str(path)) as source:
        column = pa.ipc.open_file(source).read_all().column("msisdn")
    return pd.Series(pd.array(column, dtype="string[pyarrow]"))


def _child_env() -> dict[str, str]:
    """The environment, with our package importable whatever the parent's ``sys.path``, and
    pyarrow's allocator (mimalloc) giving freed memory back at once: the process runs
    beside preparation, whose peak it adds to (~50 MB less, a little more CPU)."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("MIMALLOC_PURGE_DELAY", "0")
    return env


def serve(requests: IO[str], answers: IO[str]) -> int:
    """The process's side: the contract on each file it is given, as it is given. The
    settings are read first (the parent's write of them would wait for us), then
    great-expectations is imported (~2 s, while the parent reads the audience)."""
    settings = json.loads(requests.readline() or "null")
    if not settings:
        return 1
    # Preparation is the one that others wait for: we take what it leaves, one core at
    # most (one thread checks as fast as the pool, for less CPU), and yield to it.
    os.nice(10)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    rules = Rules(long_sms=bool(settings["long_sms"]))
    optouts = _read_numbers(Path(settings["optouts"]))
    contract = Contract(
        rules, optouts, encoding=settings["encoding"], batch_rows=int(settings["batch_rows"])
    )
    with contract:
        for line in requests:
            request = json.loads(line)
            if "file" in request:
                path = Path(request["file"])
                try:
                    contract.check(path)
                except InputError as error:
                    answer = {"error": error.reason, "file": error.file, "line": error.line}
                    _answer(answers, answer)
                    return 0
                pa.default_memory_pool().release_unused()  # ~200 MB cached: prepare needs it
            elif "files_done" in request:
                _answer(answers, {"checked": contract.files_checked})
            elif "end" in request:
                result = contract.finish(_read_numbers(Path(request["later_optouts"])))
                _answer(answers, {"result": result.as_dict(), "usage": _usage()})
                return 0
    return 1  # the parent went away before the end


def _answer(answers: IO[str], message: dict[str, Any]) -> None:
    answers.write(json.dumps(message) + "\n")
    answers.flush()


def _usage() -> dict[str, float]:
    """This process's CPU seconds and peak memory (MB), for the benchmarks."""
    times = os.times()
    peak = 0.0
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
    except OSError:  # not Linux: no peak to tell
        pass
    return {"cpu_seconds": times.user + times.system, "peak_mb": peak}


def main() -> int:
    """Answers on the stdout we were given; anything else printed goes to stderr."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return serve(sys.stdin, answers)


if __name__ == "__main__":
    sys.exit(main())
