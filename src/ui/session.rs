//! One resident's session as plain data: where they are, what they typed, how long they
//! have been away. The adapters read and change it; an idle wipe replaces it whole, so
//! nothing a resident entered survives into the next session.

use crate::content::{Kind, Validity};

/// A screen, with what is needed to show it again when the resident goes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    Home,
    List(ListState),
    Reader(String),
    /// The 公开目录 path: [] → 领域, [d] → 一级事项, [d, l1] → 二级事项, [d, l1, l2] → items.
    Catalog(Vec<String>),
    Search,
    Qr,
    Form(FormKind),
}

impl Page {
    /// The page name the Slint side switches on.
    pub fn name(&self) -> &'static str {
        match self {
            Page::Home => "home",
            Page::List(_) => "list",
            Page::Reader(_) => "reader",
            Page::Catalog(_) => "catalog",
            Page::Search => "search",
            Page::Qr => "qr",
            Page::Form(_) => "form",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListState {
    pub kind: Kind,
    pub domain: Option<String>,
    pub validity: Option<Validity>,
    /// Zero-based.
    pub page: u32,
}

impl ListState {
    pub fn new(kind: Kind) -> ListState {
        ListState { kind, domain: None, validity: None, page: 0 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormKind {
    Request,
    Suggestion,
}

/// Where the on-screen keyboard types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Search,
    /// A text field of the open form, by index.
    Field(usize),
}

/// Keyboard layouts, in the order of the Slint `mode` property.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyMode {
    #[default]
    Pinyin,
    Letters,
    Symbols,
}

impl KeyMode {
    pub fn from_index(i: i32) -> KeyMode {
        match i {
            1 => KeyMode::Letters,
            2 => KeyMode::Symbols,
            _ => KeyMode::Pinyin,
        }
    }
    pub fn index(self) -> i32 {
        match self {
            KeyMode::Pinyin => 0,
            KeyMode::Letters => 1,
            KeyMode::Symbols => 2,
        }
    }
}

/// The search screen's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchState {
    pub query: String,
    /// Kinds the resident filtered to; empty means all.
    pub kinds: Vec<Kind>,
    /// Bumped on every change; results for an older generation are dropped.
    pub generation: u64,
}

/// Everything one resident did since the last wipe.
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// The page stack; the last is showing. Empty means home.
    pub stack: Vec<Page>,
    pub search: SearchState,
    pub target: Option<Target>,
    pub mode: KeyMode,
    /// Pinyin being composed on the keyboard: chosen characters and letters not yet converted.
    pub composer: crate::ime::Composer,
    pub shift: bool,
    /// Values of the open form's fields, by field index.
    pub form_values: Vec<String>,
    pub form_errors: Vec<String>,
    pub form_kind: Option<FormKind>,
    pub form_message: String,
    pub receipt: Option<Vec<(String, String)>>,
    pub care: bool,
    /// Seconds since the last touch, counted by the idle timer.
    pub idle_seconds: u32,
}

impl Session {
    pub fn current(&self) -> Page {
        self.stack.last().cloned().unwrap_or(Page::Home)
    }

    /// Opens `page` on top of the current one. Opening home clears the stack.
    pub fn push(&mut self, page: Page) {
        if page == Page::Home {
            self.stack.clear();
        } else if self.stack.last() != Some(&page) {
            self.stack.push(page);
        }
    }

    /// Replaces the current page (a filter or page change is not a step back).
    pub fn replace(&mut self, page: Page) {
        self.stack.pop();
        self.push(page);
    }

    pub fn back(&mut self) -> Page {
        self.stack.pop();
        self.current()
    }

    pub fn can_back(&self) -> bool {
        !self.stack.is_empty()
    }
}

/// Where the idle clock stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdlePhase {
    Active,
    /// Seconds left before the wipe.
    Countdown(u32),
    /// The wipe is due (or done): the attract loop shows.
    Expired,
}

/// The idle phase after `idle` seconds without a touch.
pub fn idle_phase(idle: u32, idle_after: u32, countdown: u32) -> IdlePhase {
    if idle < idle_after {
        IdlePhase::Active
    } else if idle < idle_after.saturating_add(countdown) {
        IdlePhase::Countdown(idle_after + countdown - idle)
    } else {
        IdlePhase::Expired
    }
}

/// Whether `pin` matches the configured hash. The hash is SHA-256 of the PIN in hex,
/// optionally prefixed `sha256:`. An empty or unknown hash matches nothing: a kiosk with
/// no PIN configured has no admin panel rather than an open one.
pub fn pin_matches(pin: &str, hash: &str) -> bool {
    use sha2::{Digest, Sha256};
    let hash = hash.trim();
    let hex_hash = hash.strip_prefix("sha256:").unwrap_or(hash).to_ascii_lowercase();
    if hex_hash.len() != 64 || pin.is_empty() {
        return false;
    }
    let got = hex::encode(Sha256::digest(pin.as_bytes()));
    // Compare every byte so the time taken does not tell how much of a guess was right.
    got.bytes().zip(hex_hash.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_returns_to_the_previous_page_and_home_clears() {
        let mut s = Session::default();
        s.push(Page::List(ListState::new(Kind::Policy)));
        s.push(Page::Reader("p1".into()));
        assert_eq!(s.back(), Page::List(ListState::new(Kind::Policy)));
        s.push(Page::Home);
        assert!(!s.can_back());
        assert_eq!(s.current(), Page::Home);
    }

    #[test]
    fn idle_counts_down_then_expires() {
        assert_eq!(idle_phase(89, 90, 10), IdlePhase::Active);
        assert_eq!(idle_phase(90, 90, 10), IdlePhase::Countdown(10));
        assert_eq!(idle_phase(99, 90, 10), IdlePhase::Countdown(1));
        assert_eq!(idle_phase(100, 90, 10), IdlePhase::Expired);
    }

    #[test]
    fn pin_check_accepts_only_the_right_pin() {
        // sha256("2468")
        let hash = "sha256:a1f3b1e4ae6f1ddef6afb1f4d5d5bd9d38c1e2f8bd3a0bd0d42d5df2e0dfd3a6";
        let real =
            format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"2468")));
        assert!(pin_matches("2468", &real));
        assert!(!pin_matches("2469", &real));
        assert!(!pin_matches("2468", hash), "a different hash does not match");
        assert!(!pin_matches("2468", ""), "no PIN configured opens nothing");
        assert!(!pin_matches("", &real));
    }
}
