//! Highlighted snippets: the original text cut around the first match, as fragments the UI
//! renders (highlighted or not). Matching is done on the normalised text, so a query typed
//! in traditional characters or with other brackets still lights up the original words.

use serde::{Deserialize, Serialize};

use super::normalize::normalize_mapped;

/// A piece of a title or snippet; `highlight` marks the parts that matched the query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fragment {
    pub text: String,
    pub highlight: bool,
}

/// At most this many matches of one needle are highlighted: enough for any screen.
const MAX_MATCHES: usize = 64;

/// Cuts `text` into fragments, highlighting every occurrence of the (normalised) needles.
/// With `window`, only about that many characters around the first match are kept, with
/// “…” where the text was cut; newlines become spaces.
pub fn fragments(text: &str, needles: &[String], window: Option<usize>) -> Vec<Fragment> {
    let m = normalize_mapped(text);
    if m.chars.is_empty() {
        return Vec::new();
    }
    let norm: String = m.chars.iter().collect();
    let mut starts = Vec::with_capacity(m.chars.len());
    let mut b = 0;
    for c in &m.chars {
        starts.push(b);
        b += c.len_utf8();
    }
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for needle in needles.iter().filter(|n| !n.is_empty()) {
        let len = needle.chars().count();
        for (at, _) in norm.match_indices(needle.as_str()).take(MAX_MATCHES) {
            let ci = starts.partition_point(|&x| x < at);
            ranges.push((ci, ci + len));
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.0 <= last.1 => last.1 = last.1.max(r.1),
            _ => merged.push(r),
        }
    }

    let n = m.chars.len();
    let (from, to) = match window {
        None => (0, n),
        Some(w) => {
            let first = merged.first().map_or(0, |r| r.0);
            // Start a little before the match, at a sentence start when one is near.
            let mut from = first.saturating_sub(w / 4);
            if let Some(p) = (from..first)
                .rev()
                .find(|&i| matches!(m.chars[i], '。' | '；' | ';' | '\n' | '!' | '?' | '！' | '？'))
            {
                from = p + 1;
            }
            let to = (from + w).min(n);
            // Near the end, show a full window rather than a stub.
            let from = if to == n { n.saturating_sub(w) } else { from };
            (from, to)
        }
    };

    let mut out = Vec::new();
    let push = |s: &str, highlight: bool, out: &mut Vec<Fragment>| {
        let s = s.replace(['\n', '\r', '\t'], " ");
        if s.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(Fragment { text, highlight: h }) if *h == highlight => text.push_str(&s),
            _ => out.push(Fragment { text: s, highlight }),
        }
    };
    if from > 0 {
        push("…", false, &mut out);
    }
    // Brackets and other dropped characters have no normalised character: at an end of the
    // text they belong to it all the same (a title ending in ） keeps it).
    let byte_start = if from == 0 { 0 } else { m.source[from].0 };
    let byte_end = if to == n { text.len() } else { m.source[to - 1].1 };
    let mut cursor = byte_start;
    for (a, z) in merged {
        // A match cut by the window is shown plain rather than half-highlighted.
        if a < from || z > to {
            continue;
        }
        let hs = m.source[a].0;
        let he = m.source[z - 1].1;
        if hs < cursor {
            continue;
        }
        push(&text[cursor..hs], false, &mut out);
        push(&text[hs..he], true, &mut out);
        cursor = he;
    }
    if cursor < byte_end {
        push(&text[cursor..byte_end], false, &mut out);
    }
    if to < n {
        push("…", false, &mut out);
    }
    out
}

/// The fragments as one plain string, for the command line and logs.
pub fn plain(fragments: &[Fragment]) -> String {
    fragments.iter().map(|f| f.text.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(f: &[Fragment]) -> String {
        f.iter()
            .map(|f| if f.highlight { format!("[{}]", f.text) } else { f.text.clone() })
            .collect()
    }

    #[test]
    fn highlights_original_text_of_a_traditional_query() {
        let f = fragments("参加社会保险的人员", &["社会保险".to_string()], None);
        assert_eq!(marked(&f), "参加[社会保险]的人员");
        let f = fragments("參加社會保險", &["社会保险".to_string()], None);
        assert_eq!(marked(&f), "參加[社會保險]");
    }

    #[test]
    fn doc_number_with_brackets_is_highlighted_whole() {
        let f = fragments("依据长政务办〔2020〕8号文件", &["长政务办20208号".to_string()], None);
        assert_eq!(marked(&f), "依据[长政务办〔2020〕8号]文件");
    }

    #[test]
    fn brackets_at_either_end_are_kept() {
        let title = "户口迁入（投靠、购房、就业落户）";
        assert_eq!(plain(&fragments(title, &["社保".to_string()], None)), title);
        let f = fragments("《户口登记条例》", &["户口".to_string()], None);
        assert_eq!(marked(&f), "《[户口]登记条例》");
        let f = fragments("（一）低保", &["低保".to_string()], Some(40));
        assert_eq!(marked(&f), "（一）[低保]");
    }

    #[test]
    fn window_cuts_around_the_first_match() {
        let text = format!("{}。低保申请条件{}", "甲".repeat(100), "乙".repeat(100));
        let f = fragments(&text, &["低保".to_string()], Some(40));
        let s = marked(&f);
        assert!(s.starts_with("…[低保]申请条件"), "{s}");
        assert!(s.ends_with('…'));
        assert!(plain(&f).chars().count() <= 42);
    }
}
