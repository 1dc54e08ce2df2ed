//! The city inbox: receives residents' sealed submissions from kiosks, opens them with the
//! city's secret key, stores each once (by uuid) and answers with the application receipt
//! that clears the kiosk's outbox. It also exports what an office needs: a CSV or XLSX
//! register and the counts of the yearly 政府信息公开工作年度报告.
//!
//! The database keeps each resident's personal fields in the sealed box they arrived in;
//! they are opened again, with the same key, only to show one form (`--show`). A copied
//! inbox.db or backup reveals receipt numbers, dates and statuses, nothing personal.
//!
//! Order for every message: parse → open the sealed box (to check it) → `INSERT OR IGNORE` (SQLite,
//! `synchronous=FULL`) → publish the receipt → PUBACK to the broker (manual acks). A crash
//! anywhere before the commit leaves the message unacknowledged at the broker or still in
//! the kiosk's outbox; a crash after it only causes a resend, which is stored once and
//! receipted again. Several inbox processes can run on one database or on several: they
//! join the shared subscription [`INBOX_SHARE`], and the uuid key keeps one row per
//! submission.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use chrono::{Datelike as _, NaiveDate, Utc};
use kiosk::requests::{open, CitySecret, Personal, Submission, SubmissionKind};
use kiosk::sync::client::{backoff, Broker};
use kiosk::sync::submit::{receipt_topic, submit_device, SubmitReceipt, INBOX_SHARE};
use rumqttc::{AsyncClient, Event, Packet, QoS, SubscribeReasonCode};
use rusqlite::{params, Connection, OptionalExtension as _};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct InboxArgs {
    /// The broker: mqtts://host:8883, or mqtt://host:1883 for a test bench. Without it the
    /// command only exports, closes or generates a key, and exits.
    #[arg(long)]
    pub broker: Option<String>,
    /// PEM CA certificate of the broker (for mqtts://).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate (CN = the city identity of the broker's ACL).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// The client certificate's PEM private key.
    #[arg(long = "tls-key")]
    pub tls_key: Option<PathBuf>,
    /// The city's X25519 secret key file (base64 or hex), as `--keygen` writes it.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The inbox database (created if missing).
    #[arg(long, default_value = "inbox.db")]
    pub db: PathBuf,
    /// Names this worker (MQTT client id `content-sync-inbox-NAME`); give each of several
    /// workers its own.
    #[arg(long, default_value = "1")]
    pub worker: String,
    /// Write the register of submissions as CSV (UTF-8 with BOM, opens in Excel/WPS).
    #[arg(long = "export-csv")]
    pub export_csv: Option<PathBuf>,
    /// Write the register to FILE: `.xlsx` (the register, and the 年度报告 counts of every
    /// year on a second sheet) or `.csv`, by the extension unless --format says.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// The format of --export when the file name does not tell: csv | xlsx.
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// Print the 年度报告 counts of requests received in YEAR.
    #[arg(long)]
    pub report: Option<i32>,
    /// Generate the city's key pair: the secret key to OUT (mode 0600), the public key
    /// (what kiosks are configured with) to OUT.pub and stdout.
    #[arg(long)]
    pub keygen: Option<PathBuf>,
    /// Record the outcome of the request with this receipt number (with --outcome).
    #[arg(long)]
    pub close: Option<String>,
    /// granted | partial | refused | unavailable | not-processed | other
    #[arg(long)]
    pub outcome: Option<String>,
    /// Print the opened form of the submission with this receipt number (JSON; needs --key).
    #[arg(long)]
    pub show: Option<String>,
    /// The day the reply was given (default: today).
    #[arg(long = "answered-on")]
    pub answered_on: Option<NaiveDate>,
}

/// The formats of `--export`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Xlsx,
}

impl ExportFormat {
    /// `format` if given, else the one the file's extension names.
    pub fn for_path(path: &Path, format: Option<ExportFormat>) -> anyhow::Result<ExportFormat> {
        if let Some(f) = format {
            return Ok(f);
        }
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => Ok(ExportFormat::Csv),
            Some("xlsx") => Ok(ExportFormat::Xlsx),
            _ => bail!(
                "cannot tell the format of {} from its name: end it in .csv or .xlsx, or give --format",
                path.display()
            ),
        }
    }
}

/// The register's columns, in both formats.
pub const REGISTER_COLUMNS: [&str; 7] =
    ["受理编号", "收到日期", "答复期限", "类型", "状态", "办结日期", "终端"];

