"""gunicorn's configuration for the Procfile's ``web`` and ``console`` processes.

One rule: a process that listens beyond this host runs with production settings. Development
and test settings generate their secrets into ``instance/`` and send cookies without
``Secure``; a network must never reach them. So, before the master binds anything,
``on_starting`` refuses (gunicorn prints the message and exits 1) when an address is not
loopback (``127.0.0.0/8``, ``::1``, ``localhost``, a ``unix:`` socket) and ``HOTLINE_ENV`` is
not ``production``; in production it loads the settings once, so that a missing secret stops
the master with the settings' own message instead of every worker in turn.

The Procfile passes ``--config gunicorn.conf.py`` (gunicorn also reads this file by default
when started from the repository root); command-line options and ``GUNICORN_CMD_ARGS`` still
apply, and the check sees the final addresses.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from typing import Any

#: No runtime control socket: nothing here uses it, and the ``web`` and ``console`` masters of one
#: host would otherwise both take the same default path (``~/.gunicorn/gunicorn.ctl``).
control_socket_disable = True


def is_loopback(bind: str) -> bool:
    """Whether a gunicorn ``--bind`` value reaches only this host."""
    if bind.startswith("unix:"):
        return True
    if bind.startswith("fd://"):
        return False  # an inherited socket: its address is unknown here, so it counts as public
    host = bind.removeprefix("tcp://")
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "" (every interface) or a host name: it may resolve to a public address


def refusal(binds: Iterable[str], environ: Mapping[str, str]) -> str | None:
    """The message that stops a development or test process bound beyond loopback, or None."""
    public = [bind for bind in binds if not is_loopback(bind)]
    env = environ.get("HOTLINE_ENV") or "development"
    if not public or env == "production":
        return None
    from settings import PRODUCTION_REQUIRED

    return (
        f"refusing to listen on {', '.join(public)} with HOTLINE_ENV={env}: development and "
        "test settings (secrets generated into instance/, cookies without Secure) must not "
        "face a network. Either bind loopback (HOST=127.0.0.1, the Procfile's default) or set "
        f"HOTLINE_ENV=production with {', '.join(PRODUCTION_REQUIRED)} (see README, 'Production')."
    )


def on_starting(server: Any) -> None:
    """gunicorn's hook, in the master before it binds: refuse, or check production's settings."""
    problem = refusal(server.cfg.bind, os.environ)
    if problem:
        raise RuntimeError(problem)  # gunicorn prints "Error: <message>" and exits with 1
    if os.environ.get("HOTLINE_ENV") == "production":
        from settings import load_settings

        load_settings()  # SettingsError (a RuntimeError) names every missing setting
