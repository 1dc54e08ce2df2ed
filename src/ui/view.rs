//! View models: what each screen shows, computed from content as plain Rust values.
//!
//! Nothing here touches Slint; the adapters copy these values into Slint models. Keeping the
//! decisions here (which fields a document shows, how a banner reads, how many rows fit)
//! lets them be unit-tested without a window.

use crate::content::{Block, Body, Function, Item, Kind, Validity};
use crate::store::{chinese_date, ItemDetail, ItemSummary};

/// A labelled value in a document's header (文号, 发文机关, …) or a catalogue item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub key: String,
    pub value: String,
}

fn meta(key: &str, value: impl Into<String>) -> Option<Meta> {
    let value = value.into();
    (!value.trim().is_empty()).then(|| Meta { key: key.to_string(), value })
}

/// One block of a body as the reader draws it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewBlock {
    Heading(String),
    Paragraph(String),
    /// A table row; the first row of a table is its header.
    Row {
        cells: Vec<String>,
        header: bool,
    },
}

/// A related item shown as a button under a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkView {
    pub id: String,
    pub kind_label: String,
    pub title: String,
}

/// Everything the reading view shows for one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocView {
    pub id: String,
    pub kind: Kind,
    pub kind_label: String,
    pub title: String,
    /// Non-empty when the document is not in force: said in words, not just coloured.
    pub banner: String,
    pub meta: Vec<Meta>,
    pub blocks: Vec<ViewBlock>,
    pub links: Vec<LinkView>,
    /// The “扫码带走” URL.
    pub url: Option<String>,
}

/// The banner over a document that a resident must not rely on.
pub fn validity_banner(validity: Validity) -> String {
    match validity {
        Validity::Valid => String::new(),
        Validity::Expired => "本文件已失效，仅供查阅，不再作为办事依据".into(),
        Validity::Repealed => "本文件已废止，仅供查阅，不再作为办事依据".into(),
        Validity::Amended => "本文件已被修订，请以修订后的文件为准".into(),
    }
}

/// The short badge on a list row for a document not in force (empty when in force).
pub fn validity_badge(validity: Validity) -> String {
    match validity {
        Validity::Valid => String::new(),
        Validity::Expired => "已失效".into(),
        Validity::Repealed => "已废止".into(),
        Validity::Amended => "已修订".into(),
    }
}

fn blocks(out: &mut Vec<ViewBlock>, body: &[Block]) {
    for block in body {
        match block {
            Block::Heading { text, .. } => out.push(ViewBlock::Heading(text.clone())),
            Block::Paragraph { text } => out.push(ViewBlock::Paragraph(text.clone())),
            Block::Table { rows } => {
                for (i, row) in rows.iter().enumerate() {
                    out.push(ViewBlock::Row { cells: row.clone(), header: i == 0 });
                }
            }
        }
    }
}

fn section(out: &mut Vec<ViewBlock>, heading: &str, paragraphs: impl IntoIterator<Item = String>) {
    let paragraphs: Vec<String> = paragraphs.into_iter().filter(|p| !p.trim().is_empty()).collect();
    if !paragraphs.is_empty() {
        out.push(ViewBlock::Heading(heading.to_string()));
        out.extend(paragraphs.into_iter().map(ViewBlock::Paragraph));
    }
}

/// The reading view of an item with its related items.
pub fn doc_view(detail: &ItemDetail) -> DocView {
    let item = &detail.item;
    let (meta_rows, body) = meta_and_body(item);
    let links = detail
        .related()
        .into_iter()
        .map(|s| LinkView {
            id: s.id.clone(),
            kind_label: s.kind.label().to_string(),
            title: s.title.clone(),
        })
        .collect();
    DocView {
        id: item.id.clone(),
        kind: item.kind(),
        kind_label: item.kind().label().to_string(),
        title: item.title.clone(),
        banner: validity_banner(item.validity()),
        meta: meta_rows,
        blocks: body,
        links,
        // A guide without its own page still has its 在线办理 address to take away.
        url: item
            .url
            .clone()
            .or_else(|| match &item.body {
                Body::Guide(g) => g.online_url.clone(),
                _ => None,
            })
            .filter(|u| !u.trim().is_empty()),
    }
}

