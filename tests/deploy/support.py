"""Helpers of the deployment tests: a proxy that can slow uploads down (so a worker can be
killed while one is in flight), and what a finished campaign run must show."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from smsdrop.sandbox import Sandbox
from tests.airflow.support import deliveries


class ThrottledProxy:
    """Forwards 127.0.0.1:``port`` to ``target_port``. While :attr:`rate` (client bytes per
    second) is set, what clients send is slowed to it: an upload of 150 KB takes seconds."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.rate: float | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, name="throttled-proxy", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for source, sink, slow in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(source, sink, slow), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        try:
            while True:
                data = source.recv(8192 if slow and self.rate else 65536)
                if not data:
                    break
                sink.sendall(data)
                if slow and self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


def by_task(instances: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Task instances grouped by task id, mapped ones in map-index order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for ti in sorted(instances, key=lambda t: (t["task_id"], t["map_index"])):
        grouped.setdefault(ti["task_id"], []).append(ti)
    return grouped


def overlapping(instances: list[dict[str, Any]]) -> int:
    """The most task instances that were running at one same instant."""
    edges = []
    for ti in instances:
        edges.append((datetime.fromisoformat(ti["start_date"]), 1))
        edges.append((datetime.fromisoformat(ti["end_date"]), -1))
    running = most = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        running += step
        most = max(most, running)
    return most


def accounted(warehouse: Any, sandbox: Sandbox, campaign_id: str) -> dict[str, Any]:
    """Every audience row in a SEND file or the rejects, every SEND record sent exactly once
    (the sandbox's event log) and acknowledged (``sms_deliveries``): the figures, and the
    names of files that were not sent exactly once (empty when all is well)."""
    campaign = warehouse.campaign(campaign_id)
    files = warehouse.campaign_files(campaign_id)
    [[rejected_rows]] = warehouse.query_frame(
        "SELECT count(*) FROM sms_rejected_rows WHERE campaign_id = %s", (campaign_id,)
    ).values.tolist()
    [[delivered_rows]] = warehouse.query_frame(
        "SELECT count(*) FROM sms_deliveries WHERE campaign_id = %s", (campaign_id,)
    ).values.tolist()
    sandbox.settle()
    not_once = [f["name"] for f in files if not deliveries(sandbox, f["name"]).exactly_once(
        int(f["row_count"])
    )]  # fmt: skip
    return {
        "recipients": campaign["recipients"],
        "valid+rejected": campaign["valid"] + campaign["rejected"],
        "rejected": campaign["rejected"],
        "rejected_rows": rejected_rows,
        "valid": campaign["valid"],
        "in_files": sum(int(f["row_count"]) for f in files),
        "acked": delivered_rows,
        "files": len(files),
        "states": sorted({f["state"] for f in files}),
        "not_sent_exactly_once": not_once,
    }


def retried(stack: Any, logs: Path, runs: list[tuple[str, str]]) -> str:
    """Why each task instance of ``runs`` that needed more than one try did: the end of
    its first try's log and the scheduler's lines naming it (empty when none retried).
    A bare ``try_number`` says a retry happened; a failing test must say why."""
    report = []
    for dag_id, run_id in runs:
        for ti in stack.task_instances(dag_id, run_id):
            if (ti["try_number"] or 0) <= 1:
                continue
            task, index = ti["task_id"], ti["map_index"]
            folder = logs / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task}"
            if index >= 0:
                folder = folder / f"map_index={index}"
            first = sorted(folder.glob("attempt=1.*"))  # the task's log, then its trigger's
            tail = [
                line
                for path in first
                for line in path.read_text(errors="replace").splitlines()[-25:]
            ]
            scheduler = [
                line
                for line in stack.log_file("scheduler").read_text(errors="replace").splitlines()
                if task in line and run_id in line
            ][-15:]
            report.append(
                f"{dag_id} {run_id} {task}[{index}] try {ti['try_number']} ({ti['state']}):\n"
                f"  first try ({', '.join(p.name for p in first) or 'no log'}):\n    "
                + "\n    ".join(tail)
                + "\n  scheduler:\n    "
                + "\n    ".join(scheduler)
            )
    return "\n".join(report)
