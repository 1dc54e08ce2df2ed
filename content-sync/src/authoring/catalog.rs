//! The 政务公开事项标准目录 as admins keep it: .xlsx workbooks (one sheet per 领域, a title
//! row, a one- or two-row header, merged cells) and .csv files (UTF-8 with or without BOM,
//! or GB18030 as older Excel and WPS save them).
//!
//! The header is found in the first ten rows by its names, tolerating the usual variants
//! (half- or full-width brackets, 公开内容 without （要素）, spaces and line breaks, 公开渠道/载体).
//! 公开对象, 公开方式 and 公开层级 may be one text column each, or a group header over
//! sub-columns (全社会 | 特定群体, 主动 | 依申请, 县级 | 乡级) ticked with √ in the rows.
//! Merged cells read as their value in every cell they cover; in CSV (which has no merged
//! cells) an empty 一级事项 continues the one above, as merged cells look when exported.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use kiosk::content::{CatalogEntry, DOMAINS};

use super::error::{At, SourceErrorKind};

/// One sheet (or one CSV file) as text cells.
#[derive(Debug, Default)]
pub struct Grid {
    pub sheet: Option<String>,
    pub rows: Vec<Vec<String>>,
    /// The Excel row number (1-based) of `rows[0]`.
    pub first_row: usize,
}

/// One catalogue row read from a grid.
#[derive(Debug)]
pub struct Row {
    pub at: At,
    pub domain: String,
    /// The ID column's value, when the sheet has one.
    pub id: Option<String>,
    pub entry: CatalogEntry,
}

/// The columns of the official layout, and the extras this reader understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Serial,
    Id,
    Domain,
    Level1,
    Level2,
    Content,
    Basis,
    TimeLimit,
    Subject,
    Channels,
    Audience,
    Manner,
    Tier,
}

/// Required columns, with the name the error message uses.
const REQUIRED: [(Col, &str); 10] = [
    (Col::Level1, "一级事项"),
    (Col::Level2, "二级事项"),
    (Col::Content, "公开内容（要素）"),
    (Col::Basis, "公开依据"),
    (Col::TimeLimit, "公开时限"),
    (Col::Subject, "公开主体"),
    (Col::Channels, "公开渠道和载体"),
    (Col::Audience, "公开对象"),
    (Col::Manner, "公开方式"),
    (Col::Tier, "公开层级"),
];

fn normalise_header(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '*' && *c != '＊')
        .map(|c| match c {
            '（' | '【' | '[' => '(',
            '）' | '】' | ']' => ')',
            '／' => '/',
            c => c,
        })
        .collect::<String>()
        .to_lowercase()
}

fn column_of(header: &str) -> Option<Col> {
    let h = normalise_header(header);
    Some(match h.as_str() {
        "序号" | "序" | "no." | "no" => Col::Serial,
        "id" | "标识" | "事项编码" | "编码" => Col::Id,
        "领域" | "所属领域" | "公开领域" => Col::Domain,
        "一级事项" | "一级目录" => Col::Level1,
        "二级事项" | "二级目录" => Col::Level2,
        "公开内容(要素)" | "公开内容" | "公开内容要素" | "公开要素" => {
            Col::Content
        }
        "公开依据" | "依据" => Col::Basis,
        "公开时限" | "时限" => Col::TimeLimit,
        "公开主体" | "主体" => Col::Subject,
        "公开渠道和载体"
        | "公开渠道及载体"
        | "公开渠道/载体"
        | "公开渠道、载体"
        | "公开渠道"
        | "渠道和载体"
        | "公开载体" => Col::Channels,
        "公开对象" => Col::Audience,
        "公开方式" => Col::Manner,
        "公开层级" => Col::Tier,
        _ => return None,
    })
}

/// The 领域 a name (sheet, file, title row) refers to: the longest domain it contains, so
/// “地震救灾” wins over “救灾”.
pub fn domain_in(name: &str) -> Option<&'static str> {
    DOMAINS.iter().copied().filter(|d| name.contains(d)).max_by_key(|d| d.chars().count())
}

