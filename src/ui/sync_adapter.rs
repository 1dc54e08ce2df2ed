//! The running kiosk's link to the sync worker and the service watchdog: a once-a-second
//! Slint timer beats the UI heartbeat, watches for new content, carries out remote
//! commands (answering each, so the worker's ack says what really happened) and counts
//! usage for telemetry.
//!
//! New content is not swapped into the running window: `App` holds the store of the
//! version it was built for, and Slint's linuxkms backend cannot run its event loop a
//! second time. When a new version is installed (by sync, or a rollback from the admin
//! panel) the kiosk waits until the resident has left (home screen, untouched for
//! [`RELOAD_IDLE_SECONDS`], admin panel closed) and then ends the event loop; systemd
//! (`Restart=always`) starts it again on the new version within seconds.

use std::hash::{Hash as _, Hasher as _};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slint::{ComponentHandle as _, ModelRc, VecModel};

use super::session::FormKind;
use super::{AdminAdapter, App, HomeAdapter, NoticeRow, Page, Ui};
use crate::sync::{protocol::Action, SyncHandle, Telemetry, UiCommand, UiOutcome, UiReply};
use crate::watchdog::{Heartbeat, Watchdog};

/// How long the home screen must be untouched before the kiosk restarts on new content.
pub const RELOAD_IDLE_SECONDS: u32 = 20;
/// How long an announcement shows when the command gives no duration.
const ANNOUNCE_SECONDS: u32 = 300;
/// The id of the announcement row on the notice strip.
const ANNOUNCE_ID: &str = "announce";

/// Why the kiosk ends its event loop on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// A newer content version is installed; the restart serves it.
    Reload,
    /// A signed remote `restart` command.
    Restart,
    /// A remote `set-setting` changed a setting the UI reads when it starts.
    Settings,
}

/// The sync side of a window; without a [`SyncHandle`] (tests, screenshots) the admin
/// panel says sync is not configured.
pub struct SyncLink {
    pub handle: Option<Arc<SyncHandle>>,
    pub telemetry: Arc<Telemetry>,
    pub commands: Option<Receiver<UiCommand>>,
    /// Where answers go when there is no [`SyncHandle`] (tests).
    replies: Option<std::sync::mpsc::Sender<UiReply>>,
    /// A setting the UI reads at start changed; restart when the resident has left.
    settings_pending: bool,
    /// The content version directory the window serves, e.g. `v-…`.
    pub serving: Option<String>,
    /// A newer version is installed; restart when the resident has left.
    pub reload_pending: bool,
    /// Set when the event loop was ended on purpose.
    pub exit: Option<Exit>,
    /// Set by the admin panel's rollback thread when it switched versions.
    pub rolled_back: Arc<AtomicBool>,
    announce: Option<(String, Instant)>,
    /// Usage counting: the item last counted as viewed, and the search generations seen.
    last_item: Option<String>,
    last_generation: u64,
    /// A hash of the query last counted (so 确定 or a filter on the same words is not a
    /// second search); the text itself is never kept here.
    counted_query: Option<u64>,
}

impl Default for SyncLink {
    fn default() -> SyncLink {
        SyncLink {
            handle: None,
            telemetry: Arc::new(Telemetry::default()),
            commands: None,
            replies: None,
            settings_pending: false,
            serving: None,
            reload_pending: false,
            exit: None,
            rolled_back: Arc::default(),
            announce: None,
            last_item: None,
            last_generation: 0,
            counted_query: None,
        }
    }
}

/// Connects a built window to the sync worker and the watchdog and starts the timers
/// (keep them alive while the window runs).
pub fn attach(
    app: &Rc<App>,
    handle: Arc<SyncHandle>,
    commands: Option<Receiver<UiCommand>>,
    watchdog: &Watchdog,
    beat: Heartbeat,
) -> Vec<slint::Timer> {
    {
        let mut link = app.sync.borrow_mut();
        link.telemetry = handle.telemetry();
        link.handle = Some(handle);
        link.commands = commands;
    }
    // READY=1 and the boot line once the first frame is on screen: timers run before the
    // render in each turn of the linuxkms loop, so a timer started from a zero-delay timer
    // fires after the first frame (see the watchdog module docs).
    let wd = watchdog.clone();
    slint::Timer::single_shot(Duration::ZERO, move || {
        slint::Timer::single_shot(Duration::from_millis(10), move || wd.ready());
    });
    let beat_timer = slint::Timer::default();
    beat_timer.start(slint::TimerMode::Repeated, watchdog.beat_interval(), move || beat.beat());
    let tick_timer = slint::Timer::default();
    let a = app.clone();
    let wd = watchdog.clone();
    tick_timer.start(slint::TimerMode::Repeated, Duration::from_secs(1), move || {
        // The boot test's trigger for a planned restart (kiosk-image/test-boot --watchdog).
        if wd.test_hook("restart") {
            tracing::info!("test hook: restart");
            end(&a, Exit::Restart);
        }
        tick(&a);
    });
    vec![beat_timer, tick_timer]
}