/// Counters of a running inbox, for tests and the log.
#[derive(Debug, Default)]
pub struct InboxStats {
    /// Set to stop the inbox (within about 200 ms).
    pub stop: AtomicBool,
    /// True while the inbox is connected and the broker has granted its subscription
    /// (SubAck): from then on, a submission published is delivered to it.
    pub subscribed: AtomicBool,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    /// Messages that could not be opened or read; not stored, not receipted.
    pub refused: AtomicU64,
    /// The last refusal, for an operator (names the uuid and the reason, nothing personal).
    pub last_error: Mutex<Option<String>>,
}

impl InboxStats {
    /// Whether the broker has granted the inbox's subscription on the current connection.
    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    fn refuse(&self, why: String) {
        tracing::error!("{why}");
        self.refused.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(why);
        }
    }
}

/// The outcomes of the 年度报告 table 三 (收到和处理政府信息公开申请情况).
pub const OUTCOMES: &[(&str, &str)] = &[
    ("granted", "予以公开"),
    ("partial", "部分公开"),
    ("refused", "不予公开"),
    ("unavailable", "无法提供"),
    ("not-processed", "不予处理"),
    ("other", "其他处理"),
];

/// Status of a request not yet answered.
pub const RECEIVED: &str = "received";

fn status_label(status: &str) -> &str {
    if status == RECEIVED {
        return "尚未办结";
    }
    OUTCOMES.iter().find(|(k, _)| *k == status).map(|(_, l)| *l).unwrap_or(status)
}

/// What storing a submission did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
}

/// One row of the register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    pub uuid: String,
    pub device: String,
    pub kind: SubmissionKind,
    pub receipt_no: String,
    pub received_on: NaiveDate,
    pub due: Option<NaiveDate>,
    pub status: String,
    pub answered_on: Option<NaiveDate>,
}

/// The inbox database.
pub struct InboxDb {
    conn: Connection,
}

const SCHEMA: &str = r#"
    CREATE TABLE IF NOT EXISTS submissions (
        uuid        TEXT PRIMARY KEY,
        device      TEXT NOT NULL,
        kind        TEXT NOT NULL,
        receipt_no  TEXT NOT NULL,
        created     INTEGER NOT NULL,  -- Unix seconds, on the kiosk
        received_on TEXT NOT NULL,     -- ISO date
        due         TEXT,              -- ISO date
        stored_at   INTEGER NOT NULL,  -- Unix seconds, here
        sealed      BLOB NOT NULL,     -- the resident's sealed box as received
        status      TEXT NOT NULL DEFAULT 'received',
        answered_on TEXT               -- ISO date
    );
    CREATE INDEX IF NOT EXISTS submissions_receipt ON submissions (receipt_no);
"#;

fn day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

impl InboxDb {
    pub fn open(path: &Path) -> anyhow::Result<InboxDb> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening the inbox {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        // FULL: a receipt is sent only for a submission that is on disk.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA).with_context(|| format!("preparing {}", path.display()))?;
        let has_sealed: bool = conn.query_row(
            "SELECT count(*) FROM pragma_table_info('submissions') WHERE name = 'sealed'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n == 1),
        )?;
        if !has_sealed {
            bail!(
                "{} is an inbox database from before personal fields were kept sealed (it holds \
                 them in plain text): export its register, then move it away and start a new one",
                path.display()
            );
        }
        Ok(InboxDb { conn })
    }

