"""Command line of the package, run where Airflow's connections are reachable (the
``analytics_db`` connection from the metadata DB, a secrets backend or ``AIRFLOW_CONN_*``):

    python -m include.customer_performance report [--month 2025-07]   # the executive dashboard
    python -m include.customer_performance migrate                   # bring the analytics schema up to date
    python -m include.customer_performance backfill --from 2025-01 --to 2025-06   # needs the scheduler running
    python -m include.customer_performance email-delivery --run-id RUN --month 2025-07 [--confirm | --resend]
    python -m include.customer_performance lifetime status | verify [--month 2025-08] | rebuild [--month 2025-08]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from include.customer_performance.config import settings
from include.customer_performance.db import pg
from include.customer_performance.period import month_period


def report(args) -> int:
    from include.customer_performance import report as rpt

    cfg = settings()
    schema = args.schema or cfg.analytics_schema
    with pg(cfg.analytics_db_conn_id) as conn:
        try:
            month = month_period(args.month).report_month if args.month else rpt.latest_complete_month(conn, schema)
            summary = rpt.month_summary(conn, schema, month)
        except rpt.MonthNotLoadedError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(rpt.executive_dashboard(summary, rpt.breakdowns(conn, schema, month), cfg.reporting_currency))
    return 0


def migrate(args) -> int:
    from include.customer_performance.migrations import migrate as run_migrations

    cfg = settings()
    schema = args.schema or cfg.analytics_schema
    with pg(cfg.analytics_db_conn_id) as conn:
        with conn.cursor() as cur:
            applied = run_migrations(cur, schema)
        conn.commit()
    print(f"{schema}: applied {', '.join(applied)}" if applied else f"{schema}: up to date")
    return 0


def backfill(args) -> int:
    from include.customer_performance.backfill import BackfillError
    from include.customer_performance.backfill import backfill as run_backfill

    def done(month: str, state: str) -> None:
        print(f"{month}: {state}", flush=True)

    try:
        run_backfill(args.first, args.last, airflow=args.airflow, on_done=done)
    except (BackfillError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def email_delivery(args) -> int:
    """Show a run's email delivery record, or settle an unconfirmed one: ``--confirm`` (it arrived:
    no try sends it again) or ``--resend`` (the next try of the task sends it once more)."""
    from psycopg import sql

    from include.customer_performance.export.csv_email import DELIVERIES, set_delivery_state
    from include.customer_performance.migrations import migrate as run_migrations

    cfg = settings()
    schema = args.schema or cfg.analytics_schema
    month = month_period(args.month).report_month
    with pg(cfg.analytics_db_conn_id) as conn, conn.cursor() as cur:
        run_migrations(cur, schema)
        if args.confirm or args.resend:
            if not set_delivery_state(cur, schema, args.run_id, month, "sent" if args.confirm else "resend"):
                print(f"no email delivery of run {args.run_id} for {args.month}", file=sys.stderr)
                return 2
            conn.commit()
        cur.execute(
            sql.SQL(
                "SELECT state, attempts, message_id, started_at, sent_at FROM {}"
                " WHERE run_id = %s AND report_month = %s"
            ).format(sql.Identifier(schema, DELIVERIES)),
            (args.run_id, month),
        )
        row = cur.fetchone()
    if row is None:
        print(f"no email delivery of run {args.run_id} for {args.month}", file=sys.stderr)
        return 2
    state, attempts, mid, started, sent = row
    print(
        f"{args.month} run {args.run_id}: {state} ({attempts} tries, Message-ID {mid}, last try {started}, sent {sent})"
    )
    return 0


def lifetime_state(args) -> int:
    """The lifetime purchase state (extract/lifetime.py): ``status`` lists the snapshots,
    ``verify`` compares one with a full recomputation at the source (exit 1 when they differ),
    ``rebuild`` replaces every snapshot of the source with one built in full."""
    from datetime import UTC, datetime

    from include.customer_performance.db import mysql
    from include.customer_performance.extract import lifetime

    cfg = settings()
    schema = args.schema or cfg.analytics_schema
    as_of = month_period(args.month).report_month if args.month else None
    with pg(cfg.analytics_db_conn_id) as dst:
        if args.action == "status":
            with dst.cursor() as cur:
                cur.execute("SELECT to_regclass(%s)", (f"{schema}.lifetime_snapshots",))
                rows = lifetime.snapshots(cur, schema) if cur.fetchone()[0] else []
            for r in rows:
                print(
                    f"{r['source']} as of {r['as_of']}: {r['customers']:,} customers, {r['rows']:,} rows,"
                    f" {r['method']}, watermark {r['watermark']}, built {r['built_at']:%Y-%m-%d %H:%M} by {r['run_id']}"
                )
            if not rows:
                print(f"{schema}: no lifetime snapshot yet (the next run builds one)")
            return 0
        with mysql(cfg.sales_db_conn_id) as src:
            if args.action == "verify":
                try:
                    out = lifetime.verify(src, dst, schema, as_of, cfg.lifetime_lookback_hours)
                except LookupError as exc:
                    print(exc, file=sys.stderr)
                    return 2
                same = out["missing"] == 0 and out["extra"] == 0
                print(
                    f"{out['source']} as of {out['as_of']}: "
                    + (
                        "the snapshot equals a full recomputation"
                        if same
                        else f"{out['missing']} row(s) missing from the snapshot, {out['extra']} row(s) the source no"
                        " longer gives (a sale deleted, moved to another customer or re-dated past the month start,"
                        " or changed without a later updated_at): run `lifetime rebuild`"
                    )
                    + f" ({out['changed']} customer(s) changed since its watermark left out: the next run"
                    " recomputes them)"
                )
                return 0 if same else 1
            month = as_of or datetime.now(UTC).date().replace(day=1)
            from include.customer_performance.extract.sales_db import helper_pairs

            with helper_pairs(cfg) as helpers:
                snap = lifetime.rebuild(src, dst, schema, month, run_id="cli:lifetime-rebuild", helpers=helpers)
            print(f"rebuilt the lifetime state as of {snap.as_of} in full (snapshot {snap.snapshot_id})")
    return 0


def glossary(args) -> int:
    from include.customer_performance.glossary import markdown

    text = markdown()
    if args.write:
        Path(args.write).write_text(text)
    else:
        print(text, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.customer_performance", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("report", help="print the executive dashboard of a loaded month")
    p.add_argument("--month", help="YYYY-MM (default: the latest complete month loaded)")
    p.add_argument("--schema", help="the analytics schema (default: the analytics_schema setting)")
    p.set_defaults(run=report)
    p = commands.add_parser("migrate", help="apply the pending migrations of the analytics schema")
    p.add_argument("--schema", help="the analytics schema (default: the analytics_schema setting)")
    p.set_defaults(run=migrate)
    p = commands.add_parser("backfill", help="backfill the month-close runs of a range of months, oldest first")
    p.add_argument("--from", dest="first", required=True, help="first month, YYYY-MM")
    p.add_argument("--to", dest="last", required=True, help="last month, YYYY-MM")
    p.add_argument("--airflow", default="airflow", help="the airflow command (default: airflow on PATH)")
    p.set_defaults(run=backfill)
    p = commands.add_parser("email-delivery", help="show or settle a run's email delivery record")
    p.add_argument("--run-id", required=True, help="the DAG run id (as in the task's error)")
    p.add_argument("--month", required=True, help="the report month, YYYY-MM")
    p.add_argument("--schema", help="the analytics schema (default: the analytics_schema setting)")
    settle = p.add_mutually_exclusive_group()
    settle.add_argument("--confirm", action="store_true", help="the email arrived: never send it again")
    settle.add_argument("--resend", action="store_true", help="it did not: the next try of the task sends it")
    p.set_defaults(run=email_delivery)
    p = commands.add_parser("lifetime", help="show, verify or rebuild the lifetime purchase state")
    p.add_argument("action", choices=("status", "verify", "rebuild"))
    p.add_argument(
        "--month",
        help="YYYY-MM: the snapshot at its first day (verify: default the newest; rebuild: default this month)",
    )
    p.add_argument("--schema", help="the analytics schema (default: the analytics_schema setting)")
    p.set_defaults(run=lifetime_state)
    p = commands.add_parser("glossary", help="print every published name with its label, unit and definition")
    p.add_argument("--write", metavar="FILE", help="write it to FILE (docs/glossary.md) instead")
    p.set_defaults(run=glossary)
    args = parser.parse_args(argv)
    if getattr(args, "month", None):
        try:
            month_period(args.month)
        except ValueError as exc:
            parser.error(str(exc))
    logging.basicConfig(level=logging.INFO if args.command in ("backfill", "lifetime") else logging.WARNING)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