/// Reads every sheet of a workbook, with merged regions filled in.
pub fn read_xlsx(bytes: &[u8]) -> Result<Vec<Grid>, String> {
    let mut book =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| format!("it is not an .xlsx workbook: {e}"))?;
    let mut grids = Vec::new();
    for name in book.sheet_names() {
        let range = book
            .worksheet_range(&name)
            .map_err(|e| format!("sheet “{name}” cannot be read: {e}"))?;
        let Some((row0, col0)) = range.start() else { continue };
        let mut rows: Vec<Vec<String>> =
            range.rows().map(|r| r.iter().map(cell_text).collect()).collect();
        // Leading empty columns shift every index; pad them so columns count from A.
        if col0 > 0 {
            for r in &mut rows {
                r.splice(0..0, std::iter::repeat_n(String::new(), col0 as usize));
            }
        }
        let merged = book
            .merge_cells_by_sheet_name(&name)
            .map_err(|e| format!("the merged cells of sheet “{name}” cannot be read: {e}"))?;
        for dim in merged {
            let top = (dim.start.0.saturating_sub(row0)) as usize;
            let value = rows
                .get(top)
                .and_then(|r| r.get(dim.start.1 as usize))
                .cloned()
                .unwrap_or_default();
            for r in dim.start.0..=dim.end.0 {
                let Some(row) = rows.get_mut(r.saturating_sub(row0) as usize) else { continue };
                for c in dim.start.1..=dim.end.1 {
                    if let Some(cell) = row.get_mut(c as usize) {
                        if cell.is_empty() {
                            cell.clone_from(&value);
                        }
                    }
                }
            }
        }
        grids.push(Grid { sheet: Some(name), rows, first_row: row0 as usize + 1 });
    }
    Ok(grids)
}

fn cell_text(d: &Data) -> String {
    match d {
        Data::String(s) => s.trim().to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Empty => String::new(),
        other => other.to_string().trim().to_string(),
    }
}

/// Reads a CSV file: UTF-8 (a BOM is skipped), else GB18030.
pub fn read_csv(bytes: &[u8]) -> Result<Grid, String> {
    let text: String = match std::str::from_utf8(bytes) {
        Ok(s) => s.strip_prefix('\u{feff}').unwrap_or(s).to_string(),
        Err(_) => {
            let (text, _, had_errors) = encoding_rs::GB18030.decode(bytes);
            if had_errors {
                return Err("it is neither UTF-8 nor GB18030 text: save it from Excel as “CSV UTF-8 (逗号分隔)”".into());
            }
            text.into_owned()
        }
    };
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("row {} is not valid CSV: {e}", i + 1))?;
        rows.push(record.iter().map(|c| c.trim().to_string()).collect());
    }
    Ok(Grid { sheet: None, rows, first_row: 1 })
}

/// How a column's value is read.
#[derive(Debug)]
enum Source {
    /// One text column.
    Text(usize),
    /// Sub-columns ticked with a mark; the value is the ticked labels joined by “、”.
    Ticks(Vec<(usize, String)>),
}

/// Whether a grid has any catalogue header in its first rows (a workbook's 说明 sheet has not).
pub fn has_header(grid: &Grid) -> bool {
    find_header(grid).is_some()
}

fn find_header(grid: &Grid) -> Option<usize> {
    let score = |row: &Vec<String>| {
        let mut cols: Vec<Col> = row.iter().filter_map(|c| column_of(c)).collect();
        cols.dedup();
        cols.len()
    };
    let (best, n) = grid
        .rows
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, r)| (i, score(r)))
        .max_by_key(|(i, n)| (*n, usize::MAX - i))?;
    (n >= 2).then_some(best)
}

