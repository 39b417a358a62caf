"""Initial catalog: suppliers, demands, equipment, solutions, change log, catalog state.

Revision ID: ba27a439dba2
Revises:
Create Date: 2026-11-30 18:49:31.019424
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ba27a439dba2"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_state")),
    )
    # The single row whose lock serialises writers and whose value is the catalog version.
    state = sa.table(
        "catalog_state", sa.column("id", sa.Integer()), sa.column("version", sa.BigInteger())
    )
    op.bulk_insert(state, [{"id": 1, "version": 0}])
    op.create_table(
        "change_log",
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("resource", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=40), nullable=False),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_change_log")),
    )
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_change_log_resource_id"), ["resource_id"], unique=False
        )

    op.create_table(
        "demands",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("external_ref", sa.String(length=200), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "industry_chains",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("stage", sa.String(length=16), nullable=True),
        sa.Column("district", sa.String(length=100), nullable=True),
        sa.Column("needs_voucher", sa.Boolean(), nullable=False),
        sa.Column(
            "required_certifications",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "version", sa.BigInteger(), nullable=False, comment="catalog version of the last change"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_demands")),
        sa.UniqueConstraint("external_ref", name=op.f("uq_demands_external_ref")),
        sa.UniqueConstraint("id", name=op.f("uq_demands_id")),
    )
    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_demands_district"), ["district"], unique=False)
        batch_op.create_index(batch_op.f("ix_demands_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "suppliers",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("external_ref", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=False),
        sa.Column("district", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "industry_chains",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "capabilities",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "equipment",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "certifications",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "stages",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("accepts_vouchers", sa.Boolean(), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=True),
        sa.Column(
            "version", sa.BigInteger(), nullable=False, comment="catalog version of the last change"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_suppliers")),
        sa.UniqueConstraint("id", name=op.f("uq_suppliers_id")),
        sa.UniqueConstraint("kind", "external_ref", name=op.f("uq_suppliers_kind_external_ref")),
    )
    with op.batch_alter_table("suppliers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_suppliers_district"), ["district"], unique=False)
        batch_op.create_index("ix_suppliers_kind_pk", ["kind", "pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_suppliers_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "equipment",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("external_ref", sa.String(length=200), nullable=True),
        sa.Column("supplier_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column(
            "specs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("availability", sa.String(length=500), nullable=False),
        sa.Column("sharing_url", sa.String(length=500), nullable=True),
        sa.Column(
            "version", sa.BigInteger(), nullable=False, comment="catalog version of the last change"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.id"],
            name=op.f("fk_equipment_supplier_id_suppliers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_equipment")),
        sa.UniqueConstraint("external_ref", name=op.f("uq_equipment_external_ref")),
        sa.UniqueConstraint("id", name=op.f("uq_equipment_id")),
    )
    with op.batch_alter_table("equipment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_equipment_supplier_id"), ["supplier_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_equipment_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "solutions",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("external_ref", sa.String(length=200), nullable=True),
        sa.Column("platform_id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "industry_chains",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "stages",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("typical_duration_days", sa.Integer(), nullable=True),
        sa.Column("price_min_cny", sa.BigInteger(), nullable=True),
        sa.Column("price_max_cny", sa.BigInteger(), nullable=True),
        sa.Column(
            "version", sa.BigInteger(), nullable=False, comment="catalog version of the last change"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["suppliers.id"],
            name=op.f("fk_solutions_platform_id_suppliers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_solutions")),
        sa.UniqueConstraint("external_ref", name=op.f("uq_solutions_external_ref")),
        sa.UniqueConstraint("id", name=op.f("uq_solutions_id")),
    )
    with op.batch_alter_table("solutions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_solutions_platform_id"), ["platform_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_solutions_updated_at"), ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("solutions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_solutions_updated_at"))
        batch_op.drop_index(batch_op.f("ix_solutions_platform_id"))

    op.drop_table("solutions")
    with op.batch_alter_table("equipment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_equipment_updated_at"))
        batch_op.drop_index(batch_op.f("ix_equipment_supplier_id"))

    op.drop_table("equipment")
    with op.batch_alter_table("suppliers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suppliers_updated_at"))
        batch_op.drop_index("ix_suppliers_kind_pk")
        batch_op.drop_index(batch_op.f("ix_suppliers_district"))

    op.drop_table("suppliers")
    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_demands_updated_at"))
        batch_op.drop_index(batch_op.f("ix_demands_district"))

    op.drop_table("demands")
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_log_resource_id"))

    op.drop_table("change_log")
    op.drop_table("catalog_state")
