"""a ballot secret by construction: anonymous tallies instead of sealed choices

Drops `ballots.seal_key` and `ballot_choices`; adds `ballot_tallies` (three counts per open
ballot), `ballot_voters.pending` (the casting protocol's middle state) and, on `ballots`, the
whole council at opening and the names of those left out of the vote.

An open ballot's sealed choices become its tallies (counted, unlinked), then are dropped.

Revision ID: 0002_ballot
Revises: 0001
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_ballot"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TALLY_BASE = 1 << 40  # as bot/services/ballot_box.py
CHOICES = ("agree", "disagree", "abstain")


def upgrade() -> None:
    op.create_table(
        "ballot_tallies",
        sa.Column("ballot_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ballot_id"],
            ["ballots.id"],
            name=op.f("fk_ballot_tallies_ballot_id_ballots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ballot_id", "choice", name=op.f("pk_ballot_tallies")),
    )
    with op.batch_alter_table("ballot_voters", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_check_constraint(
            op.f("ck_ballot_voters_one_state"), "NOT (voted AND pending)"
        )
    with op.batch_alter_table("ballots", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("council_total", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("left_out", sa.JSON(), nullable=True))

    conn = op.get_bind()
    conn.execute(sa.text("UPDATE ballots SET council_total = council_size"))
    conn.execute(sa.text("UPDATE ballots SET left_out = '[]'"))
    open_ids = [
        row[0] for row in conn.execute(sa.text("SELECT id FROM ballots WHERE closed_at IS NULL"))
    ]
    for ballot_id in open_ids:
        counts: dict[str, int] = dict(
            conn.execute(
                sa.text(
                    "SELECT choice, count(*) FROM ballot_choices WHERE ballot_id = :b "
                    "GROUP BY choice"
                ),
                {"b": ballot_id},
            ).all()
        )
        for choice in CHOICES:
            conn.execute(
                sa.text(
                    "INSERT INTO ballot_tallies (ballot_id, choice, count) VALUES (:b, :c, :n)"
                ),
                {"b": ballot_id, "c": choice, "n": TALLY_BASE + int(counts.get(choice, 0))},
            )

    with op.batch_alter_table("ballots", schema=None) as batch_op:
        batch_op.alter_column("left_out", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("council_total", server_default=None)
        batch_op.drop_column("seal_key")
    with op.batch_alter_table("ballot_voters", schema=None) as batch_op:
        batch_op.alter_column("pending", server_default=None)
    op.drop_table("ballot_choices")


def downgrade() -> None:
    conn = op.get_bind()
    counted = conn.execute(
        sa.text(
            "SELECT count(*) FROM ballot_voters v JOIN ballots b ON b.id = v.ballot_id "
            "WHERE b.closed_at IS NULL AND (v.voted OR v.pending)"
        )
    ).scalar()
    if counted:
        # the counts cannot become sealed choices again, and voters could then vote twice
        raise RuntimeError(
            "cannot downgrade while a secret ballot with votes is open: close it first"
        )
    op.create_table(
        "ballot_choices",
        sa.Column("ballot_id", sa.Integer(), nullable=False),
        sa.Column("seal", sa.String(length=128), nullable=False),
        sa.Column("choice", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["ballot_id"],
            ["ballots.id"],
            name=op.f("fk_ballot_choices_ballot_id_ballots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ballot_id", "seal", name=op.f("pk_ballot_choices")),
    )
    with op.batch_alter_table("ballots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seal_key", sa.String(length=128), nullable=True))
        batch_op.drop_column("left_out")
        batch_op.drop_column("council_total")
    # an open ballot gets a fresh key: the old code casts under it
    open_ids = list(
        conn.execute(sa.text("SELECT id FROM ballots WHERE closed_at IS NULL")).scalars()
    )
    for ballot_id in open_ids:
        conn.execute(
            sa.text("UPDATE ballots SET seal_key = :k WHERE id = :b"),
            {"k": secrets.token_hex(32), "b": ballot_id},
        )
    with op.batch_alter_table("ballot_voters", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ballot_voters_one_state"), type_="check")
        batch_op.drop_column("pending")
    op.drop_table("ballot_tallies")
