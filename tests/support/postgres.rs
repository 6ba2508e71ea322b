//! Throwaway PostgreSQL databases for the tests that need a server:
//! `eval "$(scripts/test-postgres.sh start)"` sets `TEST_PG_URL` (an admin URL whose role may
//! create databases); each test runs in a database of its own, dropped at the end. Without
//! the variable the tests are skipped, except on CI (`CI` set), where they fail.

use std::io::Write;

use tokio_postgres::{Client, NoTls};

/// The admin URL, or `None` (after saying so, loudly) when the tests are to be skipped.
pub fn admin_url() -> Option<String> {
    let suite = env!("CARGO_CRATE_NAME");
    match std::env::var("TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "TEST_PG_URL is not set, and on CI the PostgreSQL tests ({suite}) must run: \
             start a server with `scripts/test-postgres.sh start` and export the URL it prints"
        ),
        _ => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                // Straight to stderr: libtest captures `eprintln!` of passing tests.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*****\n***** {suite}: skipped: set TEST_PG_URL \
                     (scripts/test-postgres.sh start)\n*****"
                );
            });
            None
        }
    }
}

/// `url` with its database replaced by `db` (a URL, or a `key=value` string).
pub fn with_database(url: &str, db: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return format!("{url} dbname={db}");
    };
    let rest = &url[scheme_end + 3..];
    let query = rest.find('?').map_or("", |q| &rest[q..]);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    format!(
        "{}{}/{db}{query}",
        &url[..scheme_end + 3],
        &rest[..authority_end]
    )
}

/// A plain connection.
pub async fn client(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}

/// A fresh database for one test, dropped (best effort) when this is.
pub struct TestDb {
    admin: String,
    /// The database's name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl TestDb {
    /// `None` when the tests are skipped.
    pub async fn create() -> Option<TestDb> {
        let admin = admin_url()?;
        let name = format!("flowgate_test_{}", uuid::Uuid::new_v4().simple());
        client(&admin)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Some(TestDb {
            url: with_database(&admin, &name),
            admin,
            name,
        })
    }

    /// A plain connection to the test database, to look at the rows.
    pub async fn client(&self) -> Client {
        client(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Its own thread and runtime: this may run while the test's runtime shuts down.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (c, conn) = tokio_postgres::connect(&admin, NoTls).await.ok()?;
                tokio::spawn(conn);
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            let _ = writeln!(
                std::io::stderr(),
                "could not drop test database {}",
                self.name
            );
        }
    }
}
