"""The audit log: every state change made by a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry


def record(
    session: AsyncSession,
    *,
    actor_member_id: int | None,
    action: str,
    target_type: str,
    target_id: int | None,
    at: datetime,
    actor_user_id: int | None = None,
    **details: Any,
) -> None:
    session.add(
        AuditEntry(
            actor_member_id=actor_member_id,
            actor_user_id=actor_user_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details,
            at=at,
        )
    )
