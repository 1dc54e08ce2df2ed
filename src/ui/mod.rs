//! The Slint UI adapters: the only place that imports `slint`.
//!
//! Each `global …Adapter` of `ui/` has one file here with a `connect()` that wires its
//! callbacks and fills its models; what a screen shows is decided in [`view`] and
//! [`session`] as plain Rust. [`init`] builds the window and wires everything without
//! running it, so tests drive the real window on a headless platform; [`run`] adds the
//! event loop. Search runs on a worker thread and comes back through a [`Post`] function
//! (the event loop in the kiosk, a queue that tests drain), so typing never waits on it.

mod admin_adapter;
mod catalog_adapter;
pub mod form;
mod form_adapter;
pub mod headless;
mod home_adapter;
mod idle_adapter;
mod keyboard_adapter;
mod list_adapter;
mod nav_adapter;
pub mod qr;
mod qr_adapter;
mod reader_adapter;
pub mod screenshot;
mod search_adapter;
pub mod session;
mod sync_adapter;
pub mod tts;
pub mod view;
pub mod worker;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use slint::ComponentHandle as _;

use crate::config::Config;
use crate::content::{Branding, DeviceSettings, Functions};
use crate::store::Store;

/// The code Slint generates from `ui/`. It unwraps internally (`globals.get().unwrap()`),
/// which the workspace's `clippy::unwrap_used` lint would otherwise flag in every build.
#[allow(clippy::unwrap_used)]
mod generated {
    slint::include_modules!();
}
pub use generated::*;

pub use session::{Page, Session};
pub use sync_adapter::{Exit, RELOAD_IDLE_SECONDS};
pub use worker::{Finder, Hit};

/// Runs a closure on the UI thread, later. The kiosk posts through the event loop; tests
/// and screenshots post into a queue they drain with [`Ui::settle`].
pub type Post = Arc<dyn Fn(Job) + Send + Sync>;

/// A piece of work for the UI thread.
pub type Job = Box<dyn FnOnce() + Send>;

/// Jobs posted while no event loop runs (tests, screenshots).
type Queue = Arc<Mutex<Vec<Job>>>;

/// The content a window shows: the store of the installed version, and a search backend.
pub struct Content {
    pub store: Option<Store>,
    pub finder: Option<Box<dyn Finder>>,
    /// Shown to admins (and on an empty home screen) when content could not be opened.
    pub problem: Option<String>,
    /// What the admin panel lists as content versions, e.g. `430100 v12`.
    pub versions: Vec<String>,
    /// Where forms go; without it the forms say they cannot be sent from this kiosk.
    pub desk: Option<Desk>,
    /// The branding logo's file in the content version, when branding names one.
    pub logo: Option<std::path::PathBuf>,
}

/// The outbox and the city's key that resident forms are sealed to.
pub struct Desk {
    pub outbox: crate::requests::Outbox,
    pub city_key: crate::requests::CityKey,
}

impl Desk {
    /// The desk of an installed kiosk: the city's submission key from
    /// `<data_dir>/trust/city.pub` (base64, as `content-sync` prints it) and the outbox
    /// in `<data_dir>/outbox.db`. `None`, with the reason logged, when either is missing.
    pub fn installed(config: &Config) -> Option<Desk> {
        let key_path = config.data_dir.join("trust/city.pub");
        let key = match std::fs::read_to_string(&key_path) {
            Ok(text) => match crate::requests::CityKey::parse(text.trim()) {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!("forms disabled: {} is not a city key: {e}", key_path.display());
                    return None;
                }
            },
            Err(e) => {
                tracing::warn!(
                    "forms disabled: cannot read the city key {}: {e}",
                    key_path.display()
                );
                return None;
            }
        };
        match crate::requests::Outbox::open(&config.data_dir.join("outbox.db")) {
            Ok(outbox) => Some(Desk { outbox, city_key: key }),
            Err(e) => {
                tracing::warn!("forms disabled: cannot open the outbox: {e}");
                None
            }
        }
    }
}

impl Content {
    /// No content at all: the window still works and says so.
    pub fn empty(problem: impl Into<String>) -> Content {
        Content {
            store: None,
            finder: None,
            problem: Some(problem.into()),
            versions: Vec::new(),
            desk: None,
            logo: None,
        }
    }

    /// The installed content version of `config`, or an empty one that says what is wrong.
    pub fn installed(config: &Config) -> Content {
        let version = match crate::bundle::open_installed(config) {
            Ok(v) => v,
            Err(e) => return Content::empty(format!("没有可用的内容版本：{e:#}")),
        };
        let store = match Store::open(&version.db_path()) {
            Ok(s) => s,
            Err(e) => return Content::empty(format!("内容数据库无法打开：{e}")),
        };
        let finder = worker::open_finder(&version.index_dir());
        let versions = version
            .versions()
            .iter()
            .map(|v| {
                format!(
                    "{} v{}{}",
                    v.scope.as_str(),
                    v.version,
                    if v.demo { "（演示内容）" } else { "" }
                )
            })
            .collect();
        let logo = store.branding().ok().and_then(|b| b.logo).and_then(|l| version.blob_path(&l));
        Content {
            store: Some(store),
            finder,
            problem: None,
            versions,
            desk: Desk::installed(config),
            logo,
        }
    }
}

