//! The pinyin input method behind the on-screen keyboard: from the letters a resident has
//! typed to the candidate bar's words and characters, ranked by frequency.
//!
//! The engine knows nothing of the UI: the keyboard adapter keeps the typed letters, asks
//! [`Ime::candidates`] after each keystroke, and when a candidate is chosen keeps
//! `&input[candidate.consumed..]` as the letters still to convert (or uses [`Composer`],
//! which does that bookkeeping).
//!
//! How input is read: the letters are split into tokens in every way that can name a word.
//! A token is a whole syllable (`she`), an initial standing for any syllable that starts with
//! it (`s`, `sh`, also `b` in `sb`), or — for the last token only — any beginning of a
//! syllable (`sheb`, `zhon`). An apostrophe forces a split (`xi'an`); `v` is ü (`lv` 绿), and
//! `lue`/`nue` are accepted for lüe/nüe; with [`Fuzzy`] rules (opt-in, for residents who do
//! not tell z/zh, n/l or an/ang apart) the other spelling of a syllable is tried as well.
//! Each split is looked up under the first letters of its tokens (see `lexicon.rs`), and the
//! search stops as soon as no entry starts that way, so a keystroke costs well under a
//! millisecond in a release build.
//!
//! Nothing is learnt from what residents type: the ranking comes from the shipped lexicon
//! only, so no trace of one resident's input outlives their session.
//!
//! Ranking: candidates that use more of the input come first (the whole input before the
//! words and characters of its first syllables, so a name can be built char by char); among
//! those, splits made of whole syllables before those that use initials or a partial
//! syllable; then frequency.

mod composer;
mod lexicon;

use std::collections::HashSet;
use std::sync::OnceLock;

pub use composer::Composer;
pub use lexicon::LexiconError;

use lexicon::{push_key, Lexicon, MAX_SYLLABLES, MAX_SYLLABLE_LEN};

/// One entry on the candidate bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// What choosing it inserts: a word or a single character.
    pub text: String,
    /// How many bytes (all ASCII) at the start of the input this candidate stands for,
    /// including apostrophes right after it; `&input[consumed..]` is what is left to convert.
    pub consumed: usize,
}

/// The pinyin engine with its lexicon. Immutable once built, so one instance can be shared
/// by every keyboard on every thread; see [`Ime::shared`].
#[derive(Debug)]
pub struct Ime {
    lex: Lexicon,
}

impl Default for Ime {
    fn default() -> Self {
        Ime::new()
    }
}

impl Ime {
    /// Builds the engine from the embedded lexicon (about 0.1-0.3 s). A lexicon that does not
    /// parse (only possible with a broken build; a unit test guards it) gives an engine that
    /// offers no candidates, and an error in the log, rather than a kiosk that cannot type.
    pub fn new() -> Ime {
        match Ime::from_tsv(lexicon::EMBEDDED) {
            Ok(ime) => ime,
            Err(err) => {
                tracing::error!("pinyin input method disabled: {err}");
                Ime { lex: Lexicon::default() }
            }
        }
    }

