"""The cast shared by every vendor sandbox, the Slack sandbox, the demo and the tests.

One set of people, known by email everywhere, so that a demo click by Alice in the Slack sandbox
reaches each vendor sandbox as Alice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoPerson:
    handle: str
    name: str
    email: str
    slack_id: str
    tz: str
    # How Slack's users.info describes the account (acting by email needs a confirmed address of a
    # full member): a guest ("restricted" or "ultra_restricted"), a Slack Connect user of another
    # workspace (`team_id`, `stranger`), a deactivated account.
    email_confirmed: bool = True
    guest: str | None = None
    team_id: str | None = None
    stranger: bool = False
    deleted: bool = False


ALICE = DemoPerson("alice", "Alice Approver", "alice@example.com", "U0ALICE", "Europe/Berlin")
BOB = DemoPerson("bob", "Bob Builder", "bob@example.com", "U0BOB", "America/New_York")
CAROL = DemoPerson("carol", "Carol Checker", "carol@example.com", "U0CAROL", "Asia/Tokyo")
DAVE = DemoPerson("dave", "Dave Deployer", "dave@example.com", "U0DAVE", "UTC")
# Mallory has a Slack account but no vendor account anywhere.
MALLORY = DemoPerson("mallory", "Mallory Outsider", "mallory@example.com", "U0MALLORY", "UTC")

CAST: tuple[DemoPerson, ...] = (ALICE, BOB, CAROL, DAVE, MALLORY)
