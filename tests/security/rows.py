"""Every row the bot stored, as text: what the secret scans search for a secret in any form."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import SQLModel

from tests.harness import Bot


async def dump_rows(bot: Bot) -> str:
    """Every row of every table, one `table: (values…)` line each."""
    lines: list[str] = []
    async with bot.runtime.db.session() as s:
        for table in SQLModel.metadata.sorted_tables:
            for row in (await s.exec(sa.select(table))).all():  # type: ignore[call-overload]
                lines.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(lines)
