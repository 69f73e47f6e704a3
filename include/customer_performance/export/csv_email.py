"""Write the seed's three CSV files for the period and email them with an HTML summary.

Files: ``customer_performance_<month><year>.csv``, ``regional_summary_<month><year>.csv`` and
``data_quality_report_<month><year>.csv`` (e.g. ``_july2025``), UTF-8 with a header. Text cells that
a spreadsheet would run as a formula are neutralised; email and phone are left out unless enabled.
"""

from __future__ import annotations

import csv
import html
import logging
from pathlib import Path

from psycopg import sql

from include.customer_performance.staging import Run

log = logging.getLogger(__name__)

PII_COLUMNS = {"email", "phone"}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

EXPORTS = {
    "customer_performance": ("customer_metrics", "customer_id"),
    "regional_summary": ("regional_summary", "grouping_level, region, country, state"),
    "data_quality_report": ("dq_results", "suite, table_name, expectation, column_name"),
}


def safe_cell(value: object) -> object:
    """Neutralise a text cell a spreadsheet would evaluate (CSV formula injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def file_names(run: Run) -> dict[str, str]:
    return {name: f"{name}_{run.period.label}.csv" for name in EXPORTS}


def write_csvs(conn, run: Run, folder: Path, include_pii: bool = False, chunk_rows: int = 10_000) -> dict[str, dict]:
    """Stream each staged table into its CSV file; returns ``{name: {path, rows}}``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, filename in file_names(run).items():
        stage, order = EXPORTS[name]
        path = folder / filename
        tmp = path.with_suffix(".csv.part")
        with conn.cursor(name=f"csv_{name}") as cur:
            cur.execute(sql.SQL("SELECT * FROM {} ORDER BY " + order).format(run.table(stage)))
            rows = 0
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                header = None
                while batch := cur.fetchmany(chunk_rows):
                    if header is None:
                        header = [d.name for d in cur.description]
                        keep = [i for i, c in enumerate(header) if include_pii or c not in PII_COLUMNS]
                        writer.writerow([header[i] for i in keep])
                    for row in batch:
                        writer.writerow([safe_cell(row[i]) for i in keep])
                    rows += len(batch)
                if header is None:  # empty table: still write the header
                    header = [d.name for d in cur.description]
                    writer.writerow([c for c in header if include_pii or c not in PII_COLUMNS])
        tmp.replace(path)  # readers never see a half-written file
        out[name] = {"path": str(path), "rows": rows}
    return out


def summary_html(run: Run, kpis: dict, files: dict[str, dict]) -> str:
    def fmt(v: object) -> str:
        return html.escape(f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v))

    rows = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in kpis.items())
    listed = "".join(f"<li>{html.escape(Path(f['path']).name)} ({f['rows']:,} rows)</li>" for f in files.values())
    return (
        f"<h2>Customer Performance: {html.escape(str(run.period))}</h2>"
        f"<table>{rows}</table><p>Attached:</p><ul>{listed}</ul>"
        f"<p style='color:#666'>Run {html.escape(run.run_id)}</p>"
    )


def send(smtp_conn_id: str, to: list[str], sender: str, subject: str, body: str, files: list[str]) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
        hook.send_email_smtp(to=to, from_email=sender, subject=subject, html_content=body, files=files)
    log.info("emailed %s file(s) to %s", len(files), ", ".join(to))
