//! The 五统一 audit: for every device, whether what it runs matches what the city published
//! for its scope chain — 统一标识 (branding), 统一内容 (baseline items), 统一功能 (enabled
//! functions), 统一设置 (device settings) and 统一管理 (the device reports its health at
//! the published interval, fingerprints included).
//!
//! What the city published is read from `--published DIR`: a folder of scope bundles, one
//! sub-folder per scope as `content-sync build` writes them (`DIR/<any name>/manifest.json`
//! and `blobs/`), the same layout `kiosk search --content` reads. The expected fingerprints
//! of a hall are [`kiosk::content::standard::fingerprints`] over the merge of the bundles of
//! its chain — the very function the kiosk runs over its installed version. The folder is
//! re-read when a manifest in it changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use kiosk::bundle::format::{paths, Manifest};
use kiosk::content::{merge, ScopeCode, ScopeContent};
use kiosk::sync::protocol::Standard;

use super::state::Device;

/// What a hall's kiosks are expected to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub standard: Standard,
    /// The published `health_interval_seconds`.
    pub health_interval: u32,
}

/// The published bundles, by scope.
#[derive(Debug, Default)]
pub struct Published {
    dir: PathBuf,
    /// Each manifest file and its modification time when read.
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
    scopes: BTreeMap<ScopeCode, (Manifest, ScopeContent)>,
    /// Expected fingerprints per hall, computed on first use.
    cache: BTreeMap<ScopeCode, Result<Expected, String>>,
}

fn manifest_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if dir.join(paths::MANIFEST).is_file() {
        out.push(dir.join(paths::MANIFEST));
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry.with_context(|| format!("reading {}", dir.display()))?.path();
        if path.join(paths::MANIFEST).is_file() {
            out.push(path.join(paths::MANIFEST));
        }
    }
    out.sort();
    Ok(out)
}

fn stamp(files: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>)> {
    files
        .iter()
        .map(|f| (f.clone(), std::fs::metadata(f).and_then(|m| m.modified()).ok()))
        .collect()
}

impl Published {
    /// Reads every scope bundle under `dir`. Signatures and blob hashes are not checked:
    /// this is the city's own output folder, and a kiosk checks them before installing.
    pub fn load(dir: &Path) -> anyhow::Result<Published> {
        use kiosk::bundle::verify::{parse_envelope, parse_manifest_payload};
        let files = manifest_files(dir)?;
        let stamps = stamp(&files);
        let mut scopes = BTreeMap::new();
        for file in &files {
            let bundle = file.parent().unwrap_or(dir);
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let envelope = parse_envelope(&bytes, u64::MAX, "manifest")
                .with_context(|| format!("{} is not a bundle manifest", file.display()))?;
            let manifest = parse_manifest_payload(&envelope)
                .with_context(|| format!("{} is not a bundle manifest", file.display()))?;
            let blobs = bundle.join(paths::BLOBS);
            let content = kiosk::bundle::read_scope_content(&manifest, |e| {
                std::fs::read(blobs.join(&e.sha256))
            })
            .with_context(|| format!("reading the content of bundle {}", bundle.display()))?;
            if let Some((old, _)) = scopes.get(&manifest.scope) {
                let old: &Manifest = old;
                if old.version >= manifest.version {
                    continue;
                }
            }
            scopes.insert(manifest.scope.clone(), (manifest, content));
        }
        if scopes.is_empty() {
            anyhow::bail!(
                "{} holds no scope bundles: give the folder that `content-sync build` wrote one bundle folder per scope into",
                dir.display()
            );
        }
        Ok(Published { dir: dir.to_path_buf(), stamps, scopes, cache: BTreeMap::new() })
    }

    /// Re-reads the folder when a manifest in it was added, removed or changed. A folder
    /// that cannot be read keeps the last good state (logged).
    pub fn refresh(&mut self) {
        let now = manifest_files(&self.dir).map(|f| stamp(&f)).unwrap_or_default();
        if now == self.stamps {
            return;
        }
        match Published::load(&self.dir) {
            Ok(p) => *self = p,
            Err(e) => tracing::warn!("re-reading the published bundles: {e:#}"),
        }
    }

    /// The published scopes and their versions.
    pub fn versions(&self) -> Vec<(ScopeCode, u64)> {
        self.scopes.iter().map(|(s, (m, _))| (s.clone(), m.version)).collect()
    }

    /// What a kiosk of `hall` should run: the fingerprints of its chain's published
    /// bundles, merged as the kiosk merges them.
    pub fn expected(&mut self, hall: &ScopeCode) -> Result<Expected, String> {
        if let Some(e) = self.cache.get(hall) {
            return e.clone();
        }
        let layers: Vec<&(Manifest, ScopeContent)> =
            hall.chain().iter().filter_map(|s| self.scopes.get(s)).collect();
        let result = if layers.is_empty() {
            Err(format!("没有为 {hall} 的区划链发布内容"))
        } else {
            let contents: Vec<ScopeContent> = layers.iter().map(|(_, c)| c.clone()).collect();
            let manifests: Vec<Manifest> = layers.iter().map(|(m, _)| m.clone()).collect();
            match merge(&contents) {
                Ok(merged) => Ok(Expected {
                    standard: kiosk::content::standard::fingerprints(
                        &merged,
                        &manifests,
                        &merged.device,
                    ),
                    health_interval: merged.device.health_interval_seconds,
                }),
                Err(e) => Err(format!("发布内容无法合并：{e}")),
            }
        };
        self.cache.insert(hall.clone(), result.clone());
        result
    }
}

