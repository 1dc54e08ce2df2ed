//! The device settings in force: the city's published 统一载体配置 (`device.json` of the
//! installed content) with this device's local overrides on top. Overrides come from a
//! signed `set-setting` remote command and live in `<data_dir>/settings.local.json`, so
//! they survive a restart and a content update.
//!
//! Every reader of device settings goes through [`effective`] (or [`with_local`] when it
//! already holds the published settings), so the sync worker, the health reporter and the
//! UI agree. Unlike the rest of `content/`, the functions at the bottom read and write
//! files, so that there is one settings entry point next to the model it overlays;
//! [`overlay`] and [`parse`] are the pure core and are tested without disk.

use std::collections::BTreeMap;
use std::path::Path;

use thiserror::Error;

use super::DeviceSettings;

/// The overrides file under the data directory.
pub const LOCAL_FILE: &str = "settings.local.json";

/// Local overrides: setting name → value, typed as in [`DeviceSettings`] (numbers as JSON
/// numbers, windows as strings).
pub type Overrides = BTreeMap<String, serde_json::Value>;

/// Every key `set-setting` accepts: the fields of [`DeviceSettings`].
pub const KEYS: &[&str] = &[
    "idle_seconds",
    "idle_countdown_seconds",
    "health_interval_seconds",
    "download_window",
    "bandwidth_kbps",
    "print_page_limit",
    "brightness",
    "screen_on",
    "care_scale",
];

/// The keys the sync worker applies at once; the others are read by the UI when it
/// starts (see [`applies_live`]).
pub const SYNC_KEYS: &[&str] = &["health_interval_seconds", "download_window", "bandwidth_kbps"];

/// Whether the sync worker applies `key` without a restart.
pub fn applies_live(key: &str) -> bool {
    SYNC_KEYS.contains(&key)
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SettingError {
    #[error("unknown setting “{key}”; settings: {}", KEYS.join(", "))]
    UnknownKey { key: String },
    #[error("“{value}” is not a valid value for {key}: {expected}")]
    BadValue { key: String, value: String, expected: String },
    #[error("saving {path}: {reason}")]
    Io { path: String, reason: String },
}

/// Checks one `key` = `value` (as typed by an operator) and returns the value typed as the
/// field it sets. Ranges are what a kiosk can live with: a health interval of 0 or an
/// idle time of 2 seconds would make the device unusable.
pub fn parse(key: &str, value: &str) -> Result<serde_json::Value, SettingError> {
    let v = value.trim();
    let bad = |expected: &str| SettingError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    };
    let int = |lo: u32, hi: u32, expected: &str| -> Result<serde_json::Value, SettingError> {
        match v.parse::<u32>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n.into()),
            _ => Err(bad(expected)),
        }
    };
    match key {
        "idle_seconds" => int(10, 3600, "whole seconds from 10 to 3600"),
        "idle_countdown_seconds" => int(0, 120, "whole seconds from 0 to 120"),
        "health_interval_seconds" => int(1, 86_400, "whole seconds from 1 to 86400"),
        "bandwidth_kbps" => int(0, 1_000_000, "kilobytes per second, 0 for no cap"),
        "print_page_limit" => int(1, 500, "pages from 1 to 500"),
        "brightness" => int(0, 100, "percent from 0 to 100"),
        // Kept as the decimal the operator typed (f64), not widened from f32 noise.
        "care_scale" => match v.parse::<f64>() {
            Ok(x) if (1.5..=3.0).contains(&x) => {
                serde_json::Number::from_f64(x).map(Into::into).ok_or_else(|| bad(""))
            }
            _ => Err(bad("a scale from 1.5 to 3.0")),
        },
        "download_window" | "screen_on" => {
            if v.is_empty() || is_window(v) {
                Ok(v.into())
            } else {
                Err(bad("HH:MM-HH:MM, or empty for any time"))
            }
        }
        _ => Err(SettingError::UnknownKey { key: key.to_string() }),
    }
}

fn is_window(s: &str) -> bool {
    let time = |t: &str| chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M").is_ok();
    s.split_once('-').is_some_and(|(a, b)| time(a) && time(b))
}

/// The published settings with the overrides on top. An override that no longer fits
/// (a key a newer version dropped, a value out of range after a hand edit) is skipped, so
/// one bad line never takes the others with it.
pub fn overlay(published: DeviceSettings, overrides: &Overrides) -> DeviceSettings {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::to_value(&published) else {
        return published;
    };
    for (key, value) in overrides {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Ok(v) = parse(key, &text) {
            fields.insert(key.clone(), v);
        }
    }
    serde_json::from_value(serde_json::Value::Object(fields)).unwrap_or(published)
}

