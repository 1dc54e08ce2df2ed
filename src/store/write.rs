//! Writing the database of a new content version, once.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use rusqlite::{params, Connection, OpenFlags};

use super::schema::{self, MIGRATIONS};
use super::summary::{subtitle, title_key};
use super::StoreError;
use crate::content::{Body, Merged};

/// Writes a new content database for `merged` at `path`, which must not exist yet.
///
/// The file is built in one transaction with `synchronous=OFF` and an in-memory rollback
/// journal: nothing reads it until activation switches `current` to its directory, and a
/// crash mid-build only leaves a directory that activation throws away. Durability comes
/// at the end instead, with one fsync of the file and of its directory. The result has no
/// `-wal` or `-journal` side file, so readers can open it as immutable (see
/// [`Store::open`](super::Store::open)) and the version directory never changes again.
/// On failure the partial file is removed.
pub fn write_db(path: &Path, merged: &Merged) -> Result<(), StoreError> {
    if path.exists() {
        return Err(StoreError::Exists { path: path.to_path_buf() });
    }
    let result = (|| {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags)?;
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "MEMORY", |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        populate(&mut conn, merged)?;
        // Statistics for the query planner, computed once for a file that never changes.
        conn.execute_batch("ANALYZE")?;
        conn.close().map_err(|(_, e)| e)?;
        let io = |source| StoreError::Io { path: path.to_path_buf(), source };
        File::open(path).and_then(|f| f.sync_all()).map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|f| f.sync_all()).map_err(io)?;
        }
        Ok(())
    })();
    if result.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Creates the schema and fills it from `merged` in one transaction.
pub(crate) fn populate(conn: &mut Connection, merged: &Merged) -> Result<(), StoreError> {
    schema::apply(conn, MIGRATIONS)?;
    let titles: HashMap<&str, &str> =
        merged.items.iter().map(|s| (s.item.id.as_str(), s.item.title.as_str())).collect();
    let title_of = |id: &str| titles.get(id).map(|t| t.to_string());

    let tx = conn.transaction()?;
    {
        let mut insert_item = tx.prepare(
            "INSERT INTO items (id, kind, scope, title, title_key, subtitle, domain, validity, in_force,
                date_key, baseline, doc_number, issuer, level1, level2, ord, show_from, show_until,
                pinned, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
        )?;
        let mut insert_link =
            tx.prepare("INSERT OR IGNORE INTO links (src, dst) VALUES (?1, ?2)")?;
        for scoped in &merged.items {
            let item = &scoped.item;
            let json = serde_json::to_string(item).map_err(|source| StoreError::Json {
                what: format!("item “{}”", item.id),
                source,
            })?;
            let validity = item.validity();
            let (doc_number, issuer) = match &item.body {
                Body::Policy(p) => (p.doc_number.clone(), Some(p.issuer.clone())),
                _ => (None, None),
            };
            let (level1, level2, ord) = match &item.body {
                Body::Catalog(c) => {
                    (c.level1.as_str(), c.level2.as_str(), serial_order(c.serial.as_deref()))
                }
                _ => ("", "", i64::MAX),
            };
            let (show_from, show_until, pinned) = match &item.body {
                Body::Notice(n) => {
                    (Some(n.show_from.timestamp()), Some(n.show_until.timestamp()), n.pinned)
                }
                _ => (None, None, false),
            };
            insert_item.execute(params![
                item.id,
                item.kind().as_str(),
                scoped.scope.as_str(),
                item.title,
                title_key(&item.title),
                subtitle(item, &title_of),
                item.domain.as_deref().unwrap_or(""),
                validity.as_str(),
                validity.in_force(),
                item.date().map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
                item.baseline,
                doc_number,
                issuer,
                level1,
                level2,
                ord,
                show_from,
                show_until,
                pinned,
                json,
            ])?;
            // A 解读 names its document in its own field; it is a link like any other.
            let implied = match &item.body {
                Body::Interpretation(i) => Some(&i.policy),
                _ => None,
            };
            for dst in item.links.iter().chain(implied) {
                if dst != &item.id {
                    insert_link.execute(params![item.id, dst])?;
                }
            }
        }
        let mut insert_setting = tx.prepare("INSERT INTO settings (key, json) VALUES (?1, ?2)")?;
        let settings = [
            ("branding", serde_json::to_string(&merged.branding)),
            ("functions", serde_json::to_string(&merged.functions)),
            ("device", serde_json::to_string(&merged.device)),
            ("calendar", serde_json::to_string(&merged.calendar)),
            ("synonyms", serde_json::to_string(&merged.synonyms)),
        ];
        for (key, json) in settings {
            let json = json.map_err(|source| StoreError::Json { what: key.to_string(), source })?;
            insert_setting.execute(params![key, json])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The position of a catalogue row from its 序号 (`3`, `3.2`, `（三）` is not a number and
/// sorts after the numbered rows).
fn serial_order(serial: Option<&str>) -> i64 {
    let Some(s) = serial else { return i64::MAX };
    let mut parts = s.trim().split(['.', '-', '．']);
    let major = parts.next().and_then(|p| p.trim().parse::<i64>().ok());
    let minor = parts.next().and_then(|p| p.trim().parse::<i64>().ok()).unwrap_or(0);
    match major {
        Some(m) if (0..1_000_000).contains(&m) && (0..1_000_000).contains(&minor) => {
            m * 1_000_000 + minor
        }
        _ => i64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::serial_order;

    #[test]
    fn catalogue_serials_order_numerically() {
        assert!(serial_order(Some("2")) < serial_order(Some("10")));
        assert!(serial_order(Some("3.2")) < serial_order(Some("3.10")));
        assert!(serial_order(Some("10")) < serial_order(Some("（三）")));
        assert_eq!(serial_order(None), i64::MAX);
    }
}
