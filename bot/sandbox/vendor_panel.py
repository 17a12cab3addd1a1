"""The demo page's vendor panel: what each vendor sandbox has pending, and changes made "in the vendor".

Why through the sandboxes' own control methods: a decision taken here is one the bot did not make
(someone approved in FlexDeploy's UI, a Jira admin settled it), so the bot only learns of it on its
next poll, as in production; a fault set here is the same fault the vendor tests inject. The demo
runs every sandbox in its own process, so the panel calls them directly instead of over HTTP.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.approval_path.sandbox import ApprovalPathSandbox
from connectors.base import Status
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from connectors.greenhouse.sandbox import GreenhouseSandbox
from connectors.harness.sandbox import HarnessSandbox
from connectors.herzum.sandbox import HerzumSandbox
from connectors.people import ALICE, BOB, DAVE

FAULTS = ("500", "timeout", "reset", "rate limit")
DECISIONS = ("approve", "reject")


@dataclass
class Panel:
    """One vendor: how to list, decide, break and add, each a small function over its sandbox."""

    vendor: str
    label: str
    items: Callable[[], list[tuple[str, str]]]
    decide: Callable[[str, bool], None]
    fail: Callable[[str], None]
    add: Callable[[], str] | None = None
    decisions: tuple[str, ...] = DECISIONS
    note: str = ""
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def json(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "label": self.label,
            "items": [{"id": i, "title": t, "decisions": list(self.decisions)} for i, t in self.items()],
            "faults": list(FAULTS),
            "can_add": self.add is not None,
            "note": self.note,
        }


class VendorPanels:
    """The page's VendorControls: one Panel per vendor sandbox the demo started."""

    def __init__(self, panels: Mapping[str, Panel]) -> None:
        self._panels = dict(panels)

    def panels(self) -> list[dict[str, Any]]:
        return [p.json() for p in self._panels.values()]

    async def act(self, vendor: str, action: str, item: str | None, option: str | None) -> str:
        panel = self._panels.get(vendor)
        if panel is None:
            raise ValueError(f"no vendor {vendor!r} (known: {', '.join(self._panels)})")
        if action == "decide":
            if item is None or option not in panel.decisions:
                raise ValueError("say which item, and approve or reject")
            if item not in dict(panel.items()):
                raise ValueError(f"{item} is not pending in {panel.label} any more")
            panel.decide(item, option == "approve")
            done = "Approved" if option == "approve" else "Rejected"
            return f"{done} in {panel.label}; the card follows on the bot's next poll."
        if action == "fail":
            if option not in FAULTS:
                raise ValueError(f"choose one of {', '.join(FAULTS)}")
            panel.fail(option)
            return f"{panel.label}'s next call answers: {option}."
        if action == "add" and panel.add is not None:
            return f"Added in {panel.label}: {panel.add()}."
        raise ValueError(f"unknown action {action!r}")


def _flexdeploy(sandbox: FlexDeploySandbox) -> Panel:
    def items() -> list[tuple[str, str]]:
        return [
            (str(t.task_id), f"{t.request_type.title()} task {t.task_id} · {t.group}")
            for t in sandbox.tasks.values()
            if t.status == "PENDING"
        ]

    def fail(fault: str) -> None:
        sandbox.fail_next({"reset": "drop", "rate limit": "429"}.get(fault, fault), method="PUT")  # type: ignore[arg-type]

    def decide(item: str, ok: bool) -> None:
        sandbox.decide(item, Status.APPROVED if ok else Status.REJECTED, notes="decided in FlexDeploy")

    panel = Panel("flexdeploy", "FlexDeploy", items, decide, fail)

    def add() -> str:
        n = next(panel.counter)
        task = sandbox.add_release_task(
            pipeline="Payments Release Pipeline",
            environment="Production",
            gate="Change Advisory Board approval",
            release=f"Payments 2.{4 + n}",
            snapshot=f"Snapshot {100 + n}",
            group="Change Advisory Board",
        )
        return f"release gate task {task}"

    panel.add = add
    return panel


def _harness(sandbox: HarnessSandbox) -> Panel:
    def items() -> list[tuple[str, str]]:
        return [
            (i.id, f"{i.execution.pipeline} run {i.execution.run}: {i.message}")
            for i in sandbox.instances.values()
            if i.status == "WAITING"
        ]

    def fail(fault: str) -> None:
        if fault == "rate limit":
            sandbox.rate_limit_next += 1
        else:
            sandbox.fail_next("drop" if fault == "reset" else fault, method="POST")  # type: ignore[arg-type]

    panel = Panel(
        "harness",
        "Harness",
        items,
        lambda item, ok: sandbox.decide(item, "APPROVED" if ok else "REJECTED"),
        fail,
    )

    def add() -> str:
        n = next(panel.counter)
        return sandbox.add_waiting(
            pipeline=f"deploy_checkout_{n}",
            groups=["_project_all_approvers"],
            message=f"Deploy checkout 3.{n} to production?",
        )

    panel.add = add
    return panel


