"""Group chats the bot serves. Only groups an administrator registered are served."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bot.services.clock import Clock
from storage.db import Database
from storage.models import GroupChat


@dataclass(frozen=True, slots=True)
class GroupView:
    id: int
    chat_id: int
    title: str | None
    unit_id: int | None
    office_wide: bool
    language: str
    active: bool


class GroupService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def find(self, chat_id: int) -> GroupView | None:
        async with self.db.reader.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        GroupChat.id,
                        GroupChat.chat_id,
                        GroupChat.title,
                        GroupChat.unit_id,
                        GroupChat.office_wide,
                        GroupChat.language,
                        GroupChat.active,
                    ).where(GroupChat.chat_id == chat_id)
                )
            ).first()
        if row is None:
            return None
        return GroupView(
            row.id, row.chat_id, row.title, row.unit_id, row.office_wide, row.language, row.active
        )
