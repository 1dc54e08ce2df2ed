//! The 五统一 fingerprints: what a kiosk runs, reduced to one SHA-256 per part of the
//! standard (统一标识, 统一内容, 统一功能, 统一设置), so the fleet can compare every kiosk with
//! what the city published for its scope chain without shipping the content back.
//!
//! The kiosk computes them from its installed version; `content-sync fleet` computes the
//! same function over the published bundles. Both sides must call [`fingerprints`].
//!
//! [`fingerprints`] is pure. [`of_installed`] is the one function in `src/content/` that
//! reads the disk (through `crate::bundle`): the health reporter calls it by this path, and
//! it caches per immutable version directory so a report costs one `readlink`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::model::DeviceSettings;
use super::scope::Merged;
use crate::bundle::format::{paths, sha256_hex, Manifest};
use crate::sync::protocol::Standard;

/// Bumped if the canonical form below ever changes, so old and new fingerprints never
/// compare equal by accident.
const FORM: &str = "zwgk-standard-v1";

/// The fingerprints of a merged scope chain.
///
/// - `manifests`: the chain's manifests (any order); they give the blob hash of each item
///   (`items/<id>.json` in the manifest of the scope the merged item came from) and of the
///   logo file.
/// - `settings`: the device settings in force — the published ones merged with the
///   device's local overrides on a kiosk, the published ones on the city side.
///
/// Canonical and order-stable: branding is its serde JSON plus the logo's blob hash;
/// baseline is the sorted `id sha256` lines of the baseline items; functions the enabled
/// list in its order; settings the serde JSON of [`DeviceSettings`] (a struct, so its field
/// order is fixed).
pub fn fingerprints(
    merged: &Merged,
    manifests: &[Manifest],
    settings: &DeviceSettings,
) -> Standard {
    let entry_of = |scope: &super::ScopeCode, path: &str| {
        manifests
            .iter()
            .find(|m| &m.scope == scope)
            .and_then(|m| m.entry(path))
            .map(|e| e.sha256.clone())
    };
    // The logo is looked up from the most specific scope that has it, as the kiosk does.
    let logo = merged.branding.logo.as_ref().and_then(|path| {
        let mut ms: Vec<&Manifest> = manifests.iter().collect();
        ms.sort_by_key(|m| m.scope.chain().len());
        ms.iter().rev().find_map(|m| m.entry(path)).map(|e| e.sha256.clone())
    });
    let branding = format!("{}\nlogo {}", json(&merged.branding), logo.unwrap_or_default());
    let mut baseline: Vec<String> = merged
        .items
        .iter()
        .filter(|s| s.item.baseline)
        .map(|s| {
            // A manifest always lists its items; the item's own JSON is the fallback so a
            // chain without manifests (tests, previews) still fingerprints its content.
            let hash = entry_of(&s.scope, &paths::item(&s.item.id))
                .unwrap_or_else(|| sha256_hex(json(&s.item).as_bytes()));
            format!("{} {hash}", s.item.id)
        })
        .collect();
    baseline.sort();
    Standard {
        branding: digest("branding", &branding),
        baseline: digest("baseline", &baseline.join("\n")),
        functions: digest("functions", &json(&merged.functions.enabled)),
        settings: settings_fingerprint(settings),
    }
}

/// The 统一设置 fingerprint alone (the part that changes without a new content version).
pub fn settings_fingerprint(settings: &DeviceSettings) -> String {
    digest("settings", &json(settings))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    // Serializing plain data structs and enums cannot fail; an empty string would still
    // be a stable (and visibly wrong) fingerprint.
    serde_json::to_string(value).unwrap_or_default()
}

