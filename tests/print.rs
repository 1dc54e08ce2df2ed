//! Printing against a real CUPS: a private `cupsd -f` on a free loopback port with its
//! config, spool and logs in a temp dir (as CUPS's own `run-stp-tests.sh` runs it), a
//! queue that writes its output to a file through the cups-filters PDF driver (so
//! `page-ranges` is applied by the real filter chain), and the kiosk's `Printer` and
//! `status` pointed at it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kiosk::print::{Block, Printer, Printout};

use crate::util::{free_port, wait_until, which};

const PDF_PPD: &str = "/usr/share/ppd/cupsfilters/Generic-PDF_Printer-PDF.ppd";
const QUEUE: &str = "kiosk-test";

/// A private CUPS scheduler, stopped on drop.
struct Cups {
    child: Child,
    server: String,
    dir: tempfile::TempDir,
}

impl Cups {
    fn start() -> Cups {
        for tool in [
            "lp",
            "lpstat",
            "lpadmin",
            "cupsdisable",
            "pdftotext",
            "pdfinfo",
            "pdftoppm",
            "zbarimg",
        ] {
            assert!(which(tool), "{tool} is missing: run scripts/install-deps");
        }
        let cupsd = ["/usr/sbin/cupsd", "/usr/local/sbin/cupsd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("cupsd is missing: run scripts/install-deps");
        assert!(Path::new(PDF_PPD).exists(), "{PDF_PPD} is missing: install cups-filters");
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for sub in ["spool/temp", "log", "cache", "state", "out"] {
            std::fs::create_dir_all(root.join(sub)).expect("cups dirs");
        }
        // Run as root, cupsd starts filters as `lp`: they must reach the spool.
        chmod(root, 0o755);
        chmod(&root.join("spool"), 0o755);
        chmod(&root.join("spool/temp"), 0o1777);
        let port = free_port();
        let r = root.display();
        std::fs::write(
            root.join("cupsd.conf"),
            format!(
                "Listen 127.0.0.1:{port}\nBrowsing Off\nLogLevel info\nWebInterface No\n\
                 DefaultAuthType None\n<Location />\n  Order allow,deny\n  Allow all\n</Location>\n\
                 <Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n"
            ),
        )
        .expect("cupsd.conf");
        let mut files = format!(
            "FileDevice Yes\nServerRoot {r}\nStateDir {r}/state\nCacheDir {r}/cache\n\
             RequestRoot {r}/spool\nTempDir {r}/spool/temp\nAccessLog {r}/log/access_log\n\
             ErrorLog {r}/log/error_log\nPageLog {r}/log/page_log\nPrintcap {r}/printcap\n\
             Sandboxing Relaxed\n"
        );
        // Unprivileged, cupsd runs everything as the test user (run-stp-tests.sh sets the
        // same); as root it keeps its default `lp`.
        if !is_root() {
            let user = output(Command::new("id").arg("-un"));
            let group = output(Command::new("id").arg("-gn"));
            files.push_str(&format!("User {}\nGroup {}\n", user.trim(), group.trim()));
        }
        std::fs::write(root.join("cups-files.conf"), files).expect("cups-files.conf");
        let child = Command::new(cupsd)
            .arg("-f")
            .arg("-c")
            .arg(root.join("cupsd.conf"))
            .arg("-s")
            .arg(root.join("cups-files.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting cupsd");
        let cups = Cups { child, server: format!("127.0.0.1:{port}"), dir };
        wait_until("cupsd to answer", Duration::from_secs(30), || {
            cups.cmd("lpstat")
                .arg("-r")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("scheduler is running"))
        });
        cups
    }

    /// A CUPS client aimed at this scheduler, in the C locale.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("CUPS_SERVER", &self.server).env("LC_ALL", "C");
        c
    }

    /// Adds the PDF queue writing to `out/NAME.pdf`, enabled and accepting.
    fn add_queue(&self, out: &str) -> PathBuf {
        let file = self.dir.path().join("out").join(out);
        let uri = format!("file://{}", file.display());
        let o = self
            .cmd("lpadmin")
            .args(["-p", QUEUE, "-E", "-v", &uri, "-P", PDF_PPD])
            .output()
            .expect("lpadmin");
        assert!(o.status.success(), "lpadmin: {}", String::from_utf8_lossy(&o.stderr));
        file
    }

