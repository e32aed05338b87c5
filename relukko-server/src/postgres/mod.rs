//! Locks in PostgreSQL (`relukko-server --db postgres://...`), shared by any
//! number of replicas of the server.
//!
//! PostgreSQL is the one source of truth: every request is a statement on
//! it, so whatever replica answers sees what any other one did. The rules of
//! the protocol map onto it this way:
//! - **One holder per name**: a `UNIQUE` constraint on the name (its
//!   SHA-256, so names of any length fit an index entry); a create
//!   is `INSERT ... ON CONFLICT DO NOTHING`, never a check-then-insert, so of
//!   any number of replicas racing for a name exactly one row goes in.
//! - **One clock**: every time (created, updated, expires, the clean-up's
//!   "now") is the database's `now()`, so replicas whose clocks differ agree.
//! - **The clean-up** is one `DELETE ... WHERE expires_at + grace < now()`:
//!   every replica may run it; a row is deleted (and its deletion announced)
//!   by exactly one of them.
//! - **Every change is announced** by a trigger (`pg_notify`) in the
//!   transaction that makes it, so it is sent if and only if the change
//!   commits, in commit order; each replica listens (see [`changes`]) and
//!   pushes what it hears to its WebSocket clients, its own changes included.
//! - **One statement per request** (an update: a read, then a write that
//!   happens only if the row is still the one read), each prepared once per
//!   connection: a round trip or two to the database per request.
//! - **The schema** is created and migrated by the server, versioned in
//!   `relukko_schema`, under an advisory lock so replicas starting together
//!   take turns.
//!
//! PostgreSQL down: each request that needs it fails with `503` (our client
//! retries those), the pool reconnects by itself, and nothing answered is
//! lost, because nothing is answered before PostgreSQL committed it.

pub(crate) mod changes;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};
use tokio_postgres::Row;
use tokio_postgres::config::SslMode;
use uuid::Uuid;

use super::store::StoreError;
use relukko_protocol::Lock;

/// The channel every change is announced on.
const CHANNEL: &str = "relukko_changes";
/// The advisory lock replicas take turns under while migrating the schema.
const MIGRATION_LOCK: i64 = 0x7265_6c75_6b6b_6f00; // "relukko\0"
/// The longest one statement (with getting a connection) may take before the
/// request is answered 503.
const STATEMENT_LIMIT: Duration = Duration::from_secs(10);
/// How often an update retries when another changed the lock between its
/// read and its write.
const UPDATE_TRIES: usize = 8;
/// Every migration, in order; the schema's version is how many have run.
const MIGRATIONS: &[&str] = &[
    // Names are unique by their SHA-256: a B-tree index entry cannot hold a
    // name of kilobytes, and the protocol sets no limit below the body's.
    "CREATE TABLE relukko_locks (
        id uuid PRIMARY KEY,
        lock_name text NOT NULL,
        name_key bytea GENERATED ALWAYS AS (sha256(lock_name::bytea)) STORED UNIQUE,
        creator text,
        ip text,
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX relukko_locks_expires_at ON relukko_locks (expires_at);",
    // Every change announced by the database itself, in its transaction:
    // whichever replica (or clean-up, or operator's SQL) made it. A name or
    // creator too long for NOTIFY's 8000 bytes is cut in the announcement;
    // the row keeps it whole.
    "CREATE FUNCTION relukko_announce() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        r relukko_locks;
        kind text;
        payload text;
        cut integer := 2147483647;
    BEGIN
        IF TG_OP = 'DELETE' THEN r := OLD; kind := 'deleted';
        ELSIF TG_OP = 'INSERT' THEN r := NEW; kind := 'created';
        ELSE r := NEW; kind := 'updated';
        END IF;
        LOOP
            payload := json_build_object(kind, json_build_object(
                'id', r.id, 'lock_name', left(r.lock_name, cut), 'creator', left(r.creator, cut),
                'ip', r.ip, 'expires_at', r.expires_at, 'created_at', r.created_at,
                'updated_at', r.updated_at))::text;
            EXIT WHEN octet_length(payload) < 7900;
            cut := 800;
        END LOOP;
        PERFORM pg_notify('relukko_changes', payload);
        RETURN NULL;
    END $$;
    CREATE TRIGGER relukko_announce AFTER INSERT OR UPDATE OR DELETE ON relukko_locks
        FOR EACH ROW EXECUTE FUNCTION relukko_announce();",
];
const COLUMNS: &str = "id, lock_name, creator, ip, expires_at, created_at, updated_at";

/// `url` without its password, for logs and messages.
pub(crate) fn shown(url: &str) -> String {
    crate::config::shown_url(url)
}

/// The store over one PostgreSQL database.
pub(crate) struct Pg {
    pool: Pool,
    shown: String,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg").field("url", &self.shown).finish()
    }
}

fn unavailable(shown: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("the database {shown} is unavailable: {e}"))
}

