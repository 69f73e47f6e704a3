"""Write the period's CSV files and email them with an HTML summary.

Files: ``customer_performance_<month><year>.csv``, ``regional_summary_<level>_<month><year>.csv``
(one per grouping level: a column's sum is the month's figure), ``data_quality_report_...`` (one
row per check), ``data_quality_scores_...`` (per table), ``period_comparison_...`` and
``interaction_summary_...`` (e.g. ``_july2025``), UTF-8 with a header,
sent as ``text/csv``. Money is rounded to cents and every other fraction to 4 decimals (the
glossary's units), an empty group label is written ``unknown``; text cells that a spreadsheet
would run as a formula are neutralised; email and phone are left out unless enabled.

The files go to the export location, an ``ObjectStoragePath``: a local folder by default, or any
URL Airflow's object storage knows (``s3://bucket/prefix`` with the Amazon provider and a
connection, ``gs://``, ...). Local files appear whole or not at all (written aside, then renamed);
object stores publish an object only when its upload completes.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import shutil
import uuid
from pathlib import Path

from psycopg import sql

from include.customer_performance.db import relay
from include.customer_performance.quality.report import DQ_COLUMNS
from include.customer_performance.staging import Run

log = logging.getLogger(__name__)

PII_COLUMNS = {"email", "phone"}
# A text cell starting with one of these is run as a formula by spreadsheets: it gets a ' prefix.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# The files' row order: a total order of each table, so the same run always writes the same bytes.
REGIONAL_ORDER = "grouping_level, region, country, state, segment, product_category"
DQ_ORDER = "suite, table_name, rule, expectation, column_name"
COMPARISON_ORDER = "grouping_level, label NULLS FIRST"
INTERACTION_ORDER = (
    "grouping_level, interaction_type NULLS FIRST, department NULLS FIRST, priority NULLS FIRST,"
    " resolution_status NULLS FIRST"
)
# file -> (its staged tables, read as one, and their row order)
EXPORTS = {
    "customer_performance": (("customer_metrics",), "customer_id"),
    # the report: the gate's results (validate) and the aggregate suites' (aggregate)
    "data_quality_report": (("dq_results", "dq_aggregates"), DQ_ORDER),
    # the insights a reader works from in a spreadsheet: the month against the last, the interactions
    "period_comparison": (("period_comparison",), COMPARISON_ORDER),
    "interaction_summary": (("interaction_summary",), INTERACTION_ORDER),
}
# The regional summary, one file per grouping level (regional_summary_<level>_<month>.csv): each
# file's rows cover the month once, so a spreadsheet's sum of a column is the month's figure (in
# one file of all levels it would count the month once per level). level -> its grouping columns.
REGIONAL_LEVELS = {
    "total": (),
    "region": ("region",),
    "country": ("region", "country"),
    "state": ("region", "country", "state"),
    "segment": ("segment",),
    "region+segment": ("region", "segment"),
    "product_category": ("product_category",),
    "region+product_category": ("region", "product_category"),
    "segment+product_category": ("segment", "product_category"),
    "region+segment+product_category": ("region", "segment", "product_category"),
}
REGIONAL_MEASURES = (
    "customers",
    "active_customers",
    "market_penetration",
    "penetration_base",
    "addressable_market",
    "transactions",
    "revenue",
    "revenue_at_risk",
    "avg_health_score",
    "avg_churn_probability",
)
# customer measures are not split by product category (regional_summary.sql): NULL there, left out
CUSTOMER_MEASURES = (
    "market_penetration",
    "penetration_base",
    "addressable_market",
    "revenue_at_risk",
    "avg_health_score",
    "avg_churn_probability",
)
# text columns whose empty value is a group of its own: written as glossary.MISSING_LABEL
GROUP_LABELS = frozenset(
    {
        "region",
        "country",
        "state",
        "segment",
        "crm_segment",
        "product_category",
        "label",
        "interaction_type",
        "department",
        "priority",
        "resolution_status",
    }
)


def regional_columns(level: str) -> tuple[str, ...]:
    """The columns of a level's file: its grouping columns, then the measures it has."""
    keys = REGIONAL_LEVELS[level]
    measures = [m for m in REGIONAL_MEASURES if "product_category" not in keys or m not in CUSTOMER_MEASURES]
    return (*keys, *measures)