fn date(d: Option<chrono::NaiveDate>) -> String {
    d.map(chinese_date).unwrap_or_default()
}

/// The header fields and the body of each kind, in the order a resident reads them.
fn meta_and_body(item: &Item) -> (Vec<Meta>, Vec<ViewBlock>) {
    let mut body = Vec::new();
    let rows: Vec<Option<Meta>> = match &item.body {
        Body::Policy(p) => {
            blocks(&mut body, &p.body);
            if !p.attachments.is_empty() {
                section(&mut body, "附件", p.attachments.iter().map(|a| a.name.clone()));
            }
            vec![
                meta("文号", p.doc_number.clone().unwrap_or_default()),
                meta("发文机关", p.issuer.clone()),
                meta("成文日期", date(p.written)),
                meta("发布日期", date(p.published)),
                meta("施行日期", date(p.effective)),
                meta("效力状态", p.validity.label()),
                meta("公开属性", p.disclosure.label()),
                meta("主题分类", p.topics.join("、")),
            ]
        }
        Body::Interpretation(i) => {
            blocks(&mut body, &i.body);
            vec![
                meta("解读机关", i.author.clone().unwrap_or_default()),
                meta("发布日期", date(i.published)),
            ]
        }
        Body::Guide(g) => {
            section(
                &mut body,
                "申请材料",
                g.materials.iter().enumerate().map(|(n, m)| {
                    if m.note.is_empty() {
                        format!("{}. {}", n + 1, m.name)
                    } else {
                        format!("{}. {}（{}）", n + 1, m.name, m.note)
                    }
                }),
            );
            section(
                &mut body,
                "办理流程",
                g.steps.iter().enumerate().map(|(n, s)| format!("第{}步：{}", n + 1, s)),
            );
            section(&mut body, "设定依据", g.basis.clone());
            if !g.faqs.is_empty() {
                body.push(ViewBlock::Heading("常见问题".into()));
                for qa in &g.faqs {
                    body.push(ViewBlock::Paragraph(format!("问：{}", qa.question)));
                    body.push(ViewBlock::Paragraph(format!("答：{}", qa.answer)));
                }
            }
            vec![
                meta("事项名称", g.matter.clone()),
                meta("实施主体", g.authority.clone()),
                meta("办理地点", g.location.clone()),
                meta("办理时间", g.hours.clone()),
                meta("咨询电话", g.phone.clone()),
                meta("办理时限", g.time_limit.clone()),
                meta("收费标准", g.fee.clone()),
                meta("在线办理", g.online_url.clone().unwrap_or_default()),
            ]
        }
        Body::Catalog(c) => {
            section(&mut body, "公开内容（要素）", [c.content.clone()]);
            section(&mut body, "公开依据", [c.basis.clone()]);
            vec![
                meta("序号", c.serial.clone().unwrap_or_default()),
                meta("领域", item.domain.clone().unwrap_or_default()),
                meta("一级事项", c.level1.clone()),
                meta("二级事项", c.level2.clone()),
                meta("公开时限", c.time_limit.clone()),
                meta("公开主体", c.subject.clone()),
                meta("公开渠道和载体", c.channels.join("、")),
                meta("公开对象", c.audience.clone()),
                meta("公开方式", c.manner.clone()),
                meta("公开层级", c.tier.clone()),
            ]
        }
        Body::Faq(f) => {
            body.push(ViewBlock::Heading(format!("问：{}", f.question)));
            body.extend(
                f.answer
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| ViewBlock::Paragraph(l.to_string())),
            );
            vec![meta("发布日期", date(f.published))]
        }
        Body::Notice(n) => {
            blocks(&mut body, &n.body);
            vec![meta("发布日期", chinese_date(n.published))]
        }
        Body::Gazette(g) => {
            section(&mut body, "本期目录", g.contents.clone());
            vec![meta("期号", g.issue.clone()), meta("出版日期", chinese_date(g.published))]
        }
        Body::QrLink(q) => {
            section(&mut body, "说明", q.description.clone());
            vec![meta("网址", q.target.clone())]
        }
        Body::Office(o) => {
            section(&mut body, "可办事项", o.services.clone());
            vec![
                meta("地址", o.address.clone()),
                meta("办公时间", o.hours.clone()),
                meta("电话", o.phone.clone()),
            ]
        }
    };
    (rows.into_iter().flatten().collect(), body)
}

