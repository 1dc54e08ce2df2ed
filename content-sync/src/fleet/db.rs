//! The fleet database (SQLite, WAL): devices' current state, a bounded health history,
//! events, published versions, operator accounts and sessions, and the command audit log.
//! Telemetry is written by one writer thread in batches (one transaction a second), so a
//! city's worth of health reports costs a few commits a second, not one per message.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration as StdDuration;

use anyhow::Context as _;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::state::{Change, Device, Fleet, Sample, ScreenshotMeta, HISTORY};
use kiosk::sync::protocol::Health;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, scope TEXT, online INTEGER, state_at TEXT, last_seen TEXT, health TEXT);
CREATE TABLE IF NOT EXISTS health (device TEXT NOT NULL, at TEXT NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS health_device_at ON health(device, at);
CREATE TABLE IF NOT EXISTS events (device TEXT NOT NULL, at TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_device_at ON events(device, at);
CREATE TABLE IF NOT EXISTS published (scope TEXT PRIMARY KEY, version INTEGER NOT NULL, since TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS screenshots (device TEXT PRIMARY KEY, at TEXT NOT NULL, sha256 TEXT NOT NULL, png BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL, expires TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, operator TEXT NOT NULL, device TEXT NOT NULL,
    command_id TEXT NOT NULL, action TEXT NOT NULL, ok INTEGER, result TEXT);
";

/// Opens (creating if needed) the fleet database in WAL mode.
pub fn open(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("opening the fleet database {}", path.display()))?;
    conn.busy_timeout(StdDuration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(SCHEMA).context("creating the fleet schema")?;
    Ok(conn)
}

/// An operator's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// May look and send commands.
    Operator,
    /// May only look.
    Readonly,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Readonly => "readonly",
        }
    }
    fn parse(s: &str) -> Role {
        // Anything unknown gets the lesser right.
        if s == "operator" {
            Role::Operator
        } else {
            Role::Readonly
        }
    }
}

/// Adds or replaces an account, hashing the password with argon2id.
pub fn add_user(conn: &Connection, name: &str, role: Role, password: &str) -> anyhow::Result<()> {
    if name.trim().is_empty() || password.len() < 8 {
        anyhow::bail!("an account needs a name and a password of at least 8 characters");
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
        .to_string();
    conn.execute(
        "INSERT INTO users(name, role, hash) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET role = ?2, hash = ?3",
        params![name, role.as_str(), hash],
    )?;
    Ok(())
}

/// The account's role when the password is right.
pub fn check_password(
    conn: &Connection,
    name: &str,
    password: &str,
) -> anyhow::Result<Option<Role>> {
    let row: Option<(String, String)> = conn
        .query_row("SELECT role, hash FROM users WHERE name = ?1", [name], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((role, hash)) = row else { return Ok(None) };
    let parsed = PasswordHash::new(&hash)
        .map_err(|e| anyhow::anyhow!("stored hash of {name} is unreadable: {e}"))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        .then(|| Role::parse(&role)))
}

/// A logged-in operator.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
}

pub fn new_session(conn: &Connection, user: &str, hours: i64) -> anyhow::Result<(String, String)> {
    let token = random_hex();
    let csrf = random_hex();
    let expires = (Utc::now() + Duration::hours(hours)).to_rfc3339();
    conn.execute("DELETE FROM sessions WHERE expires < ?1", [Utc::now().to_rfc3339()])?;
    conn.execute(
        "INSERT INTO sessions(token, user, csrf, expires) VALUES (?1, ?2, ?3, ?4)",
        params![token, user, csrf, expires],
    )?;
    Ok((token, csrf))
}

pub fn session(conn: &Connection, token: &str) -> anyhow::Result<Option<Session>> {
    Ok(conn
        .query_row(
            "SELECT s.user, u.role, s.csrf FROM sessions s JOIN users u ON u.name = s.user WHERE s.token = ?1 AND s.expires > ?2",
            params![token, Utc::now().to_rfc3339()],
            |r| Ok(Session { user: r.get(0)?, role: Role::parse(&r.get::<_, String>(1)?), csrf: r.get(2)? }),
        )
        .optional()?)
}

