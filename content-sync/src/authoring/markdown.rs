//! Markdown documents: the front matter (YAML between `---` lines or TOML between `+++`
//! lines) and a body of headings, paragraphs, lists and pipe tables, kept as model blocks.
//!
//! The body reader is deliberately small: admins paste 公文 text, which is headings and
//! paragraphs; emphasis and links are kept as their text.

use kiosk::content::Block;

use super::error::SourceErrorKind;
use super::value::toml_to_json;

/// Front matter as JSON-like data, the 1-based line its first key is on, and the body with
/// the 1-based line it starts on.
pub struct Split<'a> {
    pub meta: serde_json::Value,
    pub meta_first_line: usize,
    pub body: &'a str,
}

/// Splits a Markdown file into parsed front matter and body. Errors carry the line.
pub fn split_front_matter(text: &str) -> Result<Split<'_>, (usize, SourceErrorKind)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().next().unwrap_or_default().trim_end();
    let fence = match first {
        "---" => "---",
        "+++" => "+++",
        _ => {
            return Err((
                1,
                SourceErrorKind::FrontMatter(format!(
                    "the first line is “{}”, not `---` or `+++`",
                    truncate(first, 40)
                )),
            ))
        }
    };
    // Byte offsets of the front matter and of the line after the closing fence.
    let start = first.len() + line_break_len(&text[first.len()..]);
    let mut offset = start;
    let mut close: Option<(usize, usize)> = None;
    for line in text[start..].split_inclusive('\n') {
        if line.trim_end() == fence {
            close = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
    }
    let Some((meta_end, body_start)) = close else {
        return Err((
            1,
            SourceErrorKind::FrontMatter(format!(
                "the `{fence}` on line 1 is never closed by another `{fence}` line"
            )),
        ));
    };
    let raw = &text[start..meta_end];
    let meta = if fence == "---" {
        serde_yaml::from_str::<serde_json::Value>(raw).map_err(|e| {
            let line = e.location().map(|l| l.line() + 1).unwrap_or(1);
            (
                line,
                SourceErrorKind::FrontMatter(format!("YAML: {}", strip_location(&e.to_string()))),
            )
        })?
    } else {
        let v = toml::from_str::<toml::Value>(raw).map_err(|e| {
            let line = e.span().map(|s| line_of(raw, s.start) + 1).unwrap_or(1);
            (line, SourceErrorKind::FrontMatter(format!("TOML: {}", e.message())))
        })?;
        toml_to_json(v)
    };
    if !meta.is_object() {
        return Err((
            2,
            SourceErrorKind::FrontMatter("it is not a list of `key: value` lines".into()),
        ));
    }
    Ok(Split { meta, meta_first_line: 2, body: &text[body_start..] })
}

fn line_break_len(rest: &str) -> usize {
    if rest.starts_with("\r\n") {
        2
    } else if rest.starts_with('\n') {
        1
    } else {
        0
    }
}

/// The 0-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count()
}

/// serde_yaml appends “at line X column Y”, which counts inside the front matter; the
/// caller reports the file's line instead.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn truncate(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

/// Reads a Markdown body into blocks: `#` headings, paragraphs (consecutive lines joined),
/// list items (one paragraph each), and `|` pipe tables (the `---` separator row dropped).
pub fn parse_body(body: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let mut table: Vec<Vec<String>> = Vec::new();
    let flush_para = |para: &mut Vec<&str>, blocks: &mut Vec<Block>| {
        if !para.is_empty() {
            blocks.push(Block::Paragraph { text: join_lines(para) });
            para.clear();
        }
    };
    let flush_table = |table: &mut Vec<Vec<String>>, blocks: &mut Vec<Block>| {
        if !table.is_empty() {
            blocks.push(Block::Table { rows: std::mem::take(table) });
        }
    };
    for raw in body.lines() {
        let line = raw.trim();
        if line.starts_with('|') {
            flush_para(&mut para, &mut blocks);
            let cells: Vec<String> =
                line.trim_matches('|').split('|').map(|c| clean_inline(c.trim())).collect();
            let separator = cells
                .iter()
                .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')));
            if !separator {
                table.push(cells);
            }
            continue;
        }
        flush_table(&mut table, &mut blocks);
        if line.is_empty() {
            flush_para(&mut para, &mut blocks);
        } else if let Some((level, text)) = heading(line) {
            flush_para(&mut para, &mut blocks);
            blocks.push(Block::Heading { level, text: clean_inline(text) });
        } else if let Some(item) = list_item(line) {
            flush_para(&mut para, &mut blocks);
            blocks.push(Block::Paragraph { text: clean_inline(item) });
        } else if line.chars().all(|c| matches!(c, '-' | '*' | '_' | ' ')) && line.len() >= 3 {
            // A thematic break: it separates paragraphs and is not text.
            flush_para(&mut para, &mut blocks);
        } else {
            let line = line.strip_prefix('>').map(str::trim_start).unwrap_or(line);
            if starts_paragraph(line) {
                flush_para(&mut para, &mut blocks);
            }
            para.push(line);
        }
    }
    flush_table(&mut table, &mut blocks);
    flush_para(&mut para, &mut blocks);
    blocks
}

