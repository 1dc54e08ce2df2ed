//! UI benchmark (not a test) for the budgets of issue 4: first frame, touch → visible
//! response, search-as-you-type, resident memory. Run it with `bench/ui.sh`, which starts
//! Xvfb so the real winit window can be measured too; see BENCHMARKS.md ("UI").
//!
//! Every figure is for the embedded demo content (installed by the kiosk on first start)
//! with the system's Noto Sans CJK SC through fontconfig.
//!
//! - First frame, real window: the `kiosk` binary is spawned with `--data DIR run`, and the
//!   time runs until it prints `kiosk: first frame rendered` on stderr (the watchdog's
//!   boot line, printed from a timer that fires after the first frame, 10 ms later).
//!   Cold = empty data dir (the demo is installed first); warm = already installed.
//!   Then, 5 s after start, `VmHWM`/`VmRSS` from `/proc/PID/status`.
//! - First frame, headless: this binary re-spawned as a child that installs/opens the content,
//!   builds the window and renders one frame with the software renderer into memory.
//! - Latencies: in this process, on the headless platform (no X server), the real window
//!   driven through its accessible labels as `tests/ui.rs` does; each sample is the action,
//!   the posted results of the search worker, and a full re-render of the 1920×1080 window.
//!
//! Environment: `KIOSK_UI_BENCH_REPS` (default 100), `KIOSK_UI_BENCH_KIOSK` (the kiosk
//! binary to start, default cargo's), `DISPLAY` (real-window figures are skipped without it).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use i_slint_backend_testing::{AccessibleRole, ElementHandle};
use kiosk::config::Config;
use kiosk::ui::{headless, init, Content, Delivery, Ui};
use slint::ComponentHandle as _;

/// Set in the environment of the headless child process: its data dir.
const CHILD_ENV: &str = "KIOSK_UI_BENCH_CHILD";
/// What the headless child prints once its first frame is rendered.
const CHILD_FRAME_LINE: &str = "ui-bench: first frame";

fn main() -> Result<()> {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        return child(Path::new(&dir));
    }
    // `cargo bench` passes `--bench`; nothing to parse.
    let reps: usize =
        std::env::var("KIOSK_UI_BENCH_REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    let work = tempfile::tempdir().context("scratch dir")?;
    println!("# UI benchmark ({reps} reps per latency)");
    machine();

    // The warm data dir: the demo installed once, as a kiosk that has started before.
    let warm = work.path().join("warm");
    let config = config_for(&warm);
    let t = Instant::now();
    kiosk::bundle::open_installed(&config).context("installing the demo content")?;
    println!("demo install (in process): {:.0} ms", ms(t.elapsed()));

    headless_first_frames(work.path(), &warm)?;
    if std::env::var_os("DISPLAY").is_some() {
        real_window(work.path(), &warm)?;
    } else {
        println!("DISPLAY is not set: real-window first frame and RSS skipped (use bench/ui.sh)");
    }
    latencies(&config, reps)?;
    Ok(())
}

fn machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.to_string()))
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("machine: {cores} cores, {cpu}, loadavg {}", load.trim());
}

fn config_for(data: &Path) -> Config {
    Config { data_dir: data.to_path_buf(), ..Config::for_development() }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50, p99 and max of `samples` in ms.
fn summary(name: &str, samples: &mut [f64]) {
    if samples.is_empty() {
        println!("{name}: no samples");
        return;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        samples.len(),
        pick(0.5),
        pick(0.99),
        samples[samples.len() - 1]
    );
}

/// The child: content, window, one frame, as fast as the kiosk could do it headless.
fn child(data: &Path) -> Result<()> {
    let config = config_for(data);
    headless::init()?;
    let ui = init(&config, Content::installed(&config), Delivery::Queue)?;
    headless::set_size(ui.window.window(), 1920, 1080)?;
    ui.settle();
    slint::platform::update_timers_and_animations();
    headless::snapshot(ui.window.window())?;
    eprintln!("{CHILD_FRAME_LINE}");
    // Then every home tile once, so the peak RSS covers the pages a resident sees.
    for tile in ["政策文件", "办事指南", "公开目录", "政策问答", "搜索"] {
        tap(&ui, tile)?;
        tap(&ui, "首页")?;
    }
    eprintln!("ui-bench: rss {}", rss_line(std::process::id()));
    Ok(())
}

/// Spawns `cmd` and returns the time until a stderr line contains `marker`, with the child.
fn time_to_line(
    mut cmd: Command,
    marker: &'static str,
) -> Result<(Option<Duration>, std::process::Child, mpsc::Receiver<String>)> {
    let start = Instant::now();
    let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().context("spawning")?;
    let stderr = child.stderr.take().context("child stderr")?;
    let (tx, rx) = mpsc::channel();
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(marker) {
                let _ = tx.send(start.elapsed());
            }
            let _ = lines_tx.send(line);
        }
    });
    let took = rx.recv_timeout(Duration::from_secs(60)).ok();
    Ok((took, child, lines_rx))
}

