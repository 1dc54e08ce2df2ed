//! Printing through CUPS: the kiosk's one print queue (`config.printer`), what goes on
//! paper ([`Printout`]: a document with its 文号/发文机关/日期 and canonical URL, or a
//! request's receipt), jobs submitted with `lp` on a background thread, and the queue's
//! state from `lpstat` for the health report.
//!
//! A printout goes to CUPS as a small PDF written here rather than as plain text: CUPS's
//! `texttopdf` (cups-filters 1.28, Debian 12) draws CJK text in Courier, i.e. as garbage,
//! unless the charset files are edited on every device. The PDF uses the PDF standard's
//! predefined Simplified Chinese font (`STSong-Light`, `UniGB-UTF16-H`) without embedding
//! it — every renderer in the CUPS filter chain (Poppler, Ghostscript) substitutes the
//! system's Noto CJK for it — and Courier for ASCII runs, because Ghostscript drops the
//! proportional Latin glyphs of a substituted CJK font. A job is a few kilobytes, needs
//! no font file and no new dependency, and its text stays extractable (`pdftotext`).
//!
//! CUPS is reached through its command-line clients rather than libcups, so the kiosk
//! links nothing from CUPS and a missing or hung scheduler can only ever cost a child
//! process, which is killed after [`CUPS_DEADLINE`]. The scheduler is the one the
//! clients find by themselves (`CUPS_SERVER`, `~/.cups/client.conf`, the local socket)
//! unless a [`Printer`] names one.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::sync::protocol::PrinterStatus;

/// The kiosk's print queue and the page limit in force.
#[derive(Clone, Debug)]
pub struct Printer {
    queue: String,
    page_limit: u32,
    server: Option<String>,
}

/// What CUPS accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The CUPS job id, e.g. `kiosk-12`.
    pub job: String,
    /// Pages of the whole printout.
    pub pages: u32,
    /// Pages that will come out of the printer (at most the page limit).
    pub printed: u32,
}

impl Sent {
    /// What the resident reads after pressing 打印.
    pub fn message(&self) -> String {
        if self.printed < self.pages {
            format!(
                "已发送到打印机，请在打印机处取件。本机每次最多打印{}页，全文共{}页，其余请扫码查看",
                self.printed, self.pages
            )
        } else {
            "已发送到打印机，请在打印机处取件".to_string()
        }
    }
}

/// What the resident reads when a job could not be sent.
pub const FAILED: &str = "打印暂不可用，请扫码带走或到窗口咨询";

impl Printer {
    /// The printer of a kiosk whose config names `queue`; None (no print buttons) when
    /// the name is empty.
    pub fn new(queue: &str, page_limit: u32) -> Option<Printer> {
        let queue = queue.trim();
        (!queue.is_empty()).then(|| Printer {
            queue: queue.to_string(),
            page_limit: page_limit.max(1),
            server: None,
        })
    }

    /// Sends jobs to the scheduler `server` (`host:port` or a socket path) instead of the
    /// one the CUPS clients find by themselves.
    pub fn with_server(mut self, server: impl Into<String>) -> Printer {
        self.server = Some(server.into());
        self
    }

    pub fn queue(&self) -> &str {
        &self.queue
    }

    pub fn page_limit(&self) -> u32 {
        self.page_limit
    }

    /// The queue's state (see [`status`]).
    pub fn status(&self) -> PrinterStatus {
        status_at(&self.queue, self.server.as_deref())
    }

    /// Submits `printout` with `lp`, at most the page limit; blocks until CUPS has
    /// accepted (or refused) the job, for at most [`CUPS_DEADLINE`].
    pub fn print(&self, printout: &Printout) -> anyhow::Result<Sent> {
        let (pdf, pages) = printout.pdf();
        let count = u32::try_from(pages).unwrap_or(u32::MAX);
        let ranges = format!("page-ranges=1-{}", self.page_limit);
        let out = run(
            cups_command("lp", self.server.as_deref()).args([
                "-d",
                &self.queue,
                "-t",
                &printout.title,
                "-o",
                &ranges,
                "-o",
                "document-format=application/pdf",
            ]),
            Some(pdf),
        )
        .with_context(|| format!("printing to CUPS queue {}", self.queue))?;
        // "request id is kiosk-12 (1 file(s))"
        let job = out
            .split_whitespace()
            .find(|w| w.starts_with(&format!("{}-", self.queue)))
            .unwrap_or_default()
            .to_string();
        Ok(Sent { job, pages: count, printed: count.min(self.page_limit) })
    }

