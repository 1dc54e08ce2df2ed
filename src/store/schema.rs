//! The database schema as an ordered list of migration steps, numbered by
//! `PRAGMA user_version`.
//!
//! A content database is written once, so a kiosk never migrates the database it is
//! serving: `write_db` applies every step to a new file, and `Store::open` refuses a file
//! whose version differs from [`CURRENT_VERSION`] with a typed error, so the caller can
//! rebuild the content version from its verified blobs instead of reading a schema it does
//! not understand. [`upgrade`](super::upgrade) applies pending steps to a writable copy.
//! Steps are only ever appended; a released step is never edited.

use rusqlite::Connection;

/// Each entry moves the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: items, links, settings.
    r#"
    CREATE TABLE items (
        id         TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        scope      TEXT NOT NULL,
        title      TEXT NOT NULL,
        -- Pinyin of the title, so lists without dates read in dictionary order.
        title_key  TEXT NOT NULL,
        subtitle   TEXT NOT NULL,
        -- '' when the item has no 领域, so "no domain" is a value a filter can name.
        domain     TEXT NOT NULL,
        validity   TEXT NOT NULL,
        -- 1 for 有效: lists show documents a resident may rely on first.
        in_force   INTEGER NOT NULL,
        -- ISO date or '' (sorts last under DESC), so the list order is served by an index.
        date_key   TEXT NOT NULL,
        baseline   INTEGER NOT NULL,
        doc_number TEXT,
        issuer     TEXT,
        level1     TEXT NOT NULL,
        level2     TEXT NOT NULL,
        -- 序号 of a catalogue row, so the catalogue reads in the official order.
        ord        INTEGER NOT NULL,
        -- Notice display window in Unix seconds (NULL for other kinds).
        show_from  INTEGER,
        show_until INTEGER,
        pinned     INTEGER NOT NULL DEFAULT 0,
        json       TEXT NOT NULL
    );
    CREATE INDEX items_by_kind ON items (kind, in_force DESC, date_key DESC, ord, title_key, id);
    CREATE INDEX items_by_domain ON items (kind, domain, in_force DESC, date_key DESC, ord, title_key, id);
    -- With a 效力状态 filter the in-force flag is constant, so these serve both the count
    -- and the page straight from the index.
    CREATE INDEX items_by_validity ON items (kind, validity, date_key DESC, ord, title_key, id);
    CREATE INDEX items_by_domain_validity ON items (kind, domain, validity, date_key DESC, ord, title_key, id);
    CREATE INDEX items_by_catalog ON items (kind, domain, level1, level2);
    CREATE TABLE links (
        src TEXT NOT NULL,
        dst TEXT NOT NULL,
        PRIMARY KEY (src, dst)
    ) WITHOUT ROWID;
    -- "What links here" is as common a question as "what does this link to".
    CREATE INDEX links_by_dst ON links (dst, src);
    CREATE TABLE settings (
        key  TEXT PRIMARY KEY,
        json TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this build reads and writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Applies the steps after the database's `user_version`, each in its own transaction
/// together with the version bump, so an interrupted upgrade leaves a consistent version.
/// Returns how many steps ran.
pub(crate) fn apply(conn: &mut Connection, steps: &[&str]) -> rusqlite::Result<u32> {
    let from = user_version(conn)? as usize;
    let mut ran = 0;
    for (i, step) in steps.iter().enumerate().skip(from) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", (i + 1) as u32)?;
        tx.commit()?;
        ran += 1;
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_only_the_steps_after_the_current_version() -> rusqlite::Result<()> {
        let mut conn = Connection::open_in_memory()?;
        let steps = ["CREATE TABLE a (x)", "CREATE TABLE b (y)"];
        assert_eq!(apply(&mut conn, &steps[..1])?, 1);
        assert_eq!(user_version(&conn)?, 1);
        // A later build with one more step runs only the new one; re-running step 1 would fail.
        assert_eq!(apply(&mut conn, &steps)?, 1);
        assert_eq!(user_version(&conn)?, 2);
        assert_eq!(apply(&mut conn, &steps)?, 0);
        Ok(())
    }

    #[test]
    fn a_failing_step_leaves_the_previous_version() -> rusqlite::Result<()> {
        let mut conn = Connection::open_in_memory()?;
        let steps = ["CREATE TABLE a (x)", "CREATE TABLE b (y); THIS IS NOT SQL"];
        assert!(apply(&mut conn, &steps).is_err());
        assert_eq!(user_version(&conn)?, 1);
        let b_exists: bool =
            conn.query_row("SELECT count(*) > 0 FROM sqlite_master WHERE name = 'b'", [], |r| {
                r.get(0)
            })?;
        assert!(!b_exists, "the failed step's table must be rolled back");
        Ok(())
    }

    #[test]
    fn the_real_schema_applies_to_an_empty_database() -> rusqlite::Result<()> {
        let mut conn = Connection::open_in_memory()?;
        assert_eq!(apply(&mut conn, MIGRATIONS)?, CURRENT_VERSION);
        Ok(())
    }
}