/// One second of the kiosk's life as far as sync is concerned.
pub fn tick(app: &Rc<App>) {
    count_usage(app);
    run_commands(app);
    watch_versions(app);
    show_announcement(app);
    if app.window.upgrade().is_some_and(|w| w.global::<AdminAdapter>().get_unlocked()) {
        super::admin_adapter::refresh(app);
    }
    let due = {
        let link = app.sync.borrow();
        let session = app.session.borrow();
        let admin_open =
            app.window.upgrade().is_some_and(|w| w.global::<AdminAdapter>().get_open());
        link.exit.is_none()
            && (link.reload_pending || link.settings_pending)
            && !admin_open
            && session.current() == Page::Home
            && session.idle_seconds >= RELOAD_IDLE_SECONDS
    };
    if due {
        let reload = app.sync.borrow().reload_pending;
        if reload {
            tracing::info!("new content installed: restarting the kiosk to serve it");
            end(app, Exit::Reload);
        } else {
            tracing::info!("device settings changed: restarting the kiosk to apply them");
            end(app, Exit::Settings);
        }
    }
}

/// Ends the event loop; `run` then runs the kiosk again in the same process.
fn end(app: &App, why: Exit) {
    app.sync.borrow_mut().exit = Some(why);
    if let Err(e) = slint::quit_event_loop() {
        tracing::warn!("cannot end the event loop: {e}");
    }
}

/// Counts item views and settled searches. Only ids and counts: never the query text.
fn count_usage(app: &App) {
    let (page, generation, query) = {
        let s = app.session.borrow();
        let q = s.search.query.trim();
        let query = (!q.is_empty()).then(|| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            q.hash(&mut h);
            h.finish()
        });
        (s.current(), s.search.generation, query)
    };
    let mut link = app.sync.borrow_mut();
    match page {
        // The announcement row is not an item of the content.
        Page::Reader(id) if id != ANNOUNCE_ID && link.last_item.as_deref() != Some(id.as_str()) => {
            link.telemetry.view_item(&id);
            link.last_item = Some(id);
        }
        Page::Reader(_) => {}
        _ => link.last_item = None,
    }
    // A search counts once the query has stood still for a tick: typing 三个字 is one search.
    match query {
        Some(q) if generation == link.last_generation && link.counted_query != Some(q) => {
            link.telemetry.search();
            link.counted_query = Some(q);
        }
        Some(_) => {}
        None => link.counted_query = None,
    }
    link.last_generation = generation;
}

fn run_commands(app: &App) {
    loop {
        // Bound first: the borrow must end before the arms borrow mutably.
        let received = app.sync.borrow().commands.as_ref().map(Receiver::try_recv);
        let next = match received {
            Some(Ok(c)) => c,
            Some(Err(TryRecvError::Disconnected)) => {
                app.sync.borrow_mut().commands = None;
                return;
            }
            Some(Err(TryRecvError::Empty)) | None => return,
        };
        let id = next.id.clone();
        let outcome = match next.action {
            Action::Announce { text, seconds } => {
                let secs = if seconds == 0 { ANNOUNCE_SECONDS } else { seconds };
                let until = Instant::now() + Duration::from_secs(u64::from(secs));
                app.sync.borrow_mut().announce = Some((text, until));
                UiOutcome::Done(format!("announcement shown for {secs} s"))
            }
            Action::Restart => {
                tracing::info!("remote command {id}: restart");
                reply(app, UiReply { id, outcome: UiOutcome::Done("restarting".into()) });
                end(app, Exit::Restart);
                return;
            }
            Action::Screenshot => screenshot(app),
            Action::SetSetting { key, value } => {
                app.sync.borrow_mut().settings_pending = true;
                UiOutcome::Done(format!(
                    "{key} = {value} saved; the kiosk restarts to apply it once the home screen is idle"
                ))
            }
            other => UiOutcome::Failed(format!("the kiosk UI does not carry out {other:?}")),
        };
        reply(app, UiReply { id, outcome });
    }
}