/// A driver error with what PostgreSQL said, if it said something
/// (`tokio_postgres::Error` alone shows only "db error").
fn said(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// A client for TLS as the URL's `sslmode` asks: none for `disable`, rustls
/// with the web's roots otherwise (`prefer`, the default, falls back to
/// plain text when the server offers no TLS, as libpq does).
fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // ring, as the rest of the workspace; the crate's default provider would
    // panic if a build enabled two. (Deprecated in newer rustls only for
    // lacking post-quantum key exchange.)
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        });
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// Parses `url`, with the timeouts a server needs where the URL sets none.
fn config(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
        StoreError(format!(
            "the database URL {} cannot be used: {e}",
            shown(url)
        ))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    if config.get_application_name().is_none() {
        config.application_name("relukko-server");
    }
    Ok(config)
}

impl Pg {
    /// Connects, migrates the schema, and starts listening for changes,
    /// which go to `events` (every replica's own changes included).
    pub(crate) async fn open(
        url: &str,
        events: broadcast::Sender<Utf8Bytes>,
        stop: watch::Receiver<bool>,
    ) -> Result<Pg, StoreError> {
        let shown = shown(url);
        let config = config(url)?;
        let plain = config.get_ssl_mode() == SslMode::Disable;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = if plain {
            Manager::from_config(config.clone(), tokio_postgres::NoTls, manager_config)
        } else {
            Manager::from_config(config.clone(), tls(), manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(STATEMENT_LIMIT))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError(format!("database {shown}: {e}")))?;
        let pg = Pg { pool, shown };
        pg.migrate().await?;
        if plain {
            changes::spawn(
                config,
                tokio_postgres::NoTls,
                events,
                stop,
                pg.shown.clone(),
            );
        } else {
            changes::spawn(config, tls(), events, stop, pg.shown.clone());
        }
        Ok(pg)
    }