    /// The process-wide engine, built on first use. Call it once from a background thread at
    /// start-up so the first keystroke does not pay for parsing the lexicon.
    pub fn shared() -> &'static Ime {
        static SHARED: OnceLock<Ime> = OnceLock::new();
        SHARED.get_or_init(Ime::new)
    }

    /// Builds the engine from a lexicon in the format of data/ime/lexicon.tsv
    /// (`text<TAB>syllables separated by spaces<TAB>frequency`, `#` comments).
    pub fn from_tsv(tsv: &str) -> Result<Ime, LexiconError> {
        Ok(Ime { lex: Lexicon::parse(tsv)? })
    }

    /// Number of entries (words plus character readings) in the lexicon.
    pub fn len(&self) -> usize {
        self.lex.len()
    }

    /// Whether the lexicon is empty (then no input has candidates).
    pub fn is_empty(&self) -> bool {
        self.lex.len() == 0
    }

    /// Up to `limit` candidates for the pinyin `input`, best first (see the module docs for
    /// the ranking). Input is ASCII letters (any case) and apostrophes; anything else, or
    /// letters that cannot begin pinyin, give no candidates.
    pub fn candidates(&self, input: &str, limit: usize) -> Vec<Candidate> {
        self.candidates_with(input, limit, Fuzzy::default())
    }

    /// [`Ime::candidates`], also reading syllables as the `fuzzy` rules allow (`sebao` finds
    /// 社保 with [`Fuzzy::retroflex`]). Fuzzy readings rank after exact ones.
    pub fn candidates_with(&self, input: &str, limit: usize, fuzzy: Fuzzy) -> Vec<Candidate> {
        if limit == 0 || !input.bytes().all(|b| b.is_ascii_alphabetic() || b == b'\'') {
            return Vec::new();
        }
        let letters = input.to_ascii_lowercase();
        let mut search = Search {
            lex: &self.lex,
            input: letters.as_bytes(),
            limit,
            fuzzy,
            best_from: Vec::new(),
            tokens: Vec::with_capacity(MAX_SYLLABLES),
            hits: Vec::new(),
        };
        search.plan();
        search.walk(0, 0, Cost::default());
        let mut hits = search.hits;
        hits.sort_by_key(|h| {
            (std::cmp::Reverse(h.consumed), h.partial_tokens, std::cmp::Reverse(h.freq), h.entry)
        });
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(limit);
        for hit in hits {
            let text = self.lex.text(self.lex.entry(hit.entry));
            if seen.insert(text) {
                out.push(Candidate { text: text.to_string(), consumed: hit.consumed });
                if out.len() == limit {
                    break;
                }
            }
        }
        out
    }

    /// The input as it is read, syllables split by apostrophes (`shebao` → `she'bao`,
    /// `xian` → `xian`, `sb` → `s'b`), for the pre-edit so a resident sees how their letters
    /// are understood. Input that cannot be read (or is not pinyin) comes back unchanged.
    pub fn spell(&self, input: &str) -> String {
        if !input.bytes().all(|b| b.is_ascii_alphabetic() || b == b'\'') {
            return input.to_string();
        }
        let letters = input.to_ascii_lowercase();
        let mut search = Search {
            lex: &self.lex,
            input: letters.as_bytes(),
            limit: 0,
            fuzzy: Fuzzy::default(),
            best_from: Vec::new(),
            tokens: Vec::new(),
            hits: Vec::new(),
        };
        search.plan();
        let mut out = String::with_capacity(input.len() + 8);
        let mut pos = search.skip_apostrophes(0);
        while pos < letters.len() {
            let Some(cost) = search.best_from[pos] else {
                out.push_str(&input[pos..]);
                break;
            };
            // The longest first syllable among the cheapest splits: fang'an, not fan'gan.
            let next = search.tokens_at(pos).into_iter().rev().find(|c| {
                search.best_from[search.skip_apostrophes(c.end)]
                    .is_some_and(|rest| rest.add(c.exact()) == cost)
            });
            let Some(next) = next else {
                out.push_str(&input[pos..]);
                break;
            };
            out.push_str(&input[pos..next.end]);
            pos = search.skip_apostrophes(next.end);
            if pos < letters.len() {
                out.push('\'');
            }
        }
        out
    }
}

/// Pronunciations that many speakers do not tell apart (southern Mandarin, and many elderly
/// residents): when enabled, typing either spelling finds both. All off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fuzzy {
    /// z = zh, c = ch, s = sh (`sebao` → 社保).
    pub retroflex: bool,
    /// n = l (`lingxiang` → 宁乡).
    pub n_l: bool,
    /// an = ang, en = eng, in = ing (`cansa` → 长沙 with `retroflex`).
    pub nasal: bool,
}

impl Fuzzy {
    /// Every rule on.
    pub const ALL: Fuzzy = Fuzzy { retroflex: true, n_l: true, nasal: true };

    /// The other spellings of `s` under these rules (not `s` itself), at most 7.
    fn variants(self, s: &str) -> Vec<String> {
        let mut out = vec![s.to_string()];
        if self.retroflex {
            let swapped = ["zh", "ch", "sh"]
                .iter()
                .find_map(|r| s.strip_prefix(r).map(|rest| format!("{}{rest}", &r[..1])))
                .or_else(|| {
                    ["z", "c", "s"]
                        .iter()
                        .find_map(|r| s.strip_prefix(r).map(|rest| format!("{r}h{rest}")))
                });
            out.extend(swapped);
        }
        if self.n_l {
            let swapped: Vec<String> = out
                .iter()
                .filter_map(|v| {
                    v.strip_prefix('n')
                        .map(|rest| format!("l{rest}"))
                        .or_else(|| v.strip_prefix('l').map(|rest| format!("n{rest}")))
                })
                .collect();
            out.extend(swapped);
        }
        if self.nasal {
            let swapped: Vec<String> = out
                .iter()
                .filter_map(|v| {
                    if v.ends_with("ang") || v.ends_with("eng") || v.ends_with("ing") {
                        Some(v[..v.len() - 1].to_string())
                    } else if v.ends_with("an") || v.ends_with("en") || v.ends_with("in") {
                        Some(format!("{v}g"))
                    } else {
                        None
                    }
                })
                .collect();
            out.extend(swapped);
        }
        out.remove(0);
        out
    }
}

