//! Text normalisation shared by indexing, querying, snippets and the recall check.
//!
//! Every character is normalised on its own (NFKC, so full-width letters, digits and
//! spaces become half-width; traditional → simplified by a one-to-one character table;
//! lowercase; brackets and book-title marks dropped), never by looking at its neighbours.
//! That keeps two promises: the same substring normalises the same way wherever it
//! stands, so "the normalised text contains the normalised query" is a well-defined test
//! that the index can answer exactly; and each normalised character maps back to the byte
//! range of the original character it came from, so snippets highlight the original text.

use std::collections::HashMap;
use std::sync::OnceLock;

use unicode_normalization::UnicodeNormalization;

/// The traditional → simplified table, one pair a line (see the file's header for its source).
const T2S: &str = include_str!("t2s.txt");

fn t2s_table() -> &'static HashMap<char, char> {
    static TABLE: OnceLock<HashMap<char, char>> = OnceLock::new();
    TABLE.get_or_init(|| {
        T2S.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut cs = l.chars();
                let t = cs.next()?;
                let _space = cs.next()?;
                let s = cs.next()?;
                Some((t, s))
            })
            .collect()
    })
}

/// Brackets and book-title marks carry no meaning a resident types reliably: 文号 are
/// written 〔2020〕, [2020], (2020) or with no brackets at all, and law titles with or
/// without 《》. Dropping them makes every spelling meet. (Full-width （）［］｛｝ are
/// already ASCII after NFKC.)
fn is_dropped(c: char) -> bool {
    matches!(
        c,
        '(' | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '〔'
            | '〕'
            | '【'
            | '】'
            | '〖'
            | '〗'
            | '〘'
            | '〙'
            | '《'
            | '》'
            | '〈'
            | '〉'
            | '<'
            | '>'
            // Invisible characters that sneak in from Word and web pages.
            | '\u{200b}'
            | '\u{200c}'
            | '\u{200d}'
            | '\u{2060}'
            | '\u{feff}'
            | '\u{00ad}'
    )
}

/// Feeds the normalised form of one character (zero, one or a few characters) to `out`.
/// Every kind of whitespace becomes one ASCII space.
#[inline]
pub fn normalize_char(c: char, out: &mut impl FnMut(char)) {
    if c.is_ascii() {
        if c.is_ascii_whitespace() {
            out(' ');
        } else if !is_dropped(c) {
            out(c.to_ascii_lowercase());
        }
        return;
    }
    // The common CJK block needs no NFKC, only the simplified form.
    if ('\u{4e00}'..='\u{9fff}').contains(&c) {
        out(t2s_table().get(&c).copied().unwrap_or(c));
        return;
    }
    for d in std::iter::once(c).nfkc() {
        if d.is_whitespace() {
            out(' ');
        } else if is_dropped(d) {
        } else if let Some(s) = t2s_table().get(&d) {
            out(*s);
        } else if d.is_ascii() {
            out(d.to_ascii_lowercase());
        } else {
            for l in d.to_lowercase() {
                out(l);
            }
        }
    }
}

/// The normalised form of `s`.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        normalize_char(c, &mut |n| out.push(n));
    }
    out
}

/// `s` normalised, with the byte range in `s` of the character each normalised character
/// came from.
pub struct Mapped {
    pub chars: Vec<char>,
    pub source: Vec<(usize, usize)>,
}

pub fn normalize_mapped(s: &str) -> Mapped {
    let mut chars = Vec::with_capacity(s.len() / 2);
    let mut source = Vec::with_capacity(s.len() / 2);
    for (i, c) in s.char_indices() {
        let end = i + c.len_utf8();
        normalize_char(c, &mut |n| {
            chars.push(n);
            source.push((i, end));
        });
    }
    Mapped { chars, source }
}

