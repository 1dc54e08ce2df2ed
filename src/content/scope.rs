//! Scopes (named by GB/T 2260 division codes, extended for streets and halls) and the merge
//! of a kiosk's scope chain into the content it shows.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::model::{
    Branding, Calendar, DeviceSettings, Functions, Item, ItemId, ScopeContent, SynonymGroup,
};

/// A scope name: a division code such as `430100` (长沙市) or `430182` (宁乡市), optionally
/// followed by `-` and local parts for a street and a hall: `430182-001`, `430182-001-02`.
/// The chain of a scope is found by its parents, so a hall knows its street, county and city.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScopeCode(String);

#[derive(Debug, Error, PartialEq, Eq)]
#[error("“{0}” is not a scope code: use a six-digit division code such as 430182, optionally followed by -street and -hall parts such as 430182-001-02")]
pub struct BadScope(pub String);

impl ScopeCode {
    pub fn parse(s: &str) -> Result<ScopeCode, BadScope> {
        let s = s.trim();
        let mut parts = s.split('-');
        let division = parts.next().unwrap_or_default();
        let ok_division = division.len() == 6 && division.bytes().all(|b| b.is_ascii_digit());
        let ok_rest = parts
            .all(|p| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if ok_division && ok_rest && s.split('-').count() <= 3 {
            Ok(ScopeCode(s.to_string()))
        } else {
            Err(BadScope(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parent scope: hall → street → county/district → city → province. `None` at a
    /// province (`xx0000`).
    pub fn parent(&self) -> Option<ScopeCode> {
        if let Some((head, _)) = self.0.rsplit_once('-') {
            return Some(ScopeCode(head.to_string()));
        }
        let d = &self.0;
        if &d[4..] != "00" {
            Some(ScopeCode(format!("{}00", &d[..4])))
        } else if &d[2..4] != "00" {
            Some(ScopeCode(format!("{}0000", &d[..2])))
        } else {
            None
        }
    }

    /// The chain from the widest scope that a kiosk follows down to this one. The province
    /// is left out: content is published from the city level down.
    pub fn chain(&self) -> Vec<ScopeCode> {
        let mut chain = vec![self.clone()];
        let mut cur = self.clone();
        while let Some(p) = cur.parent() {
            if p.0.len() == 6 && p.0.ends_with("0000") {
                break;
            }
            chain.push(p.clone());
            cur = p;
        }
        chain.reverse();
        chain
    }

    /// Whether `self` is `other` or one of its ancestors.
    pub fn contains(&self, other: &ScopeCode) -> bool {
        other.chain().contains(self)
    }
}

impl TryFrom<String> for ScopeCode {
    type Error = BadScope;
    fn try_from(s: String) -> Result<Self, BadScope> {
        ScopeCode::parse(&s)
    }
}

impl From<ScopeCode> for String {
    fn from(s: ScopeCode) -> String {
        s.0
    }
}

impl fmt::Display for ScopeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a kiosk shows: its scope chain merged, each item tagged with the scope it came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    /// Items in a stable order (by id).
    pub items: Vec<ScopedItem>,
    pub branding: Branding,
    pub functions: Functions,
    pub device: DeviceSettings,
    pub calendar: Calendar,
    pub synonyms: Vec<SynonymGroup>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScopedItem {
    pub scope: ScopeCode,
    pub item: Item,
}

/// Why a scope chain cannot be merged. The kiosk keeps its current content when this happens.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("scope {lower} tries to remove “{id}”, a baseline item of {owner} (统一公开内容): a lower scope may add and override local items but not remove baseline ones")]
    RemovesBaseline { lower: ScopeCode, owner: ScopeCode, id: ItemId },
    #[error("scope {lower} overrides “{id}”, a baseline item of {owner} (统一公开内容): publish local content under a new id instead")]
    OverridesBaseline { lower: ScopeCode, owner: ScopeCode, id: ItemId },
    #[error(
        "scope {lower} is not inside {upper}: a chain must run from the city down to one hall"
    )]
    NotAChain { upper: ScopeCode, lower: ScopeCode },
    #[error("scope {scope} lists item “{id}” twice")]
    DuplicateId { scope: ScopeCode, id: ItemId },
}

/// Merges a scope chain, widest first (city, district, street, hall).
///
/// A lower scope adds items, overrides a higher scope's non-baseline items by id, withdraws
/// non-baseline items through `removed`, and replaces branding, functions, device settings
/// and the calendar when it sets them. Synonyms accumulate. Anything that would remove or
/// change a baseline item is refused.
pub fn merge(chain: &[ScopeContent]) -> Result<Merged, MergeError> {
    for pair in chain.windows(2) {
        if !pair[0].scope.contains(&pair[1].scope) || pair[0].scope == pair[1].scope {
            return Err(MergeError::NotAChain {
                upper: pair[0].scope.clone(),
                lower: pair[1].scope.clone(),
            });
        }
    }
    let mut items: BTreeMap<ItemId, ScopedItem> = BTreeMap::new();
    let mut merged = Merged::default();
    for layer in chain {
        let mut seen: HashMap<&str, ()> = HashMap::new();
        for item in &layer.items {
            if seen.insert(&item.id, ()).is_some() {
                return Err(MergeError::DuplicateId {
                    scope: layer.scope.clone(),
                    id: item.id.clone(),
                });
            }
        }
        for id in &layer.removed {
            if let Some(existing) = items.get(id) {
                if existing.item.baseline {
                    return Err(MergeError::RemovesBaseline {
                        lower: layer.scope.clone(),
                        owner: existing.scope.clone(),
                        id: id.clone(),
                    });
                }
                items.remove(id);
            }
        }
        for item in &layer.items {
            if let Some(existing) = items.get(&item.id) {
                if existing.item.baseline && existing.scope != layer.scope {
                    return Err(MergeError::OverridesBaseline {
                        lower: layer.scope.clone(),
                        owner: existing.scope.clone(),
                        id: item.id.clone(),
                    });
                }
            }
            items.insert(
                item.id.clone(),
                ScopedItem { scope: layer.scope.clone(), item: item.clone() },
            );
        }
        if let Some(b) = &layer.branding {
            merged.branding = b.clone();
        }
        if let Some(f) = &layer.functions {
            merged.functions = f.clone();
        }
        if let Some(d) = &layer.device {
            merged.device = d.clone();
        }
        if let Some(c) = &layer.calendar {
            merged.calendar = c.clone();
        }
        merged.synonyms.extend(layer.synonyms.iter().cloned());
    }
    merged.items = items.into_values().collect();
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::model::{Body, Faq};

    fn scope(s: &str) -> ScopeCode {
        ScopeCode::parse(s).expect("test scope")
    }

    fn faq(id: &str, title: &str, baseline: bool) -> Item {
        Item {
            id: id.into(),
            title: title.into(),
            domain: None,
            baseline,
            links: Vec::new(),
            url: None,
            body: Body::Faq(Faq { question: title.into(), answer: "答".into(), published: None }),
        }
    }

    fn layer(code: &str, items: Vec<Item>) -> ScopeContent {
        ScopeContent { scope: scope(code), items, ..ScopeContent::default() }
    }

    fn titles(m: &Merged) -> Vec<(&str, &str, &str)> {
        m.items
            .iter()
            .map(|s| (s.item.id.as_str(), s.item.title.as_str(), s.scope.as_str()))
            .collect()
    }

    #[test]
    fn a_hall_knows_its_chain_from_the_city_down() {
        let chain: Vec<String> =
            scope("430182-001-01").chain().iter().map(|s| s.to_string()).collect();
        assert_eq!(chain, ["430100", "430182", "430182-001", "430182-001-01"]);
        assert!(scope("430100").contains(&scope("430182-001-01")));
        assert!(!scope("430182").contains(&scope("430100")));
        assert!(ScopeCode::parse("43018").is_err());
        assert!(ScopeCode::parse("430182-../x").is_err());
    }

    #[test]
    fn lower_scopes_add_and_override_local_items() {
        let mut city =
            layer("430100", vec![faq("a", "市级问答", false), faq("b", "市级基线", true)]);
        city.synonyms.push(SynonymGroup { terms: vec!["社保".into(), "社会保险".into()] });
        city.branding = Some(Branding {
            zone_name: "长沙市政务公开专区".into(),
            ..Branding::default()
        });
        let mut county =
            layer("430182", vec![faq("a", "宁乡版问答", false), faq("c", "宁乡新增", false)]);
        county
            .synonyms
            .push(SynonymGroup { terms: vec!["低保".into(), "最低生活保障".into()] });
        county.branding = Some(Branding {
            zone_name: "宁乡市政务公开专区".into(),
            ..Branding::default()
        });
        let merged = merge(&[city, county]).expect("a valid chain merges");
        assert_eq!(
            titles(&merged),
            [
                ("a", "宁乡版问答", "430182"),
                ("b", "市级基线", "430100"),
                ("c", "宁乡新增", "430182")
            ]
        );
        assert_eq!(merged.branding.zone_name, "宁乡市政务公开专区");
        assert_eq!(merged.synonyms.len(), 2, "synonyms of every scope apply");
    }

    #[test]
    fn a_lower_scope_may_withdraw_a_local_item_but_not_a_baseline_one() {
        let city = layer("430100", vec![faq("a", "市级问答", false), faq("b", "市级基线", true)]);
        let mut county = layer("430182", vec![]);
        county.removed = vec!["a".into()];
        let merged =
            merge(&[city.clone(), county.clone()]).expect("withdrawing a local item is allowed");
        assert_eq!(titles(&merged), [("b", "市级基线", "430100")]);

        county.removed = vec!["b".into()];
        let err = merge(&[city, county]).expect_err("removing a baseline item is refused");
        assert_eq!(
            err,
            MergeError::RemovesBaseline {
                lower: scope("430182"),
                owner: scope("430100"),
                id: "b".into()
            }
        );
        assert!(err.to_string().contains("统一公开内容"), "the message says why: {err}");
    }

    #[test]
    fn a_lower_scope_may_not_override_a_baseline_item() {
        let city = layer("430100", vec![faq("b", "市级基线", true)]);
        let hall = layer("430182-001-01", vec![faq("b", "被改写的基线", false)]);
        assert_eq!(
            merge(&[city, hall]),
            Err(MergeError::OverridesBaseline {
                lower: scope("430182-001-01"),
                owner: scope("430100"),
                id: "b".into()
            })
        );
    }

    #[test]
    fn a_chain_must_run_downwards_without_repeats() {
        let city = layer("430100", vec![]);
        let county = layer("430182", vec![]);
        assert!(matches!(
            merge(&[county.clone(), city.clone()]),
            Err(MergeError::NotAChain { .. })
        ));
        assert!(matches!(merge(&[city.clone(), city.clone()]), Err(MergeError::NotAChain { .. })));
        let other = layer("140400", vec![]);
        assert!(matches!(merge(&[city, other]), Err(MergeError::NotAChain { .. })));
        let dup = layer("430182", vec![faq("x", "一", false), faq("x", "二", false)]);
        assert!(matches!(merge(&[county, dup]), Err(MergeError::NotAChain { .. })));
        let dup = layer("430182", vec![faq("x", "一", false), faq("x", "二", false)]);
        assert_eq!(
            merge(&[dup]),
            Err(MergeError::DuplicateId { scope: scope("430182"), id: "x".into() })
        );
    }
}