pub fn end_session(conn: &Connection, token: &str) -> anyhow::Result<()> {
    conn.execute("DELETE FROM sessions WHERE token = ?1", [token])?;
    Ok(())
}

fn random_hex() -> String {
    use rand::RngCore as _;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Writes a sent command to the audit log.
pub fn audit(
    conn: &Connection,
    operator: &str,
    device: &str,
    command_id: &str,
    action: &str,
) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO audit(at, operator, device, command_id, action) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![Utc::now().to_rfc3339(), operator, device, command_id, action],
    )?;
    Ok(())
}

/// One row of the audit log: (at, operator, device, command id, action, ok, result).
pub type AuditRow = (String, String, String, String, String, Option<bool>, Option<String>);

pub fn audit_log(conn: &Connection, limit: usize) -> anyhow::Result<Vec<AuditRow>> {
    let mut st = conn.prepare("SELECT at, operator, device, command_id, action, ok, result FROM audit ORDER BY seq DESC LIMIT ?1")?;
    let rows = st
        .query_map([limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The last screenshot of a device: (PNG, when it arrived).
pub fn screenshot(conn: &Connection, device: &str) -> anyhow::Result<Option<(Vec<u8>, String)>> {
    Ok(conn
        .query_row("SELECT png, at FROM screenshots WHERE device = ?1", [device], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

/// Loads the devices, their recent history and the published versions into a fresh fleet,
/// so a restarted dashboard still shows what it knew.
pub fn load(conn: &Connection) -> anyhow::Result<Fleet> {
    let mut fleet = Fleet::default();
    let time = |s: Option<String>| {
        s.and_then(|s| DateTime::parse_from_rfc3339(&s).ok()).map(|t| t.with_timezone(&Utc))
    };
    let mut st =
        conn.prepare("SELECT id, scope, online, state_at, last_seen, health FROM devices")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<bool>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<String>>(5)?,
        ))
    })?;
    for row in rows {
        let (id, scope, online, state_at, last_seen, health) = row?;
        let health: Option<Health> = health.and_then(|h| serde_json::from_str(&h).ok());
        // The last health report arrived no later than the last message; the audit's
        // "reports at the published interval" check starts from there after a restart.
        let health_at = health.as_ref().and_then(|_| time(last_seen.clone()));
        fleet.devices.insert(
            id.clone(),
            Device {
                id,
                scope: scope.and_then(|s| kiosk::content::ScopeCode::parse(&s).ok()),
                state_online: online,
                state_at: time(state_at),
                last_seen: time(last_seen),
                health,
                health_at,
                ..Device::default()
            },
        );
    }
    let mut st = conn.prepare("SELECT device, json FROM health WHERE at > ?1 ORDER BY at")?;
    let since = (Utc::now() - Duration::hours(6)).to_rfc3339();
    for row in st.query_map([since], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (id, json) = row?;
        if let (Some(d), Ok(h)) =
            (fleet.devices.get_mut(&id), serde_json::from_str::<Health>(&json))
        {
            d.history.push_back(Sample::of(&h));
            if d.history.len() > HISTORY {
                d.history.pop_front();
            }
        }
    }
    let mut st = conn.prepare("SELECT device, at, sha256, length(png) FROM screenshots")?;
    for row in st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })? {
        let (id, at, sha256, size) = row?;
        if let (Some(d), Some(at)) = (fleet.devices.get_mut(&id), time(Some(at))) {
            d.screenshot = Some(ScreenshotMeta { at, sha256, size: size as u64 });
        }
    }
    let mut st = conn.prepare("SELECT scope, version, since FROM published")?;
    for row in st.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
    })? {
        let (scope, version, since) = row?;
        if let (Ok(s), Some(t)) = (kiosk::content::ScopeCode::parse(&scope), time(Some(since))) {
            fleet.published.insert(s, (version as u64, t));
        }
    }
    Ok(fleet)
}