def regional_file(level: str) -> str:
    return "regional_summary_" + level.replace("+", "_")


# every staged table the export and its email read: the files' tables, and the digest's KPIs,
# back-test, churn and scorecard (checked before anything is written; lineage's inputs)
STAGED_INPUTS = (
    "kpis",
    "backtest",
    "churn",
    "scorecard",
    "regional_summary",
    *dict.fromkeys(t for stages, _ in EXPORTS.values() for t in stages),
)


# The report's rows that are not checks: the per-table quality scores, a file of their own (so that
# the report's rows are its checks, as the dashboard and the email count them).
SCORES = "data_quality_scores"
SCORE_COLUMNS = ("table_name", "rule", "expectation", "score")
CHECK_COLUMNS = (*DQ_COLUMNS, "quarantined_rows")


def file_names(run: Run) -> dict[str, str]:
    names = [*EXPORTS, SCORES, *(regional_file(level) for level in REGIONAL_LEVELS)]
    return {name: f"{name}_{run.period.label}.csv" for name in names}


def _export_spec(name: str) -> tuple[tuple[str, ...], str, tuple[str, ...] | None, sql.Composable | None]:
    """(staged tables, row order, the columns (None: all), a filter) of a file."""
    if name == "data_quality_report":
        stages, order = EXPORTS[name]
        return stages, order, CHECK_COLUMNS, sql.SQL("score IS NULL")
    if name == SCORES:
        return EXPORTS["data_quality_report"][0], "table_name, rule", SCORE_COLUMNS, sql.SQL("score IS NOT NULL")
    if name in EXPORTS:
        stages, order = EXPORTS[name]
        return stages, order, None, None
    level = next(lv for lv in REGIONAL_LEVELS if regional_file(lv) == name)
    keys = REGIONAL_LEVELS[level]
    where = sql.SQL("grouping_level = {}").format(sql.Literal(level))
    return ("regional_summary",), ", ".join(keys) or "grouping_level", regional_columns(level), where


def export_select(
    cur,
    run: Run,
    stages: tuple[str, ...],
    order: str,
    include_pii: bool,
    columns: tuple[str, ...] | None = None,
    where: sql.Composable | None = None,
) -> sql.Composed:
    """SELECT of staged tables (of one shape, read as one) for export: PII columns dropped unless
    enabled, ``columns`` only when given, the rows matching ``where`` when given; numbers
    rounded as the glossary says (money to cents, other fractions to 4 decimals), an empty group
    label written as ``unknown``, text neutralised."""
    from include.customer_performance.glossary import MISSING_LABEL, decimals

    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (run.schema, run.table_name(stages[0])),
    )
    types = dict(cur.fetchall())
    names = [n for n in types if n not in PII_COLUMNS or include_pii] if columns is None else list(columns)
    guard = sql.SQL(", ").join(map(sql.Literal, FORMULA_PREFIXES))
    cols = []
    for name in names:
        dtype = types[name]
        col = sql.Identifier(name)
        if dtype in ("numeric", "double precision", "real") and decimals(name) is not None:
            col = sql.SQL("round({c}::numeric, {d}) AS {c}").format(c=col, d=sql.Literal(decimals(name)))
        elif dtype == "text":
            value = col
            if name in GROUP_LABELS:
                # an empty value of a column the row groups by is a group of its own (unknown); in
                # a row of a grouped table that does not group by it, empty means all of them
                # (a file of one level, without the column, holds that level's grouping columns only)
                levels = "grouping_level" in types and (columns is None or "grouping_level" in columns)
                grouped = (
                    sql.SQL("TRUE")
                    if not levels
                    else sql.SQL("grouping_level <> 'total'")
                    if name == "label"
                    else sql.SQL("{c} = ANY(string_to_array(grouping_level, '+'))").format(c=sql.Literal(name))
                )
                value = sql.SQL("CASE WHEN {c} IS NULL AND {g} THEN {u} ELSE {c} END").format(
                    c=col, g=grouped, u=sql.Literal(MISSING_LABEL)
                )
            col = sql.SQL("CASE WHEN left({v}, 1) IN ({g}) THEN {q} || {v} ELSE {v} END AS {c}").format(
                v=value, c=col, g=guard, q=sql.Literal("'")
            )
        cols.append(col)
    source = sql.SQL(" UNION ALL ").join(sql.SQL("SELECT * FROM {}").format(run.table(st)) for st in stages)
    filtered = sql.SQL("") if where is None else sql.SQL(" WHERE ") + where
    # the rows in ``order`` of the stored values (a written label, unknown, must not move its row)
    return sql.SQL(
        "SELECT {} FROM (SELECT *, row_number() OVER (ORDER BY " + order + ") AS export_row FROM ({}) AS s{})"
        " AS staged ORDER BY export_row"
    ).format(sql.SQL(", ").join(cols), source, filtered)


