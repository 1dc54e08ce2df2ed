//! The outbox: sealed submissions waiting for the city's application receipt, in their
//! own SQLite file (`data_dir/outbox.db`), apart from content versions that come and go.
//!
//! A row holds only the sealed box and the clear routing metadata. It is written with
//! `synchronous=FULL` (WAL journal), so a submission whose receipt the resident holds is
//! on disk even if power fails the next instant. It is deleted only when the city's
//! application receipt arrives; the broker's ack just moves it from "to send" to "sent,
//! awaiting receipt", and [`Outbox::requeue_unanswered`] sends it again if no receipt
//! follows. The city stores each uuid once, so a resend is harmless.
//!
//! Each thread (the UI taking forms, the sync worker sending them) opens its own `Outbox`;
//! SQLite serialises their writes, and a busy timeout makes a writer wait its turn.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use thiserror::Error;

use super::receipt::{receipt_number, BadStation};
use super::seal::{Submission, SubmissionKind};

#[derive(Debug, Error)]
pub enum OutboxError {
    #[error("outbox {}: {source}", path.display())]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("outbox {} was written by a newer kiosk (schema {found}, this one knows {known}); keep it and update the kiosk", path.display())]
    NewerSchema { path: PathBuf, found: u32, known: u32 },
    #[error("outbox {}: unreadable {what} in the row of submission {uuid}", path.display())]
    Corrupt { path: PathBuf, uuid: String, what: &'static str },
    #[error(transparent)]
    BadStation(#[from] BadStation),
}

const MIGRATIONS: &[&str] = &[r#"
    CREATE TABLE submissions (
        uuid         TEXT PRIMARY KEY,
        kind         TEXT NOT NULL,
        device       TEXT NOT NULL,
        receipt_no   TEXT NOT NULL,
        created      INTEGER NOT NULL,  -- Unix seconds
        received_on  TEXT NOT NULL,     -- ISO date
        due          TEXT,              -- ISO date
        sealed       BLOB NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        last_attempt INTEGER,           -- Unix seconds
        broker_acked INTEGER            -- Unix seconds; NULL = still to send
    );
    CREATE INDEX submissions_to_send ON submissions (broker_acked, created);
    -- The last receipt sequence number given out each day. Rows outlive the submissions,
    -- so a number is never given twice on this device.
    CREATE TABLE receipt_counters (
        day  TEXT PRIMARY KEY,
        last INTEGER NOT NULL
    );
"#];

/// A submission waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub submission: Submission,
    /// How many times it was handed to the broker.
    pub attempts: u32,
    pub last_attempt: Option<DateTime<Utc>>,
    /// When the broker acknowledged it; `None` while it is still to send.
    pub broker_acked: Option<DateTime<Utc>>,
}

/// What the admin panel shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Not yet acknowledged by the broker.
    pub unsent: u64,
    /// Acknowledged by the broker, waiting for the city's application receipt.
    pub awaiting_receipt: u64,
}

impl OutboxCounts {
    /// Everything not yet confirmed by the city.
    pub fn waiting(&self) -> u64 {
        self.unsent + self.awaiting_receipt
    }
}

pub struct Outbox {
    conn: Connection,
    path: PathBuf,
}

impl Outbox {
    /// Opens the outbox at `path`, creating it (and bringing its schema up to date) if needed.
    pub fn open(path: &Path) -> Result<Outbox, OutboxError> {
        let sql = |source| OutboxError::Sqlite { path: path.to_path_buf(), source };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(sql)?;
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(sql)?;
        // FULL: a commit is on disk before the resident sees a receipt number.
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
        // Deleted rows are zeroed, so a receipted box does not linger in free pages.
        conn.pragma_update(None, "secure_delete", true).map_err(sql)?;
        let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql)?;
        let known = MIGRATIONS.len() as u32;
        if found > known {
            return Err(OutboxError::NewerSchema { path: path.to_path_buf(), found, known });
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = conn.transaction().map_err(sql)?;
            tx.execute_batch(step).map_err(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as u32).map_err(sql)?;
            tx.commit().map_err(sql)?;
        }
        Ok(Outbox { conn, path: path.to_path_buf() })
    }

    fn sql(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError::Sqlite { path: self.path.clone(), source }
    }