/// The settings a content version publishes (its `device.json`), when it has any.
pub fn of_version(version: &crate::bundle::ContentVersion) -> Option<DeviceSettings> {
    let path = version.blob_path(crate::bundle::format::paths::DEVICE)?;
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The settings of the installed content (`device.json` of the current version), or the
/// defaults when nothing is installed or the content has none.
pub fn published(data_dir: &Path) -> DeviceSettings {
    crate::bundle::current_version(data_dir)
        .ok()
        .flatten()
        .as_ref()
        .and_then(of_version)
        .unwrap_or_default()
}

/// This device's overrides; none when the file is missing or unreadable (a broken file
/// must not keep the kiosk from starting; the next `set-setting` writes a good one).
pub fn local(data_dir: &Path) -> Overrides {
    std::fs::read(data_dir.join(LOCAL_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// `published` with this device's overrides on top.
pub fn with_local(published: DeviceSettings, data_dir: &Path) -> DeviceSettings {
    overlay(published, &local(data_dir))
}

/// The settings in force on this device: what everyone who reads settings calls.
pub fn effective(data_dir: &Path) -> DeviceSettings {
    with_local(published(data_dir), data_dir)
}

/// Checks and saves one override (write to a temporary file, fsync, rename, fsync the
/// directory), and returns the settings now in force.
pub fn set_local(data_dir: &Path, key: &str, value: &str) -> Result<DeviceSettings, SettingError> {
    let typed = parse(key, value)?;
    let mut overrides = local(data_dir);
    overrides.insert(key.to_string(), typed);
    let path = data_dir.join(LOCAL_FILE);
    let io = |e: std::io::Error| SettingError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let bytes = serde_json::to_vec_pretty(&overrides).map_err(|e| SettingError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    std::fs::create_dir_all(data_dir).map_err(io)?;
    crate::bundle::write_atomic(&path, &bytes).map_err(io)?;
    Ok(effective(data_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_of_device_settings_is_a_key() {
        let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(DeviceSettings::default())
        else {
            panic!("DeviceSettings serialises as an object");
        };
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        let mut keys = KEYS.to_vec();
        names.sort_unstable();
        keys.sort_unstable();
        assert_eq!(names, keys);
    }

    #[test]
    fn values_are_checked_and_typed() {
        assert_eq!(parse("idle_seconds", " 60 "), Ok(60.into()));
        assert_eq!(parse("download_window", "22:00-06:00"), Ok("22:00-06:00".into()));
        assert_eq!(parse("download_window", ""), Ok("".into()));
        assert_eq!(parse("care_scale", "1.7"), Ok(1.7.into()));
        assert!(matches!(parse("brightness", "101"), Err(SettingError::BadValue { .. })));
        assert!(matches!(
            parse("health_interval_seconds", "0"),
            Err(SettingError::BadValue { .. })
        ));
        assert!(matches!(parse("screen_on", "8-18"), Err(SettingError::BadValue { .. })));
        assert!(matches!(parse("volume", "3"), Err(SettingError::UnknownKey { .. })));
    }

    #[test]
    fn overrides_win_and_bad_ones_are_skipped() {
        let mut o = Overrides::new();
        o.insert("idle_seconds".into(), 45.into());
        o.insert("care_scale".into(), 2.0.into());
        o.insert("brightness".into(), 500.into());
        o.insert("gone".into(), 1.into());
        let s = overlay(DeviceSettings::default(), &o);
        assert_eq!(s.idle_seconds, 45);
        assert!((s.care_scale - 2.0).abs() < f32::EPSILON);
        assert_eq!(s.brightness, DeviceSettings::default().brightness);
    }

    #[test]
    fn a_saved_override_is_read_back_over_the_published_settings() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = set_local(dir.path(), "health_interval_seconds", "5").expect("saved");
        assert_eq!(s.health_interval_seconds, 5);
        set_local(dir.path(), "bandwidth_kbps", "64").expect("saved");
        let s = effective(dir.path());
        assert_eq!((s.health_interval_seconds, s.bandwidth_kbps), (5, 64));
        assert!(set_local(dir.path(), "idle_seconds", "soon").is_err());
        assert_eq!(local(dir.path()).len(), 2, "a refused value is not saved");
    }
}
