//! A small connection pool: at most `size` connections, opened on demand, each with its own
//! cache of prepared statements. (A pool crate would add a dependency for what fits here.)

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

use crate::store::StoreError;

/// A PostgreSQL error as a store error, with the server's message (the client's own
/// `Display` only says "db error").
pub(super) fn pg(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        return StoreError::Backend(format!("postgres: {} ({})", db.message(), db.code().code()));
    }
    match std::error::Error::source(&e) {
        Some(cause) => StoreError::Backend(format!("postgres: {e}: {cause}")),
        None => StoreError::Backend(format!("postgres: {e}")),
    }
}

/// Opens one connection and drives it on its own task until the client is dropped or the
/// connection breaks.
pub(super) async fn open(config: &Config) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(pg)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres store: connection closed");
        }
    });
    Ok(client)
}

/// One open connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// Connections to one database.
pub(super) struct Pool {
    config: Config,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    size: usize,
}

impl Pool {
    /// A pool of at most `size` connections (at least one); none is opened yet.
    pub(super) fn new(config: Config, size: usize) -> Self {
        let size = size.max(1);
        Pool {
            config,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size),
            size,
        }
    }

    /// The most connections open at once.
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// A connection: an idle one that is still open, else a new one. Waits while `size`
    /// connections are in use.
    pub(super) async fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Backend("postgres pool closed".into()))?;
        let reused = loop {
            let next = self.idle.lock().expect("pool lock").pop();
            match next {
                Some(c) if c.client.is_closed() => continue,
                other => break other,
            }
        };
        let conn = match reused {
            Some(c) => c,
            None => Conn {
                client: open(&self.config).await?,
                statements: HashMap::new(),
            },
        };
        Ok(Pooled {
            pool: self,
            conn: Some(conn),
            _permit: permit,
        })
    }
}

/// A connection taken from the pool; it goes back when dropped, unless it broke.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    _permit: SemaphorePermit<'a>,
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            if !c.client.is_closed() {
                self.pool.idle.lock().expect("pool lock").push(c);
            }
        }
    }
}

/// Query parameters.
pub(super) type Params<'p> = [&'p (dyn ToSql + Sync)];

impl Pooled<'_> {
    /// The client, for what the helpers below do not cover.
    pub(super) fn client(&self) -> &Client {
        &self
            .conn
            .as_ref()
            .expect("pooled connection present until drop")
            .client
    }

    fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("pooled connection present until drop")
    }

    /// The statement for `sql`, prepared once per connection.
    async fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        let conn = self.conn();
        if let Some(s) = conn.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = conn.client.prepare(sql).await.map_err(pg)?;
        conn.statements.insert(sql, s.clone());
        Ok(s)
    }

    /// Every row of a query.
    pub(super) async fn query(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        let s = self.statement(sql).await?;
        self.conn().client.query(&s, params).await.map_err(pg)
    }

    /// The row of a query that returns at most one.
    pub(super) async fn query_opt(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, StoreError> {
        let s = self.statement(sql).await?;
        self.conn().client.query_opt(&s, params).await.map_err(pg)
    }

    /// The row of a query that returns exactly one.
    pub(super) async fn query_one(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Row, StoreError> {
        let s = self.statement(sql).await?;
        self.conn().client.query_one(&s, params).await.map_err(pg)
    }

    /// Runs a statement; the number of rows it changed.
    pub(super) async fn execute(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<u64, StoreError> {
        let s = self.statement(sql).await?;
        self.conn().client.execute(&s, params).await.map_err(pg)
    }
}

/// A column of a row, as a store error when it does not convert.
pub(super) fn col<'r, T: tokio_postgres::types::FromSql<'r>>(
    row: &'r Row,
    idx: usize,
) -> Result<T, StoreError> {
    row.try_get(idx).map_err(pg)
}