/// One cell of the audit matrix: passed, or failed with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub reason: String,
}

impl Check {
    fn pass(reason: &str) -> Check {
        Check { ok: true, reason: reason.into() }
    }
    fn fail(reason: String) -> Check {
        Check { ok: false, reason }
    }
}

/// The column names of the matrix, in order.
pub const COLUMNS: [&str; 5] = ["统一标识", "统一内容", "统一功能", "统一设置", "统一管理"];

/// One device's row.
#[derive(Clone, Debug)]
pub struct Row {
    pub device: String,
    pub scope: Option<ScopeCode>,
    pub checks: [Check; 5],
}

fn short(h: &str) -> &str {
    h.get(..8).unwrap_or(h)
}

/// Audits one device at `now`. `expected` is None when the dashboard runs without
/// `--published`.
pub fn audit(d: &Device, expected: Option<&Result<Expected, String>>, now: DateTime<Utc>) -> Row {
    let reported = d.health.as_ref().and_then(|h| h.standard.as_ref());
    let part = |get: fn(&Standard) -> &String| -> Check {
        let Some(expected) = expected else {
            return Check::fail("未配置发布内容 (--published)，无法比对".into());
        };
        let exp = match expected {
            Ok(e) => &e.standard,
            Err(e) => return Check::fail(e.clone()),
        };
        match reported {
            None if d.health.is_none() => Check::fail("尚未收到健康上报".into()),
            None => Check::fail("设备未上报五统一指纹".into()),
            Some(s) if get(s) == get(exp) => Check::pass("与发布一致"),
            Some(s) => Check::fail(format!(
                "与发布不一致（设备 {} ≠ 发布 {}）",
                short(get(s)),
                short(get(exp))
            )),
        }
    };
    let branding = part(|s| &s.branding);
    let baseline = part(|s| &s.baseline);
    let functions = part(|s| &s.functions);
    let settings = part(|s| &s.settings);
    let interval = match expected {
        Some(Ok(e)) => i64::from(e.health_interval.max(1)),
        // Without a published interval, the kiosk default.
        _ => i64::from(kiosk::content::DeviceSettings::default().health_interval_seconds),
    };
    let management = match (d.health_at, reported) {
        (None, _) => Check::fail("尚未收到健康上报".into()),
        (Some(at), _) if (now - at).num_seconds() > 2 * interval => Check::fail(format!(
            "已 {} 秒未上报健康（发布的上报间隔为 {interval} 秒）",
            (now - at).num_seconds()
        )),
        (Some(_), _) if d.health_gap.is_some_and(|g| g.num_seconds() > 2 * interval) => {
            Check::fail(format!(
                "最近两次健康上报相隔 {} 秒，超过发布间隔 {interval} 秒的两倍",
                d.health_gap.map(|g| g.num_seconds()).unwrap_or_default()
            ))
        }
        (Some(_), None) => Check::fail("健康上报不含五统一指纹".into()),
        (Some(_), Some(_)) => Check::pass(&format!("按 {interval} 秒间隔上报")),
    };
    Row {
        device: d.id.clone(),
        scope: d.scope.clone(),
        checks: [branding, baseline, functions, settings, management],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiosk::sync::protocol::Health;

    fn std(x: &str) -> Standard {
        Standard {
            branding: format!("{x}b"),
            baseline: format!("{x}c"),
            functions: format!("{x}f"),
            settings: format!("{x}s"),
        }
    }

    #[test]
    fn each_part_is_compared_and_management_needs_timely_reports_with_fingerprints() {
        let now = Utc::now();
        let expected = Ok(Expected { standard: std("a"), health_interval: 30 });
        let mut reported = std("a");
        reported.functions = "other".into();
        let mut d = Device {
            id: "k1".into(),
            health: Some(Health { standard: Some(reported), ..Health::default() }),
            health_at: Some(now - chrono::Duration::seconds(10)),
            health_gap: Some(chrono::Duration::seconds(30)),
            ..Device::default()
        };
        let row = audit(&d, Some(&expected), now);
        let oks: Vec<bool> = row.checks.iter().map(|c| c.ok).collect();
        assert_eq!(oks, [true, true, false, true, true], "{row:?}");
        assert!(row.checks[2].reason.contains("不一致"));

        d.health_gap = Some(chrono::Duration::seconds(61));
        assert!(audit(&d, Some(&expected), now).checks[4].reason.contains("相隔 61 秒"));
        d.health_gap = Some(chrono::Duration::seconds(30));
        assert!(!audit(&d, Some(&expected), now + chrono::Duration::seconds(60)).checks[4].ok);
        d.health = Some(Health::default());
        let row = audit(&d, Some(&expected), now);
        assert!(!row.checks[0].ok && !row.checks[4].ok, "no fingerprints, no pass: {row:?}");
    }
}
