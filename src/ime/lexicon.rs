//! The lexicon behind the input method: parsing the embedded TSV (built by
//! `tools/ime/build_lexicon.py`) into compact tables and an index by syllable initials.
//!
//! Every entry (a word, or one reading of a character) is indexed under the first letters of
//! its syllables (社保 she bao → "sb"), so a lookup for any way of typing it — full syllables,
//! initials, a partial last syllable — starts from one small bucket. Buckets hold entries
//! most frequent first; keys that are only a prefix of longer keys are present with an empty
//! bucket so that a search can stop as soon as no entry can match.

use std::collections::{HashMap, HashSet};

use thiserror::Error;

/// The lexicon that ships with the kiosk (see data/ime/README.md for its sources).
pub(crate) const EMBEDDED: &str = include_str!("../../data/ime/lexicon.tsv");

/// Longest entry, in syllables; the search never looks deeper than this.
pub(crate) const MAX_SYLLABLES: usize = 8;
/// Longest pinyin syllable (zhuang, chuang, shuang).
pub(crate) const MAX_SYLLABLE_LEN: usize = 6;

/// A lexicon line that cannot be used. The embedded lexicon is checked by a unit test, so
/// this is met only with a lexicon given through [`super::Ime::from_tsv`].
#[derive(Debug, Error, PartialEq, Eq)]
#[error("pinyin lexicon line {line}: {reason}")]
pub struct LexiconError {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

/// One word or one reading of a character.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    text_start: u32,
    text_len: u16,
    syl_start: u32,
    syl_len: u8,
    pub freq: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Lexicon {
    /// Syllable spellings by id (ü written v).
    syllables: Vec<Box<str>>,
    /// Spelling → id, including the spellings users also type for ü (lue → lve).
    syllable_ids: HashMap<Box<str>, u16>,
    /// Every string that is a proper prefix of some syllable (b, zh, xia, …).
    proper_prefixes: HashSet<Box<str>>,
    /// All entry texts back to back; entries point into it.
    texts: String,
    /// All entries' syllable ids back to back.
    syls: Vec<u16>,
    entries: Vec<Entry>,
    /// Packed initials key (see [`push_key`]) → entry ids, most frequent first.
    index: HashMap<u64, Vec<u32>>,
}

/// Appends one syllable's first letter to a packed key of up to [`MAX_SYLLABLES`] letters:
/// five bits per letter, so keys are plain integers and lookups allocate nothing.
pub(crate) fn push_key(key: u64, first_letter: u8) -> u64 {
    (key << 5) | u64::from(first_letter.wrapping_sub(b'a').wrapping_add(1) & 0x1f)
}

impl Lexicon {
    /// Parses `text<TAB>syllables<TAB>frequency` lines; `#` lines and blank lines are skipped.
    pub fn parse(tsv: &str) -> Result<Lexicon, LexiconError> {
        let mut lex = Lexicon::default();
        for (n, line) in tsv.lines().enumerate() {
            let line_no = n + 1;
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| LexiconError { line: line_no, reason: reason.to_string() };
            let mut fields = line.split('\t');
            let (Some(text), Some(pinyin), Some(freq), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("expected three tab-separated fields: text, syllables, frequency"));
            };
            let freq: u32 = freq.trim().parse().map_err(|_| bad("frequency is not a number"))?;
            let chars = text.chars().count();
            if chars == 0 || text.len() > usize::from(u16::MAX) {
                return Err(bad("text is empty or too long"));
            }
            let syl_start = lex.syls.len();
            for syl in pinyin.split(' ') {
                if syl.is_empty()
                    || syl.len() > MAX_SYLLABLE_LEN
                    || !syl.bytes().all(|b| b.is_ascii_lowercase())
                {
                    return Err(bad("a syllable is not 1-6 lowercase letters (write ü as v)"));
                }
                let id = lex.syllable_id(syl).ok_or_else(|| bad("more than 65535 syllables"))?;
                lex.syls.push(id);
            }
            let syl_len = lex.syls.len() - syl_start;
            if syl_len != chars {
                return Err(bad("the number of syllables differs from the number of characters"));
            }
            if syl_len > MAX_SYLLABLES {
                return Err(bad("more than 8 syllables"));
            }
            let (Ok(text_start), Ok(syl_start32)) =
                (u32::try_from(lex.texts.len()), u32::try_from(syl_start))
            else {
                return Err(bad("lexicon larger than 4 GB"));
            };
            lex.texts.push_str(text);
            lex.entries.push(Entry {
                text_start,
                text_len: text.len() as u16, // checked above
                syl_start: syl_start32,
                syl_len: syl_len as u8, // at most MAX_SYLLABLES
                freq,
            });
        }
        lex.add_aliases();
        lex.build_index();
        Ok(lex)
    }

