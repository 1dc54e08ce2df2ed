//! The read queries the UI needs, answered from indexes, returning plain Rust types.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, params_from_iter, Row};
use serde::de::DeserializeOwned;

use super::summary::ItemSummary;
use super::{Store, StoreError};
use crate::content::{
    Branding, Calendar, DeviceSettings, Functions, Item, Kind, ScopeCode, SynonymGroup, Validity,
    DOMAINS,
};

/// The most rows one page may ask for; a kiosk screen shows far fewer.
pub const MAX_PAGE: u32 = 200;

/// How an item without a 领域 is labelled in domain counts and the catalogue tree.
pub const NO_DOMAIN_LABEL: &str = "其他";

/// What a list screen asks for: one kind, optional filters, one page.
///
/// Built with [`ListQuery::new`] and the chained setters:
/// `ListQuery::new(Kind::Policy).domain("社会保险").validity(Validity::Valid).page(0, 20)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub kind: Kind,
    /// 领域; `Some("")` asks for the items that have none.
    pub domain: Option<String>,
    pub validity: Option<Validity>,
    /// 一级事项 (catalogue).
    pub level1: Option<String>,
    /// 二级事项 (catalogue).
    pub level2: Option<String>,
    pub offset: u32,
    /// At most [`MAX_PAGE`]; larger values are clamped.
    pub limit: u32,
}

impl ListQuery {
    pub fn new(kind: Kind) -> ListQuery {
        ListQuery {
            kind,
            domain: None,
            validity: None,
            level1: None,
            level2: None,
            offset: 0,
            limit: 20,
        }
    }
    pub fn domain(mut self, domain: impl Into<String>) -> ListQuery {
        self.domain = Some(domain.into());
        self
    }
    pub fn validity(mut self, validity: Validity) -> ListQuery {
        self.validity = Some(validity);
        self
    }
    pub fn level1(mut self, level1: impl Into<String>) -> ListQuery {
        self.level1 = Some(level1.into());
        self
    }
    pub fn level2(mut self, level2: impl Into<String>) -> ListQuery {
        self.level2 = Some(level2.into());
        self
    }
    pub fn page(mut self, offset: u32, limit: u32) -> ListQuery {
        self.offset = offset;
        self.limit = limit;
        self
    }
}

/// One page of a list and how many items match in all.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub items: Vec<ItemSummary>,
    pub total: u64,
    pub offset: u32,
}

impl Page {
    /// Whether a "more" button has anything to load.
    pub fn has_more(&self) -> bool {
        u64::from(self.offset) + (self.items.len() as u64) < self.total
    }
}

/// An item opened for reading, with what it links to and what links to it.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemDetail {
    pub item: Item,
    pub summary: ItemSummary,
    /// Items this one names in its links (and, for a 解读, its document).
    pub links_out: Vec<ItemSummary>,
    /// Items that name this one.
    pub links_in: Vec<ItemSummary>,
}

impl ItemDetail {
    /// Outgoing then incoming links, each item once: the "相关内容" list.
    pub fn related(&self) -> Vec<&ItemSummary> {
        let mut seen = HashSet::new();
        self.links_out.iter().chain(&self.links_in).filter(|s| seen.insert(s.id.as_str())).collect()
    }
}

/// How many items of a kind a 领域 holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainCount {
    /// The filter value for [`ListQuery::domain`]; `""` for items without a 领域.
    pub domain: String,
    /// What the screen shows: the domain, or [`NO_DOMAIN_LABEL`].
    pub label: String,
    pub count: u64,
}

