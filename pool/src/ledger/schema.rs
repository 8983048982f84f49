//! The ledger's schema migrations, one list per backend, side by side: the same tables and
//! columns in each engine's types, version for version (entry `i` takes a database from
//! version `i` to `i + 1`; the version is SQLite's `PRAGMA user_version`, PostgreSQL's
//! `strata_ledger_schema`).

/// The SQLite migrations.
pub(super) const SQLITE: &[&str] = &[
    r"
CREATE TABLE shares (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    worker          TEXT    NOT NULL,
    connection_id   INTEGER NOT NULL,
    channel_id      INTEGER NOT NULL,
    job_id          INTEGER NOT NULL,
    sequence_number INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    difficulty      REAL    NOT NULL,
    hash            BLOB    NOT NULL,
    time_ms         INTEGER NOT NULL,
    block           INTEGER NOT NULL
);
CREATE TABLE workers (
    worker        TEXT    PRIMARY KEY,
    shares        INTEGER NOT NULL,
    difficulty    REAL    NOT NULL,
    last_share_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE blocks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    height        INTEGER NOT NULL,
    hash          TEXT    NOT NULL UNIQUE,
    template_id   INTEGER NOT NULL,
    worker        TEXT    NOT NULL,
    time_ms       INTEGER NOT NULL,
    reward_sats   INTEGER NOT NULL,
    window_first  INTEGER,
    window_last   INTEGER,
    mode          TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('submitted', 'accepted', 'rejected')),
    reject_reason TEXT
);
CREATE INDEX blocks_by_status ON blocks(status);
CREATE TABLE block_outputs (
    block_id   INTEGER NOT NULL REFERENCES blocks(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    owner      TEXT    NOT NULL,
    script_hex TEXT    NOT NULL,
    sats       INTEGER NOT NULL,
    PRIMARY KEY (block_id, idx)
) WITHOUT ROWID;
",
    r"
ALTER TABLE shares ADD COLUMN channel_identity TEXT;
",
    // the workers table is written about once a second; it holds every share up to this id
    r"
CREATE TABLE IF NOT EXISTS workers_through (id INTEGER NOT NULL);
DELETE FROM workers_through;
INSERT INTO workers_through SELECT coalesce(max(id), 0) FROM shares;
",
    // the payout rules a block's split followed, recorded with it (JSON; older blocks: NULL)
    r"
ALTER TABLE blocks ADD COLUMN payout_rules TEXT;
",
    // 5: the cluster's server_id columns, PostgreSQL only (an SQLite ledger is never shared);
    // kept as a version of its own so that both backends number the same schema alike
    r"
-- nothing to change in SQLite
",
    // the pool's history (a sample a minute per server, pruned as written); a miner's blocks
    // by owner
    r"
CREATE TABLE history (
    server_id   INTEGER NOT NULL DEFAULT 0,
    time_ms     INTEGER NOT NULL,
    hashrate    REAL    NOT NULL,
    accepted    INTEGER NOT NULL,
    rejected    INTEGER NOT NULL,
    connections INTEGER NOT NULL,
    PRIMARY KEY (server_id, time_ms)
) WITHOUT ROWID;
CREATE INDEX history_by_time ON history(time_ms);
CREATE INDEX block_outputs_by_owner ON block_outputs(owner);
",
];

/// The PostgreSQL migrations.
#[cfg(feature = "postgres")]
pub(super) const POSTGRES: &[&str] = &[
    r"
CREATE TABLE shares (
    id              BIGSERIAL        PRIMARY KEY,
    worker          TEXT             NOT NULL,
    connection_id   BIGINT           NOT NULL,
    channel_id      BIGINT           NOT NULL,
    job_id          BIGINT           NOT NULL,
    sequence_number BIGINT           NOT NULL,
    height          BIGINT           NOT NULL,
    difficulty      DOUBLE PRECISION NOT NULL,
    hash            BYTEA            NOT NULL,
    time_ms         BIGINT           NOT NULL,
    block           BOOLEAN          NOT NULL
);
CREATE TABLE workers (
    worker        TEXT             PRIMARY KEY,
    shares        BIGINT           NOT NULL,
    difficulty    DOUBLE PRECISION NOT NULL,
    last_share_ms BIGINT           NOT NULL
);
CREATE TABLE blocks (
    id            BIGSERIAL PRIMARY KEY,
    height        BIGINT    NOT NULL,
    hash          TEXT      NOT NULL UNIQUE,
    template_id   BIGINT    NOT NULL,
    worker        TEXT      NOT NULL,
    time_ms       BIGINT    NOT NULL,
    reward_sats   BIGINT    NOT NULL,
    window_first  BIGINT,
    window_last   BIGINT,
    mode          TEXT      NOT NULL,
    status        TEXT      NOT NULL CHECK (status IN ('submitted', 'accepted', 'rejected')),
    reject_reason TEXT
);
CREATE INDEX blocks_by_status ON blocks(status);
CREATE TABLE block_outputs (
    block_id   BIGINT NOT NULL REFERENCES blocks(id) ON DELETE CASCADE,
    idx        BIGINT NOT NULL,
    owner      TEXT   NOT NULL,
    script_hex TEXT   NOT NULL,
    sats       BIGINT NOT NULL,
    PRIMARY KEY (block_id, idx)
);
",
    r"
ALTER TABLE shares ADD COLUMN channel_identity TEXT;
",
    // the workers table is written about once a second; it holds every share up to this id
    r"
CREATE TABLE IF NOT EXISTS workers_through (id BIGINT NOT NULL);
DELETE FROM workers_through;
INSERT INTO workers_through SELECT coalesce(max(id), 0) FROM shares;
",
    // the payout rules a block's split followed, recorded with it (JSON; older blocks: NULL)
    r"
ALTER TABLE blocks ADD COLUMN payout_rules TEXT;
",
    // a cluster: the server that accepted each share, and each server's own watermark of
    // the shares the workers table counts (0: a pool alone on its database)
    r"
ALTER TABLE shares ADD COLUMN server_id SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE workers_through ADD COLUMN server_id SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE workers_through ADD PRIMARY KEY (server_id);
",
    // the pool's history (a sample a minute per server, pruned as written); a miner's blocks
    // by owner
    r"
CREATE TABLE history (
    server_id   SMALLINT         NOT NULL DEFAULT 0,
    time_ms     BIGINT           NOT NULL,
    hashrate    DOUBLE PRECISION NOT NULL,
    accepted    BIGINT           NOT NULL,
    rejected    BIGINT           NOT NULL,
    connections BIGINT           NOT NULL,
    PRIMARY KEY (server_id, time_ms)
);
CREATE INDEX history_by_time ON history(time_ms);
CREATE INDEX block_outputs_by_owner ON block_outputs(owner);
",
];
