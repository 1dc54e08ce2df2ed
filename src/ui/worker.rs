//! The search worker: a thread that owns the search backend, answers the newest query and
//! posts the result back to the UI thread, so search-as-you-type never blocks a frame.
//!
//! Once given a watchdog heartbeat ([`SearchWorker::watch`]) the thread beats on every turn
//! of its loop and waits for work with `recv_timeout(beat interval)`: an idle worker keeps
//! beating, a worker stuck in one search does not, and the kiosk is restarted.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::content::{Kind, Validity};
use crate::watchdog::Heartbeat;

use super::Post;

/// A piece of a title or snippet; `highlight` pieces matched the query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub highlight: bool,
}

/// One search hit as the results list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub id: String,
    pub kind: Kind,
    pub validity: Validity,
    pub title: Vec<Piece>,
    pub snippet: Vec<Piece>,
}

impl Hit {
    pub fn plain_title(&self) -> String {
        self.title.iter().map(|p| p.text.as_str()).collect()
    }
}

/// What a search backend answers: hits and, for the box, suggestions.
pub trait Finder: Send {
    fn find(
        &mut self,
        query: &str,
        kinds: &[Kind],
        limit: usize,
    ) -> anyhow::Result<(Vec<Hit>, u64)>;
    fn suggest(&mut self, prefix: &str, limit: usize) -> Vec<String>;
}

/// The search backend of a content version's index, when the search engine can open it.
pub fn open_finder(index_dir: &Path) -> Option<Box<dyn Finder>> {
    super::search_adapter::engine_finder(index_dir)
}

/// The answer to one query.
pub struct Answer {
    pub generation: u64,
    pub query: String,
    pub hits: Vec<Hit>,
    pub total: u64,
    pub suggestions: Vec<String>,
    pub error: Option<String>,
}

struct Request {
    generation: u64,
    query: String,
    kinds: Vec<Kind>,
    reply: Box<dyn FnOnce(Answer) + Send>,
}

/// What the worker thread receives.
enum Message {
    Ask(Request),
    /// From now on, beat this heartbeat from the worker's loop.
    Watch(Heartbeat),
}

/// How long the worker waits for a query before it looks at its heartbeat again while it
/// has none (it then only waits for work).
const IDLE_WAIT: Duration = Duration::from_secs(3600);

/// Handle to the worker thread. Dropping it ends the thread.
pub struct SearchWorker {
    tx: Option<Sender<Message>>,
    pending: Arc<(Mutex<usize>, Condvar)>,
    available: bool,
    /// The generation of the newest query asked; answers to older ones are dropped.
    latest: Arc<AtomicU64>,
}

/// Counts a request as done however the worker leaves it (answered, failed or panicked),
/// so `wait_idle` never hangs and the "busy" state never sticks.
struct Done(Arc<(Mutex<usize>, Condvar)>);

impl Drop for Done {
    fn drop(&mut self) {
        let (lock, cv) = &*self.0;
        if let Ok(mut n) = lock.lock() {
            *n = n.saturating_sub(1);
        }
        cv.notify_all();
    }
}

impl SearchWorker {
    pub fn start(finder: Option<Box<dyn Finder>>, post: Post) -> SearchWorker {
        let pending: Arc<(Mutex<usize>, Condvar)> = Arc::default();
        let available = finder.is_some();
        let Some(finder) = finder else {
            return SearchWorker { tx: None, pending, available, latest: Arc::default() };
        };
        let (tx, rx) = channel::<Message>();
        let p = pending.clone();
        let spawned = std::thread::Builder::new()
            .name("search".into())
            .spawn(move || worker_loop(finder, rx, post, p));
        if let Err(e) = spawned {
            tracing::error!("cannot start the search thread: {e}");
            return SearchWorker { tx: None, pending, available: false, latest: Arc::default() };
        }
        SearchWorker { tx: Some(tx), pending, available, latest: Arc::default() }
    }

    pub fn available(&self) -> bool {
        self.available
    }

    /// Asks for `query`; `reply` runs on the UI thread with the answer. Older queries still
    /// waiting are skipped by the worker, which answers only the newest.
    pub fn ask(
        &self,
        generation: u64,
        query: String,
        kinds: Vec<Kind>,
        reply: impl FnOnce(Answer) + Send + 'static,
    ) {
        let Some(tx) = &self.tx else { return };
        {
            let (lock, _) = &*self.pending;
            if let Ok(mut n) = lock.lock() {
                *n += 1;
            }
        }
        self.latest.store(generation, Ordering::SeqCst);
        let request = Request { generation, query, kinds, reply: Box::new(reply) };
        if tx.send(Message::Ask(request)).is_err() {
            drop(Done(self.pending.clone()));
        }
    }

    /// Makes the worker thread beat `beat` from its loop (register it right before, in
    /// `ui::run`). Without a worker thread (no search index) there is nothing that can
    /// hang, so the heartbeat is retired.
    pub fn watch(&self, beat: Heartbeat) {
        match &self.tx {
            Some(tx) => {
                if let Err(std::sync::mpsc::SendError(Message::Watch(beat))) =
                    tx.send(Message::Watch(beat))
                {
                    // The thread is gone (it panicked); the stale heartbeat says so.
                    tracing::error!(
                        "the search thread ended; heartbeat {} left stale",
                        beat.name()
                    );
                }
            }
            None => beat.retire(),
        }
    }

    /// Shared with replies, which check that they still answer the newest query.
    pub fn latest(&self) -> Arc<AtomicU64> {
        self.latest.clone()
    }

    /// Blocks until every request sent so far has been answered (tests and screenshots).
    pub fn wait_idle(&self) {
        let (lock, cv) = &*self.pending;
        let Ok(mut n) = lock.lock() else { return };
        while *n > 0 {
            n = match cv.wait(n) {
                Ok(n) => n,
                Err(_) => return,
            };
        }
    }
}

fn worker_loop(
    mut finder: Box<dyn Finder>,
    rx: Receiver<Message>,
    post: Post,
    pending: Arc<(Mutex<usize>, Condvar)>,
) {
    let mut beat: Option<Heartbeat> = None;
    loop {
        if let Some(b) = &beat {
            b.beat();
        }
        let wait = beat.as_ref().map_or(IDLE_WAIT, Heartbeat::interval);
        let mut req = match rx.recv_timeout(wait) {
            Ok(Message::Ask(req)) => req,
            Ok(Message::Watch(b)) => {
                beat = Some(b);
                continue;
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Skip to the newest request: the resident has typed on since the older ones.
        while let Ok(newer) = rx.try_recv() {
            match newer {
                Message::Ask(newer) => {
                    drop(Done(pending.clone()));
                    req = newer;
                }
                Message::Watch(b) => beat = Some(b),
            }
        }
        let done = Done(pending.clone());
        let suggestions = finder.suggest(&req.query, 6);
        let (hits, total, error) = match finder.find(&req.query, &req.kinds, 30) {
            Ok((hits, total)) => (hits, total, None),
            Err(e) => (Vec::new(), 0, Some(format!("{e:#}"))),
        };
        let answer = Answer {
            generation: req.generation,
            query: req.query,
            hits,
            total,
            suggestions,
            error,
        };
        let reply = req.reply;
        post(Box::new(move || reply(answer)));
        // Counted done once posted: a test's settle() waits for this, then runs the queue.
        drop(done);
    }
    // The UI dropped the worker on purpose (the kiosk is ending): not a hang.
    if let Some(b) = beat {
        b.retire();
    }
}