/// One piece of a split of the input.
#[derive(Debug, Clone, Copy)]
enum Token {
    /// Exactly this syllable.
    Exact(u16),
    /// Any syllable starting with `input[start..end]`.
    Prefix { start: usize, end: usize },
    /// One of these syllables (the fuzzy readings of what was typed that share a first
    /// letter; unused slots repeat the first).
    Fuzzy([u16; 4]),
}

/// A token that can start at some position, with where it ends and the first letter of the
/// syllables it stands for (which files them in the index).
#[derive(Debug, Clone, Copy)]
struct Choice {
    end: usize,
    token: Token,
    first_letter: u8,
}

impl Choice {
    fn exact(&self) -> bool {
        matches!(self.token, Token::Exact(_))
    }
}

/// An entry matched by one split, with what ranks it.
#[derive(Debug, Clone, Copy)]
struct Hit {
    entry: u32,
    consumed: usize,
    /// Tokens that were initials, a partial syllable or a fuzzy reading: fewer means a
    /// surer reading.
    partial_tokens: u16,
    freq: u32,
}

/// How far a split is from reading the input as whole syllables: compared as (partial
/// tokens, tokens), so `she|bao` beats `s|he|bao` and `xian` beats `xi|an`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Cost {
    partial: u16,
    tokens: u16,
}

impl Cost {
    fn add(self, exact: bool) -> Cost {
        Cost { partial: self.partial + u16::from(!exact), tokens: self.tokens + 1 }
    }
}

/// Depth-first enumeration of the splits of one input.
struct Search<'a> {
    lex: &'a Lexicon,
    input: &'a [u8],
    limit: usize,
    fuzzy: Fuzzy,
    /// Cheapest cost of splitting `input[pos..]`, by position; `None` where it cannot be.
    best_from: Vec<Option<Cost>>,
    tokens: Vec<Token>,
    hits: Vec<Hit>,
}

