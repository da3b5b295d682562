"""Group chats the bot serves. Only groups an administrator registered are served.

Telegram is the authority on membership: the bot added by an administrator registers the group
(office-wide until an administrator links it to a unit); added by anyone else it is refused.
Removed, kicked or unreachable (403) → the group is inactive and skipped by announcements;
upgraded to a supergroup → the new chat id replaces the old one (kept in
``migrated_from_chat_id``), so history and schedules follow the group. Each group has its own
language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import audit
from bot.services.clock import Clock
from bot.services.directory import Viewer
from bot.services.errors import N_, InvalidInput, NotAllowed, NotFound
from storage.db import Database, affected
from storage.models import GroupChat, Unit

LANGUAGES = ("vi", "en")
TITLE_LIMIT = 256


class InactiveReason:
    """Why a group is inactive (stored as these short codes)."""

    REMOVED = "removed"  # the bot was removed from the group
    KICKED = "kicked"  # the bot was banned from the supergroup
    FORBIDDEN = "forbidden"  # Telegram answered 403 to a message
    NOT_FOUND = "chat_not_found"  # Telegram no longer knows the chat
    MERGED = "migrated"  # the group became a supergroup that is registered on its own


@dataclass(frozen=True, slots=True)
class GroupView:
    id: int
    chat_id: int
    title: str | None
    unit_id: int | None
    office_wide: bool
    language: str
    active: bool
    unit_name: str | None = None
    inactive_reason: str | None = None
    migrated_from_chat_id: int | None = None
    is_admin_chat: bool = False
    updated_at: datetime | None = None

    @property
    def scope_is_office(self) -> bool:
        """Announcements meant for the whole office (a group not linked to a unit)."""
        return self.office_wide or self.unit_id is None


@dataclass(frozen=True, slots=True)
class BotAdded:
    """What became of the bot being added to a group."""

    accepted: bool
    group: GroupView | None = None
    reactivated: bool = False


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise NotAllowed(N_("Only administrators can manage group chats."))


def _view(row: GroupChat, unit_name: str | None = None) -> GroupView:
    return GroupView(
        id=row.id,
        chat_id=row.chat_id,
        title=row.title,
        unit_id=row.unit_id,
        office_wide=row.office_wide,
        language=row.language,
        active=row.active,
        unit_name=unit_name,
        inactive_reason=row.inactive_reason,
        migrated_from_chat_id=row.migrated_from_chat_id,
        is_admin_chat=row.is_admin_chat,
        updated_at=row.updated_at,
    )


class GroupService:
    def __init__(self, db: Database, clock: Clock, default_language: str = "vi") -> None:
        self.db = db
        self.clock = clock
        self.default_language = default_language

    # --- reads ---------------------------------------------------------------------------------

    async def find(self, chat_id: int) -> GroupView | None:
        """The group with this Telegram chat id (the gatekeeper's hot path: one Core SELECT)."""
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

    async def get(self, group_id: int) -> GroupView:
        async with self.db.read() as session:
            row = await session.get(GroupChat, group_id)
            if row is None:
                raise NotFound(N_("That group is not registered (any more)."))
            return await self._with_unit(session, row)

    async def manage(
        self, viewer: Viewer, group_id: int | None = None, *, chat_id: int | None = None
    ) -> GroupView:
        """A group an administrator is about to change (by id, or by its chat id)."""
        _require_admin(viewer)
        async with self.db.read() as session:
            if group_id is not None:
                row = await session.get(GroupChat, group_id)
            else:
                row = await session.scalar(select(GroupChat).where(GroupChat.chat_id == chat_id))
            if row is None:
                raise NotFound(N_("That group is not registered (any more)."))
            return await self._with_unit(session, row)

    async def list_groups(self, viewer: Viewer) -> list[GroupView]:
        """Every registered group, active ones first, then by title."""
        _require_admin(viewer)
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(GroupChat, Unit.name).outerjoin(Unit, Unit.id == GroupChat.unit_id)
                )
            ).all()
        views = [_view(group, unit_name) for group, unit_name in rows]
        return sorted(views, key=lambda g: (not g.active, (g.title or "").casefold(), g.id))

    async def _with_unit(self, session: AsyncSession, row: GroupChat) -> GroupView:
        name = None
        if row.unit_id is not None:
            name = await session.scalar(select(Unit.name).where(Unit.id == row.unit_id))
        return _view(row, name)

    # --- what Telegram reports -----------------------------------------------------------------

    async def bot_added(self, viewer: Viewer, chat_id: int, title: str | None) -> BotAdded:
        """The bot was added to a group by `viewer`: an administrator registers it (or brings a
        known group back); anyone else is refused and the group is left as it was."""
        if not viewer.is_admin:
            return BotAdded(accepted=False)
        now = self.clock.now()
        title = (title or "")[:TITLE_LIMIT] or None
        async with self.db.transaction() as session:
            row = await session.scalar(select(GroupChat).where(GroupChat.chat_id == chat_id))
            reactivated = row is not None
            if row is None:
                row = GroupChat(
                    chat_id=chat_id,
                    title=title,
                    office_wide=True,
                    language=self.default_language,
                    active=True,
                    registered_by=viewer.member_id,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
            else:
                row.active = True
                row.inactive_reason = None
                row.title = title or row.title
                row.updated_at = now
            await session.flush()
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                actor_user_id=viewer.telegram_user_id,
                action="group.reactivate" if reactivated else "group.register",
                target_type="group",
                target_id=row.id,
                at=now,
                chat_id=chat_id,
                title=row.title,
            )
            return BotAdded(True, await self._with_unit(session, row), reactivated)

    async def bot_left(self, chat_id: int, reason: str) -> GroupView | None:
        """The bot is no longer in the group (removed, kicked) or may not write there (403):
        the group is skipped until an administrator adds the bot again."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = await session.scalar(select(GroupChat).where(GroupChat.chat_id == chat_id))
            if row is None:
                return None
            if row.active or row.inactive_reason != reason:
                row.active = False
                row.inactive_reason = reason
                row.updated_at = now
            return _view(row)

    async def migrated(self, old_chat_id: int, new_chat_id: int) -> GroupView | None:
        """The group became a supergroup: the new chat id replaces the old one. Idempotent (the
        service message, a ChatMigrated answer and the message in the new chat all say so)."""
        if old_chat_id == new_chat_id:
            return None
        now = self.clock.now()
        async with self.db.transaction() as session:
            current = await session.scalar(
                select(GroupChat).where(GroupChat.chat_id == new_chat_id)
            )
            old = await session.scalar(select(GroupChat).where(GroupChat.chat_id == old_chat_id))
            if old is None:
                return _view(current) if current is not None else None
            if current is not None:
                # the supergroup was registered on its own already: it takes over
                old.active = False
                old.inactive_reason = InactiveReason.MERGED
                old.updated_at = now
                if current.migrated_from_chat_id is None:
                    current.migrated_from_chat_id = old_chat_id
                return _view(current)
            changed = affected(
                await session.execute(
                    update(GroupChat)
                    .where(GroupChat.id == old.id, GroupChat.chat_id == old_chat_id)
                    .values(chat_id=new_chat_id, migrated_from_chat_id=old_chat_id, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
            )
            if not changed:
                return None
            await session.refresh(old)
            return _view(old)

    # --- what administrators decide ------------------------------------------------------------

    async def link_unit(self, viewer: Viewer, group_id: int, unit_id: int) -> GroupView:
        """The group belongs to a unit: it receives that unit's digest."""
        _require_admin(viewer)
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = await self._row(session, group_id)
            unit = await session.get(Unit, unit_id)
            if unit is None or not unit.active:
                raise NotFound(N_("That unit no longer exists."))
            row.unit_id, row.office_wide, row.updated_at = unit.id, False, now
            self._audit(session, viewer, "group.link_unit", row, now, unit_id=unit.id)
            await session.flush()
            return _view(row, unit.name)

    async def set_office_wide(self, viewer: Viewer, group_id: int) -> GroupView:
        """The group serves the whole office: it receives the office-wide digest."""
        _require_admin(viewer)
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = await self._row(session, group_id)
            row.unit_id, row.office_wide, row.updated_at = None, True, now
            self._audit(session, viewer, "group.office_wide", row, now)
            await session.flush()
            return _view(row)

    async def set_language(self, viewer: Viewer, group_id: int, language: str) -> GroupView:
        _require_admin(viewer)
        if language not in LANGUAGES:
            raise InvalidInput(N_("Unknown language."))
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = await self._row(session, group_id)
            row.language, row.updated_at = language, now
            self._audit(session, viewer, "group.language", row, now, language=language)
            await session.flush()
            return await self._with_unit(session, row)

    async def _row(self, session: AsyncSession, group_id: int) -> GroupChat:
        row = await session.get(GroupChat, group_id)
        if row is None:
            raise NotFound(N_("That group is not registered (any more)."))
        return row

    @staticmethod
    def _audit(
        session: AsyncSession,
        viewer: Viewer,
        action: str,
        row: GroupChat,
        now: datetime,
        **details: object,
    ) -> None:
        audit.record(
            session,
            actor_member_id=viewer.member_id,
            actor_user_id=viewer.telegram_user_id,
            action=action,
            target_type="group",
            target_id=row.id,
            at=now,
            chat_id=row.chat_id,
            **details,
        )