    /// [`Printer::print`] on a thread of its own; `done` gets the outcome there (hand it
    /// to the UI thread with the UI's post function).
    pub fn print_in_background(
        &self,
        printout: Printout,
        done: impl FnOnce(anyhow::Result<Sent>) + Send + 'static,
    ) {
        let printer = self.clone();
        let spawned = std::thread::Builder::new()
            .name("print".into())
            .spawn(move || done(printer.print(&printout)));
        if let Err(e) = spawned {
            tracing::warn!("cannot start the print thread: {e}");
        }
    }
}

/// The longest any CUPS client may take before it is killed and the answer is "unknown".
pub const CUPS_DEADLINE: Duration = Duration::from_secs(10);

/// The state of the CUPS queue `name`, from `lpstat`; `unknown` when the queue does not
/// exist or CUPS does not answer in time. Blocks for at most twice [`CUPS_DEADLINE`]:
/// call it off the UI thread.
pub fn status(name: &str) -> PrinterStatus {
    status_at(name, None)
}

/// [`status`] against the scheduler `server` (`host:port` or a socket path); None means
/// the one the CUPS clients find by themselves.
pub fn status_at(name: &str, server: Option<&str>) -> PrinterStatus {
    let unknown = || PrinterStatus {
        name: name.to_string(),
        state: "unknown".into(),
        reasons: Vec::new(),
        queued_jobs: 0,
    };
    let printers = match run(cups_command("lpstat", server).args(["-l", "-p", name]), None) {
        Ok(out) => out,
        Err(e) => {
            tracing::debug!("lpstat -p {name}: {e:#}");
            return unknown();
        }
    };
    // Queued jobs are a detail: a scheduler that answered the first question but not this
    // one still gives a useful state.
    let jobs = run(cups_command("lpstat", server).args(["-o", name]), None).unwrap_or_default();
    parse_status(name, &printers, &jobs).unwrap_or_else(unknown)
}

/// Reads `lpstat -l -p NAME` and `lpstat -o NAME` output (in the C locale). None when
/// the printer line is not there.
pub fn parse_status(name: &str, printers: &str, jobs: &str) -> Option<PrinterStatus> {
    let head = format!("printer {name} ");
    let mut lines = printers.lines().skip_while(|l| !l.starts_with(&head));
    let first = lines.next()?;
    let rest = &first[head.len()..];
    let state = if rest.starts_with("disabled") {
        "stopped"
    } else if rest.starts_with("now printing") {
        "printing"
    } else if rest.starts_with("is idle") {
        "idle"
    } else {
        "unknown"
    };
    let mut reasons = Vec::new();
    // The long listing's detail lines are indented; the next printer's line is not.
    for line in lines.take_while(|l| l.starts_with('\t') || l.starts_with(' ')) {
        if let Some(alerts) = line.trim().strip_prefix("Alerts:") {
            reasons.extend(alerts.split_whitespace().filter(|r| *r != "none").map(String::from));
        }
    }
    let job_prefix = format!("{name}-");
    let queued_jobs = jobs.lines().filter(|l| l.starts_with(&job_prefix)).count();
    Some(PrinterStatus {
        name: name.to_string(),
        state: state.to_string(),
        reasons,
        queued_jobs: u32::try_from(queued_jobs).unwrap_or(u32::MAX),
    })
}

/// A CUPS client command in the C locale (its output is parsed), aimed at `server`.
fn cups_command(program: &str, server: Option<&str>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("LC_ALL", "C").env("LANG", "C");
    if let Some(server) = server {
        cmd.env("CUPS_SERVER", server);
    }
    cmd
}