/// The text of list items in a body, for 政府公报 contents written as a list.
pub fn list_items(body: &str) -> Vec<String> {
    body.lines().filter_map(|l| list_item(l.trim())).map(clean_inline).collect()
}

fn heading(line: &str) -> Option<(u8, &str)> {
    let hashes = line.bytes().take_while(|b| *b == b'#').count();
    if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
        Some((hashes as u8, line[hashes..].trim().trim_end_matches('#').trim()))
    } else {
        None
    }
}

/// Whether a line opens a new paragraph even without a blank line before it: the numbering
/// of 公文 text pasted line by line (一、 （一） 1. 第一条) and ordered list items, whose
/// number is kept as part of the text because the order matters.
fn starts_paragraph(line: &str) -> bool {
    const CN: &str = "一二三四五六七八九十百零";
    let first = line.chars().next().unwrap_or(' ');
    let rest: String = line.chars().skip(1).collect();
    let numeral_then = |s: &str, ends: &[char]| {
        let body: String =
            s.chars().take_while(|c| CN.contains(*c) || c.is_ascii_digit()).collect();
        !body.is_empty() && s[body.len()..].starts_with(ends)
    };
    (CN.contains(first) && numeral_then(line, &['、']))
        || (matches!(first, '（' | '(') && numeral_then(&rest, &['）', ')']))
        || (first.is_ascii_digit() && numeral_then(line, &['.', '、', '．', ')']))
        || (first == '第' && numeral_then(&rest, &['条', '章', '节']))
}

fn list_item(line: &str) -> Option<&str> {
    for marker in ["- ", "* ", "+ "] {
        if let Some(rest) = line.strip_prefix(marker) {
            return Some(rest.trim());
        }
    }
    None
}

/// Joins wrapped lines: no space between CJK characters (Chinese is not spaced), one space
/// between Latin words.
fn join_lines(lines: &[&str]) -> String {
    let mut out = String::new();
    for line in lines {
        let text = clean_inline(line);
        if let (Some(a), Some(b)) = (out.chars().last(), text.chars().next()) {
            if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() {
                out.push(' ');
            }
        }
        out.push_str(&text);
    }
    out
}

/// Drops Markdown emphasis markers and turns `[text](url)` into `text`.
fn clean_inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('[') {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        match (tail.find("]("), tail.find(')')) {
            (Some(close), Some(end)) if close < end => {
                out.push_str(&tail[1..close]);
                rest = &tail[end + 1..];
            }
            _ => {
                out.push('[');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out.replace("**", "").replace("__", "").replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_paragraphs_lists_and_tables_are_kept() {
        let blocks = parse_body("# 一、总则\n\n第一行\n第二行\n\n- 材料一\n\n| 事项 | 时限 |\n|---|---|\n| 低保 | 20个工作日 |\n（一）甲\n（二）乙\n1. 丙\n");
        assert_eq!(
            blocks,
            vec![
                Block::Heading { level: 1, text: "一、总则".into() },
                Block::Paragraph { text: "第一行第二行".into() },
                Block::Paragraph { text: "材料一".into() },
                Block::Table {
                    rows: vec![
                        vec!["事项".into(), "时限".into()],
                        vec!["低保".into(), "20个工作日".into()]
                    ]
                },
                Block::Paragraph { text: "（一）甲".into() },
                Block::Paragraph { text: "（二）乙".into() },
                Block::Paragraph { text: "1. 丙".into() },
            ]
        );
    }

    #[test]
    fn yaml_errors_give_the_file_line() {
        let text = "---\nid: a\ntitle: [unclosed\nkind: policy\n---\nbody\n";
        let Err((line, SourceErrorKind::FrontMatter(_))) = split_front_matter(text) else {
            panic!("malformed YAML accepted")
        };
        assert!((3..=5).contains(&line), "line {line}");
    }
}
