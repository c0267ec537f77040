"""The home page: who is signed in, and the links their role may follow (``console.nav``)."""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask_babel import lazy_gettext

from console import nav
from console.blueprint import bp
from staff.authz import login_required

nav.add_link("console.admin_users", lazy_gettext("Staff accounts"), "admin", order=900)
nav.add_link("console.audit_log", lazy_gettext("Audit log"), "auditor", order=910)


@bp.get("/")
@login_required
def home() -> Any:
    return render_template("console/home.html")