    /// The database as logs show it (no password).
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| unavailable(&self.shown, e))
    }

    /// Runs `f` with a client, bounded by [`STATEMENT_LIMIT`].
    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(STATEMENT_LIMIT, f).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(unavailable(&self.shown, said(&e))),
            Err(_) => Err(unavailable(
                &self.shown,
                format!("no answer within {STATEMENT_LIMIT:?}"),
            )),
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let shown = self.shown.clone();
        self.bounded(async {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS relukko_schema (version integer NOT NULL)")
                .await?;
            let version: i32 = tx
                .query_opt("SELECT version FROM relukko_schema", &[])
                .await?
                .map_or(0, |row| row.get(0));
            let known = MIGRATIONS.len() as i32;
            if version > known {
                tracing::warn!(
                    target: "relukko::server",
                    "database {shown}: schema version {version} is newer than this server's ({known}); \
                     serving anyway, as a server of the same major version"
                );
            }
            for migration in MIGRATIONS.iter().skip(version.max(0) as usize) {
                tx.batch_execute(migration).await?;
            }
            if version == 0 {
                tx.execute("INSERT INTO relukko_schema (version) VALUES ($1)", &[&known])
                    .await?;
            } else if version < known {
                tx.execute("UPDATE relukko_schema SET version = $1", &[&known])
                    .await?;
            }
            tx.commit().await?;
            if version < known {
                tracing::info!(target: "relukko::server", "database {shown}: schema migrated from version {version} to {known}");
            }
            Ok(())
        })
        .await
    }

    /// Whether the database answers.
    pub(crate) async fn check(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        self.bounded(async { client.execute("SELECT 1", &[]).await.map(drop) })
            .await
    }

    /// Runs one prepared statement that answers at most one lock.
    async fn one_lock(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<Lock>, StoreError> {
        let client = self.client().await?;
        self.bounded(async {
            let statement = client.prepare_cached(sql).await?;
            client
                .query_opt(&statement, params)
                .await?
                .as_ref()
                .map(lock_of)
                .transpose()
        })
        .await
    }

    /// Creates a lock; `Ok(None)` if the name is taken. One statement: the
    /// unique name decides a race, the trigger announces it.
    pub(crate) async fn create(
        &self,
        lock_name: &str,
        creator: Option<&str>,
        ip: &str,
    ) -> Result<Option<Lock>, StoreError> {
        let sql = format!(
            "INSERT INTO relukko_locks ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, now() + interval '10 minutes', now(), now()) \
             ON CONFLICT (name_key) DO NOTHING RETURNING {COLUMNS}"
        );
        self.one_lock(&sql, &[&Uuid::new_v4(), &lock_name, &creator, &ip])
            .await
    }

    /// All locks, oldest first.
    pub(crate) async fn list(&self) -> Result<Vec<Lock>, StoreError> {
        let client = self.client().await?;
        self.bounded(async {
            let statement = client
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM relukko_locks ORDER BY created_at, lock_name"
                ))
                .await?;
            let rows = client.query(&statement, &[]).await?;
            rows.iter().map(lock_of).collect()
        })
        .await
    }

    pub(crate) async fn get(&self, id: Uuid) -> Result<Option<Lock>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM relukko_locks WHERE id = $1");
        self.one_lock(&sql, &[&id]).await
    }

    /// As `AppState::update`: `change` sees the lock and the database's now;
    /// `None` if there is no such lock. The write happens only if nobody
    /// changed the lock since it was read (its row version, `xmin`, is the
    /// same); else it reads again and retries.
    pub(crate) async fn update<E: From<StoreError>>(
        &self,
        id: Uuid,
        change: impl Fn(&Lock, OffsetDateTime) -> Result<Lock, E>,
    ) -> Result<Option<Result<Lock, E>>, StoreError> {
        let client = self.client().await?;
        for _ in 0..UPDATE_TRIES {
            let read = self
                .bounded(async {
                    let statement = client
                        .prepare_cached(&format!(
                            "SELECT {COLUMNS}, now(), xmin::text FROM relukko_locks WHERE id = $1"
                        ))
                        .await?;
                    client.query_opt(&statement, &[&id]).await
                })
                .await?;
            let Some(row) = read else {
                return Ok(None);
            };
            let (stored, now, version): (Lock, OffsetDateTime, String) = (
                lock_of(&row).map_err(|e| unavailable(&self.shown, e))?,
                row.try_get(7).map_err(|e| unavailable(&self.shown, e))?,
                row.try_get(8).map_err(|e| unavailable(&self.shown, e))?,
            );
            let changed = match change(&stored, now) {
                Ok(l) => l,
                Err(e) => return Ok(Some(Err(e))),
            };
            let written = self
                .bounded(async {
                    let statement = client
                        .prepare_cached(&format!(
                            "UPDATE relukko_locks SET creator = $2, expires_at = $3, updated_at = $4 \
                             WHERE id = $1 AND xmin::text = $5 RETURNING {COLUMNS}"
                        ))
                        .await?;
                    client
                        .query_opt(
                            &statement,
                            &[&id, &changed.creator, &changed.expires_at, &now, &version],
                        )
                        .await
                })
                .await?;
            if let Some(row) = written {
                return Ok(Some(Ok(
                    lock_of(&row).map_err(|e| unavailable(&self.shown, e))?
                )));
            }
            // Changed (or deleted) meanwhile: read again.
        }
        Err(StoreError(format!(
            "lock {id} kept changing under {UPDATE_TRIES} tries to update it; try again"
        )))
    }

    /// Deletes the lock with `id`; `None` if there is none.
    pub(crate) async fn delete(&self, id: Uuid) -> Result<Option<Lock>, StoreError> {
        let sql = format!("DELETE FROM relukko_locks WHERE id = $1 RETURNING {COLUMNS}");
        self.one_lock(&sql, &[&id]).await
    }

    /// The clean-up pass, by the database's clock.
    pub(crate) async fn remove_expired(&self, grace: Duration) -> Result<Vec<Lock>, StoreError> {
        let client = self.client().await?;
        self.bounded(async {
            let rows = client
                .query(
                    &format!(
                        "DELETE FROM relukko_locks \
                         WHERE expires_at + make_interval(secs => $1) < now() RETURNING {COLUMNS}"
                    ),
                    &[&grace.as_secs_f64()],
                )
                .await?;
            rows.iter().map(lock_of).collect()
        })
        .await
    }

    /// How many locks there are, and how many of them have expired.
    pub(crate) async fn counts(&self) -> Result<(usize, usize), StoreError> {
        let client = self.client().await?;
        self.bounded(async {
            let row = client
                .query_one(
                    "SELECT count(*), count(*) FILTER (WHERE expires_at < now()) FROM relukko_locks",
                    &[],
                )
                .await?;
            let (all, expired): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            Ok((all as usize, expired as usize))
        })
        .await
    }
}

/// A row of `relukko_locks` (in [`COLUMNS`] order) as a lock.
pub(crate) fn lock_of(row: &Row) -> Result<Lock, tokio_postgres::Error> {
    let utc = |t: OffsetDateTime| t.to_offset(time::UtcOffset::UTC);
    Ok(Lock {
        id: row.try_get(0)?,
        lock_name: row.try_get(1)?,
        creator: row.try_get(2)?,
        ip: row.try_get(3)?,
        expires_at: utc(row.try_get(4)?),
        created_at: utc(row.try_get(5)?),
        updated_at: utc(row.try_get(6)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_apart_from_paths_and_shown_without_a_password() {
        assert_eq!(
            shown("postgres://relukko:s3cret@db.example:5432/locks?sslmode=require"),
            "postgres://relukko@db.example:5432/locks?sslmode=require"
        );
        assert_eq!(
            shown("postgres://db.example/locks"),
            "postgres://db.example/locks"
        );
        assert_eq!(
            shown("postgresql://u:p@w@h/db"),
            "postgresql://u@h/db",
            "the last @ ends the userinfo"
        );
    }

    #[test]
    fn a_bad_url_is_named_without_its_password() {
        let e = config("postgres://u:s3cret@h:notaport/db").unwrap_err();
        assert!(e.0.contains("postgres://u@h:notaport/db"), "{e}");
        assert!(!e.0.contains("s3cret"), "{e}");
    }
}
