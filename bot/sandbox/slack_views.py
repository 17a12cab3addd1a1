"""The views surface of the Slack sandbox: views.open/push/update/publish with trigger expiry, the
modal stack and the Home tab.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from bot.sandbox.slack_blocks import (
    view_problems,
)
from bot.sandbox.slack_chat import ChatSurface
from bot.sandbox.slack_core import WebApiMethod
from bot.sandbox.slack_model import (
    APP_ID,
    BOT_ID,
    TEAM_ID,
    TRIGGER_TTL,
    VIEW_BYTES_MAX,
    VIEW_STACK_MAX,
    StoredView,
    _json_arg,
    _Refused,
    _Trigger,
)


class ViewsSurface(ChatSurface):
    """views.*."""

    def _web_api(self) -> dict[str, WebApiMethod]:
        return {
            **super()._web_api(),
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
        }

    # ---- views -----------------------------------------------------------------------------------------

    def _use_trigger(self, trigger_id: Any) -> _Trigger:
        trigger = self._triggers.get(str(trigger_id or ""))
        if trigger is None:
            raise _Refused("invalid_trigger_id")
        if trigger.used:
            raise _Refused("exchanged_trigger_id")
        if self.clock() - trigger.issued_at > TRIGGER_TTL:
            raise _Refused("expired_trigger_id")
        trigger.used = True
        return trigger

    def _checked_view(self, args: Mapping[str, Any], kinds: tuple[str, ...]) -> dict[str, Any]:
        view = _json_arg(args, "view", "invalid_arguments")
        if not isinstance(view, dict):
            raise _Refused(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: view"]}
            )
        if len(json.dumps(view)) > VIEW_BYTES_MAX:
            raise _Refused("view_too_large")
        problems = view_problems(view, kinds)
        if problems:
            raise _Refused(
                "invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]}
            )
        return view

    def _full_view(
        self, view: Mapping[str, Any], *, view_id: str, root: str | None, previous: str | None
    ) -> dict[str, Any]:
        full: dict[str, Any] = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": view.get("type"),
            "blocks": self._with_ids(list(view.get("blocks") or [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(self.clock())}.{self._random_id(8)}",
            "title": copy.deepcopy(view.get("title")),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "previous_view_id": previous,
            "root_view_id": root or view_id,
            "app_id": APP_ID,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
        external = full["external_id"]
        if external and any(
            v.view.get("external_id") == external and v.id != view_id for v in self.views.values()
        ):
            raise _Refused("duplicate_external_id")
        return full

    def _new_view(
        self, user: str, view: Mapping[str, Any], *, root: str | None, previous: str | None
    ) -> StoredView:
        self._seq += 1
        view_id = f"V{self._seq:04d}{self._random_id(6).upper()}"
        stored = StoredView(
            id=view_id,
            user=user,
            view=self._full_view(view, view_id=view_id, root=root, previous=previous),
        )
        self.views[view_id] = stored
        return stored

    async def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view(args, ("modal",))
        trigger = self._use_trigger(args.get("trigger_id"))
        for old in self._stacks.pop(trigger.user, []):  # a new modal replaces whatever was open
            self.views[old].open = False
            self.views[old].closed_by = "replaced"
        stored = self._new_view(trigger.user, view, root=None, previous=None)
        self._stacks[trigger.user] = [stored.id]
        return {"view": copy.deepcopy(stored.view)}

    async def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view(args, ("modal",))
        trigger = self._use_trigger(args.get("trigger_id"))
        stack = self._stacks.setdefault(trigger.user, [])
        if len(stack) >= VIEW_STACK_MAX:
            raise _Refused("push_limit_reached")
        root = stack[0] if stack else None
        stored = self._new_view(trigger.user, view, root=root, previous=stack[-1] if stack else None)
        stack.append(stored.id)
        return {"view": copy.deepcopy(stored.view)}

    def _find_view(self, args: Mapping[str, Any]) -> StoredView:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise _Refused(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] view_id or external_id"]}
            )
        for stored in self.views.values():
            if (view_id and stored.id == view_id) or (
                external_id and stored.view.get("external_id") == external_id
            ):
                return stored
        raise _Refused("not_found")

    async def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        stored = self._find_view(args)
        view = self._checked_view(args, (stored.kind,))
        if args.get("hash") and args["hash"] != stored.view.get("hash"):
            raise _Refused("hash_conflict")
        self._replace_view(stored, view)
        return {"view": copy.deepcopy(stored.view)}

    def _replace_view(self, stored: StoredView, view: Mapping[str, Any]) -> None:
        stored.history.append(stored.view)
        stored.view = self._full_view(
            view,
            view_id=stored.id,
            root=stored.view.get("root_view_id"),
            previous=stored.view.get("previous_view_id"),
        )
        stored.errors = None
        if stored.kind == "home":
            self.home[stored.user] = stored.view

    async def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user_id") or "")
        if user not in self.people:
            raise _Refused("user_not_found")
        view = self._checked_view(args, ("home",))
        existing = self.views.get(self._home_ids.get(user, ""))
        if existing is not None:
            if args.get("hash") and args["hash"] != existing.view.get("hash"):
                raise _Refused("hash_conflict")
            self._replace_view(existing, view)
            stored = existing
        else:
            stored = self._new_view(user, view, root=None, previous=None)
            self._home_ids[user] = stored.id
            self.home[user] = stored.view
        return {"view": copy.deepcopy(stored.view)}