def storage_path(location: str):
    """The ``ObjectStoragePath`` of a location: a URL as it is, a plain path as a local folder."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(location if "://" in location else Path(location).expanduser().resolve().as_uri())


def is_local(path) -> bool:
    return path.protocol in ("file", "local", "")


def open_file(path, mode: str = "rb"):
    """Open an ``ObjectStoragePath`` through its filesystem, past Airflow's tracking of file opens
    for lineage: a task reports its files itself (lineage.py), by their final names, never a
    temporary one or a run-private copy."""
    return path.fs.open(path.path, mode)


def display(path) -> str:
    """A local file as a plain path, anything else as its URL."""
    return path.path if is_local(path) else str(path)


class ExportLocationError(RuntimeError):
    """The export location is missing or not writable: a deployment setting, not a passing fault."""


def check_location(location: str, create: bool = False):
    """The export location as an ``ObjectStoragePath``, checked before anything is written to it: a
    local folder must exist (unless ``create``: the setting ``export_create_location``) and be
    writable. An object store's prefix needs no folder; its first write says whether it is usable."""
    import os

    root = storage_path(location)
    if not is_local(root):
        return root
    path = Path(root.path)
    if not path.exists():
        if not create:
            raise ExportLocationError(
                f"the export location {path} does not exist: create it (writable by the workers) or set"
                " CUSTOMER_PERFORMANCE_EXPORT_CREATE_LOCATION=true to let the pipeline create it"
            )
        path.mkdir(parents=True, exist_ok=True)
        log.warning("created the export location %s (export_create_location is on)", path)
    if not path.is_dir():
        raise ExportLocationError(f"the export location {path} is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ExportLocationError(f"the export location {path} is not writable by this worker (user {os.getuid()})")
    return root


def write_csvs(conn, run: Run, folder, include_pii: bool = False, copies: Path | None = None) -> dict[str, dict]:
    """Stream each staged table into its CSV file under ``folder`` (an ``ObjectStoragePath`` inside
    a checked export location) with COPY; returns ``{name: {path, rows}}``. A local file is written
    under a name of its own (two runs or tries at once never share it), then renamed over the file.
    With ``copies`` (a local folder), each file is also written there (``copy``: what the email
    attaches is this run's own file, whatever another run does to the export location meanwhile)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    with conn.cursor() as cur:
        for name, filename in file_names(run).items():
            stages, order, columns, where = _export_spec(name)
            path = folder / filename
            target = folder / f".{filename}.{uuid.uuid4().hex[:12]}.part" if is_local(folder) else path
            query = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER, ENCODING 'UTF8')").format(
                export_select(cur, run, stages, order, include_pii, columns, where)
            )
            copy_path = copies / filename if copies is not None else None
            try:
                with contextlib.ExitStack() as files:
                    fh = files.enter_context(open_file(target, "wb"))
                    mine = files.enter_context(copy_path.open("wb")) if copy_path else None
                    with cur.copy(query) as copy:
                        relay(copy, *(f.write for f in (fh, mine) if f))
            except BaseException:
                if target != path:
                    target.unlink(missing_ok=True)  # a full disk leaves no half file behind
                raise
            if target != path:
                target.replace(path)  # readers never see a half-written file
            out[name] = {"path": display(path), "rows": cur.rowcount}
            if copy_path:
                out[name]["copy"] = str(copy_path)
    return out


def attachments(files: dict[str, dict], limit_bytes: int, workdir: Path) -> tuple[list[str], list[str]]:
    """Which files to attach and which to link, so that a message stays under ``limit_bytes``.

    Under the limit, the CSV files are attached as they are; over it, they are gzip-compressed
    next to the originals (in the export location) and attached if that fits; otherwise the
    compressed files are linked, not attached. A file's run-private ``copy`` (write_csvs) is what
    is read when there is one; other files to attach are copied into ``workdir`` (the SMTP hook
    attaches local files). Returns ``(local paths to attach, export paths to link)``.
    """
    exports = [storage_path(f["path"]) for f in files.values()]
    paths = [storage_path(f["copy"]) if f.get("copy") else p for f, p in zip(files.values(), exports, strict=True)]
    if sum(p.size() for p in paths) > limit_bytes:
        compressed = []
        for path, export in zip(paths, exports, strict=True):
            target = export.parent / (export.name + ".gz")
            part = export.parent / f".{export.name}.gz.{uuid.uuid4().hex[:12]}.part" if is_local(export) else target
            try:
                with (
                    open_file(path, "rb") as src,
                    open_file(part, "wb") as raw,
                    # level 1: three times faster than the default 6 on these files for a quarter more bytes
                    gzip.GzipFile(filename=export.name, mode="wb", fileobj=raw, compresslevel=1, mtime=0) as dst,
                ):
                    shutil.copyfileobj(src, dst, length=1 << 20)
            except BaseException:
                if part != target:
                    part.unlink(missing_ok=True)
                raise
            if part != target:
                part.replace(target)
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
            with open_file(path, "rb") as src, local.open("wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
            attached.append(str(local))
    return attached, []


def share_link(location: str, expires_hours: int, conn_id: str = "") -> str | None:
    """A time-limited https link to a file of an object store, for a reader without access to the
    store, where the backend can make one (S3 and S3-compatible stores, through the Amazon
    provider); None for anything else (a local file is linked by its path). Signed with the
    connection ``conn_id`` (``export_link_conn_id``: its endpoint is the one readers reach), else
    the location's. The link is for the email only: it is never recorded. It lasts
    ``expires_hours``, or until the signing credentials expire if sooner (temporary credentials:
    an instance role, STS)."""
    path = storage_path(location)
    if path.protocol not in ("s3", "s3a"):
        return None
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    url = S3Hook(aws_conn_id=conn_id or path.conn_id or "aws_default").generate_presigned_url(
        "get_object", params={"Bucket": path.bucket, "Key": path.key}, expires_in=expires_hours * 3600
    )
    return url if url and url.startswith(("https://", "http://")) else None


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


def send(smtp_conn_id: str, to: list[str], sender: str, subject: str, body: str, files: list[str]) -> None:
    """One email, as it is (the on-call failure email, notify.py); the export goes through ``deliver``."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
        hook.send_email_smtp(to=to, from_email=sender, subject=subject, html_content=body, files=files)
    log.info("emailed %s file(s) to %s", len(files), ", ".join(to))


def mime_message(
    sender: str, to: list[str], subject: str, html_body: str, text_body: str | None, files: list[str], headers: dict
):
    """The email: a plain-text part and its HTML alternative (what a client without HTML, or a
    reader who prefers text, shows), then the files as attachments."""
    from email import policy
    from email.message import EmailMessage
    from email.utils import formatdate

    # headers unfolded up to the RFC 5322 line limit: a folded Message-ID reads differently to a
    # reader that does not unfold (the resend must be recognisably the same message)
    msg = EmailMessage(policy=policy.default.clone(max_line_length=998))
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    for key, value in headers.items():
        msg[key] = value
    msg.set_content(text_body or "This message is in HTML; open it in a mail client that shows HTML.\n")
    msg.add_alternative(html_body, subtype="html")
    for path in files:  # bytes as they are (the CSVs are UTF-8, or gzipped): never re-encoded
        # text/csv (UTF-8) opens in a spreadsheet from the mail client; a compressed file is gzip.
        # Bytes in base64 either way: a text part's line ends would otherwise be rewritten
        maintype, subtype = ("application", "gzip") if str(path).endswith(".gz") else ("text", "csv")
        params = {"charset": "utf-8"} if maintype == "text" else {}
        msg.add_attachment(
            Path(path).read_bytes(), maintype=maintype, subtype=subtype, filename=Path(path).name, params=params
        )
    return msg


class AmbiguousDeliveryError(RuntimeError):
    """An earlier try began sending this run's email and never learned whether the relay took it."""


# The relay answered with a refusal: the message was certainly not accepted, a retry may send it.
REFUSED = ("SMTPRecipientsRefused", "SMTPSenderRefused", "SMTPDataError", "SMTPNotSupportedError")


def message_id(run: Run, sender: str) -> str:
    """The Message-ID of the run's email for its month, the same for every try: a resend is the
    same message to a mail client, and recognisable as one to a reader."""
    from email.utils import parseaddr

    digest = hashlib.sha256(f"{run.run_id}|{run.period.report_month}".encode()).hexdigest()[:32]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "customer-performance.invalid"
    return f"<customer-performance.{digest}@{domain}>"


DELIVERIES = "email_deliveries"


def _claim(cur, schema: str, key: tuple) -> tuple | None:
    """The delivery record of ``key`` (run id, month) under the key's lock (held to the commit),
    as ``(state, attempts, sent_at)``: two tries of one run never both decide to send."""
    from include.customer_performance.migrations import migrate

    migrate(cur, schema)
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"customer_performance:email:{key[0]}:{key[1]}",))
    cur.execute(
        sql.SQL("SELECT state, attempts, sent_at FROM {} WHERE run_id = %s AND report_month = %s FOR UPDATE").format(
            sql.Identifier(schema, DELIVERIES)
        ),
        key,
    )
    return cur.fetchone()