def _herzum(sandbox: HerzumSandbox) -> Panel:
    def items() -> list[tuple[str, str]]:
        keys = {issue_id: issue.get("key", str(issue_id)) for issue_id, issue in sandbox.issues.items()}
        return [
            (str(a.id), f"{keys.get(a.issue_id, a.issue_id)}: {a.name} ({a.transition})")
            for a in sandbox.approvals.values()
            if a.status == "PENDING"
        ]

    def fail(fault: str) -> None:
        if fault == "rate limit":
            fault = "500"  # Herzum (Jira Data Center) documents no rate limit: a 500 stands in
        sandbox.fail_next("drop" if fault == "reset" else fault, method="POST")  # type: ignore[arg-type]

    panel = Panel(
        "herzum",
        "Herzum Approval",
        items,
        lambda item, ok: sandbox.decide(int(item), "APPROVED" if ok else "REJECTED"),
        fail,
        note="Jira Data Center has no rate limit to show: “rate limit” answers 500.",
    )

    def add() -> str:
        n = next(panel.counter)
        issue = sandbox.add_issue(f"OPS-{60 + n}", f"Renew the TLS certificates, batch {n}")
        sandbox.add_approval(
            issue, [ALICE.handle, BOB.handle], name="Security sign-off", transition="Release"
        )
        return f"OPS-{60 + n}"

    panel.add = add
    return panel


def _greenhouse(sandbox: GreenhouseSandbox) -> Panel:
    def items() -> list[tuple[str, str]]:
        jobs = sandbox.jobs
        return [
            (str(f.id), f"{f.approval_type.replace('_', ' ')} · {jobs[f.job_id].name}")
            for f in sandbox.flows.values()
            if f.status == "pending" and f.requested
        ]

    def fail(fault: str) -> None:
        if fault == "rate limit":
            sandbox.throttle_next()
        else:
            sandbox.fail_next("drop" if fault == "reset" else fault)  # type: ignore[arg-type]

    def decide(item: str, ok: bool) -> None:
        sandbox.decide_flow(int(item), "approved" if ok else "rejected")

    panel = Panel(
        "greenhouse",
        "Greenhouse",
        items,
        decide,
        fail,
        note="Greenhouse approvals are decided in Greenhouse; Slack shows who is due and can reassign.",
    )

    def add() -> str:
        job = next(iter(sandbox.jobs))
        people = {email: uid for uid, u in sandbox.users.items() for email in u.emails}
        flow = sandbox.add_flow(
            job,
            [([people[ALICE.email]], 1), ([people[DAVE.email]], 1)],
            approval_type="open_job",
            requested_by=people.get("rita.recruiter@example.com"),
        )
        return f"a job approval flow ({flow})"

    panel.add = add
    return panel


def _approval_path(sandbox: ApprovalPathSandbox) -> Panel:
    def items() -> list[tuple[str, str]]:
        return [
            (a.external_id, f"{a.issue.key}: {a.name}")
            for approvals in sandbox.approvals.values()
            for a in approvals
            if a.status == "IN_PROGRESS"
        ]

    def decide(item: str, ok: bool) -> None:
        key, _, approval_id = item.partition(":")
        sandbox.decide(key, approval_id, Status.APPROVED if ok else Status.REJECTED)

    def fail(fault: str) -> None:
        if fault == "rate limit":
            sandbox.rate_limit_next()
        else:
            sandbox.fail_next("drop" if fault == "reset" else fault, method="POST")  # type: ignore[arg-type]

    panel = Panel("approval_path", "Approval Path", items, decide, fail)

    def add() -> str:
        n = next(panel.counter)
        definition = next(iter(sandbox.definitions))
        issue = sandbox.add_issue("OPS", f"Scale the payments cluster, step {n}")
        sandbox.start_path(issue, definition, by=DAVE)
        return issue

    panel.add = add
    return panel


BUILDERS: dict[type[Any], Callable[[Any], Panel]] = {
    FlexDeploySandbox: _flexdeploy,
    HarnessSandbox: _harness,
    HerzumSandbox: _herzum,
    GreenhouseSandbox: _greenhouse,
    ApprovalPathSandbox: _approval_path,
}


def panels_for(sandboxes: Mapping[str, Any]) -> VendorPanels:
    """A panel for each started sandbox whose type has one (keyed by connector type)."""
    built: dict[str, Panel] = {}
    for vendor, sandbox in sandboxes.items():
        builder = BUILDERS.get(type(sandbox))
        if builder is not None:
            panel = builder(sandbox)
            panel.vendor = vendor
            built[vendor] = panel
    return VendorPanels(built)
