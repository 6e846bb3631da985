"""The benchmark's yardstick works: a private OpenSSH sshd takes the same upload as the
sandbox (the speed comparison itself is bench/bench_sftp.py). Skips without sshd."""

from __future__ import annotations

import pytest

from smsdrop.sandbox.reference import PrivateSshd, find_sshd, sftp_command
from tests.sandbox.conftest import SFTP, Keys, mobiles, records

pytestmark = pytest.mark.skipif(
    find_sshd() is None or SFTP is None, reason="OpenSSH sshd/sftp not installed (.ci/ensure-sshd)"
)


def test_same_upload_into_private_sshd_and_sandbox(sandbox, keys: Keys, tmp_path) -> None:
    import subprocess

    data = records(mobiles(1000))
    (tmp_path / "up.tmp").write_bytes(data)
    drop = tmp_path / "drop"
    drop.mkdir()
    with PrivateSshd(tmp_path / "sshd", keys.authorized) as sshd:
        known = tmp_path / "known_hosts"
        known.write_text(sshd.known_hosts_line() + "\n" + sandbox.known_hosts_line() + "\n")
        for port, user, target in (
            (sshd.port, sshd.user, f"{drop}/up.tmp"),
            (sandbox.port, "sandbox", "Send/SEND-12345-20261201-0800-ref.tmp"),
        ):
            subprocess.run(
                sftp_command(port, user, keys.ed25519, known, program=SFTP),
                input=f"put up.tmp {target}\n",
                text=True,
                capture_output=True,
                check=True,
                cwd=tmp_path,
                timeout=60,
            )
    assert (drop / "up.tmp").read_bytes() == data
    assert (sandbox.layout.send / "SEND-12345-20261201-0800-ref.tmp").read_bytes() == data
