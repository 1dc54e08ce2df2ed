//! Read-aloud through espeak-ng's Mandarin voice (`cmn`), as a subprocess so the UI
//! thread never waits on it. (Printing is `crate::print`.)

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;

use super::Post;

/// Whether the TTS program is installed (no button when it is not).
pub fn available() -> bool {
    on_path("espeak-ng")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The one voice speaking, if any.
pub struct Speaker {
    child: Arc<Mutex<Option<Child>>>,
    post: Post,
}

impl Speaker {
    pub fn new(post: Post) -> Speaker {
        Speaker { child: Arc::default(), post }
    }

    /// Speaks `text`, stopping whatever was speaking. `on_end` runs on the UI thread when
    /// the speech ends by itself (not when stopped).
    pub fn speak(
        &mut self,
        text: &str,
        on_end: impl FnOnce() + Send + 'static,
    ) -> anyhow::Result<()> {
        self.stop();
        let mut child = Command::new("espeak-ng")
            .args(["-v", "cmn", "-s", "150", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting espeak-ng")?;
        let mut stdin = child.stdin.take().context("espeak-ng has no stdin")?;
        let text = text.to_string();
        // Write from a thread: a long document would fill the pipe before espeak reads it.
        std::thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        });
        *self.child.lock().map_err(|_| anyhow::anyhow!("speaker state poisoned"))? = Some(child);
        let slot = self.child.clone();
        let post = self.post.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            let Ok(mut guard) = slot.lock() else { return };
            let finished = match guard.as_mut() {
                // Stopped (or replaced) by the UI: nothing to report.
                None => return,
                Some(c) => !matches!(c.try_wait(), Ok(None)),
            };
            if finished {
                *guard = None;
                drop(guard);
                post(Box::new(on_end));
                return;
            }
        });
        Ok(())
    }

    /// Stops speaking now.
    pub fn stop(&mut self) {
        if let Ok(mut guard) = self.child.lock() {
            if let Some(mut child) = guard.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        self.stop();
    }
}
