//! The SQLite index: connection setup and append-only schema migrations
//! keyed by `PRAGMA user_version`.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

/// Schema migrations, oldest first. Append only: never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: the image store.
    "CREATE TABLE blobs (
        digest TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        media_type TEXT NOT NULL,
        created TEXT NOT NULL
     );
     CREATE TABLE layers (
        diff_id TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        created TEXT NOT NULL
     );
     CREATE TABLE images (
        id TEXT PRIMARY KEY REFERENCES blobs(digest),
        manifest TEXT NOT NULL REFERENCES blobs(digest),
        parent TEXT,
        size INTEGER NOT NULL,
        created TEXT NOT NULL,
        last_tagged TEXT
     );
     CREATE TABLE image_layers (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        diff_id TEXT NOT NULL REFERENCES layers(diff_id),
        PRIMARY KEY (image_id, position)
     );
     CREATE INDEX image_layers_by_layer ON image_layers(diff_id);
     CREATE TABLE tags (
        name TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        created TEXT NOT NULL
     );
     CREATE INDEX tags_by_image ON tags(image_id);",
    // 2: containers (their runtime state lives in files under containers/<id>/).
    "CREATE TABLE containers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        image_id TEXT NOT NULL REFERENCES images(id),
        image_ref TEXT NOT NULL,
        created TEXT NOT NULL,
        spec TEXT NOT NULL,
        restart_count INTEGER NOT NULL DEFAULT 0,
        stopped_by_user INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX containers_by_image ON containers(image_id);",
    // 3: networks, their address leases (endpoints) and volumes.
    "CREATE TABLE networks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        driver TEXT NOT NULL,
        subnet TEXT NOT NULL,
        gateway TEXT NOT NULL,
        bridge TEXT NOT NULL,
        created TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        internal INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE endpoints (
        network_id TEXT NOT NULL REFERENCES networks(id),
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        ip TEXT NOT NULL,
        mac TEXT NOT NULL,
        aliases TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (network_id, container_id),
        UNIQUE (network_id, ip)
     );
     CREATE INDEX endpoints_by_container ON endpoints(container_id);
     CREATE TABLE volumes (
        name TEXT PRIMARY KEY,
        driver TEXT NOT NULL,
        created TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        anonymous INTEGER NOT NULL DEFAULT 0
     );",
    // 4: capture bundles and their index (docs/bundle-format.md). A bundle's
    // content is blobs; `bundle_blobs` keeps each one referenced.
    "CREATE TABLE bundles (
        id TEXT PRIMARY KEY,
        manifest TEXT NOT NULL REFERENCES blobs(digest),
        label TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL,
        containers INTEGER NOT NULL,
        size INTEGER NOT NULL,
        new_bytes INTEGER NOT NULL,
        baseline TEXT UNIQUE
     );
     CREATE TABLE bundle_blobs (
        bundle_id TEXT NOT NULL REFERENCES bundles(id) ON DELETE CASCADE,
        digest TEXT NOT NULL REFERENCES blobs(digest),
        PRIMARY KEY (bundle_id, digest)
     ) WITHOUT ROWID;
     CREATE INDEX bundle_blobs_by_digest ON bundle_blobs(digest);
     CREATE TABLE bundle_containers (
        bundle_id TEXT NOT NULL REFERENCES bundles(id) ON DELETE CASCADE,
        container_id TEXT NOT NULL,
        name TEXT NOT NULL,
        image_ref TEXT NOT NULL,
        image_id TEXT NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (bundle_id, container_id)
     );
     CREATE INDEX bundle_containers_by_container ON bundle_containers(container_id);
     CREATE TABLE bundle_files (
        bundle_id TEXT NOT NULL REFERENCES bundles(id) ON DELETE CASCADE,
        container_id TEXT NOT NULL,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        size INTEGER NOT NULL,
        mode INTEGER NOT NULL,
        digest TEXT,
        PRIMARY KEY (bundle_id, container_id, path)
     ) WITHOUT ROWID;
     CREATE TABLE bundle_processes (
        bundle_id TEXT NOT NULL REFERENCES bundles(id) ON DELETE CASCADE,
        container_id TEXT NOT NULL,
        pid INTEGER NOT NULL,
        ns_pid INTEGER,
        ppid INTEGER NOT NULL,
        cmdline TEXT NOT NULL,
        state TEXT NOT NULL,
        PRIMARY KEY (bundle_id, container_id, pid)
     );
     CREATE TABLE bundle_log_chunks (
        bundle_id TEXT NOT NULL REFERENCES bundles(id) ON DELETE CASCADE,
        container_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (bundle_id, container_id, seq)
     );
     CREATE INDEX bundle_log_chunks_by_digest ON bundle_log_chunks(container_id, digest);
     CREATE TABLE bundle_log_index (
        id INTEGER PRIMARY KEY,
        container_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        UNIQUE (container_id, digest)
     );
     CREATE VIRTUAL TABLE bundle_log_text USING fts5(
        text, content='', contentless_delete=1
     );
     CREATE VIRTUAL TABLE bundle_text USING fts5(
        text, kind UNINDEXED, bundle_id UNINDEXED, container_id UNINDEXED
     );",
    // 5: clusters (docs/cluster.md): the host inventory, bundle sets (one
    // `cluster capture`: per host its bundle and outcome) and cluster
    // baselines (which hosts hold their part).
    "CREATE TABLE cluster_hosts (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        tlscacert TEXT,
        tlscert TEXT,
        tlskey TEXT,
        token_file TEXT,
        created TEXT NOT NULL
     );
     CREATE TABLE bundle_sets (
        id TEXT PRIMARY KEY,
        label TEXT NOT NULL DEFAULT '',
        annotations TEXT NOT NULL DEFAULT '{}',
        created TEXT NOT NULL,
        duration_ms INTEGER NOT NULL
     );
     CREATE TABLE bundle_set_hosts (
        set_id TEXT NOT NULL REFERENCES bundle_sets(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        host TEXT NOT NULL,
        url TEXT NOT NULL,
        bundle_id TEXT,
        status TEXT NOT NULL,
        error TEXT,
        bytes INTEGER NOT NULL DEFAULT 0,
        containers INTEGER NOT NULL DEFAULT 0,
        ms INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (set_id, host)
     );
     CREATE INDEX bundle_set_hosts_by_bundle ON bundle_set_hosts(bundle_id);
     CREATE TABLE cluster_baselines (
        name TEXT NOT NULL,
        host TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        created TEXT NOT NULL,
        PRIMARY KEY (name, host)
     );",
];

/// Open (creating if needed) the database at `path` and bring its schema up
/// to date.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let current: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tracing::info!(version = i + 1, "applying database migration");
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len())?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("amber.db");
        let c = open(&p).unwrap();
        let v: usize = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len());
        drop(c);
        let c = open(&p).unwrap();
        let fk: i64 = c
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }
}