    /// Stores a submission once, its personal fields still sealed; a uuid already here is a
    /// duplicate. The caller has checked that the box opens with the city's key.
    pub fn store(&self, s: &Submission) -> anyhow::Result<Stored> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO submissions (uuid, device, kind, receipt_no, created, received_on, due, stored_at, sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                s.uuid,
                s.device,
                s.kind.as_str(),
                s.receipt_no,
                s.created.timestamp(),
                s.received_on.format("%Y-%m-%d").to_string(),
                s.due.map(|d| d.format("%Y-%m-%d").to_string()),
                Utc::now().timestamp(),
                s.sealed,
            ],
        )?;
        Ok(if n == 1 { Stored::New } else { Stored::Duplicate })
    }

    /// The registered row of `uuid`, if any.
    pub fn get(&self, uuid: &str) -> anyhow::Result<Option<Registered>> {
        Ok(self.select("WHERE uuid = ?1", params![uuid])?.into_iter().next())
    }

    /// Every registered submission, by date of receipt.
    pub fn register(&self) -> anyhow::Result<Vec<Registered>> {
        self.select("ORDER BY received_on, receipt_no", params![])
    }

    /// How many submissions are stored.
    pub fn count(&self) -> anyhow::Result<u64> {
        Ok(self.conn.query_row("SELECT count(*) FROM submissions", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    /// The opened form of `uuid` (for the office handling it), opened with the city's
    /// secret key: the database holds only the sealed box.
    pub fn personal(&self, uuid: &str, secret: &CitySecret) -> anyhow::Result<Option<Personal>> {
        let Some(sub) = self.submission("WHERE uuid = ?1", params![uuid])? else {
            return Ok(None);
        };
        Ok(Some(open(secret, &sub)?))
    }

    /// The opened form of the request with receipt number `receipt_no`.
    pub fn personal_by_receipt(
        &self,
        receipt_no: &str,
        secret: &CitySecret,
    ) -> anyhow::Result<Option<(Registered, Personal)>> {
        let Some(sub) = self.submission("WHERE receipt_no = ?1", params![receipt_no])? else {
            return Ok(None);
        };
        let row = self.get(&sub.uuid)?.context("the row went away")?;
        Ok(Some((row, open(secret, &sub)?)))
    }

    /// The stored submission (envelope and sealed box) matching `filter`.
    fn submission(
        &self,
        filter: &str,
        p: impl rusqlite::Params,
    ) -> anyhow::Result<Option<Submission>> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT uuid, device, kind, receipt_no, created, received_on, due, sealed FROM submissions {filter}"),
                p,
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, Vec<u8>>(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((uuid, device, kind, receipt_no, created, received, due, sealed)) = row else {
            return Ok(None);
        };
        Ok(Some(Submission {
            kind: SubmissionKind::parse(&kind)
                .with_context(|| format!("submission {uuid}: unknown kind {kind}"))?,
            device,
            receipt_no,
            created: chrono::DateTime::from_timestamp(created, 0).unwrap_or_default(),
            received_on: day(&received)
                .with_context(|| format!("submission {uuid}: bad date {received}"))?,
            due: due.as_deref().and_then(day),
            sealed,
            uuid,
        }))
    }

    fn select(&self, tail: &str, p: impl rusqlite::Params) -> anyhow::Result<Vec<Registered>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT uuid, device, kind, receipt_no, received_on, due, status, answered_on FROM submissions {tail}"
        ))?;
        let rows = stmt.query_map(p, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (uuid, device, kind, receipt_no, received, due, status, answered) = row?;
            let kind = SubmissionKind::parse(&kind)
                .with_context(|| format!("submission {uuid}: unknown kind {kind}"))?;
            let received_on = day(&received)
                .with_context(|| format!("submission {uuid}: bad date {received}"))?;
            out.push(Registered {
                uuid,
                device,
                kind,
                receipt_no,
                received_on,
                due: due.as_deref().and_then(day),
                status,
                answered_on: answered.as_deref().and_then(day),
            });
        }
        Ok(out)
    }

    /// Records the outcome of the request with receipt number `receipt_no`.
    pub fn close(&self, receipt_no: &str, outcome: &str, on: NaiveDate) -> anyhow::Result<()> {
        if !OUTCOMES.iter().any(|(k, _)| *k == outcome) {
            let known: Vec<&str> = OUTCOMES.iter().map(|(k, _)| *k).collect();
            bail!("unknown outcome “{outcome}”: use one of {}", known.join(", "));
        }
        let n = self.conn.execute(
            "UPDATE submissions SET status = ?2, answered_on = ?3 WHERE receipt_no = ?1",
            params![receipt_no, outcome, on.format("%Y-%m-%d").to_string()],
        )?;
        if n == 0 {
            bail!("no submission has the receipt number {receipt_no}");
        }
        Ok(())
    }

    /// Writes the register as CSV, UTF-8 with a BOM so Excel and WPS read the Chinese.
    pub fn export_csv(&self, path: &Path) -> anyhow::Result<usize> {
        let rows = self.register()?;
        let mut file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        std::io::Write::write_all(&mut file, "\u{feff}".as_bytes())?;
        let mut w = csv::Writer::from_writer(file);
        w.write_record(REGISTER_COLUMNS)?;
        let date =
            |d: Option<NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default();
        for r in &rows {
            w.write_record([
                r.receipt_no.as_str(),
                &r.received_on.format("%Y-%m-%d").to_string(),
                &date(r.due),
                r.kind.label(),
                status_label(&r.status),
                &date(r.answered_on),
                &r.device,
            ])?;
        }
        w.flush().with_context(|| format!("writing {}", path.display()))?;
        Ok(rows.len())
    }

    /// Writes the register as an Excel workbook: sheet 登记表 with [`REGISTER_COLUMNS`]
    /// (dates as Excel dates, the header row frozen), and sheet 年度报告 with the
    /// [`YearReport`] counts, one column per year that has submissions.
    pub fn export_xlsx(&self, path: &Path) -> anyhow::Result<usize> {
        use rust_xlsxwriter::{ExcelDateTime, Format, FormatAlign, Workbook};
        let rows = self.register()?;
        let mut book = Workbook::new();
        let head =
            Format::new().set_bold().set_align(FormatAlign::Center).set_background_color(0xDDEBF7);
        let date = Format::new().set_num_format("yyyy-mm-dd").set_align(FormatAlign::Center);
        let excel_date = |d: NaiveDate| {
            // Month and day always fit a u8; a year Excel cannot hold is an error.
            ExcelDateTime::from_ymd(
                u16::try_from(d.year()).unwrap_or(0),
                d.month() as u8,
                d.day() as u8,
            )
            .with_context(|| format!("the date {d} cannot be written as an Excel date"))
        };

        let sheet = book.add_worksheet();
        sheet.set_name("登记表")?;
        // Widths in characters; a CJK character counts about two.
        for (col, (name, width)) in
            REGISTER_COLUMNS.iter().zip([24.0, 12.0, 12.0, 18.0, 10.0, 12.0, 14.0]).enumerate()
        {
            sheet.write_string_with_format(0, col as u16, *name, &head)?;
            sheet.set_column_width(col as u16, width)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        for (i, r) in rows.iter().enumerate() {
            let row = u32::try_from(i + 1).context("too many submissions for one sheet")?;
            sheet.write_string(row, 0, &r.receipt_no)?;
            sheet.write_date_with_format(row, 1, &excel_date(r.received_on)?, &date)?;
            if let Some(d) = r.due {
                sheet.write_date_with_format(row, 2, &excel_date(d)?, &date)?;
            }
            sheet.write_string(row, 3, r.kind.label())?;
            sheet.write_string(row, 4, status_label(&r.status))?;
            if let Some(d) = r.answered_on {
                sheet.write_date_with_format(row, 5, &excel_date(d)?, &date)?;
            }
            sheet.write_string(row, 6, &r.device)?;
        }
        if !rows.is_empty() {
            sheet.autofilter(0, 0, rows.len() as u32, REGISTER_COLUMNS.len() as u16 - 1)?;
        }

        let years: std::collections::BTreeSet<i32> =
            rows.iter().map(|r| r.received_on.year()).collect();
        let reports =
            years.iter().map(|y| self.report(*y)).collect::<anyhow::Result<Vec<YearReport>>>()?;
        let sheet = book.add_worksheet();
        sheet.set_name("年度报告")?;
        sheet.write_string_with_format(0, 0, "项目", &head)?;
        sheet.set_column_width(0, 36)?;
        for (i, rep) in reports.iter().enumerate() {
            let col = i as u16 + 1;
            sheet.write_string_with_format(0, col, format!("{}年", rep.year), &head)?;
            sheet.set_column_width(col, 10)?;
            for (j, (label, n)) in rep.rows().into_iter().enumerate() {
                sheet.write_string(j as u32 + 1, 0, label)?;
                sheet.write_number(j as u32 + 1, col, n as f64)?;
            }
        }
        sheet.set_freeze_panes(1, 1)?;

        book.save(path).with_context(|| format!("writing {}", path.display()))?;
        Ok(rows.len())
    }

    /// Writes the register in `format` (see [`export_csv`](Self::export_csv) and
    /// [`export_xlsx`](Self::export_xlsx)).
    pub fn export(&self, path: &Path, format: ExportFormat) -> anyhow::Result<usize> {
        match format {
            ExportFormat::Csv => self.export_csv(path),
            ExportFormat::Xlsx => self.export_xlsx(path),
        }
    }

    /// The counts of the yearly report for requests received in `year`.
    pub fn report(&self, year: i32) -> anyhow::Result<YearReport> {
        let mut rep = YearReport { year, ..YearReport::default() };
        for r in self.register()?.into_iter().filter(|r| r.received_on.year() == year) {
            if r.kind == SubmissionKind::Suggestion {
                rep.suggestions += 1;
                continue;
            }
            rep.received += 1;
            match OUTCOMES.iter().position(|(k, _)| *k == r.status) {
                Some(i) => {
                    rep.by_outcome[i] += 1;
                    match (r.answered_on, r.due) {
                        (Some(a), Some(d)) if a <= d => rep.on_time += 1,
                        (Some(_), Some(_)) => rep.late += 1,
                        _ => rep.no_due += 1,
                    }
                }
                None => rep.open += 1,
            }
        }
        Ok(rep)
    }
}

