"""Where a person is in a multi-step flow, kept in the database so a restart continues it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select

from bot.services.clock import Clock
from storage.db import Database, affected
from storage.models import FlowState


@dataclass(slots=True)
class Flow:
    name: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)


class FlowService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def get(self, telegram_user_id: int) -> Flow | None:
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(FlowState.flow, FlowState.step, FlowState.data).where(
                        FlowState.telegram_user_id == telegram_user_id
                    )
                )
            ).first()
        return None if row is None else Flow(row.flow, row.step, dict(row.data or {}))

    async def set(self, telegram_user_id: int, flow: Flow) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            state = await session.get(FlowState, telegram_user_id)
            if state is None:
                session.add(
                    FlowState(
                        telegram_user_id=telegram_user_id,
                        flow=flow.name,
                        step=flow.step,
                        data=dict(flow.data),
                        updated_at=now,
                    )
                )
            else:
                state.flow, state.step, state.data = flow.name, flow.step, dict(flow.data)
                state.version += 1
                state.updated_at = now

    async def clear(self, telegram_user_id: int, flow: str | None = None) -> bool:
        async with self.db.transaction() as session:
            stmt = delete(FlowState).where(FlowState.telegram_user_id == telegram_user_id)
            if flow is not None:
                stmt = stmt.where(FlowState.flow == flow)
            return bool(affected(await session.execute(stmt)))
