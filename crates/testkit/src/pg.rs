//! A throwaway PostgreSQL database on the machine's server (`127.0.0.1:5432`, trust auth), for
//! tests that run a real `changegate` process against PostgreSQL: created with a unique name,
//! dropped (forcibly, so open connections do not keep it) when the value is dropped.

use std::process::Command;

/// The server the tests use (without a database name).
pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// A database that exists for the life of this value.
#[derive(Debug)]
pub struct TempDb(String);

impl TempDb {
    /// Create a database named `{prefix}_{pid}_{µs}`.
    pub fn create(prefix: &str) -> TempDb {
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() % 100_000_000)
                .unwrap_or_default()
        );
        psql(&format!("CREATE DATABASE {name}"));
        TempDb(name)
    }

    /// Its connection URL.
    pub fn url(&self) -> String {
        format!("{SERVER}/{}", self.0)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}

/// Run one SQL statement in the `test` database with `psql`; panics when it fails.
pub fn psql(sql: &str) {
    let ok = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            sql,
        ])
        .status()
        .expect("psql (PostgreSQL client) must be installed");
    assert!(ok.success(), "psql failed: {sql}");
}