/// Reads the catalogue rows of a grid. `hint` is the 领域 the sheet or file name gives.
/// Problems come back with where they are; rows with problems are left out.
pub fn parse_grid(
    grid: &Grid,
    file_domain: Option<&str>,
) -> (Vec<Row>, Vec<(Option<At>, SourceErrorKind)>) {
    let mut errors = Vec::new();
    let at_row = |i: usize| At::Row { sheet: grid.sheet.clone(), row: grid.first_row + i };
    let Some(h) = find_header(grid) else {
        let names: Vec<&str> = REQUIRED.iter().map(|(_, n)| *n).collect();
        errors.push((
            grid.sheet.clone().map(At::Sheet),
            SourceErrorKind::Invalid(format!(
                "no header row in the first 10 rows: the catalogue needs a header row with {}",
                names.join("、")
            )),
        ));
        return (Vec::new(), errors);
    };
    let header = &grid.rows[h];
    let sub = grid.rows.get(h + 1);
    let mut cols: Vec<(Col, Source)> = Vec::new();
    let mut two_rows = false;
    let mut j = 0;
    while j < header.len() {
        let Some(col) = column_of(&header[j]) else {
            j += 1;
            continue;
        };
        // The columns this header covers: itself, and following cells that are empty or
        // repeat it (a merged group header reads as its value in every cell it covers).
        let mut end = j + 1;
        while end < header.len() && (header[end].is_empty() || column_of(&header[end]) == Some(col))
        {
            end += 1;
        }
        let grouped = matches!(col, Col::Audience | Col::Manner | Col::Tier);
        let labels: Vec<(usize, String)> = (j..end)
            .filter_map(|c| {
                let l = sub.and_then(|s| s.get(c)).cloned().unwrap_or_default();
                (!l.is_empty() && column_of(&l).is_none()).then_some((c, l))
            })
            .collect();
        if cols.iter().all(|(c, _)| *c != col) {
            if grouped && end - j > 1 && !labels.is_empty() {
                two_rows = true;
                cols.push((col, Source::Ticks(labels)));
            } else {
                cols.push((col, Source::Text(j)));
            }
        }
        j = if grouped { end } else { j + 1 };
    }
    let found: Vec<&str> = header.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
    for (col, name) in REQUIRED {
        if cols.iter().all(|(c, _)| *c != col) {
            errors.push((
                Some(at_row(h)),
                SourceErrorKind::MissingColumn {
                    column: name.to_string(),
                    found: found.join("、"),
                },
            ));
        }
    }
    if !errors.is_empty() {
        return (Vec::new(), errors);
    }
    // A 领域 named in a title row above the header (“社会救助领域基层政务公开标准目录”).
    let title_domain = grid.rows[..h].iter().flatten().find_map(|c| domain_in(c));
    let sheet_domain = grid.sheet.as_deref().and_then(domain_in);
    let fallback_domain = sheet_domain.or(title_domain).or(file_domain);

    let get = |row: &Vec<String>, col: Col| -> String {
        match cols.iter().find(|(c, _)| *c == col).map(|(_, s)| s) {
            Some(Source::Text(i)) => row.get(*i).cloned().unwrap_or_default(),
            Some(Source::Ticks(labels)) => labels
                .iter()
                .filter(|(i, _)| row.get(*i).is_some_and(|v| is_tick(v)))
                .map(|(_, l)| l.as_str())
                .collect::<Vec<_>>()
                .join("、"),
            None => String::new(),
        }
    };
    let mut out = Vec::new();
    let mut last_level1 = String::new();
    let mut reported_domain = false;
    let start = if two_rows { h + 2 } else { h + 1 };
    for (i, row) in grid.rows.iter().enumerate().skip(start) {
        if row.iter().all(|c| c.is_empty()) {
            continue;
        }
        let at = at_row(i);
        let mut level1 = get(row, Col::Level1);
        if level1.is_empty() {
            level1.clone_from(&last_level1);
        }
        if level1.is_empty() {
            errors.push((
                Some(at.clone()),
                SourceErrorKind::Invalid(
                    "一级事项 is empty and there is no row above to continue: fill it in".into(),
                ),
            ));
            continue;
        }
        last_level1.clone_from(&level1);
        let content = get(row, Col::Content);
        if content.is_empty() {
            errors.push((Some(at), SourceErrorKind::EmptyContent));
            continue;
        }
        let domain_cell = get(row, Col::Domain);
        let domain = if !domain_cell.is_empty() {
            if !DOMAINS.contains(&domain_cell.as_str()) {
                errors.push((Some(at), SourceErrorKind::UnknownDomain { domain: domain_cell }));
                continue;
            }
            domain_cell
        } else if let Some(d) = fallback_domain {
            d.to_string()
        } else {
            if !reported_domain {
                reported_domain = true;
                let name = grid.sheet.clone().unwrap_or_else(|| "the file".into());
                errors.push((
                    Some(at),
                    SourceErrorKind::UnknownDomain { domain: format!("(none: neither {name} nor the file name names a 领域, and there is no 领域 column)") },
                ));
            }
            continue;
        };
        let id = Some(get(row, Col::Id)).filter(|s| !s.is_empty());
        let serial = Some(get(row, Col::Serial)).filter(|s| !s.is_empty());
        let channels = get(row, Col::Channels)
            .split(['、', '，', ',', '；', ';', '/', '\n'])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        out.push(Row {
            at,
            domain,
            id,
            entry: CatalogEntry {
                serial,
                level1,
                level2: get(row, Col::Level2),
                content,
                basis: get(row, Col::Basis),
                time_limit: get(row, Col::TimeLimit),
                subject: get(row, Col::Subject),
                channels,
                audience: get(row, Col::Audience),
                manner: get(row, Col::Manner),
                tier: get(row, Col::Tier),
            },
        });
    }
    (out, errors)
}