    fn completed(&self, job: &str) -> bool {
        self.cmd("lpstat")
            .args(["-W", "completed", "-o", QUEUE])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.starts_with(job)))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/error_log")).unwrap_or_default()
    }
}

impl Drop for Cups {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).trim() == "0"
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn output(cmd: &mut Command) -> String {
    let o = cmd.output().expect("running a tool");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The text and the page count of a PDF the queue wrote.
fn read_pdf(file: &Path) -> (String, u32) {
    let text = output(Command::new("pdftotext").args(["-layout"]).arg(file).arg("-"));
    let info = output(Command::new("pdfinfo").arg(file));
    let pages = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no page count in pdfinfo output: {info}"));
    (text, pages)
}

/// The QR codes on a PDF's pages, as a phone would read them off the paper: each page
/// rasterised at 150 dpi (pdftoppm) and decoded by zbarimg.
fn qr_codes(file: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = dir.path().join("page");
    output(Command::new("pdftoppm").args(["-r", "150", "-gray", "-png"]).arg(file).arg(&prefix));
    let mut pages: Vec<PathBuf> =
        std::fs::read_dir(dir.path()).expect("pages").map(|e| e.expect("entry").path()).collect();
    pages.sort();
    assert!(!pages.is_empty(), "pdftoppm wrote no page");
    let mut codes = Vec::new();
    for page in pages {
        // zbarimg exits 4 when a page has no code: that is an answer, not an error.
        let o = Command::new("zbarimg").args(["-q", "--raw"]).arg(&page).output().expect("zbarimg");
        codes.extend(String::from_utf8_lossy(&o.stdout).lines().map(str::to_string));
    }
    codes
}

/// What a queue printed: its text, page count and QR codes.
struct Printed {
    text: String,
    pages: u32,
    codes: Vec<String>,
}

/// Waits for the job to complete and its output file, and returns what it printed.
fn printed(cups: &Cups, job: &str, file: &Path) -> Printed {
    wait_until(&format!("job {job} to complete"), Duration::from_secs(60), || cups.completed(job));
    assert!(file.exists(), "no output file; cupsd log:\n{}", cups.log());
    let (text, pages) = read_pdf(file);
    let codes = qr_codes(file);
    std::fs::remove_file(file).expect("removing the output");
    Printed { text, pages, codes }
}

fn policy() -> Printout {
    let meta = [
        ("文号".to_string(), "长政办发〔2024〕12号".to_string()),
        ("发文机关".to_string(), "长沙市人民政府办公厅".to_string()),
        ("发布日期".to_string(), "2024年3月1日".to_string()),
    ];
    Printout::document(
        "长沙市政务公开专区 · 政策文件",
        "关于做好2024年政务公开工作的通知",
        "",
        &meta,
        vec![
            Block::Heading("一、总体要求".into()),
            Block::Paragraph("坚持以人民为中心，推进决策、执行、管理、服务、结果公开。".into()),
        ],
        Some("https://zwgk.example.gov.cn/item/p1"),
    )
}

#[test]
fn documents_and_receipts_print_through_cups_within_the_page_limit() {
    let cups = Cups::start();
    let file = cups.add_queue("job.pdf");
    let printer = Printer::new(QUEUE, 2).expect("printer").with_server(cups.server.clone());

    // A one-page policy, sent from a background thread as the UI sends it.
    let (tx, rx) = mpsc::channel();
    printer.print_in_background(policy(), move |r| {
        let _ = tx.send(r.map_err(|e| format!("{e:#}")));
    });
    let sent = rx.recv_timeout(Duration::from_secs(60)).expect("print outcome").expect("printed");
    assert_eq!((sent.pages, sent.printed), (1, 1));
    assert!(sent.job.starts_with("kiosk-test-"), "job id {:?}", sent.job);
    let Printed { text, pages, codes } = printed(&cups, &sent.job, &file);
    assert_eq!(pages, 1);
    // The canonical URL travels on paper as a QR code too (“扫码带走” from the printout).
    assert_eq!(codes, ["https://zwgk.example.gov.cn/item/p1"], "{text}");
    for want in [
        "关于做好2024年政务公开工作的通知",
        "文号：长政办发〔2024〕12号",
        "发文机关：长沙市人民政府办公厅",
        "坚持以人民为中心",
        "https://zwgk.example.gov.cn/item/p1",
        "第 1 页 / 共 1 页",
    ] {
        assert!(text.contains(want), "{want:?} not in the printout:\n{text}");
    }

    // A long document stops at the page limit, cut by CUPS's own filters.
    let body = (1..=150).map(|i| Block::Paragraph(format!("第{i}条 政务公开。"))).collect();
    let long = Printout::document("", "长文件", "", &[], body, None);
    let sent = printer.print(&long).expect("printed");
    assert!(sent.pages > 2, "{sent:?}");
    assert_eq!(sent.printed, 2);
    assert!(sent.message().contains("最多打印2页"));
    let Printed { text, pages, codes } = printed(&cups, &sent.job, &file);
    assert_eq!(pages, 2, "the page limit did not reach CUPS:\n{text}");
    assert!(codes.is_empty(), "a document without a URL prints no code: {codes:?}");
    assert!(text.contains("第 2 页 / 共"), "{text}");
    assert!(!text.contains("第 3 页"), "{text}");

    // A receipt.
    let number = "YSQ-430100K001-20261123-0001";
    let url = format!("https://zwgk.example.gov.cn/track?no={number}");
    let receipt = Printout::receipt(
        "长沙市政务公开专区",
        "政府信息公开申请回执",
        &[("回执编号".into(), number.into()), ("提交日期".into(), "2026年11月23日".into())],
        "答复期限：2026年12月21日前（20个工作日内）",
        Some(&url),
        true,
    );
    let sent = printer.print(&receipt).expect("printed");
    let Printed { text, codes, .. } = printed(&cups, &sent.job, &file);
    assert_eq!(
        codes,
        std::slice::from_ref(&url),
        "the receipt's code leads to the request's progress"
    );
    let flat: String = text.split_whitespace().collect();
    for want in
        [number, "提交日期：2026年11月23日", "答复期限：2026年12月21日前", &url, "第三十三条"]
    {
        assert!(flat.contains(want), "{want:?} not on the receipt:\n{text}");
    }
}

#[test]
fn status_follows_the_queue() {
    let cups = Cups::start();
    cups.add_queue("status.pdf");
    let printer = Printer::new(QUEUE, 5).expect("printer").with_server(cups.server.clone());
    let s = printer.status();
    assert_eq!((s.name.as_str(), s.state.as_str(), s.queued_jobs), (QUEUE, "idle", 0), "{s:?}");
    assert!(s.reasons.is_empty(), "{s:?}");

    let o = cups.cmd("cupsdisable").args(["-r", "缺纸", QUEUE]).output().expect("cupsdisable");
    assert!(o.status.success(), "cupsdisable: {}", String::from_utf8_lossy(&o.stderr));
    // A job sent while the printer is stopped waits in the queue.
    printer.print(&policy()).expect("queued");
    let s = printer.status();
    assert_eq!(s.state, "stopped", "{s:?}");
    assert!(s.reasons.iter().any(|r| r == "paused"), "{s:?}");
    assert_eq!(s.queued_jobs, 1, "{s:?}");

    // The same through the free function the health report calls.
    let s = kiosk::print::status_at(QUEUE, Some(&cups.server));
    assert_eq!(s.state, "stopped");
    let s = kiosk::print::status_at("no-such-queue", Some(&cups.server));
    assert_eq!(s.state, "unknown", "{s:?}");

    let server = cups.server.clone();
    drop(cups);
    let s = kiosk::print::status_at(QUEUE, Some(&server));
    assert_eq!(s.state, "unknown", "{s:?}");
}