    fn syllable_id(&mut self, syl: &str) -> Option<u16> {
        if let Some(&id) = self.syllable_ids.get(syl) {
            return Some(id);
        }
        let id = u16::try_from(self.syllables.len()).ok()?;
        self.syllables.push(syl.into());
        self.syllable_ids.insert(syl.into(), id);
        for end in 1..syl.len() {
            self.proper_prefixes.insert(syl[..end].into());
        }
        Some(id)
    }

    /// Keyboards have no ü: besides v, people type lue/nue for lüe/nüe (the standard spelling
    /// drops the dots after l and n only when no confusion is possible, and lue has none).
    fn add_aliases(&mut self) {
        for (alias, real) in [("lue", "lve"), ("nue", "nve")] {
            if let (None, Some(&id)) = (self.syllable_ids.get(alias), self.syllable_ids.get(real)) {
                self.syllable_ids.insert(alias.into(), id);
            }
        }
    }

    fn build_index(&mut self) {
        let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
        // Stable: entries of equal frequency keep their lexicon order.
        order.sort_by_key(|&i| std::cmp::Reverse(self.entries[i as usize].freq));
        for id in order {
            let entry = self.entries[id as usize];
            let mut key = 0;
            let start = entry.syl_start as usize;
            let syls = &self.syls[start..start + usize::from(entry.syl_len)];
            for (i, &syl) in syls.iter().enumerate() {
                key = push_key(key, self.syllables[usize::from(syl)].as_bytes()[0]);
                if i + 1 < syls.len() {
                    self.index.entry(key).or_default();
                }
            }
            self.index.entry(key).or_default().push(id);
        }
    }

    pub fn entry(&self, id: u32) -> &Entry {
        &self.entries[id as usize]
    }

    pub fn text(&self, entry: &Entry) -> &str {
        let start = entry.text_start as usize;
        &self.texts[start..start + usize::from(entry.text_len)]
    }

    pub fn entry_syllables(&self, entry: &Entry) -> &[u16] {
        let start = entry.syl_start as usize;
        &self.syls[start..start + usize::from(entry.syl_len)]
    }

    pub fn syllable(&self, id: u16) -> &str {
        &self.syllables[usize::from(id)]
    }

    /// The syllable spelled exactly `s`, if there is one.
    pub fn exact(&self, s: &str) -> Option<u16> {
        self.syllable_ids.get(s).copied()
    }

    /// Whether `s` is the beginning of a longer syllable.
    pub fn is_proper_prefix(&self, s: &str) -> bool {
        self.proper_prefixes.contains(s)
    }

    /// The entries under a key, or `None` when no entry's key even starts with it.
    pub fn bucket(&self, key: u64) -> Option<&[u32]> {
        self.index.get(&key).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_lexicon_parses_and_is_substantial() {
        let lex = Lexicon::parse(EMBEDDED).unwrap_or_else(|e| panic!("{e}"));
        assert!(lex.len() > 100_000, "only {} entries", lex.len());
        // The lexicon ships inside the binary; keep it small (data/ime/README.md).
        assert!(EMBEDDED.len() <= 3 * 1024 * 1024, "lexicon is {} bytes", EMBEDDED.len());
        assert!(lex.exact("zhuang").is_some() && lex.exact("lv").is_some());
        assert_eq!(lex.exact("lue"), lex.exact("lve"));
    }

    #[test]
    fn bad_lines_name_the_line() {
        let err = Lexicon::parse("# c\n社保\tshe bao\t10\n社\tshe bao\t3\n").err();
        assert_eq!(err.map(|e| e.line), Some(3));
        assert!(Lexicon::parse("社\tShe\t3\n").is_err());
        assert!(Lexicon::parse("社\tshe\tmany\n").is_err());
        assert!(Lexicon::parse("社\tshe\n").is_err());
    }
}
