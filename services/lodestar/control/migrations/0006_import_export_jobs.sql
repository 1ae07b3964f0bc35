-- Import and export jobs (issue 4): Pinpoint's CreateImportJob / CreateExportJob.
-- One row per job. The API's job runner claims a job with a session-level advisory
-- lock (so two API processes never run the same job), streams its source and
-- writes progress back here: counts, the first 100 row failures, and a checkpoint
-- (records of the source consumed, whose commands Kafka has acknowledged) from
-- which a restarted runner resumes a PROCESSING job.
CREATE TABLE IF NOT EXISTS jobs (
    app_id            text        NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    id                text        NOT NULL,
    job_type          text        NOT NULL CHECK (job_type IN ('IMPORT', 'EXPORT')),
    definition        jsonb       NOT NULL,
    segment_id        text,
    status            text        NOT NULL DEFAULT 'CREATED' CHECK (status IN (
                          'CREATED', 'PREPARING_FOR_INITIALIZATION', 'INITIALIZING',
                          'PROCESSING', 'PENDING_JOB', 'COMPLETING', 'COMPLETED',
                          'FAILING', 'FAILED')),
    total_pieces      integer     NOT NULL DEFAULT 0,
    completed_pieces  integer     NOT NULL DEFAULT 0,
    failed_pieces     integer     NOT NULL DEFAULT 0,
    total_processed   bigint      NOT NULL DEFAULT 0,
    total_failures    bigint      NOT NULL DEFAULT 0,
    failures          jsonb       NOT NULL DEFAULT '[]'::jsonb,
    checkpoint        bigint      NOT NULL DEFAULT 0,
    progress          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    PRIMARY KEY (app_id, id)
);

CREATE INDEX IF NOT EXISTS jobs_app_type_created ON jobs (app_id, job_type, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_app_segment ON jobs (app_id, segment_id, job_type, created_at, id)
    WHERE segment_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (created_at, id)
    WHERE status NOT IN ('COMPLETED', 'FAILED');