    /// Gives out the next receipt number of `day` for this device, durably, so it is never
    /// given again even if the submission is then abandoned.
    pub fn next_receipt_no(
        &mut self,
        kind: SubmissionKind,
        station: &str,
        day: NaiveDate,
    ) -> Result<String, OutboxError> {
        // Check the station before using up a number.
        receipt_number(kind, station, day, 1)?;
        let key = day.format("%Y-%m-%d").to_string();
        let seq: u32 = self
            .conn
            .query_row(
                "INSERT INTO receipt_counters (day, last) VALUES (?1, 1)
                 ON CONFLICT (day) DO UPDATE SET last = last + 1
                 RETURNING last",
                params![key],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))?;
        Ok(receipt_number(kind, station, day, seq)?)
    }

    /// Stores a sealed submission. Returns `false` when its uuid is already here (a repeat
    /// of the same submission changes nothing).
    pub fn enqueue(&mut self, s: &Submission) -> Result<bool, OutboxError> {
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO submissions (uuid, kind, device, receipt_no, created, received_on, due, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    s.uuid,
                    s.kind.as_str(),
                    s.device,
                    s.receipt_no,
                    s.created.timestamp(),
                    s.received_on.format("%Y-%m-%d").to_string(),
                    s.due.map(|d| d.format("%Y-%m-%d").to_string()),
                    s.sealed,
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(n == 1)
    }

    /// Submissions still to send (not acknowledged by the broker), oldest first.
    pub fn pending(&self, limit: u32) -> Result<Vec<Pending>, OutboxError> {
        self.select(&format!("WHERE broker_acked IS NULL ORDER BY created, rowid LIMIT {limit}"))
    }

    /// Every submission not yet receipted by the city, oldest first.
    pub fn all(&self) -> Result<Vec<Pending>, OutboxError> {
        self.select("ORDER BY created, rowid")
    }

    fn select(&self, tail: &str) -> Result<Vec<Pending>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT uuid, kind, device, receipt_no, created, received_on, due, sealed, attempts, last_attempt,
                        broker_acked
                 FROM submissions {tail}"
            ))
            .map_err(|e| self.sql(e))?;
        type Raw = (
            String,
            String,
            String,
            String,
            i64,
            String,
            Option<String>,
            Vec<u8>,
            u32,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Raw> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))?;
        rows.into_iter()
            .map(
                |(
                    uuid,
                    kind,
                    device,
                    receipt_no,
                    created,
                    received_on,
                    due,
                    sealed,
                    attempts,
                    last,
                    acked,
                )| {
                    let corrupt = |what| OutboxError::Corrupt {
                        path: self.path.clone(),
                        uuid: uuid.clone(),
                        what,
                    };
                    let kind = SubmissionKind::parse(&kind).ok_or_else(|| corrupt("kind"))?;
                    let created = DateTime::from_timestamp(created, 0)
                        .ok_or_else(|| corrupt("creation time"))?;
                    let received_on =
                        parse_day(&received_on).ok_or_else(|| corrupt("receipt date"))?;
                    let due = match due {
                        Some(d) => Some(parse_day(&d).ok_or_else(|| corrupt("due date"))?),
                        None => None,
                    };
                    let time = |t: Option<i64>| match t {
                        Some(t) => DateTime::from_timestamp(t, 0)
                            .map(Some)
                            .ok_or_else(|| corrupt("attempt time")),
                        None => Ok(None),
                    };
                    let last_attempt = time(last)?;
                    let broker_acked = time(acked)?;
                    Ok(Pending {
                        submission: Submission {
                            uuid,
                            kind,
                            device,
                            receipt_no,
                            created,
                            received_on,
                            due,
                            sealed,
                        },
                        attempts,
                        last_attempt,
                        broker_acked,
                    })
                },
            )
            .collect()
    }

    /// Notes that the submission was handed to the broker at `now`.
    pub fn record_attempt(&mut self, uuid: &str, now: DateTime<Utc>) -> Result<(), OutboxError> {
        self.conn
            .execute(
                "UPDATE submissions SET attempts = attempts + 1, last_attempt = ?2 WHERE uuid = ?1",
                params![uuid, now.timestamp()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// The broker acknowledged the submission (QoS 1 PUBACK): stop sending it, keep it
    /// until the city's receipt. Returns `false` if it is no longer here.
    pub fn mark_sent(&mut self, uuid: &str, now: DateTime<Utc>) -> Result<bool, OutboxError> {
        let n = self
            .conn
            .execute(
                "UPDATE submissions SET broker_acked = ?2 WHERE uuid = ?1",
                params![uuid, now.timestamp()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(n == 1)
    }

    /// Puts submissions the broker acknowledged before `acked_before` but the city never
    /// receipted back into the queue, to be sent again. Returns how many.
    pub fn requeue_unanswered(&mut self, acked_before: DateTime<Utc>) -> Result<u64, OutboxError> {
        let n = self
            .conn
            .execute(
                "UPDATE submissions SET broker_acked = NULL WHERE broker_acked IS NOT NULL AND broker_acked < ?1",
                params![acked_before.timestamp()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(n as u64)
    }

    /// The city's application receipt for `uuid` arrived: the kiosk's copy is deleted.
    /// Returns `false` if it was already gone (a repeated receipt).
    pub fn remove_on_receipt(&mut self, uuid: &str) -> Result<bool, OutboxError> {
        let n = self
            .conn
            .execute("DELETE FROM submissions WHERE uuid = ?1", params![uuid])
            .map_err(|e| self.sql(e))?;
        Ok(n == 1)
    }

    /// How many submissions wait, split by whether the broker has them yet.
    pub fn counts(&self) -> Result<OutboxCounts, OutboxError> {
        self.conn
            .query_row(
                "SELECT count(*) FILTER (WHERE broker_acked IS NULL), count(*) FILTER (WHERE broker_acked IS NOT NULL)
                 FROM submissions",
                [],
                |r| Ok(OutboxCounts { unsent: r.get::<_, i64>(0)? as u64, awaiting_receipt: r.get::<_, i64>(1)? as u64 }),
            )
            .map_err(|e| self.sql(e))
    }

    /// How many submissions the city has not yet confirmed: the admin panel's number.
    pub fn waiting(&self) -> Result<u64, OutboxError> {
        Ok(self.counts()?.waiting())
    }

    /// Whether `uuid` is still waiting.
    pub fn contains(&self, uuid: &str) -> Result<bool, OutboxError> {
        self.conn
            .query_row("SELECT 1 FROM submissions WHERE uuid = ?1", params![uuid], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(|e| self.sql(e))
    }
}

fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}
