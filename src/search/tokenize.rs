//! The tantivy tokenizers of the index and the matching query-side term builders.
//!
//! - `bigram`: the normalised text cut at whitespace into runs; each run of two or more
//!   characters gives its overlapping character bigrams at consecutive positions (a lone
//!   character gives itself). Latin letters and digits are cut the same way as Chinese, so
//!   "0731" inside a phone number or "2020" inside a 文号 are found like 社保 inside
//!   社保卡. A query of n ≥ 2 characters becomes the phrase of its n−1 bigrams, which
//!   matches exactly the texts that contain it: that is the recall guarantee.
//! - `unigram`: every non-space character, for one-character queries.
//! - `pinyin` / `initials`: for each Chinese character every reading (多音字 included) or
//!   its first letter, at the character's position, for titles and key terms.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use pinyin::ToPinyinMulti;
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

use super::normalize::{is_han, normalize};

pub const BIGRAM: &str = "kiosk_bigram";
pub const UNIGRAM: &str = "kiosk_unigram";
pub const PINYIN: &str = "kiosk_pinyin";
pub const INITIALS: &str = "kiosk_initials";

/// A token stream over tokens made up front: the texts are short and this keeps the
/// tokenizers plain functions that the query side can share.
pub struct VecTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }
    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

fn token(text: String, position: usize) -> Token {
    // Offsets are not used: snippets are made from the stored text by `snippet`.
    Token { offset_from: 0, offset_to: 0, position, text, position_length: 1 }
}

/// The bigram tokens (text, position) of already-normalised text.
pub fn bigrams(normalized: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    for run in normalized.split(' ').filter(|r| !r.is_empty()) {
        let chars: Vec<char> = run.chars().collect();
        if chars.len() == 1 {
            out.push((chars[0].to_string(), pos));
            pos += 1;
        } else {
            for w in chars.windows(2) {
                out.push((w.iter().collect(), pos));
                pos += 1;
            }
        }
        // A gap, so that no phrase runs from the end of one run into the next.
        pos += 1;
    }
    out
}

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Bigram,
    Unigram,
    Pinyin,
    Initials,
}

#[derive(Clone, Debug)]
pub struct KioskTokenizer(pub Kind);

impl Tokenizer for KioskTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let normalized = normalize(text);
        let tokens = match self.0 {
            Kind::Bigram => bigrams(&normalized).into_iter().map(|(t, p)| token(t, p)).collect(),
            Kind::Unigram => normalized
                .chars()
                .filter(|c| *c != ' ')
                .enumerate()
                .map(|(i, c)| token(c.to_string(), i))
                .collect(),
            Kind::Pinyin | Kind::Initials => {
                let initials = matches!(self.0, Kind::Initials);
                let mut out = Vec::new();
                for (i, c) in normalized.chars().enumerate() {
                    for r in readings(c, initials) {
                        out.push(token(r, i));
                    }
                }
                out
            }
        };
        VecTokenStream { tokens, next: 0 }
    }
}

/// The plain readings of a Chinese character (ü written v, as on a keyboard), or their
/// first letters; nothing for other characters.
pub fn readings(c: char, initials: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if !is_han(c) {
        return out;
    }
    if let Some(multi) = c.to_pinyin_multi() {
        for p in multi {
            let plain = p.plain().replace('ü', "v");
            let r = if initials { plain.chars().take(1).collect() } else { plain };
            if !r.is_empty() && !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// The most common full pinyin of `s` (one reading a character, no separators) and its
/// initials, for suggestions and the pinyin lexicon. Characters without pinyin are kept
/// as they are.
pub fn pinyin_of(s: &str) -> (String, String) {
    let mut full = String::new();
    let mut init = String::new();
    for c in normalize(s).chars() {
        if c == ' ' {
            continue;
        }
        match readings(c, false).into_iter().next() {
            Some(r) => {
                init.push_str(&r[..1]);
                full.push_str(&r);
            }
            None => {
                full.push(c);
                init.push(c);
            }
        }
    }
    (full, init)
}

/// Every plain pinyin syllable.
fn syllables() -> &'static BTreeSet<String> {
    static SET: OnceLock<BTreeSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = BTreeSet::new();
        for c in '\u{4e00}'..='\u{9fff}' {
            set.extend(readings(c, false));
        }
        set
    })
}

/// The ways an ASCII-letter query splits into whole pinyin syllables ("xian" → [xian],
/// [xi, an]), at most `max` of them, fewest syllables first.
pub fn segment_pinyin(term: &str, max: usize) -> Vec<Vec<String>> {
    let set = syllables();
    let mut out = Vec::new();
    let mut cur = Vec::new();
    fn go(
        rest: &str,
        set: &BTreeSet<String>,
        cur: &mut Vec<String>,
        out: &mut Vec<Vec<String>>,
        max: usize,
    ) {
        if out.len() >= max * 4 {
            return;
        }
        if rest.is_empty() {
            out.push(cur.clone());
            return;
        }
        // Longest syllables first; no syllable is longer than six letters (zhuang).
        for len in (1..=rest.len().min(6)).rev() {
            if let Some(head) = rest.get(..len) {
                if set.contains(head) {
                    cur.push(head.to_string());
                    go(&rest[len..], set, cur, out, max);
                    cur.pop();
                }
            }
        }
    }
    if term.is_empty() || !term.bytes().all(|b| b.is_ascii_lowercase()) {
        return out;
    }
    go(term, set, &mut cur, &mut out, max);
    out.sort_by_key(Vec::len);
    out.truncate(max);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigrams_of_runs_with_gaps() {
        let b = bigrams("社会保险 a 12");
        let texts: Vec<&str> = b.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["社会", "会保", "保险", "a", "12"]);
        assert_eq!(b[2].1 + 2, b[3].1, "a gap between runs");
    }

    #[test]
    fn pinyin_of_common_terms() {
        assert_eq!(pinyin_of("社保"), ("shebao".to_string(), "sb".to_string()));
        assert_eq!(pinyin_of("户口"), ("hukou".to_string(), "hk".to_string()));
        assert!(readings('长', false).contains(&"chang".to_string()));
        assert!(readings('长', false).contains(&"zhang".to_string()));
        assert_eq!(readings('女', false)[0], "nv", "ü is typed v");
    }

    #[test]
    fn pinyin_segments_into_syllables() {
        assert!(segment_pinyin("shebao", 8).contains(&vec!["she".to_string(), "bao".to_string()]));
        let xian = segment_pinyin("xian", 8);
        assert!(xian.contains(&vec!["xian".to_string()]));
        assert!(xian.contains(&vec!["xi".to_string(), "an".to_string()]));
        assert!(segment_pinyin("qq1", 8).is_empty());
    }
}
