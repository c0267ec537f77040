"""The console's blueprint: every page under ``/console``, closed by default.

Two checks run before any view of the blueprint: ``staff.authz.deny_unmarked`` (a view without
``public``, ``login_required`` or ``roles_required`` is a 403) and the CSRF check on every
unsafe method (``console.csrf``). View modules attach their routes to ``bp`` and are imported by
``console.init_app`` (list them in ``console.VIEW_MODULES``) before the blueprint is registered.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint

from console import csrf
from staff.authz import deny_unmarked

HERE = Path(__file__).resolve().parent

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder=str(HERE / "templates"),
    static_folder=str(HERE / "static"),
)
deny_unmarked(bp)
csrf.protect(bp)
