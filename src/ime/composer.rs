//! One composition on the keyboard: the characters chosen so far and the letters still to
//! convert, so the keyboard adapter only forwards keys and taps.

use super::{Candidate, Fuzzy, Ime};

/// What the resident is composing: `chosen` text followed by pinyin `letters` not yet
/// converted (shown as the pre-edit, e.g. `王xiaoming` after choosing 王).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Composer {
    chosen: String,
    letters: String,
    /// For each choice, the length of `chosen` before it and the letters it used, so that
    /// backspace on empty letters takes the last choice back as its letters.
    steps: Vec<(usize, String)>,
}

impl Composer {
    pub fn new() -> Composer {
        Composer::default()
    }

    /// Adds a typed letter or apostrophe; returns false (and changes nothing) for any other
    /// key, which the keyboard then handles itself.
    pub fn push(&mut self, key: char) -> bool {
        if key.is_ascii_alphabetic() || key == '\'' {
            self.letters.push(key.to_ascii_lowercase());
            true
        } else {
            false
        }
    }

    /// Removes the last letter; with no letters left, takes back the last chosen candidate
    /// (its letters return). Returns false when there was nothing to remove.
    pub fn backspace(&mut self) -> bool {
        if self.letters.pop().is_some() {
            return true;
        }
        match self.steps.pop() {
            Some((len, letters)) => {
                self.chosen.truncate(len);
                self.letters = letters;
                true
            }
            None => false,
        }
    }

    /// The candidates for the letters still to convert.
    pub fn candidates(&self, ime: &Ime, limit: usize) -> Vec<Candidate> {
        ime.candidates(&self.letters, limit)
    }

    /// The candidates for the letters still to convert, with fuzzy readings.
    pub fn candidates_with(&self, ime: &Ime, limit: usize, fuzzy: Fuzzy) -> Vec<Candidate> {
        ime.candidates_with(&self.letters, limit, fuzzy)
    }

    /// Takes a candidate from [`Composer::candidates`]. When it used the last letters the
    /// composition is finished: the whole text is returned for the text field and the
    /// composer is empty again. A candidate that does not fit the current letters is ignored.
    pub fn choose(&mut self, candidate: &Candidate) -> Option<String> {
        if candidate.consumed == 0 || !self.letters.is_char_boundary(candidate.consumed) {
            return None;
        }
        let rest = self.letters.get(candidate.consumed..)?.to_string();
        let used = self.letters.get(..candidate.consumed)?.to_string();
        self.steps.push((self.chosen.len(), used));
        self.chosen.push_str(&candidate.text);
        self.letters = rest;
        if self.letters.bytes().all(|b| b == b'\'') {
            Some(self.take())
        } else {
            None
        }
    }

    /// Ends the composition as it stands (the Enter key): chosen text plus the letters as
    /// typed, without apostrophes.
    pub fn commit_raw(&mut self) -> String {
        self.letters.retain(|c| c != '\'');
        self.take()
    }

    fn take(&mut self) -> String {
        let mut text = std::mem::take(&mut self.chosen);
        text.push_str(&std::mem::take(&mut self.letters).replace('\'', ""));
        self.steps.clear();
        text
    }

    /// Drops the composition (the idle wipe, or closing the keyboard).
    pub fn clear(&mut self) {
        *self = Composer::default();
    }

    /// The text shown in the field while composing: chosen characters, then the letters.
    pub fn preedit(&self) -> String {
        format!("{}{}", self.chosen, self.letters)
    }

    /// The pre-edit with the letters split into syllables as the engine reads them
    /// (`王xiao'ming`); see [`Ime::spell`].
    pub fn preedit_spelled(&self, ime: &Ime) -> String {
        format!("{}{}", self.chosen, ime.spell(&self.letters))
    }

    /// The letters still to convert.
    pub fn letters(&self) -> &str {
        &self.letters
    }

    /// Nothing is being composed.
    pub fn is_empty(&self) -> bool {
        self.chosen.is_empty() && self.letters.is_empty()
    }
}
