"""worst status, attempts, toolchain: a job's status is the worst of its stages (its cause that
stage's), earlier attempts of a job are kept in ``job_attempt`` when it is judged again, and the
job records the toolchain fingerprint that judged it; a claim a worker gave up on says why
(``job_claim.cause``: bad input or infrastructure).

Existing jobs get their status, cause and summary recomputed from their stage rows (they held the
last non-skipped stage's). Their toolchain is unknown (NULL): such a job is judged again by the
next run that covers it instead of being reused (see ``record.claim_job``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 11:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SEVERITY = {"skip": 0, "pass": 1, "warn": 2, "error": 3, "fail": 4}  # vocab.Status order
STAGES = {"apply": 0, "configure": 1, "build": 2, "boot": 3, "test": 4}  # vocab.Stage order


def upgrade() -> None:
    op.create_table(
        "job_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=True),
        sa.Column("furthest_stage", sa.String(length=16), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.Column("toolchain", sa.String(length=32), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_job_attempt_job_id_job")),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], name=op.f("fk_job_attempt_run_id_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_attempt")),
        sa.UniqueConstraint("job_id", "attempt", name=op.f("uq_job_attempt_job_id")),
    )
    op.create_index(op.f("ix_job_attempt_job_id"), "job_attempt", ["job_id"], unique=False)
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("toolchain", sa.String(length=32), nullable=True))
    with op.batch_alter_table("job_claim") as batch:
        batch.add_column(sa.Column("cause", sa.String(length=16), nullable=True))
    _recompute_job_status()


def _recompute_job_status() -> None:
    """job.status/cause/summary/furthest_stage from the stage rows: the worst status (the
    earliest stage among equals), and the furthest stage that ran."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT s.job_id, s.stage, s.status, s.cause, s.summary FROM stage_result s "
            "JOIN job j ON j.id = s.job_id WHERE j.finished = :yes"
        ),
        {"yes": True},
    ).fetchall()
    by_job: dict[int, list[tuple[str, str, str | None, str | None]]] = {}
    for job_id, stage, status, cause, summary in rows:
        if stage in STAGES and status in SEVERITY:
            by_job.setdefault(job_id, []).append((stage, status, cause, summary))
    update = sa.text(
        "UPDATE job SET status = :status, cause = :cause, summary = :summary, "
        "furthest_stage = :furthest WHERE id = :id"
    )
    for job_id, stages in by_job.items():
        stages.sort(key=lambda r: STAGES[r[0]])
        ran = [r for r in stages if r[1] != "skip"]
        if not ran:
            continue
        worst = max(ran, key=lambda r: SEVERITY[r[1]])  # max keeps the first of equals
        bind.execute(
            update,
            {
                "status": worst[1],
                "cause": worst[2],
                "summary": worst[3],
                "furthest": ran[-1][0],
                "id": job_id,
            },
        )


def downgrade() -> None:
    with op.batch_alter_table("job_claim") as batch:
        batch.drop_column("cause")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("toolchain")
    op.drop_index(op.f("ix_job_attempt_job_id"), table_name="job_attempt")
    op.drop_table("job_attempt")