fn digest(part: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(FORM.as_bytes());
    h.update(b"\n");
    h.update(part.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// The fingerprints of the installed version, remembered by whoever reports them (the
/// health reporter keeps one): a version directory never changes, so its content part is
/// computed once per version; 统一设置 is recomputed on every call because local overrides
/// change without a new version.
#[derive(Clone, Debug, Default)]
pub struct InstalledStandard {
    /// (version dir, fingerprints, published device settings) of the last version seen.
    last: Option<(PathBuf, Standard, DeviceSettings)>,
}

impl InstalledStandard {
    /// The fingerprints of the installed content version under `data_dir`, or None when
    /// nothing is installed (or the version cannot be read).
    ///
    /// 统一设置 is the version's published device settings with this device's local
    /// overrides on top ([`super::settings::with_local`]), so a `set-setting` shows as a
    /// deviation.
    pub fn get(&mut self, data_dir: &Path) -> Option<Standard> {
        let version = crate::bundle::current_version(data_dir).ok()??;
        let dir = version.dir().to_path_buf();
        if self.last.as_ref().is_none_or(|(d, ..)| *d != dir) {
            let merged = version.merged().ok()?;
            let manifests: Vec<Manifest> = version.manifests().cloned().collect();
            let standard = fingerprints(&merged, &manifests, &merged.device);
            self.last = Some((dir, standard, merged.device));
        }
        let (_, standard, published) = self.last.as_ref()?;
        let settings = super::settings::with_local(published.clone(), data_dir);
        Some(Standard { settings: settings_fingerprint(&settings), ..standard.clone() })
    }
}

/// [`InstalledStandard::get`] without remembering anything.
pub fn of_installed(data_dir: &Path) -> Option<Standard> {
    InstalledStandard::default().get(data_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::model::{Body, Branding, Faq, Function, Functions, Item, ScopeContent};
    use crate::content::{merge, ScopeCode};

    fn faq(id: &str, answer: &str, baseline: bool) -> Item {
        Item {
            id: id.into(),
            title: id.into(),
            domain: None,
            baseline,
            links: Vec::new(),
            url: None,
            body: Body::Faq(Faq { question: id.into(), answer: answer.into(), published: None }),
        }
    }

    fn chain(branding: &str, local_answer: &str, order: bool) -> Vec<ScopeContent> {
        let mut items = vec![faq("base-1", "基线", true), faq("base-2", "基线二", true)];
        if order {
            items.reverse();
        }
        let city = ScopeContent {
            scope: ScopeCode::parse("430100").expect("scope"),
            items,
            branding: Some(Branding { zone_name: branding.into(), ..Branding::default() }),
            functions: Some(Functions { enabled: vec![Function::Policies, Function::Guides] }),
            ..ScopeContent::default()
        };
        let hall = ScopeContent {
            scope: ScopeCode::parse("430182-001-01").expect("scope"),
            items: vec![faq("local", local_answer, false)],
            ..ScopeContent::default()
        };
        vec![city, hall]
    }

    fn standard(c: &[ScopeContent]) -> Standard {
        let merged = merge(c).expect("merges");
        fingerprints(&merged, &[], &merged.device)
    }

    #[test]
    fn fingerprints_are_stable_and_follow_branding_but_not_local_items() {
        let a = standard(&chain("长沙市政务公开专区", "本地", false));
        assert_eq!(a, standard(&chain("长沙市政务公开专区", "本地", false)), "stable");
        assert_eq!(
            a,
            standard(&chain("长沙市政务公开专区", "本地", true)),
            "independent of source order"
        );
        assert!(a.branding.len() == 64 && a.baseline.len() == 64, "SHA-256 hex: {a:?}");

        let rebranded = standard(&chain("别的专区", "本地", false));
        assert_ne!(rebranded.branding, a.branding, "branding changes its fingerprint");
        assert_eq!(
            (&rebranded.baseline, &rebranded.functions, &rebranded.settings),
            (&a.baseline, &a.functions, &a.settings),
            "and only that one"
        );

        let local = standard(&chain("长沙市政务公开专区", "本地改了", false));
        assert_eq!(local, a, "a non-baseline item does not touch the fingerprints");
    }

    #[test]
    fn baseline_functions_and_settings_each_move_their_own_fingerprint() {
        let c = chain("专区", "本地", false);
        let a = standard(&c);
        let mut changed = c.clone();
        changed[0].items[0] = faq("base-1", "基线改了", true);
        assert_ne!(standard(&changed).baseline, a.baseline);
        let mut changed = c.clone();
        changed[0].functions =
            Some(Functions { enabled: vec![Function::Guides, Function::Policies] });
        assert_ne!(standard(&changed).functions, a.functions, "the order of tiles counts");
        let merged = merge(&c).expect("merges");
        let settings = DeviceSettings { brightness: 30, ..merged.device.clone() };
        let s = fingerprints(&merged, &[], &settings);
        assert_ne!(s.settings, a.settings);
        assert_eq!(s.branding, a.branding);
    }
}