/// A remote screenshot of what the screen shows now. Not while a resident fills in a
/// form: the picture would carry their name, ID number and phone to the city in clear.
fn screenshot(app: &App) -> UiOutcome {
    if let Page::Form(kind) = app.session.borrow().current() {
        let form = match kind {
            FormKind::Request => "依申请公开",
            FormKind::Suggestion => "意见建议",
        };
        return UiOutcome::Failed(format!(
            "a resident is filling in the {form} form; no screenshot is taken of personal data"
        ));
    }
    let Some(w) = app.window.upgrade() else {
        return UiOutcome::Failed("the kiosk window is gone".into());
    };
    match super::screenshot::capture_png(w.window()) {
        Ok(png) => UiOutcome::Screenshot(png),
        Err(e) => UiOutcome::Failed(format!("{e:#}")),
    }
}

/// Sends an answer to the sync worker, which acks the command with it.
fn reply(app: &App, reply: UiReply) {
    let link = app.sync.borrow();
    if let Some(handle) = &link.handle {
        handle.reply(reply);
    } else if let Some(tx) = &link.replies {
        let _ = tx.send(reply);
    }
}

impl Ui {
    /// Sends the answers to commands from [`Ui::receive_commands`] to `replies` (tests,
    /// which have no sync worker to ack them).
    pub fn answer_commands_to(&self, replies: std::sync::mpsc::Sender<UiReply>) {
        self.app.sync.borrow_mut().replies = Some(replies);
    }
}

/// Notices that another content version became current — installed by sync, by
/// `kiosk install` (an offline kiosk updated from a USB stick has no sync at all) or by the
/// admin panel's rollback — and marks a reload as pending. One readlink a second.
fn watch_versions(app: &App) {
    let now = crate::bundle::current_version(&app.config.data_dir).ok().flatten().map(|v| v.name());
    let mut link = app.sync.borrow_mut();
    if link.rolled_back.swap(false, Ordering::Relaxed) {
        link.reload_pending = true;
    }
    if now.is_some() && now != link.serving {
        link.reload_pending = true;
    }
}

/// Puts a remote announcement first on the home notice strip while it lasts (the strip
/// is rebuilt whenever home is shown, so it is put back on every tick).
fn show_announcement(app: &App) {
    let text = {
        let mut link = app.sync.borrow_mut();
        match &link.announce {
            Some((_, until)) if Instant::now() >= *until => {
                link.announce = None;
                None
            }
            Some((text, _)) => Some(text.clone()),
            None => None,
        }
    };
    let Some(w) = app.window.upgrade() else { return };
    let home = w.global::<HomeAdapter>();
    let rows: Vec<NoticeRow> = slint::Model::iter(&home.get_notices()).collect();
    let has = rows.first().is_some_and(|r| r.id == ANNOUNCE_ID);
    let rows: Vec<NoticeRow> = match (text, has) {
        (Some(t), true) if rows[0].title == t.as_str() => return,
        (Some(t), _) => {
            let row = NoticeRow {
                id: ANNOUNCE_ID.into(),
                title: t.into(),
                date: "通知".into(),
                pinned: true,
            };
            std::iter::once(row).chain(rows.into_iter().filter(|r| r.id != ANNOUNCE_ID)).collect()
        }
        (None, true) => rows.into_iter().skip(1).collect(),
        (None, false) => return,
    };
    home.set_notices(ModelRc::new(VecModel::from(rows)));
}

/// What the admin panel shows about sync: (connection, versions, last sync, last error,
/// traffic).
pub fn status_rows(app: &App) -> Vec<(String, String)> {
    let link = app.sync.borrow();
    let Some(handle) = &link.handle else {
        return vec![("同步状态".into(), "未配置（本机离线运行）".into())];
    };
    let s = handle.status();
    if !s.enabled {
        return vec![("同步状态".into(), "未配置（本机离线运行）".into())];
    }
    let versions = if s.versions.is_empty() {
        "无".to_string()
    } else {
        s.versions
            .iter()
            .map(|(k, v)| format!("{} v{v}", k.as_str()))
            .collect::<Vec<_>>()
            .join("，")
    };
    let last_sync = s
        .last_sync
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "尚未同步".into());
    let mut rows = vec![
        ("同步状态".into(), if s.connected { "已连接".into() } else { "未连接（离线）".into() }),
        ("同步版本".into(), versions),
        ("上次同步".into(), last_sync),
        ("同步错误".into(), s.last_error.unwrap_or_else(|| "无".into())),
        (
            "同步流量".into(),
            format!(
                "收 {} · 发 {} · 下载 {}",
                human_bytes(s.bytes_received),
                human_bytes(s.bytes_sent),
                human_bytes(s.blob_bytes)
            ),
        ),
    ];
    if link.reload_pending {
        rows.push(("新内容".into(), "已安装，居民离开后自动重启载入".into()));
    } else if link.settings_pending {
        rows.push(("设备设置".into(), "已远程修改，居民离开后自动重启生效".into()));
    }
    rows
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KB", n as f64 / f64::from(1 << 10)),
        n => format!("{n} B"),
    }
}