/// Splits a normalised query into the terms a resident separated with spaces.
pub fn query_terms(normalized: &str) -> Vec<String> {
    normalized.split(' ').filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// The query term with its article numbers in Chinese numerals, as statutes write them:
/// residents type 第10条 or 民法典1076条 for 第十条 and 民法典第一千零七十六条. A run of digits
/// counts as an article number when 第 stands before it or 条, 章, 节, 款, 项 or 编 after it;
/// other numbers (years, 文号) are left alone. `None` when nothing changes.
pub fn chinese_ordinals(term: &str) -> Option<String> {
    const UNITS: [&str; 4] = ["", "十", "百", "千"];
    const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    fn numeral(n: u32) -> String {
        let digits: Vec<usize> = n.to_string().bytes().map(|b| (b - b'0') as usize).collect();
        let mut out = String::new();
        let mut gap = false;
        for (i, &d) in digits.iter().enumerate() {
            let unit = digits.len() - 1 - i;
            if d == 0 {
                gap = !out.is_empty();
                continue;
            }
            if gap {
                out.push('零');
                gap = false;
            }
            // 10–19 are 十, 十一 …, not 一十 (but 一百一十 inside a larger number).
            if !(d == 1 && unit == 1 && out.is_empty()) {
                out.push_str(DIGITS[d]);
            }
            out.push_str(UNITS[unit]);
        }
        out
    }
    let chars: Vec<char> = term.chars().collect();
    let mut out = String::with_capacity(term.len() * 2);
    let mut changed = false;
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        let run: String = chars[start..i].iter().collect();
        let after_di = start > 0 && chars[start - 1] == '第';
        let ordinal = after_di || chars.get(i).is_some_and(|c| "条章节款项编".contains(*c));
        match run.parse::<u32>() {
            Ok(n @ 1..=9999) if ordinal && !run.starts_with('0') => {
                // 1076条 is 第一千零七十六条.
                if !after_di {
                    out.push('第');
                }
                out.push_str(&numeral(n));
                changed = true;
            }
            _ => out.push_str(&run),
        }
    }
    changed.then_some(out)
}

/// Whether `c` is a Chinese character that has a pinyin reading.
pub fn is_han(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_traditional_and_case_meet() {
        assert_eq!(normalize("ＡＢＣ１２３"), "abc123");
        assert_eq!(normalize("社會保險"), "社会保险");
        assert_eq!(normalize("戶口"), "户口");
        assert_eq!(normalize("Hello　World"), "hello world");
    }

    #[test]
    fn doc_numbers_meet_whatever_the_brackets() {
        let want = "长政务办20208号";
        for typed in [
            "长政务办〔2020〕8号",
            "长政务办[2020]8号",
            "长政务办(2020)8号",
            "长政务办（2020）8号",
            "长政务办【2020】8号",
            "长政务办［2020］8号",
        ] {
            assert_eq!(normalize(typed), want, "{typed}");
        }
    }

    #[test]
    fn article_numbers_are_read_as_statutes_write_them() {
        for (typed, want) in [
            ("第1条", "第一条"),
            ("第10条", "第十条"),
            ("第11条", "第十一条"),
            ("第20条", "第二十条"),
            ("第103条", "第一百零三条"),
            ("第110条", "第一百一十条"),
            ("民法典1076条", "民法典第一千零七十六条"),
            ("第1001条", "第一千零一条"),
            ("第1010条", "第一千零一十条"),
            ("第1127条", "第一千一百二十七条"),
            ("第3章", "第三章"),
        ] {
            assert_eq!(chinese_ordinals(typed).as_deref(), Some(want), "{typed}");
        }
        // Years and document numbers are not article numbers.
        for typed in ["长政务办20208号", "2024年", "第0条", "社保", "第12345条"] {
            assert_eq!(chinese_ordinals(typed), None, "{typed}");
        }
    }

    #[test]
    fn mapped_points_back_to_original_bytes() {
        let s = "《社會》ＡＢ";
        let m = normalize_mapped(s);
        let text: String = m.chars.iter().collect();
        assert_eq!(text, "社会ab");
        let (a, b) = m.source[1];
        assert_eq!(&s[a..b], "會");
        let (a, b) = m.source[3];
        assert_eq!(&s[a..b], "Ｂ");
    }
}
