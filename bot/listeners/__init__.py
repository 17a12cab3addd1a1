"""Thin Bolt listeners: ack, call one service, answer. Registered by `register_all`.

Every module in this package that defines `register(app, deps)` is registered, so a new
surface (reminders, App Home, a vendor's command) is added as a new module, not an edit here.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.listeners.deps import Deps


def register_all(app: AsyncApp, deps: Deps) -> None:
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name == "deps":
            continue
        loaded: Any = importlib.import_module(f"{__name__}.{module.name}")
        register = getattr(loaded, "register", None)
        if callable(register):
            register(app, deps)
