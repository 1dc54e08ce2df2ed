//! Word documents: `word/document.xml` read into headings, paragraphs and tables, and the
//! core properties (`docProps/core.xml`) for documents without a metadata sidecar.
//!
//! A paragraph is a heading when its style is a heading (“heading 1” … by style name as
//! `word/styles.xml` gives it, which covers Chinese Word where the style id is `1` and the
//! shown name 标题 1; or a style id `Heading1`/`标题1`), or when it carries an outline level.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use kiosk::content::Block;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// A Word file's content and what its file properties say.
#[derive(Debug, Default, PartialEq)]
pub struct Docx {
    pub blocks: Vec<Block>,
    pub core: CoreProperties,
}

/// `docProps/core.xml`: what Word shows under 文件 → 信息 → 属性.
#[derive(Debug, Default, PartialEq)]
pub struct CoreProperties {
    pub title: Option<String>,
    pub creator: Option<String>,
    pub subject: Option<String>,
    pub keywords: Option<String>,
}

/// Reads a .docx from its bytes. The error says why it is not a readable Word file.
pub fn read_docx(bytes: &[u8]) -> Result<Docx, String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("it is not a zip archive: {e}"))?;
    let document =
        read_part(&mut zip, "word/document.xml")?.ok_or("it has no word/document.xml")?;
    let styles = match read_part(&mut zip, "word/styles.xml")? {
        Some(xml) => style_names(&xml).map_err(|e| format!("word/styles.xml is broken: {e}"))?,
        None => HashMap::new(),
    };
    let blocks = document_blocks(&document, &styles)
        .map_err(|e| format!("word/document.xml is broken: {e}"))?;
    let core = match read_part(&mut zip, "docProps/core.xml")? {
        Some(xml) => {
            core_properties(&xml).map_err(|e| format!("docProps/core.xml is broken: {e}"))?
        }
        None => CoreProperties::default(),
    };
    Ok(Docx { blocks, core })
}

fn read_part(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
) -> Result<Option<String>, String> {
    let mut file = match zip.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format!("{name} cannot be read: {e}")),
    };
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| format!("{name} cannot be read: {e}"))?;
    Ok(Some(text))
}

