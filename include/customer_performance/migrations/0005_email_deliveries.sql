-- One row per email the pipeline sends: keyed by the DAG run and the report month, written (state
-- 'sending') and committed before the message goes to the relay, completed ('sent') after the
-- relay accepted it. A try that finds 'sending' cannot know whether the relay got the message (a
-- lost reply, a task killed mid-send): it does not send again unless the operator asks
-- (export/csv_email.py, README "Reliability"). message_id is derived from the key, so a message
-- sent again carries the same Message-ID and mail clients and readers can tell it is a resend.
CREATE TABLE {schema}.email_deliveries (
    run_id text NOT NULL,
    report_month date NOT NULL,
    message_id text NOT NULL,
    state text NOT NULL CHECK (state IN ('sending', 'unconfirmed', 'resend', 'sent')),
    recipients jsonb NOT NULL,
    subject text NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    started_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    PRIMARY KEY (run_id, report_month)
);