/// The writer thread: batches changes into one transaction a second and drops health
/// history older than `keep`.
pub fn writer(
    mut conn: Connection,
    rx: Receiver<Change>,
    keep: Duration,
    counters: std::sync::Arc<super::Counters>,
) {
    let mut pending = Vec::new();
    let mut last_trim = std::time::Instant::now();
    loop {
        match rx.recv_timeout(StdDuration::from_secs(1)) {
            Ok(c) => {
                pending.push(c);
                // Drain what is queued, then commit.
                while let Ok(c) = rx.try_recv() {
                    pending.push(c);
                    if pending.len() >= 5000 {
                        break;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let _ = flush(&mut conn, &mut pending);
                return;
            }
        }
        let n = pending.len() as u64;
        match flush(&mut conn, &mut pending) {
            Ok(()) => {
                counters.persisted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => {
                // The batch is lost (the state in memory is not): count it as handled so
                // the backlog gauge shows only what waits.
                counters.persisted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!("fleet database: {e:#}");
            }
        }
        if last_trim.elapsed() > StdDuration::from_secs(60) {
            last_trim = std::time::Instant::now();
            let cutoff = (Utc::now() - keep).to_rfc3339();
            for table in ["health", "events"] {
                if let Err(e) =
                    conn.execute(&format!("DELETE FROM {table} WHERE at < ?1"), [&cutoff])
                {
                    tracing::warn!("trimming {table}: {e}");
                }
            }
        }
    }
}

fn flush(conn: &mut Connection, pending: &mut Vec<Change>) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for c in pending.drain(..) {
        match c {
            Change::State { device, online, at } => {
                let at = at.to_rfc3339();
                tx.execute(
                    "INSERT INTO devices(id, online, state_at, last_seen) VALUES (?1, ?2, ?3, CASE WHEN ?2 THEN ?3 END)
                     ON CONFLICT(id) DO UPDATE SET online = ?2, state_at = ?3, last_seen = CASE WHEN ?2 THEN ?3 ELSE last_seen END",
                    params![device, online, at],
                )?;
            }
            Change::Health { device, scope, health, at } => {
                let json = serde_json::to_string(&health)?;
                let at = at.to_rfc3339();
                tx.execute(
                    "INSERT INTO devices(id, scope, last_seen, health) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(id) DO UPDATE SET scope = COALESCE(?2, scope), last_seen = ?3, health = ?4",
                    params![device, scope.map(|s| s.to_string()), at, json],
                )?;
                tx.execute(
                    "INSERT INTO health(device, at, json) VALUES (?1, ?2, ?3)",
                    params![device, at, json],
                )?;
            }
            Change::Event { device, at, text } => {
                tx.execute(
                    "INSERT INTO events(device, at, text) VALUES (?1, ?2, ?3)",
                    params![device, at.to_rfc3339(), text],
                )?;
            }
            Change::Ack(ack) => {
                tx.execute(
                    "UPDATE audit SET ok = ?1, result = ?2 WHERE command_id = ?3 AND device = ?4",
                    params![ack.ok, ack.result, ack.id, ack.device],
                )?;
            }
            Change::Screenshot { device, meta, png } => {
                tx.execute(
                    "INSERT INTO screenshots(device, at, sha256, png) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(device) DO UPDATE SET at = ?2, sha256 = ?3, png = ?4",
                    params![device, meta.at.to_rfc3339(), meta.sha256, png],
                )?;
            }
            Change::Published { scope, version, at } => {
                tx.execute(
                    "INSERT INTO published(scope, version, since) VALUES (?1, ?2, ?3)
                     ON CONFLICT(scope) DO UPDATE SET version = ?2, since = ?3",
                    params![scope.to_string(), version as i64, at.to_rfc3339()],
                )?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_logs_in_only_when_right_and_roles_are_kept() {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch(SCHEMA).expect("schema");
        add_user(&conn, "wang", Role::Readonly, "correct horse").expect("add");
        assert_eq!(
            check_password(&conn, "wang", "correct horse").expect("check"),
            Some(Role::Readonly)
        );
        assert_eq!(check_password(&conn, "wang", "wrong horse!").expect("check"), None);
        assert_eq!(check_password(&conn, "li", "correct horse").expect("check"), None);
        assert!(
            add_user(&conn, "short", Role::Operator, "1234").is_err(),
            "short passwords are refused"
        );
        let (token, _) = new_session(&conn, "wang", 1).expect("session");
        assert_eq!(session(&conn, &token).expect("lookup").map(|s| s.role), Some(Role::Readonly));
        end_session(&conn, &token).expect("end");
        assert!(session(&conn, &token).expect("lookup").is_none());
    }
}