/// The 年度报告 counts (table 三 in part; 意见建议 apart).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct YearReport {
    pub year: i32,
    /// 本年新收政府信息公开申请数量.
    pub received: u64,
    /// Per [`OUTCOMES`], in its order.
    pub by_outcome: [u64; 6],
    /// 尚未办结.
    pub open: u64,
    /// Answered by the due date.
    pub on_time: u64,
    /// Answered after the due date.
    pub late: u64,
    /// Answered, but the kiosk's calendar gave no due date.
    pub no_due: u64,
    /// 意见建议 received.
    pub suggestions: u64,
}

impl YearReport {
    /// The report's lines (项目, 数量), as printed and as written to the workbook.
    pub fn rows(&self) -> Vec<(String, u64)> {
        let mut rows = vec![("本年新收政府信息公开申请数量".to_string(), self.received)];
        for ((_, label), n) in OUTCOMES.iter().zip(self.by_outcome) {
            rows.push((format!("办理结果：{label}"), n));
        }
        rows.push(("尚未办结".into(), self.open));
        rows.push(("按期答复".into(), self.on_time));
        rows.push(("逾期答复".into(), self.late));
        rows.push(("已答复（无答复期限记录）".into(), self.no_due));
        rows.push(("意见建议（另计）".into(), self.suggestions));
        rows
    }
}

