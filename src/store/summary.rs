//! What a list row shows: the item summary and its one-line subtitle, written so a
//! resident can tell two similar titles apart at a glance.

use chrono::NaiveDate;
use pinyin::ToPinyin;

use crate::content::{Body, Item, ItemId, Kind, ScopeCode, Validity};

/// One row of a list: enough to draw it and to open the item.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemSummary {
    pub id: ItemId,
    pub kind: Kind,
    pub title: String,
    /// One line under the title, e.g. `长政务办〔2020〕8号 · 长沙市人民政府办公厅 · 2020年5月9日`.
    pub subtitle: String,
    pub domain: Option<String>,
    /// 效力状态; everything but policies is [`Validity::Valid`].
    pub validity: Validity,
    pub date: Option<NaiveDate>,
    /// The scope the item came from (city, district, street or hall).
    pub scope: ScopeCode,
    /// Part of the city's 统一公开内容 baseline.
    pub baseline: bool,
}

/// A date the way it is printed on a Chinese document: `2020年5月9日`.
pub fn chinese_date(d: NaiveDate) -> String {
    use chrono::Datelike;
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// The longest subtitle written, in characters; list rows have one line.
const SUBTITLE_CHARS: usize = 60;

/// The subtitle of `item`. `title_of` finds another item's title, for a 解读 to name the
/// document it explains.
pub(crate) fn subtitle(item: &Item, title_of: &dyn Fn(&str) -> Option<String>) -> String {
    let date = item.date().map(chinese_date);
    let parts: Vec<String> = match &item.body {
        Body::Policy(p) => {
            let mut v: Vec<String> = p.doc_number.iter().cloned().collect();
            v.push(p.issuer.clone());
            v.extend(date);
            v
        }
        Body::Interpretation(i) => {
            let mut v = Vec::new();
            match title_of(&i.policy) {
                Some(t) => v.push(format!("解读《{t}》")),
                None => v.extend(i.author.clone()),
            }
            v.extend(date);
            v
        }
        Body::Guide(g) => {
            let mut v = vec![format!("实施主体：{}", g.authority)];
            if !g.time_limit.is_empty() {
                v.push(format!("办理时限：{}", g.time_limit));
            }
            v
        }
        Body::Catalog(c) => {
            let mut v: Vec<String> = item.domain.iter().cloned().collect();
            v.push(c.level1.clone());
            if !c.subject.is_empty() {
                v.push(format!("公开主体：{}", c.subject));
            }
            v
        }
        Body::Faq(f) => {
            let mut v = vec![first_line(&f.answer)];
            v.extend(date);
            v
        }
        Body::Notice(n) => {
            let mut v = Vec::new();
            if n.pinned {
                v.push("置顶".to_string());
            }
            v.push(format!("发布日期：{}", chinese_date(n.published)));
            v
        }
        Body::Gazette(g) => vec![g.issue.clone(), chinese_date(g.published)],
        Body::QrLink(q) => vec![q.description.clone().unwrap_or_else(|| "扫码访问".to_string())],
        Body::Office(o) => {
            let mut v = vec![o.address.clone()];
            if !o.phone.is_empty() {
                v.push(format!("电话：{}", o.phone));
            }
            v
        }
    };
    let line = parts.into_iter().filter(|p| !p.trim().is_empty()).collect::<Vec<_>>().join(" · ");
    truncate(&line, SUBTITLE_CHARS)
}

/// The first line of a text, for a preview.
fn first_line(text: &str) -> String {
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default().to_string()
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

/// A sort key that puts Chinese titles in pinyin (dictionary) order; other characters
/// keep their place, lower-cased.
pub(crate) fn title_key(title: &str) -> String {
    let mut key = String::with_capacity(title.len() * 2);
    for ch in title.chars() {
        match ch.to_pinyin() {
            Some(p) => {
                key.push_str(p.plain());
                // A separator keeps "xi an" (西安) apart from "xian" (先).
                key.push(' ');
            }
            None => key.extend(ch.to_lowercase()),
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{Guide, Policy};

    fn item(body: Body) -> Item {
        Item {
            id: "x".into(),
            title: "标题".into(),
            domain: None,
            baseline: false,
            links: vec![],
            url: None,
            body,
        }
    }

    #[test]
    fn policy_subtitle_reads_number_issuer_date() {
        let it = item(Body::Policy(Policy {
            doc_number: Some("长政务办〔2020〕8号".into()),
            issuer: "长沙市人民政府办公厅".into(),
            published: NaiveDate::from_ymd_opt(2020, 5, 9),
            ..Policy::default()
        }));
        assert_eq!(
            subtitle(&it, &|_| None),
            "长政务办〔2020〕8号 · 长沙市人民政府办公厅 · 2020年5月9日"
        );
    }

    #[test]
    fn policy_without_number_or_date_has_no_dangling_dots() {
        let it = item(Body::Policy(Policy {
            issuer: "宁乡市人民政府".into(),
            ..Policy::default()
        }));
        assert_eq!(subtitle(&it, &|_| None), "宁乡市人民政府");
    }

    #[test]
    fn guide_subtitle_names_the_authority() {
        let it = item(Body::Guide(Guide {
            matter: "失业登记".into(),
            authority: "宁乡市人力资源和社会保障局".into(),
            time_limit: "即时办结".into(),
            ..Guide::default()
        }));
        assert_eq!(
            subtitle(&it, &|_| None),
            "实施主体：宁乡市人力资源和社会保障局 · 办理时限：即时办结"
        );
    }

    #[test]
    fn long_subtitles_are_cut_with_an_ellipsis() {
        let s = truncate(&"长".repeat(100), 10);
        assert_eq!(s.chars().count(), 10);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn title_key_orders_by_pinyin() {
        // 安 (an) before 保 (bao) before 社 (she), though by code point 保 comes first.
        let mut titles = vec!["社会保险", "保障性住房", "安全生产"];
        titles.sort_by_key(|t| title_key(t));
        assert_eq!(titles, vec!["安全生产", "保障性住房", "社会保险"]);
    }
}