/// What read-aloud speaks: the title, the header fields a listener needs, then the body.
pub fn speech_text(doc: &DocView) -> String {
    let mut out = vec![doc.title.clone()];
    if !doc.banner.is_empty() {
        out.push(doc.banner.clone());
    }
    for block in &doc.blocks {
        match block {
            ViewBlock::Heading(t) | ViewBlock::Paragraph(t) => out.push(t.clone()),
            ViewBlock::Row { cells, .. } => out.push(cells.join("，")),
        }
    }
    out.join("。\n")
}

/// One row of a list screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowView {
    pub id: String,
    pub title: String,
    pub line1: String,
    pub badge: String,
}

pub fn row_view(s: &ItemSummary) -> RowView {
    RowView {
        id: s.id.clone(),
        title: s.title.clone(),
        line1: s.subtitle.clone(),
        badge: validity_badge(s.validity),
    }
}

/// How many list rows fit on one screen: fewer when the text is larger.
pub fn rows_per_page(portrait: bool, care: bool) -> u32 {
    match (portrait, care) {
        (false, false) => 5,
        (false, true) => 3,
        (true, false) => 9,
        (true, true) => 6,
    }
}

/// Number of pages for `total` rows, at least one so the pager reads “第 1 / 1 页”.
pub fn page_count(total: u64, per_page: u32) -> u32 {
    let per = u64::from(per_page.max(1));
    u32::try_from(total.div_ceil(per)).unwrap_or(u32::MAX).max(1)
}

/// The id a function tile carries in the UI, and back.
pub fn function_id(f: Function) -> &'static str {
    match f {
        Function::Policies => "policies",
        Function::Interpretations => "interpretations",
        Function::Guides => "guides",
        Function::Catalog => "catalog",
        Function::Faqs => "faqs",
        Function::Gazettes => "gazettes",
        Function::Request => "request",
        Function::Suggestion => "suggestion",
        Function::QrServices => "qr_services",
        Function::Offices => "offices",
        Function::Notices => "notices",
    }
}

pub fn function_from_id(id: &str) -> Option<Function> {
    Function::ALL.into_iter().find(|f| function_id(*f) == id)
}

/// The character drawn in a tile's badge and the line under its name.
pub fn function_face(f: Function) -> (&'static str, &'static str) {
    match f {
        Function::Policies => ("文", "现行政策文件"),
        Function::Interpretations => ("解", "政策解读"),
        Function::Guides => ("办", "材料、流程、时限"),
        Function::Catalog => ("录", "政务公开事项标准目录"),
        Function::Faqs => ("问", "常见问题解答"),
        Function::Gazettes => ("报", "历期政府公报"),
        Function::Request => ("申", "申请政府信息公开"),
        Function::Suggestion => ("议", "留下您的意见建议"),
        Function::QrServices => ("码", "手机扫码办事"),
        Function::Offices => ("址", "办事地点与电话"),
        Function::Notices => ("告", "通知公告"),
    }
}

/// The date line of the header, e.g. `2026年11月23日 星期一`.
pub fn date_line(d: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    const DAYS: [&str; 7] = ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"];
    format!("{} {}", chinese_date(d), DAYS[d.weekday().num_days_from_monday() as usize])
}