/// Shared state of a running window; every adapter holds an `Rc` of it.
pub(crate) struct App {
    pub window: slint::Weak<AppWindow>,
    pub store: Option<Store>,
    pub config: Config,
    pub device: DeviceSettings,
    pub branding: Branding,
    pub functions: Functions,
    pub problem: Option<String>,
    pub versions: Vec<String>,
    pub desk: RefCell<Option<Desk>>,
    pub session: RefCell<Session>,
    pub search: worker::SearchWorker,
    pub tts: RefCell<tts::Speaker>,
    pub admin: RefCell<admin_adapter::AdminState>,
    /// Errors the admin panel lists; worker threads (printing) add theirs too.
    pub errors: ErrorLog,
    /// The sync worker, usage counters and remote commands (empty in tests).
    pub sync: RefCell<sync_adapter::SyncLink>,
    /// How worker threads hand results back to the UI thread.
    pub post: Post,
}

/// The last errors for the admin panel, shared with worker threads.
#[derive(Clone, Default)]
pub struct ErrorLog(Arc<Mutex<Vec<String>>>);

impl ErrorLog {
    /// Most errors kept; older ones are dropped (the journal has them all).
    const KEEP: usize = 50;

    pub fn push(&self, what: impl Into<String>) {
        let what = what.into();
        tracing::warn!("{what}");
        let mut errors = self.0.lock().unwrap_or_else(|e| e.into_inner());
        errors.push(what);
        let len = errors.len();
        if len > Self::KEEP {
            errors.drain(..len - Self::KEEP);
        }
    }

    /// The errors, newest first.
    pub fn newest_first(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().rev().cloned().collect()
    }
}

impl App {
    /// Records an error for the admin panel; residents see a plain message instead.
    pub fn log_error(&self, what: impl Into<String>) {
        self.errors.push(what);
    }

    /// A touch: the idle clock starts again.
    pub fn activity(&self) {
        self.session.borrow_mut().idle_seconds = 0;
        self.sync.borrow().telemetry.touch();
    }
}

/// A built, wired window that is not running yet.
pub struct Ui {
    pub window: AppWindow,
    app: Rc<App>,
    queue: Option<Queue>,
    _timers: Vec<slint::Timer>,
}

/// How results from worker threads reach the UI thread.
pub enum Delivery {
    /// Through Slint's event loop (the running kiosk).
    EventLoop,
    /// Into a queue that [`Ui::settle`] drains (tests and screenshots, which have no loop).
    Queue,
}

/// Builds the window for `content` and wires every adapter. The caller must have a Slint
/// platform: the default one (`run`) or [`headless::init`].
pub fn init(config: &Config, content: Content, delivery: Delivery) -> anyhow::Result<Ui> {
    let window = AppWindow::new().context("creating the kiosk window")?;
    let (post, queue): (Post, _) = match delivery {
        Delivery::EventLoop => (
            Arc::new(|f: Box<dyn FnOnce() + Send>| {
                if let Err(e) = slint::invoke_from_event_loop(f) {
                    tracing::warn!("the UI event loop is gone: {e}");
                }
            }),
            None,
        ),
        Delivery::Queue => {
            let queue: Queue = Arc::default();
            let q = queue.clone();
            let post: Post = Arc::new(move |f| {
                if let Ok(mut q) = q.lock() {
                    q.push(f);
                }
            });
            (post, Some(queue))
        }
    };
    let Content { store, finder, problem, versions, desk, logo } = content;
    let (branding, functions, device) = match &store {
        Some(s) => (
            s.branding().unwrap_or_default(),
            s.functions().unwrap_or_default(),
            crate::content::settings::with_local(s.device().unwrap_or_default(), &config.data_dir),
        ),
        None => (
            Branding::default(),
            Functions::default(),
            crate::content::settings::effective(&config.data_dir),
        ),
    };
    let app = Rc::new(App {
        window: window.as_weak(),
        store,
        config: config.clone(),
        device,
        branding,
        functions,
        problem,
        versions,
        desk: RefCell::new(desk),
        session: RefCell::default(),
        search: worker::SearchWorker::start(finder, post.clone()),
        tts: RefCell::new(tts::Speaker::new(post.clone())),
        admin: RefCell::default(),
        errors: ErrorLog::default(),
        sync: RefCell::default(),
        post,
    });
    if let Some(p) = &app.problem {
        app.log_error(p.clone());
    }
    // The version this window serves: when `current` points elsewhere, a reload is due.
    app.sync.borrow_mut().serving =
        crate::bundle::current_version(&config.data_dir).ok().flatten().map(|v| v.name());
    if let Some(path) = logo {
        match slint::Image::load_from_path(&path) {
            Ok(image) => {
                window.global::<NavAdapter>().set_logo(image);
                window.global::<NavAdapter>().set_has_logo(true);
            }
            Err(_) => app.log_error(format!("标识图片无法读取：{}", path.display())),
        }
    }
    let mut timers = Vec::new();
    nav_adapter::connect(&window, &app, &mut timers);
    home_adapter::connect(&window, &app);
    list_adapter::connect(&window, &app);
    reader_adapter::connect(&window, &app);
    catalog_adapter::connect(&window, &app);
    search_adapter::connect(&window, &app);
    qr_adapter::connect(&window, &app);
    form_adapter::connect(&window, &app);
    keyboard_adapter::connect(&window, &app);
    idle_adapter::connect(&window, &app, &mut timers);
    admin_adapter::connect(&window, &app);
    nav_adapter::show(&app, Page::Home);
    Ok(Ui { window, app, queue, _timers: timers })
}