/// Runs `cmd` with `input` on its stdin, killing it after [`CUPS_DEADLINE`]; its stdout
/// when it exits with success, otherwise an error with its stderr.
fn run(cmd: &mut Command, input: Option<Vec<u8>>) -> anyhow::Result<String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program} (is cups-client installed?)"))?;
    // Feed stdin and drain stdout/stderr from threads: a large document or a chatty
    // client would otherwise fill a pipe and stall both sides.
    let writer = match (input, child.stdin.take()) {
        (Some(bytes), Some(mut stdin)) => Some(std::thread::spawn(move || stdin.write_all(&bytes))),
        _ => None,
    };
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().with_context(|| format!("waiting for {program}"))? {
            break status;
        }
        if started.elapsed() > CUPS_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{program} did not finish in {} s", CUPS_DEADLINE.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(writer) = writer {
        if let Ok(Err(e)) = writer.join() {
            anyhow::bail!("writing to {program}: {e}");
        }
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        anyhow::bail!("{program} failed ({status}): {}", String::from_utf8_lossy(&stderr).trim());
    }
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// One block of a printout.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// A small line above the title: the zone and the kind of item.
    Caption(String),
    /// The title, centred and large.
    Title(String),
    /// A notice in force-status words, e.g. 本文件已废止，仅供查阅.
    Banner(String),
    /// One `key：value` line under the title (文号, 发文机关, 发布日期 …).
    Meta(String, String),
    /// A thin line across the page.
    Rule,
    Heading(String),
    /// A body paragraph, first line indented two characters.
    Paragraph(String),
    /// One table row; the cells are printed in one line, separated by bars.
    Row(Vec<String>),
    /// A web address with its label, e.g. 原文链接, printed whole (it may wrap).
    Url(String, String),
    /// Small print at the end.
    Note(String),
}

/// What goes on paper: a title (the CUPS job name too) and blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct Printout {
    pub title: String,
    pub blocks: Vec<Block>,
}

/// The statutory note printed on a 依申请公开 receipt: 《政府信息公开条例》 Art. 33.
pub const STATUTORY_NOTE: &str = "依据《中华人民共和国政府信息公开条例》第三十三条，行政机关收到政府信息公开申请，能够当场答复的，应当当场予以答复；不能当场答复的，应当自收到申请之日起20个工作日内予以答复；需要延长答复期限的，应当经政府信息公开工作机构负责人同意并告知申请人，延长的期限最长不得超过20个工作日。行政机关征求第三方和其他机关意见所需时间不计算在前述期限内。";

impl Printout {
    /// A document, guide, catalogue item, FAQ or notice: caption, title, the force-status
    /// banner, the meta lines, the body, and the canonical URL at the end.
    pub fn document(
        caption: &str,
        title: &str,
        banner: &str,
        meta: &[(String, String)],
        body: Vec<Block>,
        url: Option<&str>,
    ) -> Printout {
        let mut blocks = Vec::new();
        if !caption.is_empty() {
            blocks.push(Block::Caption(caption.to_string()));
        }
        blocks.push(Block::Title(title.to_string()));
        if !banner.is_empty() {
            blocks.push(Block::Banner(banner.to_string()));
        }
        blocks.extend(meta.iter().map(|(k, v)| Block::Meta(k.clone(), v.clone())));
        blocks.push(Block::Rule);
        blocks.extend(body);
        if let Some(url) = url.filter(|u| !u.is_empty()) {
            blocks.push(Block::Rule);
            blocks.push(Block::Url("原文链接".into(), url.to_string()));
        }
        Printout { title: title.to_string(), blocks }
    }

