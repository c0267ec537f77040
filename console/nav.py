"""The links on the console's home page and in its header, per role.

A page that should be reachable from the home page registers itself once, at import time of its
view module::

    nav.add_link("console.call_log", lazy_gettext("Call log"), "supervisor", "auditor", "admin")

The home page lists the links whose roles include the signed-in member's role, in the order
they were added (``order`` sorts them otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from staff.models import ROLES, StaffUser


@dataclass(frozen=True)
class NavLink:
    endpoint: str
    label: Any  # a str or a flask_babel LazyString
    roles: frozenset[str]
    order: int = 100


_LINKS: dict[str, NavLink] = {}


def add_link(endpoint: str, label: Any, *roles: str, order: int = 100) -> None:
    """Show a link to ``endpoint`` to the given roles (adding it again replaces it)."""
    unknown = set(roles) - set(ROLES)
    if not roles or unknown:
        raise ValueError(f"add_link needs roles from {ROLES}, got {roles}")
    _LINKS[endpoint] = NavLink(endpoint, label, frozenset(roles), order)


def links_for(user: StaffUser | None) -> list[NavLink]:
    if user is None:
        return []
    chosen = [link for link in _LINKS.values() if user.role in link.roles]
    return sorted(chosen, key=lambda link: link.order)