/// Whether a ticked cell is ticked: any mark but the ones that say no.
fn is_tick(v: &str) -> bool {
    let v = v.trim();
    !v.is_empty() && !matches!(v, "×" | "✗" | "否" | "无" | "-" | "—" | "/" | "0" | "不公开")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: &[&[&str]]) -> Grid {
        Grid {
            sheet: Some("社会救助".into()),
            rows: rows.iter().map(|r| r.iter().map(|s| s.to_string()).collect()).collect(),
            first_row: 1,
        }
    }

    #[test]
    fn header_variants_and_tick_groups_are_read() {
        let g = grid(&[
            &["社会救助领域基层政务公开标准目录"],
            &[
                "序号",
                "一级事项",
                "二级 事项",
                "公开内容(要素)",
                "公开依据",
                "公开时限",
                "公开主体",
                "公开渠道/载体",
                "公开对象",
                "",
                "公开方式",
                "",
                "公开层级",
                "",
            ],
            &[
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "全社会",
                "特定群体",
                "主动",
                "依申请",
                "县级",
                "乡级",
            ],
            &[
                "1",
                "最低生活保障",
                "政策法规",
                "政策文件",
                "《条例》",
                "20个工作日",
                "民政局",
                "政府网站、公开栏",
                "√",
                "",
                "√",
                "",
                "√",
                "√",
            ],
            &[
                "2",
                "",
                "办理结果",
                "救助对象",
                "《条例》",
                "20个工作日",
                "民政局",
                "公开栏",
                "",
                "√",
                "",
                "√",
                "√",
                "",
            ],
        ]);
        let (rows, errors) = parse_grid(&g, None);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].entry.level1, "最低生活保障");
        assert_eq!(rows[0].entry.tier, "县级、乡级");
        assert_eq!(rows[1].entry.audience, "特定群体");
        assert_eq!(rows[0].entry.channels, vec!["政府网站", "公开栏"]);
        assert_eq!(rows[0].domain, "社会救助");
        assert_eq!(rows[1].at, At::Row { sheet: Some("社会救助".into()), row: 5 });
    }
}