    /// A receipt: its rows (回执编号, 提交日期 …), the due-date line, where to follow the
    /// request online, and for a 依申请公开 request the statutory note.
    pub fn receipt(
        zone: &str,
        title: &str,
        rows: &[(String, String)],
        due: &str,
        tracking_url: Option<&str>,
        statutory: bool,
    ) -> Printout {
        let mut blocks = Vec::new();
        if !zone.is_empty() {
            blocks.push(Block::Caption(zone.to_string()));
        }
        blocks.push(Block::Title(title.to_string()));
        blocks.push(Block::Rule);
        blocks.extend(rows.iter().map(|(k, v)| Block::Meta(k.clone(), v.clone())));
        if !due.is_empty() {
            // due_text() reads "答复期限：…"; print it as a meta line when it has that shape.
            match due.split_once('：') {
                Some((k, v)) => blocks.push(Block::Meta(k.to_string(), v.to_string())),
                None => blocks.push(Block::Paragraph(due.to_string())),
            }
        }
        if let Some(url) = tracking_url.filter(|u| !u.is_empty()) {
            blocks.push(Block::Url("查询办理进度".into(), url.to_string()));
        }
        blocks.push(Block::Rule);
        if statutory {
            blocks.push(Block::Note(STATUTORY_NOTE.into()));
        }
        blocks.push(Block::Note("请妥善保管本回执，凭回执编号查询办理进度。".into()));
        Printout { title: title.to_string(), blocks }
    }

    /// The printout as an A4 PDF, with its page count.
    pub fn pdf(&self) -> (Vec<u8>, usize) {
        let pages = self.layout();
        (write_pdf(&self.title, &pages), pages.len())
    }

    /// The printout as plain text, one block a paragraph (logs, tests, a text-only queue).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for b in &self.blocks {
            let _ = match b {
                Block::Caption(t) | Block::Title(t) | Block::Banner(t) | Block::Heading(t) => {
                    writeln!(out, "{t}")
                }
                Block::Meta(k, v) => writeln!(out, "{k}：{v}"),
                Block::Rule => writeln!(out),
                Block::Paragraph(t) => writeln!(out, "　　{t}"),
                Block::Row(cells) => writeln!(out, "{}", cells.join(" | ")),
                Block::Url(label, url) => writeln!(out, "{label}：{url}"),
                Block::Note(t) => writeln!(out, "{t}"),
            };
        }
        out
    }

    /// Lays the blocks out on A4 pages.
    fn layout(&self) -> Vec<Page> {
        let mut l = Layout { pages: vec![Page::default()], y: TOP };
        for b in &self.blocks {
            match b {
                Block::Caption(t) => l.lines(t, 10.5, 0.0, Align::Centre, 4.0),
                Block::Title(t) => l.lines(t, 18.0, 0.0, Align::Centre, 10.0),
                Block::Banner(t) => l.lines(&format!("【{t}】"), 12.0, 0.0, Align::Centre, 8.0),
                Block::Meta(k, v) => l.lines(&format!("{k}：{v}"), 11.0, 0.0, Align::Left, 2.0),
                Block::Rule => l.rule(),
                Block::Heading(t) => l.lines(t, 13.5, 0.0, Align::Left, 6.0),
                Block::Paragraph(t) => l.lines(t, 12.0, 24.0, Align::Left, 6.0),
                Block::Row(cells) => l.lines(&cells.join(" | "), 11.0, 0.0, Align::Left, 2.0),
                Block::Url(label, url) => {
                    l.lines(&format!("{label}（扫码查看）："), 10.5, 0.0, Align::Left, 2.0);
                    l.qr(url);
                    l.lines(url, 10.5, 0.0, Align::Left, 4.0);
                }
                Block::Note(t) => l.lines(t, 9.5, 0.0, Align::Left, 4.0),
            }
        }
        l.pages
    }
}

// A4 in points, with 2.25 cm margins.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 64.0;
const TOP: f32 = PAGE_H - 72.0;
const BOTTOM: f32 = 72.0;

#[derive(Clone, Copy)]
enum Align {
    Left,
    Centre,
}

/// Side of a printed QR code's module in points: 2.5 pt ≈ 0.9 mm, so a URL's code is about
/// 3 cm wide, which a phone reads at arm's length and a 203 dpi receipt printer still draws.
const QR_MODULE: f32 = 2.5;

