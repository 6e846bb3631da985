"""The SFTP provider's asyncssh hook under :class:`~smsdrop.airflow.hooks.MTargetHook`'s
rules: what the triggers poll with (:mod:`smsdrop.airflow.triggers`)."""

from __future__ import annotations

import os
from typing import Any

import asyncssh
from airflow.providers.common.compat.connection import get_async_connection
from airflow.providers.sftp.hooks.sftp import SFTPHookAsync
from asyncssh.public_key import load_default_keypairs

from smsdrop.airflow.exceptions import MTargetConfigError
from smsdrop.airflow.ssh_rules import ASYNC_CIPHERS, ASYNC_KEX, ASYNC_MACS, check_extras, truthy

__all__ = ["MTargetHookAsync"]


class MTargetHookAsync(SFTPHookAsync):
    """
    The SFTP provider's asyncssh hook (what the triggers poll with) under
    :class:`MTargetHook`'s rules.

    ``SFTPHookAsync`` turns ``known_hosts: none`` into no host key check at all, offers the
    ssh-agent's keys and every key in ``~/.ssh`` when the connection has none, reads
    ``~/.ssh/config``, and lets asyncssh negotiate CBC or HMAC-MD5 with a server that
    offers only those. Here: the same extras are refused as on the sync side
    (:func:`check_extras`), only the connection's own key, key file and password are
    offered (``look_for_keys`` / ``allow_agent`` extras to widen), no SSH config file is
    read, ``~/.ssh/known_hosts`` neither (without a pin nothing is trusted), and the weak
    algorithms are never offered.
    """

    async def _get_conn(self) -> asyncssh.SSHClientConnection:
        conn = await get_async_connection(self.sftp_conn_id)
        extras = conn.extra_dejson
        check_extras(self.sftp_conn_id, extras)
        self._parse_extras(conn)  # type: ignore[arg-type]
        if isinstance(self.known_hosts, str) and self.known_hosts.lower() == "none":
            raise MTargetConfigError(  # pragma: no cover - refused by check_extras already
                f"connection {self.sftp_conn_id!r}: no host key check is refused"
            )
        keys: list[Any] = []
        if self.key_file:
            keys.append(self.key_file)
        if self.private_key:
            keys.append(asyncssh.import_private_key(self.private_key, self.passphrase or None))
        if truthy(extras.get("look_for_keys", False)):
            keys.extend(load_default_keypairs(self.passphrase or None))
        agent = await asyncssh.connect_agent() if truthy(extras.get("allow_agent")) else None
        try:
            if agent is not None:
                keys.extend(await agent.get_keys())
            options: dict[str, Any] = {
                "host": self.host or conn.host,
                "port": self.port or conn.port or 22,
                "username": self.username or conn.login,
                "password": self.password or conn.password or None,
                # None: no public key auth. Never () or []: asyncssh would then load every
                # key of ~/.ssh and the agent's by itself.
                "client_keys": keys or None,
                "agent_path": None,
                "config": None,
                "encryption_algs": ASYNC_CIPHERS,
                "mac_algs": ASYNC_MACS,
                "kex_algs": ASYNC_KEX,
            }
            if self.passphrase:
                options["passphrase"] = self.passphrase
            unpinned = "known_hosts" not in extras and self.known_hosts == os.path.expanduser(
                self.default_known_hosts
            )
            # Not pinned: trust nothing (asyncssh would read ~/.ssh/known_hosts, which the
            # sync hook never does); an explicit known_hosts file or the host_key line is used.
            options["known_hosts"] = (
                asyncssh.import_known_hosts("") if unpinned else self.known_hosts
            )
            return await asyncssh.connect(**options)
        finally:
            if agent is not None:
                agent.close()  # the login is over: nothing more to sign
