"""Which Harness user groups may decide an approval step, and what to call them on a card.

Why its own module: the step names its groups two ways. Newer builds send
`validatedApprovalUserGroups`, each with its identifier, display name and account/org/project
scope; every build sends `approvers.userGroups`, identifiers prefixed by scope ("account.x",
"org.x", or a bare project-level "x"). Both become the same `GroupRef`, the key the membership
cache and the members call use. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Harness's built-in groups, named as its UI names them.
_BUILT_IN = {
    "_account_all_users": "All Account Users",
    "_organization_all_users": "All Organization Users",
    "_project_all_users": "All Project Users",
}


@dataclass(frozen=True, slots=True)
class GroupRef:
    identifier: str
    org: str | None
    project: str | None
    name: str

    @property
    def key(self) -> tuple[str | None, str | None, str]:
        return (self.org, self.project if self.org else None, self.identifier)


def readable_name(identifier: str) -> str:
    """A display name when Harness sent none: `_project_all_approvers` → "Project all approvers"."""
    if identifier in _BUILT_IN:
        return _BUILT_IN[identifier]
    words = identifier.strip("_").replace("_", " ").replace("-", " ").split()
    text = " ".join(words)
    return text[:1].upper() + text[1:] if text else identifier


def group_refs(details: Mapping[str, Any], org: str, project: str) -> list[GroupRef]:
    """The step's approver groups with their scope; the step's own org/project fill in the rest."""
    refs: list[GroupRef] = []
    # The v1 API's key casing is not verified (NOTES.md 1.2): both spellings are read.
    validated = details.get("validatedApprovalUserGroups") or details.get("validated_approval_user_groups")
    for group in validated or []:
        identifier = str(group.get("identifier") or "")
        if not identifier:
            continue
        group_org = group.get("orgIdentifier") or group.get("org_identifier") or None
        group_project = group.get("projectIdentifier") or group.get("project_identifier") or None
        refs.append(
            GroupRef(
                identifier,
                group_org,
                group_project if group_org else None,
                str(group.get("name") or readable_name(identifier)),
            )
        )
    if refs:
        return _unique(refs)
    approvers = details.get("approvers") or {}
    for text in approvers.get("userGroups") or approvers.get("user_groups") or []:
        reference = str(text)
        if reference.startswith("account."):
            identifier = reference.removeprefix("account.")
            refs.append(GroupRef(identifier, None, None, readable_name(identifier)))
        elif reference.startswith("org."):
            identifier = reference.removeprefix("org.")
            refs.append(GroupRef(identifier, org, None, readable_name(identifier)))
        elif reference:
            refs.append(GroupRef(reference, org, project, readable_name(reference)))
    return _unique(refs)


def _unique(refs: list[GroupRef]) -> list[GroupRef]:
    seen: set[tuple[str | None, str | None, str]] = set()
    out = []
    for ref in refs:
        if ref.key not in seen:
            seen.add(ref.key)
            out.append(ref)
    return out