impl Ui {
    /// Waits for the search worker to finish what it was asked and runs the results it
    /// posted, as the event loop would. Only for [`Delivery::Queue`].
    pub fn settle(&self) {
        self.app.search.wait_idle();
        if let Some(queue) = &self.queue {
            let jobs: Vec<_> = match queue.lock() {
                Ok(mut q) => std::mem::take(&mut *q),
                Err(_) => Vec::new(),
            };
            for job in jobs {
                job();
            }
        }
    }

    /// Opens a page directly, as if the resident had navigated to it (screenshots).
    pub fn open(&self, page: Page) {
        nav_adapter::show(&self.app, page);
    }

    /// Switches 关怀模式 on or off.
    pub fn set_care(&self, on: bool) {
        if self.app.session.borrow().care != on {
            nav_adapter::toggle_care(&self.app);
        }
    }

    /// Runs a search as if typed, for screenshots.
    pub fn search(&self, query: &str) {
        search_adapter::set_query(&self.app, query);
    }

    /// The page showing.
    pub fn page(&self) -> Page {
        self.app.session.borrow().current()
    }

    /// Shows the admin panel unlocked (screenshots of the panel need no PIN).
    pub fn show_admin_unlocked(&self) {
        admin_adapter::open_unlocked(&self.app);
    }

    /// Shows the idle countdown or the attract loop (screenshots).
    pub fn show_idle(&self, attract: bool) {
        idle_adapter::preview(&self.app, attract);
    }

    /// The usage counters the window feeds (touches, searches, item views).
    pub fn telemetry(&self) -> Arc<crate::sync::Telemetry> {
        self.app.sync.borrow().telemetry.clone()
    }

    /// Carries out remote commands from `commands` on each sync tick, as the running
    /// kiosk does with the sync worker's (tests).
    pub fn receive_commands(&self, commands: std::sync::mpsc::Receiver<crate::sync::UiCommand>) {
        self.app.sync.borrow_mut().commands = Some(commands);
    }

    /// Runs one second of the sync timer now (tests: usage counting, reload decisions).
    pub fn sync_tick(&self) {
        sync_adapter::tick(&self.app);
    }

    /// Why the window ended its event loop on its own, if it did (tests).
    pub fn pending_exit(&self) -> Option<Exit> {
        self.app.sync.borrow().exit
    }

    /// Opens a form (request or suggestion) with the keyboard on its first field.
    pub fn focus_first_field(&self) {
        form_adapter::focus_first(&self.app);
    }
}

/// Runs the kiosk UI on the installed content until the window closes, with the sync
/// worker (when a broker is configured) and the service watchdog. When a remote `restart`,
/// newly installed content or a changed setting ends the event loop, the kiosk runs itself
/// again in the same process ([`crate::watchdog::Watchdog::restart_in_place`]).
pub fn run(config: &Config) -> anyhow::Result<()> {
    let watchdog = crate::watchdog::Watchdog::from_env();
    let sync =
        Arc::new(crate::sync::spawn_with(config, Arc::default(), Some(watchdog.register("sync"))));
    let commands = sync.take_ui_commands();
    // The first start may install the demo content first; that is bounded by systemd's
    // TimeoutStartSec, so the UI heartbeat is registered only once the loop is about to run.
    let ui = init(config, Content::installed(config), Delivery::EventLoop)?;
    let beat = watchdog.register("ui");
    // The search thread beats from its loop, so a search that never returns stops the pings.
    ui.app.search.watch(watchdog.register("search"));
    let _timers = sync_adapter::attach(&ui.app, sync, commands, &watchdog, beat);
    ui.window.show().context("showing the kiosk window")?;
    // Not `window.run()`: hiding the window must not be the only way out, the sync timer
    // ends the loop with `quit_event_loop` for a restart in place.
    slint::run_event_loop_until_quit().context("running the kiosk window")?;
    let exit = ui.app.sync.borrow().exit;
    let Some(why) = exit else {
        watchdog.stopping();
        return Ok(());
    };
    tracing::info!("kiosk restarts in place: {why:?}");
    if why == sync_adapter::Exit::Restart {
        // The command's ack was handed to the sync worker a moment ago: let it leave.
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    Err(watchdog.restart_in_place()).context("restarting the kiosk in place")
}