fn headless_first_frames(work: &Path, warm: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("this binary")?;
    for (label, runs) in [("cold", 3), ("warm", 5)] {
        let mut samples = Vec::new();
        let mut rss = String::new();
        for i in 0..runs {
            let data = if label == "cold" { work.join(format!("cold-h{i}")) } else { warm.into() };
            let mut cmd = Command::new(&exe);
            cmd.env(CHILD_ENV, &data);
            let (took, mut child, lines) = time_to_line(cmd, CHILD_FRAME_LINE)?;
            let status = child.wait().context("waiting for the headless child")?;
            if !status.success() {
                bail!("headless child failed: {status}");
            }
            let took = took.context("the headless child rendered no frame")?;
            samples.push(ms(took));
            if let Some(l) = lines.try_iter().find(|l| l.starts_with("ui-bench: rss")) {
                rss = l;
            }
        }
        summary(&format!("headless first frame, {label}"), &mut samples);
        println!("  after visiting every home tile: {rss}");
    }
    Ok(())
}

fn real_window(work: &Path, warm: &Path) -> Result<()> {
    // bench/ui.sh copies the binary right after building it: `target/release/kiosk` is shared
    // with builds that leave out the `ui` feature, and one may replace it at any moment.
    let kiosk = std::env::var_os("KIOSK_UI_BENCH_KIOSK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kiosk")));
    let marker = kiosk::watchdog::FIRST_FRAME_LINE;
    for (label, runs) in [("cold", 3), ("warm", 5)] {
        let mut samples = Vec::new();
        for i in 0..runs {
            let data = if label == "cold" { work.join(format!("cold-x{i}")) } else { warm.into() };
            let mut cmd = Command::new(&kiosk);
            cmd.arg("--config").arg(work.join("none.toml")).arg("--data").arg(&data).arg("run");
            let (took, mut child, lines) = time_to_line(cmd, marker)?;
            let Some(took) = took else {
                let _ = child.kill();
                let _ = child.wait();
                let said: Vec<String> = lines.try_iter().collect();
                bail!("the kiosk printed no first-frame line:\n{}", said.join("\n"));
            };
            samples.push(ms(took));
            // Memory of the last run of each kind, 5 s after start.
            if i + 1 == runs {
                std::thread::sleep(Duration::from_secs(5).saturating_sub(took));
                println!("  real window {label}, 5 s after start: {}", rss_line(child.id()));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        summary(&format!("real window (winit/X11, Xvfb) first frame, {label}"), &mut samples);
    }
    Ok(())
}

/// `VmHWM` and `VmRSS` of a process, as `/proc` says them.
fn rss_line(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The control labelled `label` (a button or text field), as tests/ui.rs finds it.
fn find(ui: &Ui, label: &str) -> Result<ElementHandle> {
    ElementHandle::find_by_accessible_label(&ui.window, label)
        .find(|e| {
            e.is_valid()
                && matches!(
                    e.accessible_role(),
                    Some(AccessibleRole::Button | AccessibleRole::TextInput)
                )
        })
        .with_context(|| format!("nothing labelled “{label}” on page {:?}", ui.page()))
}

/// A frame: results the worker posted, timers, and the re-rendered window.
fn frame(ui: &Ui) -> Result<()> {
    ui.settle();
    i_slint_backend_testing::mock_elapsed_time(Duration::from_millis(20));
    headless::snapshot(ui.window.window())?;
    Ok(())
}

/// Taps a control and returns the time until the next frame is rendered.
fn tap(ui: &Ui, label: &str) -> Result<f64> {
    let e = find(ui, label)?;
    let t = Instant::now();
    e.invoke_accessible_default_action();
    frame(ui)?;
    Ok(ms(t.elapsed()))
}

fn latencies(config: &Config, reps: usize) -> Result<()> {
    headless::init()?;
    let ui = init(config, Content::installed(config), Delivery::Queue)?;
    headless::set_size(ui.window.window(), 1920, 1080)?;
    frame(&ui)?;

    // Touch → visible response: a home tile opens its list, 首页 comes back.
    let (mut open, mut home) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        open.push(tap(&ui, "政策文件")?);
        home.push(tap(&ui, "首页")?);
    }
    summary("tap 政策文件 → list frame", &mut open);
    summary("tap 首页 → home frame", &mut home);

    // Keystrokes on the search page, pinyin mode: the composing line and candidates.
    tap(&ui, "搜索")?;
    let (mut key, mut del) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        key.push(tap(&ui, "键 s")?);
        del.push(tap(&ui, "删除")?);
    }
    summary("pinyin key s → frame (composing + candidates)", &mut key);
    summary("删除 → frame", &mut del);

    // Search as you type: English mode sends every letter to the search worker; each
    // sample waits for its hits and renders them.
    tap(&ui, "英文输入")?;
    let word = ["s", "h", "e", "b", "a", "o"];
    let mut typed = Vec::new();
    for _ in 0..reps.div_ceil(word.len()) {
        for k in word {
            typed.push(tap(&ui, &format!("键 {k}"))?);
        }
        for _ in word {
            tap(&ui, "删除")?;
        }
    }
    summary("search as you type (letters of shebao) → hits frame", &mut typed);

    // A pinyin candidate picked: 社保 goes to the worker, hits rendered.
    tap(&ui, "中文输入")?;
    let mut pick = Vec::new();
    for _ in 0..reps {
        for k in ["s", "h", "e", "b", "a", "o"] {
            tap(&ui, &format!("键 {k}"))?;
        }
        pick.push(tap(&ui, "候选 社保")?);
        tap(&ui, "删除")?;
        tap(&ui, "删除")?;
    }
    summary("pick 候选 社保 → hits frame", &mut pick);

    // A whole query set at once (as `Ui::search` does), rendered with its hits.
    let queries = ["社保", "医保", "户口", "低保", "养老", "公积金", "shebao", "yibao", "hukou"];
    let mut set = Vec::new();
    for _ in 0..reps.div_ceil(queries.len()) {
        for q in queries {
            let t = Instant::now();
            ui.search(q);
            frame(&ui)?;
            set.push(ms(t.elapsed()));
        }
    }
    summary("query set (2-char and pinyin) → hits frame", &mut set);

    // The search worker's answer alone: the finder on the demo's index.
    let version = kiosk::bundle::open_installed(config)?;
    let mut finder =
        kiosk::ui::worker::open_finder(&version.index_dir()).context("opening the demo index")?;
    for (name, qs) in [
        ("finder, 2-character queries", &["社保", "医保", "户口", "低保", "养老", "公积"][..]),
        ("finder, pinyin queries", &["shebao", "yibao", "hukou", "dibao", "sb", "gjj"][..]),
    ] {
        let mut s = Vec::new();
        let mut hits = Vec::new();
        for _ in 0..reps.div_ceil(qs.len()) {
            for q in qs {
                let t = Instant::now();
                let (h, total) = finder.find(q, &[], 20)?;
                s.push(ms(t.elapsed()));
                hits.push(format!("{q}:{}/{total}", h.len()));
            }
        }
        summary(name, &mut s);
        hits.truncate(qs.len());
        println!("  hits (shown/total): {}", hits.join(" "));
    }
    println!("in-process after the latency runs: {}", rss_line(std::process::id()));
    Ok(())
}
