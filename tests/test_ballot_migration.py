"""Upgrading a database with an open ballot (migration 0002_ballot), on SQLite and PostgreSQL:
its sealed choices become anonymous tallies, who has voted is kept, the seal key is gone; going
back down is refused while the ballot has votes, and allowed once it has none."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from bot.services.ballot_box import TALLY_BASE
from storage import migrate
from storage.db import Database

SEED = [
    "INSERT INTO units (id, name, kind, active, created_at) VALUES (1, 'P', 'department', "
    "true, '2026-01-01 00:00:00+00')",
    *(
        "INSERT INTO members (id, full_name, name_folded, unit_id, role, language, active, "
        f"notify_opt_out, under_discipline, created_at) VALUES ({i}, 'M{i}', 'm{i}', 1, "
        "'council', 'vi', true, false, false, '2026-01-01 00:00:00+00')"
        for i in (1, 2, 3, 4)
    ),
    "INSERT INTO nominations (id, nominator_id, nominee_kind, nominee_member_id, status, "
    "version, created_at) VALUES (1, 4, 'individual', 4, 'in_review', 2, "
    "'2026-01-01 00:00:00+00')",
    "INSERT INTO ballots (id, nomination_id, opened_at, deadline, council_size, threshold, "
    "seal_key) VALUES (1, 1, '2026-01-01 00:00:00+00', '2026-01-08 00:00:00+00', 3, 0.5, 'k')",
    "INSERT INTO ballot_voters (ballot_id, member_id, voted) VALUES (1, 1, true), (1, 2, true), "
    "(1, 3, false)",
    "INSERT INTO ballot_choices (ballot_id, seal, choice) VALUES (1, 's1', 'agree'), "
    "(1, 's2', 'abstain')",
]


async def test_sqlite(tmp_path: Path) -> None:
    await an_open_ballot_survives_the_upgrade(f"sqlite:///{tmp_path / 'm.sqlite3'}")


@pytest.mark.postgres
async def test_postgres(pg_empty_url: str) -> None:
    await an_open_ballot_survives_the_upgrade(pg_empty_url)


async def an_open_ballot_survives_the_upgrade(url: str) -> None:
    db = Database(url)
    try:
        await upgrade_and_back(db)
    finally:
        await db.dispose()


async def upgrade_and_back(db: Database) -> None:
    await migrate.upgrade(db, "0001")
    async with db.engine.begin() as conn:
        for statement in SEED:
            await conn.execute(text(statement))
    await migrate.upgrade(db, "0002_ballot")
    async with db.engine.connect() as conn:
        tallies = dict((await conn.execute(text("SELECT choice, count FROM ballot_tallies"))).all())
        voters = (
            await conn.execute(
                text("SELECT member_id, voted, pending FROM ballot_voters ORDER BY member_id")
            )
        ).all()
        ballot = (await conn.execute(text("SELECT council_total, left_out FROM ballots"))).one()
        columns = (await conn.execute(text("SELECT * FROM ballots"))).keys()
    assert {c: n - TALLY_BASE for c, n in tallies.items()} == {
        "agree": 1,
        "disagree": 0,
        "abstain": 1,
    }
    assert [(m, bool(v), bool(p)) for m, v, p in voters] == [
        (1, True, False),
        (2, True, False),
        (3, False, False),
    ]
    assert ballot[0] == 3 and ballot[1] in ([], "[]")
    assert "seal_key" not in columns
    with pytest.raises(RuntimeError, match="close it first"):
        await migrate.downgrade(db, "0001")
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE ballot_voters SET voted = false"))
        await conn.execute(text("UPDATE ballot_tallies SET count = :n"), {"n": TALLY_BASE})
    await migrate.downgrade(db, "0001")
    async with db.engine.connect() as conn:
        key = (await conn.execute(text("SELECT seal_key FROM ballots"))).scalar_one()
    assert key and len(key) == 64  # the old code can cast again under a fresh key