impl std::fmt::Display for YearReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}年度 政府信息公开申请情况（政务公开专区终端受理）", self.year)?;
        writeln!(f, "| 项目 | 数量 |")?;
        writeln!(f, "|---|---:|")?;
        for (label, n) in self.rows() {
            // The line for answers without a due date only when there are any.
            if n == 0 && label.starts_with("已答复（无答复期限记录）") {
                continue;
            }
            writeln!(f, "| {label} | {n} |")?;
        }
        Ok(())
    }
}

/// `content-sync inbox`.
pub fn inbox(args: InboxArgs) -> anyhow::Result<()> {
    inbox_with(args, Arc::new(InboxStats::default()))
}

/// [`inbox`] with counters the caller holds (and can stop it through).
pub fn inbox_with(args: InboxArgs, stats: Arc<InboxStats>) -> anyhow::Result<()> {
    if let Some(out) = &args.keygen {
        return keygen(out);
    }
    let mut did = false;
    if let Some(no) = &args.close {
        let outcome = args.outcome.as_deref().context("--close needs --outcome")?;
        let on = args.answered_on.unwrap_or_else(|| Utc::now().date_naive());
        InboxDb::open(&args.db)?.close(no, outcome, on)?;
        println!("{no}: {}", status_label(outcome));
        did = true;
    }
    if let Some(path) = &args.export_csv {
        let n = InboxDb::open(&args.db)?.export_csv(path)?;
        println!("{n} submission(s) written to {}", path.display());
        did = true;
    }
    if let Some(no) = &args.show {
        let key = args.key.as_ref().context("--show needs --key CITY_PRIVATE_KEY")?;
        let secret = read_secret(key)?;
        let (row, personal) = InboxDb::open(&args.db)?
            .personal_by_receipt(no, &secret)?
            .with_context(|| format!("no submission has the receipt number {no}"))?;
        let shown = serde_json::json!({
            "receipt_no": row.receipt_no,
            "received_on": row.received_on,
            "due": row.due,
            "status": status_label(&row.status),
            "device": row.device,
            "form": personal,
        });
        println!("{}", serde_json::to_string_pretty(&shown)?);
        did = true;
    }
    if let Some(path) = &args.export {
        let format = ExportFormat::for_path(path, args.format)?;
        let n = InboxDb::open(&args.db)?.export(path, format)?;
        println!("{n} submission(s) written to {}", path.display());
        did = true;
    }
    if let Some(year) = args.report {
        print!("{}", InboxDb::open(&args.db)?.report(year)?);
        did = true;
    }
    let Some(url) = args.broker.clone() else {
        if did {
            return Ok(());
        }
        bail!("nothing to do: give --broker and --key to receive submissions, or --export, --export-csv, --report, --close, --keygen");
    };
    let key_path =
        args.key.as_ref().context("receiving submissions needs --key CITY_PRIVATE_KEY")?;
    let secret = read_secret(key_path)?;
    let broker =
        Broker { url, ca: args.ca.clone(), cert: args.cert.clone(), key: args.tls_key.clone() };
    let db = InboxDb::open(&args.db)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(&broker, &args.worker, &secret, &db, &stats))
}

/// Reads the city's secret key file.
pub fn read_secret(path: &Path) -> anyhow::Result<CitySecret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the city's secret key {}", path.display()))?;
    CitySecret::parse(&text).with_context(|| format!("{}", path.display()))
}