/// One page: text lines (x, y baseline, size, text), rules (y) and filled boxes
/// (x, y, width, height: the dark modules of QR codes).
#[derive(Default, Debug)]
struct Page {
    lines: Vec<(f32, f32, f32, String)>,
    rules: Vec<f32>,
    boxes: Vec<(f32, f32, f32, f32)>,
}

struct Layout {
    pages: Vec<Page>,
    y: f32,
}

impl Layout {
    fn page(&mut self) -> &mut Page {
        if self.pages.is_empty() {
            self.pages.push(Page::default());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Moves down by `h`, starting a new page when the line would cross the bottom margin.
    fn advance(&mut self, h: f32) -> f32 {
        if self.y - h < BOTTOM {
            self.pages.push(Page::default());
            self.y = TOP;
        }
        self.y -= h;
        self.y
    }

    fn lines(&mut self, text: &str, size: f32, indent: f32, align: Align, after: f32) {
        let width = PAGE_W - 2.0 * MARGIN;
        for (i, line) in wrap(text, size, width, indent).into_iter().enumerate() {
            let y = self.advance(size * 1.6);
            let x = match align {
                Align::Left => MARGIN + if i == 0 { indent } else { 0.0 },
                Align::Centre => MARGIN + ((width - text_width(&line, size)) / 2.0).max(0.0),
            };
            self.page().lines.push((x, y, size, line));
        }
        self.y -= after;
    }

    /// `text`'s QR code at the left margin (with its quiet zone), kept whole on one page;
    /// nothing when the text is too long for a QR code (the URL is printed anyway).
    fn qr(&mut self, text: &str) {
        let Some((width, dark)) = crate::qr::modules(text) else { return };
        let side = (width + 2 * crate::qr::QUIET_ZONE) as f32 * QR_MODULE;
        let bottom = self.advance(side);
        let left = MARGIN + crate::qr::QUIET_ZONE as f32 * QR_MODULE;
        let top = bottom + side - crate::qr::QUIET_ZONE as f32 * QR_MODULE;
        // One box per horizontal run of dark modules keeps the page small.
        for (row, cells) in dark.chunks(width).enumerate() {
            let y = top - (row + 1) as f32 * QR_MODULE;
            let mut col = 0;
            while col < width {
                if !cells[col] {
                    col += 1;
                    continue;
                }
                let start = col;
                while col < width && cells[col] {
                    col += 1;
                }
                let x = left + start as f32 * QR_MODULE;
                self.page().boxes.push((x, y, (col - start) as f32 * QR_MODULE, QR_MODULE));
            }
        }
    }

    fn rule(&mut self) {
        let y = self.advance(10.0);
        self.page().rules.push(y + 4.0);
        self.y -= 6.0;
    }
}

/// Width of one character in ems: ASCII is set in Courier (0.6 em), everything else in
/// the CJK font (full width).
fn char_em(c: char) -> f32 {
    if c.is_ascii() {
        0.6
    } else {
        1.0
    }
}

fn text_width(s: &str, size: f32) -> f32 {
    s.chars().map(char_em).sum::<f32>() * size
}

/// Punctuation that must not start a line (避头点); it may hang past the right margin.
fn no_line_start(c: char) -> bool {
    "，。、；：？！）》」』〕】”’,.;:?!)".contains(c)
}

/// Punctuation that must not end a line (避尾点).
fn no_line_end(c: char) -> bool {
    "（《「『〔【“‘(".contains(c)
}

/// Breaks `text` into lines no wider than `width`: between CJK characters anywhere, ASCII
/// words whole unless a word alone is wider than a line (a long URL).
fn wrap(text: &str, size: f32, width: f32, indent: f32) -> Vec<String> {
    // Tokens: one non-ASCII character, or a run of ASCII non-spaces, or one space.
    let mut tokens: Vec<String> = Vec::new();
    for c in text.chars().filter(|c| !c.is_control()) {
        let joins = c.is_ascii() && c != ' ';
        match tokens.last_mut() {
            Some(t) if joins && t.chars().all(|p| p.is_ascii() && p != ' ') => t.push(c),
            _ => tokens.push(c.to_string()),
        }
    }
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut room = width - indent;
    for token in tokens {
        let w = text_width(&token, size);
        let hangs = token.chars().next().is_some_and(no_line_start);
        if w <= room || hangs || line.is_empty() && w <= width {
            room -= w;
            line.push_str(&token);
            continue;
        }
        if w > width {
            // A word longer than a whole line: split it by characters.
            for c in token.chars() {
                let cw = char_em(c) * size;
                if cw > room && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    room = width;
                }
                room -= cw;
                line.push(c);
            }
            continue;
        }
        // Opening brackets and quotes must not end a line (避尾): carry them over.
        let mut carried = String::new();
        while let Some(c) = line.chars().last().filter(|c| no_line_end(*c)) {
            line.pop();
            carried.insert(0, c);
        }
        lines.push(std::mem::take(&mut line).trim_end().to_string());
        line = carried;
        room = width - text_width(&line, size);
        if token != " " {
            room -= w;
            line.push_str(&token);
        }
    }
    if !line.trim().is_empty() || lines.is_empty() {
        lines.push(line.trim_end().to_string());
    }
    lines
}

/// A PDF of laid-out pages, with 第 n 页 / 共 m 页 at the foot of each.
fn write_pdf(title: &str, pages: &[Page]) -> Vec<u8> {
    // Objects: 1 catalog, 2 pages, 3 CJK font, 4 its CIDFont, 5 its descriptor, 6 Courier,
    // 7 info, then a page and its content stream for each page.
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        Vec::new(),
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UTF16-H /DescendantFonts [4 0 R] >>".to_vec(),
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> /FontDescriptor 5 0 R /DW 1000 >>".to_vec(),
        b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>".to_vec(),
        // A text string in UTF-16BE needs its byte-order mark.
        format!("<< /Title <feff{} /Creator (kiosk) >>", &utf16_hex(title)[1..]).into_bytes(),
    ];
    let total = pages.len().max(1);
    let mut kids = Vec::new();
    for (n, page) in pages.iter().enumerate() {
        let mut content = String::from("0 g 0 G 0.5 w\n");
        for y in &page.rules {
            let _ = writeln!(content, "{MARGIN:.2} {y:.2} m {:.2} {y:.2} l S", PAGE_W - MARGIN);
        }
        for (x, y, w, h) in &page.boxes {
            let _ = writeln!(content, "{x:.2} {y:.2} {w:.2} {h:.2} re f");
        }
        let mut lines = page.lines.clone();
        let foot = format!("第 {} 页 / 共 {total} 页", n + 1);
        let x = (PAGE_W - text_width(&foot, 9.0)) / 2.0;
        lines.push((x, BOTTOM - 30.0, 9.0, foot));
        for (x, y, size, text) in &lines {
            let _ = write!(content, "BT {x:.2} {y:.2} Td");
            for (ascii, run) in runs(text) {
                if ascii {
                    let _ = write!(content, " /F2 {size} Tf {} Tj", pdf_literal(&run));
                } else {
                    let _ = write!(content, " /F1 {size} Tf {} Tj", utf16_hex(&run));
                }
            }
            content.push_str(" ET\n");
        }
        let stream = objects.len() + 2;
        kids.push(objects.len() + 1);
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] /Resources << /Font << /F1 3 0 R /F2 6 0 R >> >> /Contents {stream} 0 R >>"
            )
            .into_bytes(),
        );
        let mut body = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        body.extend_from_slice(content.as_bytes());
        body.extend_from_slice(b"\nendstream");
        objects.push(body);
    }
    let kids: Vec<String> = kids.iter().map(|k| format!("{k} 0 R")).collect();
    objects[1] =
        format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), kids.len()).into_bytes();

    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for o in offsets {
        let _ = writeln!(tail, "{o:010} 00000 n ");
    }
    let _ = write!(
        tail,
        "trailer\n<< /Size {} /Root 1 0 R /Info 7 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend_from_slice(tail.as_bytes());
    out
}

