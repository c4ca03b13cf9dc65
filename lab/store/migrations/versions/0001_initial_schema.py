"""Initial schema: batches, quarantine, warnings, audit, feature snapshots, item records.

Revision ID: 0001
Revises:
Create Date: 2026-12-03 17:30:39.926437
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("item", sa.String(length=40), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("new_record_id", sa.Integer(), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_item_record", ["item", "record_id"], unique=False)

    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("file_format", sa.String(length=8), nullable=False),
        sa.Column("encoding", sa.String(length=16), nullable=True),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingested_by", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("refusal", sa.Text(), nullable=True),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_stored", sa.Integer(), nullable=False),
        sa.Column("rows_unchanged", sa.Integer(), nullable=False),
        sa.Column("rows_superseding", sa.Integer(), nullable=False),
        sa.Column("rows_quarantined", sa.Integer(), nullable=False),
        sa.Column("rows_normalised", sa.Integer(), nullable=False),
        sa.Column("rows_warned", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index(
            "uq_batches_complete_file",
            ["item", "provider", "file_sha256"],
            unique=True,
            sqlite_where=sa.text("status = 'complete'"),
            postgresql_where=sa.text("status = 'complete'"),
        )

    op.create_table(
        "feature_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("definitions_version", sa.String(length=32), nullable=False),
        sa.Column("feature_names", sa.Text(), nullable=False),
        sa.Column("n_entities", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_snapshots")),
    )
    op.create_table(
        "rec_agri_insurance",
        sa.Column("data_code", sa.String(length=64), nullable=True, comment="数据编码"),
        sa.Column(
            "operator_name", sa.String(length=200), nullable=False, comment="新型农业经营主体名称"
        ),
        sa.Column("id_type", sa.String(length=32), nullable=False, comment="证件类型"),
        sa.Column("id_number", sa.String(length=18), nullable=False, comment="证件号码"),
        sa.Column("is_insured", sa.Boolean(), nullable=False, comment="是否投保"),
        sa.Column("insurance_type", sa.String(length=32), nullable=True, comment="投保类型"),
        sa.Column("insured_scale", sa.Float(), nullable=True, comment="投保规模"),
        sa.Column(
            "insured_amount",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=True,
            comment="保险金额",
        ),
        sa.Column("policy_valid_from", sa.Date(), nullable=True, comment="保单有效期自"),
        sa.Column("policy_valid_to", sa.Date(), nullable=True, comment="保单有效期至"),
        sa.Column("claims_info", sa.String(length=500), nullable=True, comment="保险理赔信息"),
        sa.Column("remarks", sa.String(length=500), nullable=True, comment="备注"),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("entity_key", sa.String(length=18), nullable=False),
        sa.Column("record_key", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_agri_insurance")),
    )
    with op.batch_alter_table("rec_agri_insurance", schema=None) as batch_op:
        batch_op.create_index("ix_rec_agri_insurance_entity_key", ["entity_key"], unique=False)
        batch_op.create_index(
            "uq_rec_agri_insurance_current_record_key",
            ["record_key"],
            unique=True,
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )

    op.create_table(
        "rec_agri_subsidies",
        sa.Column("data_code", sa.String(length=64), nullable=True, comment="数据编码"),
        sa.Column(
            "operator_name", sa.String(length=200), nullable=False, comment="新型农业经营主体名称"
        ),
        sa.Column("id_type", sa.String(length=32), nullable=False, comment="证件类型"),
        sa.Column("id_number", sa.String(length=18), nullable=False, comment="证件号码"),
        sa.Column("subsidy_type", sa.String(length=32), nullable=False, comment="补贴类型"),
        sa.Column(
            "subsidy_amount",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=False,
            comment="补贴金额",
        ),
        sa.Column("stat_time", sa.Date(), nullable=False, comment="统计时间"),
        sa.Column("remarks", sa.String(length=500), nullable=True, comment="备注"),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("entity_key", sa.String(length=18), nullable=False),
        sa.Column("record_key", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_agri_subsidies")),
    )
    with op.batch_alter_table("rec_agri_subsidies", schema=None) as batch_op:
        batch_op.create_index("ix_rec_agri_subsidies_entity_key", ["entity_key"], unique=False)
        batch_op.create_index(
            "uq_rec_agri_subsidies_current_record_key",
            ["record_key"],
            unique=True,
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )

    op.create_table(
        "rec_designated_institutions",
        sa.Column("data_code", sa.String(length=64), nullable=True, comment="数据编码"),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False, comment="企业名称"),
        sa.Column("uscc", sa.String(length=18), nullable=False, comment="统一社会信用代码"),
        sa.Column(
            "practice_license_no",
            sa.String(length=64),
            nullable=False,
            comment="医疗机构执业许可证",
        ),
        sa.Column("remarks", sa.String(length=500), nullable=True, comment="备注"),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("entity_key", sa.String(length=18), nullable=False),
        sa.Column("record_key", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_designated_institutions")),
    )
    with op.batch_alter_table("rec_designated_institutions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rec_designated_institutions_entity_key", ["entity_key"], unique=False
        )
        batch_op.create_index(
            "uq_rec_designated_institutions_current_record_key",
            ["record_key"],
            unique=True,
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )

    op.create_table(
        "rec_electricity",
        sa.Column("data_code", sa.String(length=64), nullable=True, comment="数据编码"),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False, comment="企业名称"),
        sa.Column("uscc", sa.String(length=18), nullable=False, comment="统一社会信用代码"),
        sa.Column("grid_account_no", sa.String(length=32), nullable=False, comment="电网户号"),
        sa.Column("address", sa.String(length=200), nullable=True, comment="用户地址"),
        sa.Column("operating_capacity_kva", sa.Float(), nullable=True, comment="运行容量"),
        sa.Column("contract_capacity_kva", sa.Float(), nullable=True, comment="合同容量"),
        sa.Column("first_supply_date", sa.Date(), nullable=True, comment="首次供电时间"),
        sa.Column("account_status", sa.String(length=32), nullable=True, comment="用电账户状态"),
        sa.Column(
            "arrears_amount",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=True,
            comment="欠费金额",
        ),
        sa.Column("violations_2y", sa.Integer(), nullable=True, comment="近两年违约次数"),
        sa.Column("usage_type", sa.String(length=32), nullable=True, comment="用电类型"),
        sa.Column("province", sa.String(length=20), nullable=True, comment="地区地方名（省级）"),
        sa.Column("city", sa.String(length=20), nullable=True, comment="地区地方名（市级）"),
        sa.Column("value_grade", sa.String(length=32), nullable=True, comment="价值等级"),
        sa.Column("risk_grade", sa.String(length=32), nullable=True, comment="风险等级"),
        sa.Column(
            "avg_spend_3m",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=True,
            comment="近3个月月均用电金额",
        ),
        sa.Column(
            "avg_spend_6m",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=True,
            comment="近6个月月均用电金额",
        ),
        sa.Column(
            "avg_spend_12m",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=True,
            comment="近一年月均用电金额",
        ),
        sa.Column("in_arrears_now", sa.Boolean(), nullable=True, comment="当前是否欠费"),
        sa.Column("stat_date", sa.Date(), nullable=False, comment="统计日期"),
        sa.Column("stat_reference_date", sa.Date(), nullable=True, comment="统计基准日期"),
        sa.Column("remarks", sa.String(length=500), nullable=True, comment="备注"),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("entity_key", sa.String(length=18), nullable=False),
        sa.Column("record_key", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_electricity")),
    )
    with op.batch_alter_table("rec_electricity", schema=None) as batch_op:
        batch_op.create_index("ix_rec_electricity_entity_key", ["entity_key"], unique=False)
        batch_op.create_index(
            "uq_rec_electricity_current_record_key",
            ["record_key"],
            unique=True,
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )

    op.create_table(
        "rec_gas",
        sa.Column("data_code", sa.String(length=64), nullable=True, comment="数据编码"),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False, comment="企业名称"),
        sa.Column("uscc", sa.String(length=18), nullable=False, comment="统一社会信用代码"),
        sa.Column("account_name", sa.String(length=200), nullable=False, comment="户名"),
        sa.Column("account_no", sa.String(length=32), nullable=False, comment="户号"),
        sa.Column("account_opened_on", sa.Date(), nullable=True, comment="开户日期"),
        sa.Column("address", sa.String(length=200), nullable=True, comment="用户地址"),
        sa.Column(
            "prepaid_amount",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=True,
            comment="预交金额",
        ),
        sa.Column(
            "arrears_amount",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=True,
            comment="欠费金额",
        ),
        sa.Column("one_meter_per_account", sa.Boolean(), nullable=True, comment="是否一户一表"),
        sa.Column(
            "payment_details",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=True,
            comment="缴纳燃气费明细",
        ),
        sa.Column("billing_period", sa.String(length=7), nullable=False, comment="缴费所属期"),
        sa.Column("avg_usage_3m", sa.Float(), nullable=True, comment="近3个月月均燃气用量"),
        sa.Column("avg_usage_6m", sa.Float(), nullable=True, comment="近6个月月均燃气用量"),
        sa.Column("in_arrears_now", sa.Boolean(), nullable=True, comment="当前是否欠费"),
        sa.Column("stat_date", sa.Date(), nullable=False, comment="统计日期"),
        sa.Column("stat_reference_date", sa.Date(), nullable=True, comment="统计基准日期"),
        sa.Column("remarks", sa.String(length=500), nullable=True, comment="备注"),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("entity_key", sa.String(length=18), nullable=False),
        sa.Column("record_key", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_gas")),
    )
    with op.batch_alter_table("rec_gas", schema=None) as batch_op:
        batch_op.create_index("ix_rec_gas_entity_key", ["entity_key"], unique=False)
        batch_op.create_index(
            "uq_rec_gas_current_record_key",
            ["record_key"],
            unique=True,
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )

    op.create_table(
        "rec_large_growers",
        sa.Column("data_code", sa.String(length=64), nullable=True, comment="数据编码"),
        sa.Column("grower_name", sa.String(length=200), nullable=False, comment="种植大户名称"),
        sa.Column("id_type", sa.String(length=32), nullable=False, comment="证件类型"),
        sa.Column("id_number", sa.String(length=18), nullable=False, comment="证件号码"),
        sa.Column("address", sa.String(length=200), nullable=True, comment="地址"),
        sa.Column("remarks", sa.String(length=500), nullable=True, comment="备注"),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("entity_key", sa.String(length=18), nullable=False),
        sa.Column("record_key", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_large_growers")),
    )
    with op.batch_alter_table("rec_large_growers", schema=None) as batch_op:
        batch_op.create_index("ix_rec_large_growers_entity_key", ["entity_key"], unique=False)
        batch_op.create_index(
            "uq_rec_large_growers_current_record_key",
            ["record_key"],
            unique=True,
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )

    op.create_table(
        "rec_medical_arrears",
        sa.Column("data_code", sa.String(length=64), nullable=True, comment="数据编码"),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False, comment="企业名称"),
        sa.Column("uscc", sa.String(length=18), nullable=False, comment="统一社会信用代码"),
        sa.Column(
            "arrears_amount",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=False,
            comment="近两年欠缴金额",
        ),
        sa.Column("arrears_period", sa.String(length=7), nullable=False, comment="欠缴所属期"),
        sa.Column("remarks", sa.String(length=500), nullable=True, comment="备注"),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("entity_key", sa.String(length=18), nullable=False),
        sa.Column("record_key", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_medical_arrears")),
    )
    with op.batch_alter_table("rec_medical_arrears", schema=None) as batch_op:
        batch_op.create_index("ix_rec_medical_arrears_entity_key", ["entity_key"], unique=False)
        batch_op.create_index(
            "uq_rec_medical_arrears_current_record_key",
            ["record_key"],
            unique=True,
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )

    op.create_table(
        "rec_medical_changes",
        sa.Column("data_code", sa.String(length=64), nullable=True, comment="数据编码"),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False, comment="企业名称"),
        sa.Column("uscc", sa.String(length=18), nullable=False, comment="统一社会信用代码"),
        sa.Column(
            "headcount_change_rate_q",
            sa.Float(),
            nullable=False,
            comment="近一季度单位月度参保人数变化率",
        ),
        sa.Column(
            "contribution_change_rate_q",
            sa.Float(),
            nullable=False,
            comment="近一季度单位月度缴费金额变化率",
        ),
        sa.Column("stat_time", sa.Date(), nullable=False, comment="统计时间"),
        sa.Column("remarks", sa.String(length=500), nullable=True, comment="备注"),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("entity_key", sa.String(length=18), nullable=False),
        sa.Column("record_key", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_medical_changes")),
    )
    with op.batch_alter_table("rec_medical_changes", schema=None) as batch_op:
        batch_op.create_index("ix_rec_medical_changes_entity_key", ["entity_key"], unique=False)
        batch_op.create_index(
            "uq_rec_medical_changes_current_record_key",
            ["record_key"],
            unique=True,
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )

    op.create_table(
        "rec_medical_contributions",
        sa.Column("data_code", sa.String(length=64), nullable=True, comment="数据编码"),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False, comment="企业名称"),
        sa.Column("uscc", sa.String(length=18), nullable=False, comment="统一社会信用代码"),
        sa.Column("period", sa.String(length=7), nullable=False, comment="费款所属期"),
        sa.Column("insured_headcount", sa.Integer(), nullable=False, comment="近两年每月参保人数"),
        sa.Column(
            "contribution_amount",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=False,
            comment="缴费金额",
        ),
        sa.Column(
            "last_normal_payment_month",
            sa.String(length=7),
            nullable=True,
            comment="最近一次正常缴费月份",
        ),
        sa.Column(
            "deferred_amount",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=True,
            comment="近两年每月缓缴金额",
        ),
        sa.Column("remarks", sa.String(length=500), nullable=True, comment="备注"),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("entity_key", sa.String(length=18), nullable=False),
        sa.Column("record_key", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_medical_contributions")),
    )
    with op.batch_alter_table("rec_medical_contributions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rec_medical_contributions_entity_key", ["entity_key"], unique=False
        )
        batch_op.create_index(
            "uq_rec_medical_contributions_current_record_key",
            ["record_key"],
            unique=True,
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )

    op.create_table(
        "rec_water",
        sa.Column("data_code", sa.String(length=64), nullable=True, comment="数据编码"),
        sa.Column("enterprise_name", sa.String(length=200), nullable=False, comment="企业名称"),
        sa.Column("uscc", sa.String(length=18), nullable=False, comment="统一社会信用代码"),
        sa.Column("account_name", sa.String(length=200), nullable=False, comment="户名"),
        sa.Column("account_no", sa.String(length=32), nullable=False, comment="户号"),
        sa.Column("account_opened_on", sa.Date(), nullable=True, comment="开户日期"),
        sa.Column("address", sa.String(length=200), nullable=True, comment="用户地址"),
        sa.Column(
            "prepaid_amount",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=True,
            comment="预交金额",
        ),
        sa.Column(
            "arrears_amount",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=True,
            comment="欠费金额",
        ),
        sa.Column("one_meter_per_account", sa.Boolean(), nullable=True, comment="是否一户一表"),
        sa.Column(
            "payment_details",
            sa.Numeric(precision=18, scale=2, asdecimal=False),
            nullable=True,
            comment="缴纳水费明细",
        ),
        sa.Column("billing_period", sa.String(length=7), nullable=False, comment="缴费所属期"),
        sa.Column("avg_usage_3m", sa.Float(), nullable=True, comment="近3个月月均用水量"),
        sa.Column("avg_usage_6m", sa.Float(), nullable=True, comment="近6个月月均用水量"),
        sa.Column("in_arrears_now", sa.Boolean(), nullable=True, comment="当前是否欠费"),
        sa.Column("stat_date", sa.Date(), nullable=False, comment="统计日期"),
        sa.Column("stat_reference_date", sa.Date(), nullable=True, comment="统计基准日期"),
        sa.Column("remarks", sa.String(length=500), nullable=True, comment="备注"),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("entity_key", sa.String(length=18), nullable=False),
        sa.Column("record_key", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rec_water")),
    )
    with op.batch_alter_table("rec_water", schema=None) as batch_op:
        batch_op.create_index("ix_rec_water_entity_key", ["entity_key"], unique=False)
        batch_op.create_index(
            "uq_rec_water_current_record_key",
            ["record_key"],
            unique=True,
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )

    op.create_table(
        "batch_warnings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("first_rows", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_warnings_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_warnings")),
    )
    with op.batch_alter_table("batch_warnings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batch_warnings_batch_id"), ["batch_id"], unique=False)

    op.create_table(
        "feature_rows",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("entity_key", sa.String(length=18), nullable=False),
        sa.Column("values", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["feature_snapshots.id"],
            name=op.f("fk_feature_rows_snapshot_id_feature_snapshots"),
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "entity_key", name=op.f("pk_feature_rows")),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(length=40), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=True),
        sa.Column("header", sa.String(length=64), nullable=True),
        sa.Column("reason_code", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("value_masked", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_quarantine_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quarantine_batch_id"), ["batch_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_batch_id"))

    op.drop_table("quarantine")
    op.drop_table("feature_rows")
    with op.batch_alter_table("batch_warnings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batch_warnings_batch_id"))

    op.drop_table("batch_warnings")
    with op.batch_alter_table("rec_water", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_rec_water_current_record_key",
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )
        batch_op.drop_index("ix_rec_water_entity_key")

    op.drop_table("rec_water")
    with op.batch_alter_table("rec_medical_contributions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_rec_medical_contributions_current_record_key",
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )
        batch_op.drop_index("ix_rec_medical_contributions_entity_key")

    op.drop_table("rec_medical_contributions")
    with op.batch_alter_table("rec_medical_changes", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_rec_medical_changes_current_record_key",
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )
        batch_op.drop_index("ix_rec_medical_changes_entity_key")

    op.drop_table("rec_medical_changes")
    with op.batch_alter_table("rec_medical_arrears", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_rec_medical_arrears_current_record_key",
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )
        batch_op.drop_index("ix_rec_medical_arrears_entity_key")

    op.drop_table("rec_medical_arrears")
    with op.batch_alter_table("rec_large_growers", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_rec_large_growers_current_record_key",
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )
        batch_op.drop_index("ix_rec_large_growers_entity_key")

    op.drop_table("rec_large_growers")
    with op.batch_alter_table("rec_gas", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_rec_gas_current_record_key",
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )
        batch_op.drop_index("ix_rec_gas_entity_key")

    op.drop_table("rec_gas")
    with op.batch_alter_table("rec_electricity", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_rec_electricity_current_record_key",
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )
        batch_op.drop_index("ix_rec_electricity_entity_key")

    op.drop_table("rec_electricity")
    with op.batch_alter_table("rec_designated_institutions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_rec_designated_institutions_current_record_key",
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )
        batch_op.drop_index("ix_rec_designated_institutions_entity_key")

    op.drop_table("rec_designated_institutions")
    with op.batch_alter_table("rec_agri_subsidies", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_rec_agri_subsidies_current_record_key",
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )
        batch_op.drop_index("ix_rec_agri_subsidies_entity_key")

    op.drop_table("rec_agri_subsidies")
    with op.batch_alter_table("rec_agri_insurance", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_rec_agri_insurance_current_record_key",
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        )
        batch_op.drop_index("ix_rec_agri_insurance_entity_key")

    op.drop_table("rec_agri_insurance")
    op.drop_table("feature_snapshots")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_batches_complete_file",
            sqlite_where=sa.text("status = 'complete'"),
            postgresql_where=sa.text("status = 'complete'"),
        )

    op.drop_table("batches")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_item_record")

    op.drop_table("audit_events")
