"""Helpers for the Airflow integration tests: SEND files, a fault-injecting TCP proxy,
the sandbox's event log as the oracle of "sent exactly once", and ``dag.test()`` runs."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsdrop.sandbox import Sandbox

#: The message every test SEND file carries; the log-safety test looks for it.
BODY = "Promo -20% ce samedi au magasin. STOP au 36111"


def send_bytes(rows: int, start: int = 0, *, bad_row: int | None = None) -> bytes:
    """``rows`` valid SEND records (distinct French mobiles), CRLF; ``bad_row`` (1-based)
    gets an invalid number, which makes the provider reject the whole file."""
    lines = []
    for index in range(rows):
        number = f"+336{12000000 + start + index:08d}"
        if bad_row is not None and index + 1 == bad_row:
            number = "+3361"
        lines.append(f"C{start + index:07d};{number};SHOP;{BODY}\r\n")
    return "".join(lines).encode()


def write_send(folder: Path, name: str, rows: int, **options: Any) -> Path:
    path = folder / name
    path.write_bytes(send_bytes(rows, **options))
    return path


def msisdns(rows: int, start: int = 0) -> list[str]:
    return [f"+336{12000000 + start + index:08d}" for index in range(rows)]


# --- the oracle ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deliveries:
    """What the sandbox did with one SEND name, from its event log."""

    received: int  # file_received events (a .csv taken)
    ignored: int  # file_ignored (a second .csv of a processed name: a double submission)
    rejected: int
    per_row: Counter[int]  # message_sent + message_not_sent per record number

    def exactly_once(self, rows: int) -> bool:
        return (
            self.received == 1
            and self.ignored == 0
            and set(self.per_row) == set(range(1, rows + 1))
            and all(count == 1 for count in self.per_row.values())
        )


def deliveries(sandbox: Sandbox, name: str) -> Deliveries:
    per_row: Counter[int] = Counter()
    for kind in ("message_sent", "message_not_sent"):
        per_row.update(e["row"] for e in sandbox.events(kind, file=name))
    return Deliveries(
        received=len(sandbox.events("file_received", name=name)),
        ignored=len(sandbox.events("file_ignored", name=name)),
        rejected=len(sandbox.events("file_rejected", name=name)),
        per_row=per_row,
    )


# --- a TCP proxy that cuts connections --------------------------------------------------


class FaultProxy:
    """Forwards 127.0.0.1:``port`` to ``target_port``; can cut chosen connections.

    ``cut_next(n)`` makes the next connection die after ``n`` bytes from the client (both
    directions closed at once, as when a server process dies or a link drops). The cut
    point is in the encrypted stream: a test picks a byte offset, not a protocol step.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._plan: list[int | None] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.connections = 0
        self.cuts = 0
        self._closed = False
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    def cut_next(self, after_bytes: int | None) -> None:
        """Cut the next connection after ``after_bytes`` client bytes (None: leave it)."""
        with self._lock:
            self._plan.append(after_bytes)

    def clear(self) -> None:
        with self._lock:
            self._plan.clear()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _kill(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                budget = self._plan.pop(0) if self._plan else None
                self.connections += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _kill(client)
                continue
            for sock in (client, upstream):  # no Nagle delay on the SSH round trips
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((client, upstream))
            pair = (client, upstream)
            threading.Thread(
                target=self._pump, args=(client, upstream, budget, pair), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, None, pair), daemon=True
            ).start()

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        budget: int | None,
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if budget is not None:
                    if len(data) >= budget:
                        if budget:
                            sink.sendall(data[:budget])
                        with self._lock:
                            self.cuts += 1
                        break
                    budget -= len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in pair:
                _kill(sock)
            with self._lock:
                self._sockets.difference_update(pair)


def _kill(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


# --- dag.test() ---------------------------------------------------------------------------


def register_dag(dag: Any) -> None:
    """Write a DAG defined in a test module into the metadata DB, as the DAG processor would.

    ``dag.test()`` only runs DAGs found in a bundle (``dags/``); a test DAG lives in its
    test module, so it is added to the ``dags-folder`` bundle's records directly.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    DagBundlesManager().sync_bundles_to_db()
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder",
            None,
            [LazyDeserializedDAG.from_dag(dag)],
            {},
            None,
            set(),
            session=session,
        )


def run_dag(dag: Any, **kwargs: Any) -> Any:
    """``dag.test()`` after :func:`register_dag`; returns the DagRun."""
    register_dag(dag)
    return dag.test(**kwargs)


def task_states(run: Any) -> dict[str, tuple[str, int]]:
    """{task_id: (state, try_number)} of a finished ``dag.test()`` run."""
    return {ti.task_id: (str(ti.state), ti.try_number) for ti in run.get_task_instances()}


def xcom(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key="return_value")
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


def text_of(paths: Iterable[Path]) -> str:
    return "\n".join(p.read_text(errors="replace") for p in paths if p.is_file())


def task_logs(dag_id: str, since: float) -> str:
    """Task log files of ``dag_id`` written since ``since`` (``dag.test()`` logs to stdout
    today; files if configured), in Airflow's configured log folder: a pytest-xdist worker
    has its own (tests/conftest.py), so another worker's runs are never read as this one's."""
    from airflow.configuration import conf

    files = Path(conf.get("logging", "base_log_folder")).glob(f"dag_id={dag_id}/**/*.log")
    return text_of(f for f in files if f.stat().st_mtime >= since)