fn attr(e: &BytesStart<'_>, local: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// styleId → style name, from `word/styles.xml`.
fn style_names(xml: &str) -> Result<HashMap<String, String>, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    let mut out = HashMap::new();
    let mut current: Option<String> = None;
    loop {
        match reader.read_event()? {
            Event::Start(e) if e.local_name().as_ref() == b"style" => {
                current = attr(&e, b"styleId")
            }
            Event::Empty(e) | Event::Start(e) if e.local_name().as_ref() == b"name" => {
                if let (Some(id), Some(name)) = (current.clone(), attr(&e, b"val")) {
                    out.insert(id, name);
                }
            }
            Event::End(e) if e.local_name().as_ref() == b"style" => current = None,
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// The heading level a style means, if any.
fn heading_level(style_id: &str, styles: &HashMap<String, String>) -> Option<u8> {
    let name = styles.get(style_id).map(String::as_str).unwrap_or(style_id);
    for candidate in [name, style_id] {
        let lower = candidate.to_lowercase().replace(' ', "");
        if lower == "title" {
            return Some(1);
        }
        for prefix in ["heading", "标题"] {
            if let Some(rest) = lower.strip_prefix(prefix) {
                if let Ok(n) = rest.parse::<u8>() {
                    if (1..=9).contains(&n) {
                        return Some(n.min(6));
                    }
                }
            }
        }
    }
    None
}

#[derive(Default)]
struct Para {
    style: Option<String>,
    outline: Option<u8>,
    text: String,
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    row: Vec<String>,
    cell: Vec<String>,
}

fn document_blocks(
    xml: &str,
    styles: &HashMap<String, String>,
) -> Result<Vec<Block>, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    let mut blocks = Vec::new();
    let mut paras: Vec<Para> = Vec::new();
    let mut tables: Vec<Table> = Vec::new();
    let mut in_text = false;
    loop {
        match reader.read_event()? {
            Event::Start(e) => match e.local_name().as_ref() {
                b"p" => paras.push(Para::default()),
                b"t" => in_text = true,
                b"tbl" => tables.push(Table::default()),
                b"tr" => {
                    if let Some(t) = tables.last_mut() {
                        t.row.clear();
                    }
                }
                b"tc" => {
                    if let Some(t) = tables.last_mut() {
                        t.cell.clear();
                    }
                }
                _ => para_property(&e, &mut paras),
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                b"tab" => push_text(&mut paras, " "),
                b"br" | b"cr" => push_text(&mut paras, "\n"),
                _ => para_property(&e, &mut paras),
            },
            Event::Text(t) if in_text => push_text(&mut paras, &t.unescape()?),
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"p" => {
                    let Some(p) = paras.pop() else { continue };
                    let text = p.text.trim().to_string();
                    if let Some(outer) = paras.last_mut() {
                        // A text box inside a paragraph: its text reads as part of it.
                        outer.text.push_str(&text);
                    } else if let Some(t) = tables.last_mut() {
                        t.cell.push(text);
                    } else if !text.is_empty() {
                        let level = p
                            .style
                            .as_deref()
                            .and_then(|s| heading_level(s, styles))
                            .or(p.outline.filter(|l| *l < 9).map(|l| (l + 1).min(6)));
                        blocks.push(match level {
                            Some(level) => Block::Heading { level, text },
                            None => Block::Paragraph { text },
                        });
                    }
                }
                b"tc" => {
                    if let Some(t) = tables.last_mut() {
                        let cell = t
                            .cell
                            .iter()
                            .filter(|c| !c.is_empty())
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("\n");
                        t.row.push(cell);
                    }
                }
                b"tr" => {
                    if let Some(t) = tables.last_mut() {
                        let row = std::mem::take(&mut t.row);
                        t.rows.push(row);
                    }
                }
                b"tbl" => {
                    let Some(done) = tables.pop() else { continue };
                    if let Some(outer) = tables.last_mut() {
                        // A table nested in a cell is kept as that cell's text, row by row.
                        outer.cell.extend(done.rows.into_iter().map(|r| r.join(" ")));
                    } else if !done.rows.is_empty() {
                        blocks.push(Block::Table { rows: done.rows });
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(blocks)
}

fn push_text(paras: &mut [Para], text: &str) {
    if let Some(p) = paras.last_mut() {
        p.text.push_str(text);
    }
}

fn para_property(e: &BytesStart<'_>, paras: &mut [Para]) {
    let Some(p) = paras.last_mut() else { return };
    match e.local_name().as_ref() {
        b"pStyle" => p.style = attr(e, b"val"),
        b"outlineLvl" => p.outline = attr(e, b"val").and_then(|v| v.parse().ok()),
        _ => {}
    }
}

fn core_properties(xml: &str) -> Result<CoreProperties, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    let mut core = CoreProperties::default();
    let mut field: Option<Vec<u8>> = None;
    loop {
        match reader.read_event()? {
            Event::Start(e) => field = Some(e.local_name().as_ref().to_vec()),
            Event::Text(t) => {
                let text = t.unescape()?.trim().to_string();
                if text.is_empty() {
                    continue;
                }
                let slot = match field.as_deref() {
                    Some(b"title") => &mut core.title,
                    Some(b"creator") => &mut core.creator,
                    Some(b"subject") => &mut core.subject,
                    Some(b"keywords") => &mut core.keywords,
                    _ => continue,
                };
                *slot = Some(text);
            }
            Event::End(_) => field = None,
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(core)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_heading_styles_and_tables_are_kept() {
        let styles: HashMap<String, String> = [("1".to_string(), "heading 1".to_string())].into();
        let xml = r#"<w:document xmlns:w="w"><w:body>
            <w:p><w:pPr><w:pStyle w:val="1"/></w:pPr><w:r><w:t>一、总则</w:t></w:r></w:p>
            <w:p><w:r><w:t xml:space="preserve">第一条 </w:t></w:r><w:r><w:t>内容</w:t></w:r></w:p>
            <w:tbl><w:tr><w:tc><w:p><w:r><w:t>材料</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>份数</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
            </w:body></w:document>"#;
        assert_eq!(
            document_blocks(xml, &styles).expect("valid xml"),
            vec![
                Block::Heading { level: 1, text: "一、总则".into() },
                Block::Paragraph { text: "第一条 内容".into() },
                Block::Table { rows: vec![vec!["材料".into(), "份数".into()]] },
            ]
        );
    }
}