/// Splits a line into runs of ASCII (set in Courier) and of everything else.
fn runs(text: &str) -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = Vec::new();
    for c in text.chars() {
        match out.last_mut() {
            Some((ascii, run)) if *ascii == c.is_ascii() => run.push(c),
            _ => out.push((c.is_ascii(), c.to_string())),
        }
    }
    out
}

/// A PDF hex string of `s` in UTF-16BE, as the UniGB-UTF16-H CMap reads it.
fn utf16_hex(s: &str) -> String {
    let mut out = String::from("<");
    for unit in s.encode_utf16() {
        let _ = write!(out, "{unit:04x}");
    }
    out.push('>');
    out
}

/// A PDF literal string of ASCII text.
fn pdf_literal(s: &str) -> String {
    let mut out = String::from("(");
    for c in s.chars() {
        if matches!(c, '(' | ')' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_printer_with_no_alerts() {
        let p = "printer kt is idle.  enabled since Mon Nov 23 16:24:51 2026\n\tForm mounted:\n\tAlerts: none\n\tLocation: \n";
        let s = parse_status("kt", p, "").expect("printer line");
        assert_eq!(s.state, "idle");
        assert!(s.reasons.is_empty());
        assert_eq!(s.queued_jobs, 0);
    }

    #[test]
    fn stopped_printer_with_reasons_and_jobs() {
        let p = "printer kt disabled since Mon Nov 23 16:24:56 2026 -\n\tpaper out\n\tForm mounted:\n\tAlerts: paused media-empty-error media-jam\nprinter other is idle.  enabled since x\n\tAlerts: toner-low\n";
        let jobs = "kt-2                    root              2048   Mon Nov 23 16:24:56 2026\nkt-3   root  10  Mon\n";
        let s = parse_status("kt", p, jobs).expect("printer line");
        assert_eq!(s.state, "stopped");
        assert_eq!(s.reasons, ["paused", "media-empty-error", "media-jam"]);
        assert_eq!(s.queued_jobs, 2);
    }

    #[test]
    fn printing_and_missing_printers() {
        let p = "printer kt now printing kt-7.  enabled since Mon Nov 23 2026\n";
        assert_eq!(
            parse_status("kt", p, "kt-7 root 1 Mon\n").map(|s| s.state),
            Some("printing".into())
        );
        // A queue whose name is a prefix of another's is not confused with it.
        assert_eq!(parse_status("k", p, ""), None);
        assert_eq!(parse_status("kt", "", ""), None);
    }

    #[test]
    fn lines_fit_the_width_and_keep_ascii_words_whole() {
        let text = "为进一步做好政务公开工作，根据《条例》（国务院令第711号）与 https://zwgk.example.gov.cn/item/p1 的要求，现将有关事项通知如下。";
        let lines = wrap(text, 12.0, 200.0, 24.0);
        assert!(lines.len() > 2, "{lines:?}");
        assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""));
        for (i, l) in lines.iter().enumerate() {
            let room = if i == 0 { 176.0 } else { 200.0 };
            // Only closing punctuation may hang past the margin.
            let w = text_width(l.trim_end_matches(no_line_start), 12.0);
            assert!(w <= room + 0.01, "line {i} {l:?} is {w} wide");
            assert!(!l.starts_with(no_line_start), "line {i} starts with punctuation: {l:?}");
            assert!(!l.ends_with(no_line_end), "line {i} ends with an opening bracket: {l:?}");
        }
        // The URL is longer than the line, so it is split by characters but not lost.
        assert!(lines.concat().contains("https://zwgk.example.gov.cn/item/p1"));
        assert_eq!(wrap("", 12.0, 200.0, 0.0), [""]);
        assert_eq!(wrap("一二三四（五", 10.0, 50.0, 0.0), ["一二三四", "（五"]);
        assert_eq!(wrap("一二三四五。六", 10.0, 50.0, 0.0), ["一二三四五。", "六"]);
    }

    #[test]
    fn a_document_printout_reads_title_meta_body_url() {
        let meta = [("文号".to_string(), "长政发〔2024〕1号".to_string())];
        let p = Printout::document(
            "政策文件",
            "关于做好政务公开工作的通知",
            "本文件已废止，仅供查阅",
            &meta,
            vec![
                Block::Paragraph("第一段。".into()),
                Block::Row(vec!["档次".into(), "200".into()]),
            ],
            Some("https://zwgk.example.gov.cn/item/p1"),
        );
        assert_eq!(
            p.text(),
            "政策文件\n关于做好政务公开工作的通知\n本文件已废止，仅供查阅\n文号：长政发〔2024〕1号\n\n　　第一段。\n档次 | 200\n\n原文链接：https://zwgk.example.gov.cn/item/p1\n"
        );
    }

    #[test]
    fn long_printouts_break_into_numbered_pages() {
        let body = (0..200).map(|i| Block::Paragraph(format!("第{i}段，政务公开。"))).collect();
        let p = Printout::document("", "长文", "", &[], body, None);
        let pages = p.layout();
        assert!(pages.len() > 3, "{} pages", pages.len());
        for page in &pages {
            assert!(page.lines.iter().all(|(_, y, _, _)| *y >= BOTTOM && *y <= TOP));
        }
        let pdf = write_pdf(&p.title, &pages);
        let pdf = String::from_utf8_lossy(&pdf);
        assert!(pdf.starts_with("%PDF-1.4"));
        assert!(pdf.contains(&format!("/Count {}", pages.len())));
        // 第 n 页 / 共 m 页 on the last page, in the CJK font around the ASCII digits.
        assert!(pdf.contains(&format!("({})", pages.len())));
    }

    #[test]
    fn a_url_prints_as_a_whole_qr_code_inside_the_margins() {
        // Enough paragraphs that the code would straddle a page break if allowed to.
        for n in [1, 20, 31, 32, 33, 40] {
            let body = (0..n).map(|i| Block::Paragraph(format!("第{i}段，政务公开。"))).collect();
            let p = Printout::document(
                "",
                "长文",
                "",
                &[],
                body,
                Some("https://zwgk.example.gov.cn/item/p1"),
            );
            let pages = p.layout();
            let with_code: Vec<&Page> = pages.iter().filter(|p| !p.boxes.is_empty()).collect();
            assert_eq!(with_code.len(), 1, "{n} paragraphs: the code is on exactly one page");
            for (x, y, w, h) in &with_code[0].boxes {
                assert!(*x >= MARGIN && x + w <= PAGE_W - MARGIN, "{n}: x {x} w {w}");
                assert!(*y >= BOTTOM && y + h <= TOP, "{n}: y {y} h {h}");
            }
        }
    }

    #[test]
    fn a_request_receipt_carries_the_statutory_note() {
        let rows = [("回执编号".to_string(), "YSQ-430100-20261123-0001".to_string())];
        let p = Printout::receipt(
            "长沙市政务公开专区",
            "政府信息公开申请回执",
            &rows,
            "答复期限：2026年12月21日前",
            Some("https://zwgk.example.gov.cn/track?no=YSQ-430100-20261123-0001"),
            true,
        );
        let t = p.text();
        assert!(t.contains("回执编号：YSQ-430100-20261123-0001"));
        assert!(t.contains("答复期限：2026年12月21日前"));
        assert!(t.contains("查询办理进度：https://zwgk.example.gov.cn/track?no="));
        assert!(t.contains("第三十三条"));
        let s = Printout::receipt("", "意见建议回执", &rows, "", None, false);
        assert!(!s.text().contains("第三十三条"));
    }

    #[test]
    fn no_queue_no_printer() {
        assert!(Printer::new("  ", 5).is_none());
        let p = Printer::new("kiosk", 0).expect("printer");
        assert_eq!(p.page_limit(), 1);
        let sent = Sent { job: "kiosk-1".into(), pages: 7, printed: 5 };
        assert!(sent.message().contains("最多打印5页"));
    }

    #[test]
    fn a_missing_client_or_scheduler_is_unknown() {
        // A port nobody listens on: lpstat fails (or is absent), never hangs the caller.
        let s = status_at("kiosk-none", Some("127.0.0.1:1"));
        assert_eq!(s.state, "unknown");
        assert_eq!(s.name, "kiosk-none");
    }
}
