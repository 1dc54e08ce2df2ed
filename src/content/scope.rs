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
