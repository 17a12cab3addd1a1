"""When to remind and when to send the digest: pure functions of times, zones and settings.

Kept apart from I/O so the hard parts (each person's own time zone, DST, working days) are tested
directly with chosen instants instead of waiting for a clock.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import Reminders


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def working(now: datetime, tz: str | None, rules: Reminders) -> bool:
    """Inside the person's working hours on one of their working days, in their own zone."""
    local = now.astimezone(zone(tz))
    start, end = rules.working_hours
    return local.weekday() in rules.working_days and start <= local.time() < end


def next_reminder_at(
    *, due_since: datetime, sent: int, last_sent_at: datetime | None, rules: Reminders
) -> datetime | None:
    """The earliest instant the next reminder may go (before working hours are applied); None after `max`."""
    if sent >= rules.max:
        return None
    if sent == 0 or last_sent_at is None:
        return due_since + rules.first_after
    return last_sent_at + rules.every


def reminder_due(
    *,
    now: datetime,
    due_since: datetime,
    sent: int,
    last_sent_at: datetime | None,
    tz: str | None,
    rules: Reminders,
    vendor_reminded_at: datetime | None = None,
) -> bool:
    at = next_reminder_at(due_since=due_since, sent=sent, last_sent_at=last_sent_at, rules=rules)
    if at is None or now < at:
        return False
    if vendor_reminded_at is not None and now - vendor_reminded_at < rules.every:
        return False  # the vendor itself reminded them recently (Greenhouse's reminder_sent_at)
    return working(now, tz, rules)


def digest_due(*, now: datetime, tz: str | None, rules: Reminders, last_sent_on: str | None) -> date | None:
    """The person's local date when their day's digest should go now (first hour of their working
    day, on a working day, not yet sent today); else None."""
    local = now.astimezone(zone(tz))
    start, _ = rules.working_hours
    begin = datetime.combine(local.date(), start, tzinfo=local.tzinfo)
    window_end = begin + timedelta(hours=1)
    if local.weekday() not in rules.working_days or not (begin <= local < window_end):
        return None
    if last_sent_on == local.date().isoformat():
        return None
    return local.date()


def next_digest_at(*, now: datetime, tz: str | None, rules: Reminders, last_sent_on: str | None) -> datetime:
    """When the person's next digest is due: `now` if it is (`digest_due`), else the start of
    their next working day not yet served, in their own zone (DST included: the local hour is kept)."""
    if digest_due(now=now, tz=tz, rules=rules, last_sent_on=last_sent_on) is not None:
        return now
    local = now.astimezone(zone(tz))
    start, _ = rules.working_hours
    for days in range(8):
        day = local.date() + timedelta(days=days)
        begin = datetime.combine(day, start, tzinfo=local.tzinfo)
        if day.weekday() in rules.working_days and day.isoformat() != last_sent_on and local < begin:
            return begin.astimezone(now.tzinfo)
    return now + timedelta(days=1)  # no working day at all: look again tomorrow


def next_working_moment(now: datetime, tz: str | None, rules: Reminders) -> datetime:
    """`now` if it is inside the person's working hours, else the start of their next working
    period, in their own zone (DST included: the local start hour is kept)."""
    if working(now, tz, rules):
        return now
    local = now.astimezone(zone(tz))
    start, end = rules.working_hours
    for days in range(8):
        day = local.date() + timedelta(days=days)
        if day.weekday() not in rules.working_days:
            continue
        begin = datetime.combine(day, start, tzinfo=local.tzinfo)
        if local < begin:
            return begin.astimezone(now.tzinfo)
        if local < datetime.combine(day, end, tzinfo=local.tzinfo):
            return now
    return now + timedelta(days=1)  # no working day at all: look again tomorrow


def escalation_at(*, sent: int, last_sent_at: datetime | None, rules: Reminders) -> datetime | None:
    """After the last reminder, the person has one more `every` to act before the channel hears."""
    if sent < rules.max or last_sent_at is None:
        return None
    return last_sent_at + rules.every
