"""Write the seed's three CSV files for the period and email them with an HTML summary.

Files: ``customer_performance_<month><year>.csv``, ``regional_summary_<month><year>.csv`` and
``data_quality_report_<month><year>.csv`` (e.g. ``_july2025``), UTF-8 with a header. Text cells that
a spreadsheet would run as a formula are neutralised; email and phone are left out unless enabled.

The files go to the export location, an ``ObjectStoragePath``: a local folder by default, or any
URL Airflow's object storage knows (``s3://bucket/prefix`` with the Amazon provider and a
connection, ``gs://``, ...). Local files appear whole or not at all (written aside, then renamed);
object stores publish an object only when its upload completes.
"""

from __future__ import annotations

import gzip
import html
import logging
import shutil
from pathlib import Path

from psycopg import sql

from include.customer_performance.staging import Run

log = logging.getLogger(__name__)

PII_COLUMNS = {"email", "phone"}
# A text cell starting with one of these is run as a formula by spreadsheets: it gets a ' prefix.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# The files' row order: a total order of each table, so the same run always writes the same bytes.
REGIONAL_ORDER = "grouping_level, region, country, state, segment, product_category"
DQ_ORDER = "suite, table_name, rule, expectation, column_name"
EXPORTS = {
    "customer_performance": ("customer_metrics", "customer_id"),
    "regional_summary": ("regional_summary", REGIONAL_ORDER),
    "data_quality_report": ("dq_results", DQ_ORDER),
}


def file_names(run: Run) -> dict[str, str]:
    return {name: f"{name}_{run.period.label}.csv" for name in EXPORTS}


def export_select(cur, run: Run, stage: str, order: str, include_pii: bool) -> sql.Composed:
    """SELECT of a staged table for export: PII columns dropped unless enabled, text neutralised."""
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (run.schema, run.table_name(stage)),
    )
    guard = sql.SQL(", ").join(map(sql.Literal, FORMULA_PREFIXES))
    cols = []
    for name, dtype in cur.fetchall():
        if name in PII_COLUMNS and not include_pii:
            continue
        col = sql.Identifier(name)
        if dtype == "text":
            col = sql.SQL("CASE WHEN left({c}, 1) IN ({g}) THEN {q} || {c} ELSE {c} END AS {c}").format(
                c=col, g=guard, q=sql.Literal("'")
            )
        cols.append(col)
    return sql.SQL("SELECT {} FROM {} ORDER BY " + order).format(sql.SQL(", ").join(cols), run.table(stage))


def storage_path(location: str):
    """The ``ObjectStoragePath`` of a location: a URL as it is, a plain path as a local folder."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(location if "://" in location else Path(location).expanduser().resolve().as_uri())


def is_local(path) -> bool:
    return path.protocol in ("file", "local", "")


def display(path) -> str:
    """A local file as a plain path, anything else as its URL."""
    return path.path if is_local(path) else str(path)


def write_csvs(conn, run: Run, folder, include_pii: bool = False) -> dict[str, dict]:
    """Stream each staged table into its CSV file under ``folder`` (an ``ObjectStoragePath``) with
    COPY; returns ``{name: {path, rows}}``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    with conn.cursor() as cur:
        for name, filename in file_names(run).items():
            stage, order = EXPORTS[name]
            path = folder / filename
            target = folder / f"{filename}.part" if is_local(folder) else path
            query = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER, ENCODING 'UTF8')").format(
                export_select(cur, run, stage, order, include_pii)
            )
            with target.open("wb") as fh, cur.copy(query) as copy:
                for block in copy:
                    fh.write(block)
            if target != path:
                target.replace(path)  # readers never see a half-written file
            out[name] = {"path": display(path), "rows": cur.rowcount}
    return out


def attachments(files: dict[str, dict], limit_bytes: int, workdir: Path) -> tuple[list[str], list[str]]:
    """Which files to attach and which to link, so that a message stays under ``limit_bytes``.

    Under the limit, the CSV files are attached as they are; over it, they are gzip-compressed
    next to the originals (in the export location) and attached if that fits; otherwise the
    compressed files are linked, not attached. Files to attach are copied into ``workdir`` (the
    SMTP hook attaches local files). Returns ``(local paths to attach, export paths to link)``.
    """
    paths = [storage_path(f["path"]) for f in files.values()]
    if sum(p.size() for p in paths) > limit_bytes:
        compressed = []
        for path in paths:
            target = path.parent / (path.name + ".gz")
            with (
                path.open("rb") as src,
                target.open("wb") as raw,
                # level 1: three times faster than the default 6 on these files for a quarter more bytes
                gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, compresslevel=1, mtime=0) as dst,
            ):
                shutil.copyfileobj(src, dst, length=1 << 20)
            compressed.append(target)
        paths = compressed
        if sum(p.size() for p in paths) > limit_bytes:
            return [], [display(p) for p in paths]
    attached = []
    for path in paths:
        if is_local(path):
            attached.append(path.path)
        else:
            local = workdir / path.name
            with path.open("rb") as src, local.open("wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
            attached.append(str(local))
    return attached, []


def should_email(policy: str, is_complete_month: bool, manual: bool) -> tuple[bool, str]:
    """Whether this run emails the export under ``policy`` (config.EMAIL_POLICIES), and why."""
    if manual:
        return True, "a manual run"
    if policy == "daily":
        return True, "email_policy is daily"
    if policy == "month_close":
        if is_complete_month:
            return True, "the run closes the month"
        return False, "email_policy is month_close and this run does not close the month"
    return False, f"email_policy is {policy}: only manual runs are emailed"


def summary_html(run: Run, kpis: dict, files: dict[str, dict], links: list[str] = ()) -> str:
    def fmt(v: object) -> str:
        return html.escape(f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v))

    rows = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in kpis.items())
    listed = "".join(f"<li>{html.escape(Path(f['path']).name)} ({f['rows']:,} rows)</li>" for f in files.values())
    where = (
        "<p>The files are too large to attach; they are here:</p><ul>"
        + "".join(f"<li>{html.escape(link)}</li>" for link in links)
        + "</ul>"
        if links
        else "<p>Attached:</p>"
    )
    return (
        f"<h2>Customer Performance: {html.escape(str(run.period))}</h2>"
        f"<table>{rows}</table>{where}<ul>{listed}</ul>"
        f"<p style='color:#666'>Run {html.escape(run.run_id)}</p>"
    )


def send(smtp_conn_id: str, to: list[str], sender: str, subject: str, body: str, files: list[str]) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
        hook.send_email_smtp(to=to, from_email=sender, subject=subject, html_content=body, files=files)
    log.info("emailed %s file(s) to %s", len(files), ", ".join(to))