/// The 公开目录 tree: 领域 → 一级事项 → 二级事项, in the official order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogDomain {
    pub domain: String,
    pub label: String,
    pub count: u64,
    pub level1: Vec<CatalogLevel1>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogLevel1 {
    pub name: String,
    /// Rows under this 一级事项, including rows that have no 二级事项.
    pub count: u64,
    /// Named 二级事项 only; rows without one are listed with the `level1` filter alone.
    pub level2: Vec<CatalogLevel2>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogLevel2 {
    pub name: String,
    pub count: u64,
}

/// The summary columns, in the order [`summary_from_row`] reads them.
const SUMMARY_COLUMNS: &str =
    "items.id, items.kind, items.title, items.subtitle, items.domain, items.validity, items.date_key, items.scope, items.baseline";

/// The list order: documents in force first, newest first, then catalogue order, then
/// pinyin order of the title.
const LIST_ORDER: &str =
    "items.in_force DESC, items.date_key DESC, items.ord, items.title_key, items.id";

/// [`LIST_ORDER`] without its first key, for lists of one 效力状态.
const ORDER_WITHIN_VALIDITY: &str = "items.date_key DESC, items.ord, items.title_key, items.id";

/// A summary row as stored, before its text columns are checked.
struct RawSummary {
    id: String,
    kind: String,
    title: String,
    subtitle: String,
    domain: String,
    validity: String,
    date: String,
    scope: String,
    baseline: bool,
}

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<RawSummary> {
    Ok(RawSummary {
        id: row.get(0)?,
        kind: row.get(1)?,
        title: row.get(2)?,
        subtitle: row.get(3)?,
        domain: row.get(4)?,
        validity: row.get(5)?,
        date: row.get(6)?,
        scope: row.get(7)?,
        baseline: row.get(8)?,
    })
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { what: what.to_string(), detail: detail.to_string() }
}

impl RawSummary {
    fn check(self) -> Result<ItemSummary, StoreError> {
        let kind = Kind::parse(&self.kind).ok_or_else(|| corrupt("kind", &self.kind))?;
        let validity =
            Validity::parse(&self.validity).ok_or_else(|| corrupt("validity", &self.validity))?;
        let date = match self.date.as_str() {
            "" => None,
            d => Some(
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|e| corrupt("date", format!("{d}: {e}")))?,
            ),
        };
        let scope = ScopeCode::parse(&self.scope).map_err(|e| corrupt("scope", e))?;
        Ok(ItemSummary {
            id: self.id,
            kind,
            title: self.title,
            subtitle: self.subtitle,
            domain: (!self.domain.is_empty()).then_some(self.domain),
            validity,
            date,
            scope,
            baseline: self.baseline,
        })
    }
}

/// Orders domains as the standard lists them, then any others by name, "no domain" last.
fn domain_rank(domain: &str) -> (usize, String) {
    match DOMAINS.iter().position(|d| *d == domain) {
        Some(i) => (i, String::new()),
        None if domain.is_empty() => (usize::MAX, String::new()),
        None => (DOMAINS.len(), domain.to_string()),
    }
}

fn domain_label(domain: &str) -> String {
    if domain.is_empty() {
        NO_DOMAIN_LABEL.to_string()
    } else {
        domain.to_string()
    }
}

impl Store {
    fn summaries_where(
        &self,
        sql: &str,
        values: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<ItemSummary>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let raws =
            stmt.query_map(values, summary_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(RawSummary::check).collect()
    }

    /// One page of a kind, filtered, in list order, with the total count of matches.
    pub fn list(&self, q: &ListQuery) -> Result<Page, StoreError> {
        let mut conditions = vec!["items.kind = ?"];
        let mut values: Vec<String> = vec![q.kind.as_str().to_string()];
        if let Some(d) = &q.domain {
            conditions.push("items.domain = ?");
            values.push(d.clone());
        }
        if let Some(v) = q.validity {
            conditions.push("items.validity = ?");
            values.push(v.as_str().to_string());
        }
        if let Some(l) = &q.level1 {
            conditions.push("items.level1 = ?");
            values.push(l.clone());
        }
        if let Some(l) = &q.level2 {
            conditions.push("items.level2 = ?");
            values.push(l.clone());
        }
        let filter = conditions.join(" AND ");
        let total: u64 = self
            .conn
            .prepare_cached(&format!("SELECT count(*) FROM items WHERE {filter}"))?
            .query_row(params_from_iter(values.iter()), |r| r.get::<_, i64>(0))?
            as u64;
        // Limit and offset are integers from our own type, so they go into the text.
        // With one 效力状态 the in-force flag is constant; leaving it out of the order lets
        // SQLite read the page in index order (items_by_validity, items_by_domain_validity).
        let order = if q.validity.is_some() { ORDER_WITHIN_VALIDITY } else { LIST_ORDER };
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM items WHERE {filter} ORDER BY {order} LIMIT {} OFFSET {}",
            q.limit.min(MAX_PAGE),
            q.offset
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let raws = stmt
            .query_map(params_from_iter(values.iter()), summary_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let items = raws.into_iter().map(RawSummary::check).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, total, offset: q.offset })
    }