fn keygen(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        bail!("{} exists; refusing to overwrite a secret key", out.display());
    }
    let secret = CitySecret::generate();
    write_private(out, secret.to_base64().as_bytes())?;
    let public = secret.public().to_base64();
    let pub_path = PathBuf::from(format!("{}.pub", out.display()));
    std::fs::write(&pub_path, format!("{public}\n"))
        .with_context(|| format!("writing {}", pub_path.display()))?;
    println!("{public}");
    eprintln!(
        "secret key: {} (keep it on the inbox server only); public key for the kiosks: {}",
        out.display(),
        pub_path.display()
    );
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

async fn serve(
    broker: &Broker,
    worker: &str,
    secret: &CitySecret,
    db: &InboxDb,
    stats: &InboxStats,
) -> anyhow::Result<()> {
    let mut attempt = 0u32;
    while !stats.stop.load(Ordering::Relaxed) {
        let mut opts = broker.options(&format!("content-sync-inbox-{worker}"))?;
        // Persistent: submissions arriving while this worker reconnects wait at the broker.
        opts.set_clean_session(false);
        // Acknowledge a submission only once it is stored.
        opts.set_manual_acks(true);
        // Room for a receipt and an ack per message of a whole burst: rumqttc hands out the
        // incoming messages it has read before it takes new requests, so a small channel
        // could fill while this loop waits on it.
        let (client, mut events) = AsyncClient::new(opts, 4096);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut connected = false;
        loop {
            tokio::select! {
                ev = events.poll() => match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connected = true;
                        attempt = 0;
                        client.subscribe(INBOX_SHARE, QoS::AtLeastOnce).await?;
                        tracing::info!("inbox: connected to {}", broker.url);
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        if ack.return_codes.iter().all(|c| matches!(c, SubscribeReasonCode::Success(_))) {
                            if !stats.subscribed.swap(true, Ordering::AcqRel) {
                                // A line operators and scripts can wait for (stderr; stdout
                                // carries the exports).
                                eprintln!("inbox: subscribed to {INBOX_SHARE} on {}", broker.url);
                            }
                        } else {
                            bail!("the broker {} refused the subscription to {INBOX_SHARE}: check its ACL for this client", broker.url);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Some(receipt) = handle(secret, db, stats, &p.topic, &p.payload)? {
                            let bytes = serde_json::to_vec(&receipt.1)?;
                            client.publish(receipt_topic(&receipt.0), QoS::AtLeastOnce, false, bytes).await?;
                        }
                        client.ack(&p).await?;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        stats.subscribed.store(false, Ordering::Release);
                        if connected {
                            tracing::warn!("inbox: broker {}: {e}", broker.url);
                        }
                        break;
                    }
                },
                _ = tick.tick() => {
                    if stats.stop.load(Ordering::Relaxed) {
                        stats.subscribed.store(false, Ordering::Release);
                        let _ = client.try_disconnect();
                        let _ = tokio::time::timeout(Duration::from_millis(500), async {
                            while events.poll().await.is_ok() {}
                        }).await;
                        return Ok(());
                    }
                }
            }
        }
        let wait = backoff(attempt);
        attempt = attempt.saturating_add(1);
        let until = tokio::time::Instant::now() + wait;
        while !stats.stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Handles one message: the receipt to send (device, receipt) when it is stored (now or
/// before). `Err` only when the database fails, which stops the inbox unacknowledged.
fn handle(
    secret: &CitySecret,
    db: &InboxDb,
    stats: &InboxStats,
    topic: &str,
    payload: &[u8],
) -> anyhow::Result<Option<(String, SubmitReceipt)>> {
    let Some(device) = submit_device(topic) else { return Ok(None) };
    let sub: Submission = match serde_json::from_slice(payload) {
        Ok(s) => s,
        Err(e) => {
            stats.refuse(format!("inbox: an unreadable submission from {device} was dropped: {e}"));
            return Ok(None);
        }
    };
    // The broker's ACL lets a kiosk publish only on its own topics: the topic is the
    // sender, and the receipt must go back there.
    if sub.device != device {
        stats.refuse(format!(
            "inbox: submission {} names device {} but came from {device}; refused",
            sub.uuid, sub.device
        ));
        return Ok(None);
    }
    let receipt = |duplicate| SubmitReceipt {
        uuid: sub.uuid.clone(),
        receipt_no: sub.receipt_no.clone(),
        received_on: sub.received_on,
        due: sub.due,
        duplicate,
    };
    if db.get(&sub.uuid)?.is_some() {
        stats.duplicates.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "inbox: submission {} ({}) again from {device}; receipted again",
            sub.uuid,
            sub.kind.as_str()
        );
        return Ok(Some((device.to_string(), receipt(true))));
    }
    // Opened only to check that it opens and belongs to this envelope: the database keeps
    // the sealed box as received, so a copy of it reveals nothing without the city's key.
    if let Err(e) = open(secret, &sub) {
        stats.refuse(format!(
            "inbox: {e}. Not stored and not receipted: the kiosk keeps it and sends it again. \
             Check that --key is the secret key whose public key the kiosks are configured with."
        ));
        return Ok(None);
    }
    let stored = db.store(&sub)?;
    let duplicate = stored == Stored::Duplicate;
    if duplicate {
        stats.duplicates.fetch_add(1, Ordering::Relaxed);
    } else {
        stats.stored.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "inbox: stored submission {} ({}) from {device}",
            sub.uuid,
            sub.kind.as_str()
        );
    }
    Ok(Some((device.to_string(), receipt(duplicate))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(db: &InboxDb, uuid: &str, no: &str, received: &str, due: Option<&str>) {
        db.conn
            .execute(
                "INSERT INTO submissions (uuid, device, kind, receipt_no, created, received_on, due, stored_at, sealed)
                 VALUES (?1, 'k1', 'request', ?2, 0, ?3, ?4, 0, X'00')",
                params![uuid, no, received, due],
            )
            .expect("insert");
    }

    #[test]
    fn the_year_report_counts_outcomes_and_timeliness() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = InboxDb::open(&dir.path().join("i.db")).expect("open");
        row(&db, "a", "N1", "2026-03-02", Some("2026-03-30"));
        row(&db, "b", "N2", "2026-03-03", Some("2026-03-31"));
        row(&db, "c", "N3", "2026-12-30", Some("2027-01-28"));
        row(&db, "d", "N4", "2025-12-30", Some("2026-01-28"));
        let d = |s: &str| day(s).expect("date");
        db.close("N1", "granted", d("2026-03-20")).expect("close");
        db.close("N2", "refused", d("2026-04-10")).expect("close");
        assert!(db.close("N2", "maybe", d("2026-04-10")).is_err());
        assert!(db.close("N9", "granted", d("2026-04-10")).is_err());
        let r = db.report(2026).expect("report");
        assert_eq!((r.received, r.on_time, r.late, r.open), (3, 1, 1, 1));
        assert_eq!(r.by_outcome, [1, 0, 1, 0, 0, 0]);
        let text = r.to_string();
        assert!(text.contains("| 本年新收政府信息公开申请数量 | 3 |"), "{text}");
        assert!(text.contains("| 办理结果：不予公开 | 1 |"), "{text}");
    }

    #[test]
    fn a_submission_naming_another_device_or_unreadable_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = InboxDb::open(&dir.path().join("i.db")).expect("open");
        let secret = CitySecret::generate();
        let stats = InboxStats::default();
        let personal = Personal::Suggestion(kiosk::requests::Suggestion {
            topic: "其他".into(),
            text: "好".into(),
            satisfaction: 5,
            ..Default::default()
        });
        let sealed =
            kiosk::requests::seal(&secret.public(), "u1", "YJJY-1", &personal).expect("seal");
        let sub = Submission {
            uuid: "u1".into(),
            kind: SubmissionKind::Suggestion,
            device: "k2".into(),
            receipt_no: "YJJY-1".into(),
            created: Utc::now(),
            received_on: day("2026-03-02").expect("date"),
            due: None,
            sealed,
        };
        let bytes = serde_json::to_vec(&sub).expect("json");
        let r = handle(&secret, &db, &stats, "zwgk/v1/dev/k1/submit", &bytes).expect("db ok");
        assert!(r.is_none(), "a kiosk cannot submit in another's name");
        let r = handle(&secret, &db, &stats, "zwgk/v1/dev/k2/submit", b"{").expect("db ok");
        assert!(r.is_none());
        assert_eq!(stats.refused.load(Ordering::Relaxed), 2);
        let (device, receipt) = handle(&secret, &db, &stats, "zwgk/v1/dev/k2/submit", &bytes)
            .expect("db ok")
            .expect("stored");
        assert_eq!((device.as_str(), receipt.duplicate), ("k2", false));
        assert_eq!(db.personal("u1", &secret).expect("read"), Some(personal.clone()));
        let (row, opened) = db.personal_by_receipt("YJJY-1", &secret).expect("read").expect("row");
        assert_eq!((row.uuid.as_str(), opened), ("u1", personal));
        let other = CitySecret::generate();
        assert!(db.personal("u1", &other).is_err(), "the stored form opens only with the key");
    }

    #[test]
    fn the_csv_register_names_status_and_dates() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = InboxDb::open(&dir.path().join("i.db")).expect("open");
        row(&db, "a", "YSQ-1", "2026-03-02", Some("2026-03-30"));
        let out = dir.path().join("r.csv");
        assert_eq!(db.export_csv(&out).expect("csv"), 1);
        let text = std::fs::read_to_string(&out).expect("read");
        assert!(text.starts_with('\u{feff}'));
        assert!(
            text.contains("YSQ-1,2026-03-02,2026-03-30,政府信息公开申请,尚未办结,,k1"),
            "{text}"
        );
    }

    #[test]
    fn the_xlsx_register_holds_the_csv_rows_with_real_dates_and_the_year_report() {
        use calamine::{Data, Reader as _, Xlsx};
        let dir = tempfile::tempdir().expect("tmp");
        let db = InboxDb::open(&dir.path().join("i.db")).expect("open");
        row(&db, "a", "YSQ-1", "2025-12-30", Some("2026-01-28"));
        row(&db, "b", "YSQ-2", "2026-03-02", Some("2026-03-30"));
        row(&db, "c", "YSQ-3", "2026-03-03", None);
        db.close("YSQ-2", "partial", day("2026-03-20").expect("date")).expect("close");
        let csv_path = dir.path().join("r.csv");
        let xlsx_path = dir.path().join("r.xlsx");
        assert_eq!(db.export(&csv_path, ExportFormat::Csv).expect("csv"), 3);
        let format = ExportFormat::for_path(&xlsx_path, None).expect("by extension");
        assert_eq!(db.export(&xlsx_path, format).expect("xlsx"), 3);
        assert!(ExportFormat::for_path(Path::new("r.txt"), None).is_err());

        let mut csv =
            csv::ReaderBuilder::new().has_headers(false).from_path(&csv_path).expect("csv");
        let csv_rows: Vec<Vec<String>> = csv
            .records()
            .map(|r| {
                r.expect("record")
                    .iter()
                    .map(|f| f.trim_start_matches('\u{feff}').to_string())
                    .collect()
            })
            .collect();

        let mut book: Xlsx<_> = calamine::open_workbook(&xlsx_path).expect("workbook");
        assert_eq!(book.sheet_names(), ["登记表", "年度报告"]);
        let sheet = book.worksheet_range("登记表").expect("register sheet");
        let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).expect("Excel's day 0");
        let mut dates = 0;
        let xlsx_rows: Vec<Vec<String>> = sheet
            .rows()
            .map(|r| {
                r.iter()
                    .map(|c| match c {
                        Data::DateTime(d) => {
                            dates += 1;
                            (epoch + chrono::Days::new(d.as_f64() as u64))
                                .format("%Y-%m-%d")
                                .to_string()
                        }
                        Data::Empty => String::new(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(xlsx_rows, csv_rows, "the workbook's rows are the CSV's");
        assert_eq!(dates, 6, "every date is an Excel date, not text");
        assert_eq!(xlsx_rows[2][4], "部分公开");

        let report = book.worksheet_range("年度报告").expect("report sheet");
        let cell =
            |r: usize, c: usize| report.get((r, c)).map(|d| d.to_string()).unwrap_or_default();
        assert_eq!((cell(0, 1), cell(0, 2)), ("2025年".to_string(), "2026年".to_string()));
        let line = (0..report.height())
            .find(|r| cell(*r, 0) == "本年新收政府信息公开申请数量")
            .expect("the received line");
        assert_eq!((cell(line, 1), cell(line, 2)), ("1".to_string(), "2".to_string()));
        let partial =
            (0..report.height()).find(|r| cell(*r, 0) == "办理结果：部分公开").expect("line");
        assert_eq!(cell(partial, 2), "1");
    }

    #[test]
    fn an_inbox_database_with_plain_text_forms_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("old.db");
        Connection::open(&path)
            .and_then(|c| {
                c.execute_batch(
                    "CREATE TABLE submissions (uuid TEXT PRIMARY KEY, device TEXT NOT NULL, kind TEXT NOT NULL,
                     receipt_no TEXT NOT NULL, created INTEGER NOT NULL, received_on TEXT NOT NULL, due TEXT,
                     stored_at INTEGER NOT NULL, personal TEXT NOT NULL,
                     status TEXT NOT NULL DEFAULT 'received', answered_on TEXT);",
                )
            })
            .expect("old schema");
        let err = InboxDb::open(&path).err().expect("refused");
        assert!(err.to_string().contains("export its register"), "{err}");
    }
}