def set_delivery_state(cur, schema: str, run_id: str, month, state: str) -> int:
    """Set a delivery record's state (the CLI's ``email-delivery --confirm`` / ``--resend``)."""
    cur.execute(
        sql.SQL("UPDATE {} SET state = %s WHERE run_id = %s AND report_month = %s").format(
            sql.Identifier(schema, DELIVERIES)
        ),
        (state, run_id, month),
    )
    return cur.rowcount


def _unconfirmed(run: Run, mid: str, to: list[str]) -> AmbiguousDeliveryError:
    month = f"{run.period.report_month:%Y-%m}"
    return AmbiguousDeliveryError(
        f"an earlier try of this run began sending the email for {run.period} (Message-ID {mid}, to"
        f" {', '.join(to)}) and never learned whether the relay accepted it (its reply was lost or the task"
        " died); it is not sent again by itself. Look for that Message-ID in the relay's log or an inbox."
        " Arrived: `python -m include.customer_performance email-delivery --run-id"
        f" '{run.run_id}' --month {month} --confirm`, then mark this task successful. Not arrived: the same"
        " with --resend, then clear this task: it sends once more, with the same Message-ID."
    )


def deliver(
    conn,
    schema: str,
    run: Run,
    smtp_conn_id: str,
    to: list[str],
    sender: str,
    subject: str,
    body: str,
    files: list[str],
    resend: bool = False,
    text_body: str | None = None,
) -> dict:
    """Send the run's email for its month once, whatever fails around the send: ``body`` as its
    HTML part and ``text_body`` as its plain-text alternative (``mime_message``).

    The delivery record (``<schema>.email_deliveries``, keyed by run and month) is written and
    committed *before* the message goes to the relay and completed after the relay accepted it.
    A try that finds it:

    - ``sent``: sends nothing, answers what was sent (a task killed after the send);
    - ``sending``: the earlier try cannot have known whether the relay took the message (its reply
      was lost, or the task died mid-send). It is marked ``unconfirmed`` and this try fails, not
      retried, naming the Message-ID;
    - ``unconfirmed``: fails the same way until the operator says what happened: ``--confirm``
      (it arrived: ``sent``) or ``--resend`` (``resend``: the next try sends again, with the same
      Message-ID), with the CLI's ``email-delivery``;
    - with ``resend`` (the run's param ``resend_email``), ``sending`` and ``unconfirmed`` are sent again.

    A refusal by the relay (recipients, sender or data refused) proves this try's message was not
    accepted: the record is removed (or left ``unconfirmed`` if an earlier try may have sent one)
    and the error raised for a retry. Returns ``{state, message_id, attempts, already}``.
    """
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    key = (run.run_id, run.period.report_month)
    table = sql.Identifier(schema, DELIVERIES)
    where = sql.SQL(" WHERE run_id = %s AND report_month = %s")
    mid = message_id(run, sender)

    def decide(cur) -> dict | None:
        """None: send; else what was sent already. Marks the record and raises when a try may have
        sent it without knowing (the caller commits first: the mark must stay)."""
        found = _claim(cur, schema, key)
        if found and found[0] == "sent":
            log.info(
                "the email of this run for %s was sent already (%s at %s): not sent again", run.period, mid, found[2]
            )
            return {"state": "sent", "message_id": mid, "attempts": found[1], "already": True}
        if found and found[0] in ("sending", "unconfirmed") and not resend:
            set_delivery_state(cur, schema, *key, "unconfirmed")
            cur.connection.commit()
            raise _unconfirmed(run, mid, to)
        return None

    with conn.cursor() as cur:
        answer = decide(cur)
    conn.commit()
    if answer:
        return answer
    # built before any record says "sending": a file that cannot be read fails here, nothing begun
    message = mime_message(sender, to, subject, body, text_body, files, {"Message-ID": mid})
    with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:  # a relay that is down fails here: nothing sent
        with conn.cursor() as cur:
            answer = decide(cur)  # again, under the lock: another try may have come and gone meanwhile
            if answer is None:
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {} (run_id, report_month, message_id, state, recipients, subject)"
                        " VALUES (%s, %s, %s, 'sending', %s, %s) ON CONFLICT (run_id, report_month) DO UPDATE"
                        " SET state = 'sending', attempts = {}.attempts + 1, recipients = EXCLUDED.recipients,"
                        " subject = EXCLUDED.subject, started_at = now() RETURNING attempts"
                    ).format(table, table),
                    (*key, mid, json.dumps(to), subject),
                )
                attempts = cur.fetchone()[0]
        conn.commit()  # the record exists before the relay sees a byte
        if answer:
            return answer
        if attempts > 1:
            log.warning("sending the email for %s again (try %s, the same Message-ID %s)", run.period, attempts, mid)
        try:
            # one try, no resend on error (the hook's own loop would send a message twice when a
            # reply is lost): the delivery record decides what a later try does
            hook._smtp_client.send_message(message, from_addr=sender, to_addrs=list(to))  # noqa: SLF001 - the hook's connection, as its test_connection uses it
        except Exception as exc:
            if type(exc).__name__ in REFUSED:  # the relay said no: this try's message was not accepted
                with conn.cursor() as cur:
                    if attempts == 1:
                        cur.execute(sql.SQL("DELETE FROM {}").format(table) + where, key)
                    else:  # whether an earlier try's message arrived is still unknown
                        set_delivery_state(cur, schema, *key, "unconfirmed")
                conn.commit()
            raise
    with conn.cursor() as cur:
        cur.execute(sql.SQL("UPDATE {} SET state = 'sent', sent_at = now()").format(table) + where, key)
    conn.commit()
    log.info("emailed %s file(s) to %s (Message-ID %s)", len(files), ", ".join(to), mid)
    return {"state": "sent", "message_id": mid, "attempts": attempts, "already": False}