impl Search<'_> {
    fn skip_apostrophes(&self, mut pos: usize) -> usize {
        while self.input.get(pos) == Some(&b'\'') {
            pos += 1;
        }
        pos
    }

    /// The tokens `input[start..]` can begin with.
    fn tokens_at(&self, start: usize) -> Vec<Choice> {
        let segment_end = self.input[start..]
            .iter()
            .position(|&b| b == b'\'')
            .map_or(self.input.len(), |i| start + i);
        let longest = (segment_end - start).min(MAX_SYLLABLE_LEN);
        let first_letter = self.input[start];
        let mut choices = Vec::new();
        for len in 1..=longest {
            let end = start + len;
            // All ASCII, checked by the caller.
            let Ok(s) = std::str::from_utf8(&self.input[start..end]) else { break };
            let at_end = self.skip_apostrophes(end) == self.input.len();
            if let Some(id) = self.lex.exact(s) {
                choices.push(Choice { end, token: Token::Exact(id), first_letter });
            }
            // Inside the input a partial syllable must be an initial (sb, zhg); at the end
            // any beginning of a syllable is the one still being typed (sheb, zhon).
            if self.lex.is_proper_prefix(s) && (at_end || is_initial(s)) {
                choices.push(Choice { end, token: Token::Prefix { start, end }, first_letter });
            }
            if self.fuzzy != Fuzzy::default() {
                self.fuzzy_choices(s, end, &mut choices);
            }
        }
        choices
    }

    /// Adds a [`Token::Fuzzy`] per first letter for the fuzzy readings of `s`.
    fn fuzzy_choices(&self, s: &str, end: usize, choices: &mut Vec<Choice>) {
        let mut ids: Vec<(u8, u16)> = self
            .fuzzy
            .variants(s)
            .iter()
            .filter_map(|v| Some((v.as_bytes()[0], self.lex.exact(v)?)))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for group in ids.chunk_by(|a, b| a.0 == b.0) {
            let mut slots = [group[0].1; 4];
            for (slot, &(_, id)) in slots.iter_mut().zip(group) {
                *slot = id;
            }
            choices.push(Choice { end, token: Token::Fuzzy(slots), first_letter: group[0].0 });
        }
    }

    /// Finds the cheapest split of every suffix of the input. Candidates that stop short of
    /// the whole input are offered only along a cheapest split of it: for `wangxiaoming`
    /// 王 then 小, not 网校 leaving `ming` or 往昔 leaving `aoming`.
    fn plan(&mut self) {
        let len = self.input.len();
        let mut best: Vec<Option<Cost>> = vec![None; len + 1];
        best[len] = Some(Cost::default());
        for pos in (0..len).rev() {
            if self.input[pos] == b'\'' {
                best[pos] = best[pos + 1];
                continue;
            }
            best[pos] = self
                .tokens_at(pos)
                .iter()
                .filter_map(|c| Some(best[self.skip_apostrophes(c.end)]?.add(c.exact())))
                .min();
        }
        self.best_from = best;
    }

    /// Tries every token that can start at `pos`, given the tokens so far (packed in `key`,
    /// costing `cost`).
    fn walk(&mut self, pos: usize, key: u64, cost: Cost) {
        let lex = self.lex;
        let start = self.skip_apostrophes(pos);
        if start == self.input.len() {
            return;
        }
        for choice in self.tokens_at(start) {
            let key = push_key(key, choice.first_letter);
            // No entry's syllables start with these initials: nothing deeper can match either.
            let Some(bucket) = lex.bucket(key) else { continue };
            let consumed = self.skip_apostrophes(choice.end);
            let cost = cost.add(choice.exact());
            self.tokens.push(choice.token);
            if self.offers(consumed, cost) {
                self.collect(bucket, consumed, cost);
            }
            if consumed < self.input.len() && self.tokens.len() < MAX_SYLLABLES {
                self.walk(consumed, key, cost);
            }
            self.tokens.pop();
        }
    }

    /// Whether a split that has used `input[..consumed]` at `cost` may offer candidates:
    /// always when it covers the whole input, otherwise only on a cheapest split of it (or,
    /// when the input as a whole cannot be split, when it is all whole syllables).
    fn offers(&self, consumed: usize, cost: Cost) -> bool {
        if consumed == self.input.len() {
            return true;
        }
        match (self.best_from[0], self.best_from[consumed]) {
            (Some(total), Some(rest)) => {
                Cost { partial: cost.partial + rest.partial, tokens: cost.tokens + rest.tokens }
                    == total
            }
            (None, _) => cost.partial == 0,
            (Some(_), None) => false,
        }
    }

    /// Adds the `limit` most frequent entries of `bucket` that match the current tokens.
    /// More cannot be needed: every hit of one split ranks by frequency alone.
    fn collect(&mut self, bucket: &[u32], consumed: usize, cost: Cost) {
        let lex = self.lex;
        let partial_tokens = cost.partial;
        let mut texts: Vec<&str> = Vec::new();
        for &id in bucket {
            let entry = lex.entry(id);
            let syls = lex.entry_syllables(entry);
            let matches = syls.iter().zip(&self.tokens).all(|(&syl, token)| match *token {
                Token::Exact(want) => syl == want,
                Token::Prefix { start, end } => {
                    lex.syllable(syl).as_bytes().starts_with(&self.input[start..end])
                }
                Token::Fuzzy(ids) => ids.contains(&syl),
            });
            if !matches {
                continue;
            }
            // A polyphone can match twice (着 zhe/zhao under "zh"); list it once.
            let text = lex.text(entry);
            if texts.contains(&text) {
                continue;
            }
            texts.push(text);
            self.hits.push(Hit { entry: id, consumed, partial_tokens, freq: entry.freq });
            if texts.len() == self.limit {
                break;
            }
        }
    }
}

/// Initials that may stand for a whole syllable inside the input: one letter that starts
/// some syllable (not i, u, v), or zh, ch, sh.
fn is_initial(s: &str) -> bool {
    matches!(s, "zh" | "ch" | "sh") || (s.len() == 1 && !matches!(s, "i" | "u" | "v"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzy_variants_swap_one_sound_at_a_time_or_together() {
        let mut v = Fuzzy::ALL.variants("zhang");
        v.sort();
        assert_eq!(v, ["zan", "zang", "zhan"]);
        assert_eq!(Fuzzy { nasal: true, ..Fuzzy::default() }.variants("ling"), ["lin"]);
        assert_eq!(Fuzzy { n_l: true, ..Fuzzy::default() }.variants("nong"), ["long"]);
        assert!(Fuzzy::default().variants("zhang").is_empty());
    }
}