    /// The item with `id` and its links both ways, or `None` when this version has no such item.
    pub fn get(&self, id: &str) -> Result<Option<ItemDetail>, StoreError> {
        let json: Option<String> = {
            let mut stmt = self.conn.prepare_cached("SELECT json FROM items WHERE id = ?1")?;
            let mut rows = stmt.query(params![id])?;
            match rows.next()? {
                Some(row) => Some(row.get(0)?),
                None => None,
            }
        };
        let Some(json) = json else { return Ok(None) };
        let item: Item =
            serde_json::from_str(&json).map_err(|e| corrupt(&format!("item “{id}”"), e))?;
        let Some(summary) = self.summary(id)? else { return Ok(None) };
        // Linked items group by kind in the model's order: 文件, 解读, 指南, 目录, 问答, ….
        let kind_rank: String = Kind::ALL
            .iter()
            .enumerate()
            .map(|(i, k)| format!("WHEN '{}' THEN {i} ", k.as_str()))
            .collect();
        let link_order = format!("CASE items.kind {kind_rank}END, {LIST_ORDER}");
        let links_out = self.summaries_where(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM links JOIN items ON items.id = links.dst WHERE links.src = ?1 ORDER BY {link_order}"
            ),
            &[&id],
        )?;
        let links_in = self.summaries_where(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM links JOIN items ON items.id = links.src WHERE links.dst = ?1 ORDER BY {link_order}"
            ),
            &[&id],
        )?;
        Ok(Some(ItemDetail { item, summary, links_out, links_in }))
    }

    /// The list row of one item.
    pub fn summary(&self, id: &str) -> Result<Option<ItemSummary>, StoreError> {
        Ok(self
            .summaries_where(&format!("SELECT {SUMMARY_COLUMNS} FROM items WHERE id = ?1"), &[&id])?
            .pop())
    }

    /// The list rows of `ids`, in the order given, skipping ids this version does not have
    /// (search hits become rows this way).
    pub fn summaries(&self, ids: &[&str]) -> Result<Vec<ItemSummary>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.summary(id)?);
        }
        Ok(out)
    }

    /// How many items each kind has, for the home tiles; kinds with none are left out.
    pub fn kind_counts(&self) -> Result<Vec<(Kind, u64)>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT kind, count(*) FROM items GROUP BY kind")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = rows
            .into_iter()
            .map(|(k, n)| Kind::parse(&k).map(|k| (k, n as u64)).ok_or_else(|| corrupt("kind", k)))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort();
        Ok(out)
    }

    /// How many items of `kind` each 领域 holds, in the standard order of domains.
    pub fn domain_counts(&self, kind: Kind) -> Result<Vec<DomainCount>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT domain, count(*) FROM items WHERE kind = ?1 GROUP BY domain")?;
        let mut out = stmt
            .query_map(params![kind.as_str()], |r| {
                let domain: String = r.get(0)?;
                Ok(DomainCount {
                    label: domain_label(&domain),
                    domain,
                    count: r.get::<_, i64>(1)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.sort_by_key(|d| domain_rank(&d.domain));
        Ok(out)
    }

    /// How many items of `kind` each 效力状态 holds (有效, 失效, 废止, 已修订 order).
    pub fn validity_counts(&self, kind: Kind) -> Result<Vec<(Validity, u64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT validity, count(*) FROM items WHERE kind = ?1 GROUP BY validity",
        )?;
        let rows = stmt
            .query_map(params![kind.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = rows
            .into_iter()
            .map(|(v, n)| {
                Validity::parse(&v).map(|v| (v, n as u64)).ok_or_else(|| corrupt("validity", v))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|(v, _)| Validity::ALL.iter().position(|x| x == v));
        Ok(out)
    }

    /// The 公开目录 as a tree: 领域 (standard order) → 一级事项 → 二级事项 (catalogue
    /// order by 序号), each with its row count.
    pub fn catalog_tree(&self) -> Result<Vec<CatalogDomain>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT domain, level1, level2, count(*), min(ord) FROM items WHERE kind = 'catalog'
             GROUP BY domain, level1, level2",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)? as u64,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        // domain → level1 → (first ord, count, level2 rows)
        type Level1Acc = (i64, u64, Vec<(i64, CatalogLevel2)>);
        let mut tree: BTreeMap<(usize, String), (String, BTreeMap<String, Level1Acc>)> =
            BTreeMap::new();
        for (domain, level1, level2, count, ord) in rows {
            let (_, l1s) = tree
                .entry(domain_rank(&domain))
                .or_insert_with(|| (domain.clone(), BTreeMap::new()));
            let acc = l1s.entry(level1).or_insert((i64::MAX, 0, Vec::new()));
            acc.0 = acc.0.min(ord);
            acc.1 += count;
            if !level2.is_empty() {
                acc.2.push((ord, CatalogLevel2 { name: level2, count }));
            }
        }
        Ok(tree
            .into_values()
            .map(|(domain, l1s)| {
                let mut level1: Vec<(i64, CatalogLevel1)> = l1s
                    .into_iter()
                    .map(|(name, (ord, count, mut l2s))| {
                        l2s.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
                        (
                            ord,
                            CatalogLevel1 {
                                name,
                                count,
                                level2: l2s.into_iter().map(|(_, l)| l).collect(),
                            },
                        )
                    })
                    .collect();
                level1.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
                let level1: Vec<CatalogLevel1> = level1.into_iter().map(|(_, l)| l).collect();
                CatalogDomain {
                    label: domain_label(&domain),
                    count: level1.iter().map(|l| l.count).sum(),
                    domain,
                    level1,
                }
            })
            .collect())
    }

    /// The 通知公告 inside their display window at `now`: pinned first, then newest.
    pub fn notices_showing(&self, now: DateTime<Utc>) -> Result<Vec<ItemSummary>, StoreError> {
        let t = now.timestamp();
        self.summaries_where(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM items WHERE kind = 'notice' AND show_from <= ?1 AND ?1 < show_until
                 ORDER BY items.pinned DESC, {LIST_ORDER}"
            ),
            &[&t],
        )
    }

    fn setting<T: DeserializeOwned>(&self, key: &str) -> Result<T, StoreError> {
        let json: String = self
            .conn
            .prepare_cached("SELECT json FROM settings WHERE key = ?1")?
            .query_row(params![key], |r| r.get(0))
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => corrupt(key, "missing"),
                e => e.into(),
            })?;
        serde_json::from_str(&json).map_err(|e| corrupt(key, e))
    }

    /// 统一标识.
    pub fn branding(&self) -> Result<Branding, StoreError> {
        self.setting("branding")
    }

    /// 统一服务功能: the home tiles, in order.
    pub fn functions(&self) -> Result<Functions, StoreError> {
        self.setting("functions")
    }

    /// 统一载体配置.
    pub fn device(&self) -> Result<DeviceSettings, StoreError> {
        self.setting("device")
    }

    /// The working-day calendar for the statutory clock.
    pub fn calendar(&self) -> Result<Calendar, StoreError> {
        self.setting("calendar")
    }

    /// Synonym groups for search.
    pub fn synonyms(&self) -> Result<Vec<SynonymGroup>, StoreError> {
        self.setting("synonyms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_within_one_validity_is_the_list_order_less_its_first_key() {
        assert_eq!(LIST_ORDER, format!("items.in_force DESC, {ORDER_WITHIN_VALIDITY}"));
    }
}