/// A `#rrggbb` colour from branding, or `None` when it is not one.
pub fn parse_hex_color(s: &str) -> Option<(u8, u8, u8)> {
    let hex = s.trim().strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{CatalogEntry, Policy, ScopeCode};

    fn summary(item: &Item) -> ItemSummary {
        ItemSummary {
            id: item.id.clone(),
            kind: item.kind(),
            title: item.title.clone(),
            subtitle: String::new(),
            domain: item.domain.clone(),
            validity: item.validity(),
            date: None,
            scope: ScopeCode::parse("430100").expect("valid"),
            baseline: false,
        }
    }

    fn detail(item: Item) -> ItemDetail {
        ItemDetail { summary: summary(&item), item, links_out: vec![], links_in: vec![] }
    }

    #[test]
    fn a_repealed_policy_says_so_in_words_with_its_number_and_issuer() {
        let item = Item {
            id: "p".into(),
            title: "某办法".into(),
            domain: None,
            baseline: false,
            links: vec![],
            url: Some("https://example.gov.cn/p".into()),
            body: Body::Policy(Policy {
                doc_number: Some("宁政发〔2019〕3号".into()),
                issuer: "宁乡市人民政府".into(),
                validity: Validity::Repealed,
                body: vec![Block::Table {
                    rows: vec![vec!["档次".into()], vec!["一档".into()]]
                }],
                ..Policy::default()
            }),
        };
        let doc = doc_view(&detail(item));
        assert!(doc.banner.contains("已废止"));
        assert!(doc
            .meta
            .contains(&Meta { key: "文号".into(), value: "宁政发〔2019〕3号".into() }));
        assert!(doc.meta.iter().any(|m| m.key == "发文机关" && m.value == "宁乡市人民政府"));
        assert!(!doc.meta.iter().any(|m| m.key == "成文日期"), "empty fields are left out");
        assert_eq!(doc.blocks[0], ViewBlock::Row { cells: vec!["档次".into()], header: true });
        assert_eq!(doc.blocks[1], ViewBlock::Row { cells: vec!["一档".into()], header: false });
        assert_eq!(doc.url.as_deref(), Some("https://example.gov.cn/p"));
    }

    #[test]
    fn a_catalogue_item_shows_every_element() {
        let item = Item {
            id: "c".into(),
            title: "参保登记".into(),
            domain: Some("社会保险".into()),
            baseline: true,
            links: vec![],
            url: None,
            body: Body::Catalog(CatalogEntry {
                level1: "社会保险登记".into(),
                level2: "参保登记".into(),
                content: "办理依据、条件".into(),
                basis: "《社会保险法》".into(),
                time_limit: "20个工作日".into(),
                subject: "宁乡市人社局".into(),
                channels: vec!["政府网站".into(), "公开专区".into()],
                audience: "全社会".into(),
                manner: "主动".into(),
                tier: "县级".into(),
                serial: None,
            }),
        };
        let doc = doc_view(&detail(item));
        let keys: Vec<&str> = doc.meta.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "领域",
                "一级事项",
                "二级事项",
                "公开时限",
                "公开主体",
                "公开渠道和载体",
                "公开对象",
                "公开方式",
                "公开层级"
            ]
        );
        assert!(doc.blocks.contains(&ViewBlock::Paragraph("办理依据、条件".into())));
        assert!(doc.banner.is_empty());
    }

    #[test]
    fn paging_always_has_a_page_and_rounds_up() {
        assert_eq!(page_count(0, 5), 1);
        assert_eq!(page_count(5, 5), 1);
        assert_eq!(page_count(6, 5), 2);
        assert!(
            rows_per_page(false, true) < rows_per_page(false, false),
            "关怀 mode shows fewer, larger rows"
        );
    }

    #[test]
    fn branding_colours_parse_or_are_refused() {
        assert_eq!(parse_hex_color("#b71c1c"), Some((0xb7, 0x1c, 0x1c)));
        assert_eq!(parse_hex_color("red"), None);
        assert_eq!(parse_hex_color("#12345"), None);
    }

    #[test]
    fn function_ids_round_trip() {
        for f in Function::ALL {
            assert_eq!(function_from_id(function_id(f)), Some(f));
        }
        assert_eq!(
            date_line(chrono::NaiveDate::from_ymd_opt(2026, 11, 23).expect("date")),
            "2026年11月23日 星期一"
        );
    }
}
