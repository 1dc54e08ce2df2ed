//! The device's local configuration (`/etc/kiosk/kiosk.toml`): who this kiosk is and where
//! it keeps its data. Defaults are defined once, here; `kiosk.example.toml` documents every
//! key. What the city pushes for every kiosk (统一载体配置) is content, not config.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::content::ScopeCode;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The device id, also the MQTT client id and the CN of its client certificate.
    pub device_id: String,
    /// The most specific scope this kiosk stands in (its hall), e.g. `430182-001-01`.
    pub scope: ScopeCode,
    /// Where content versions, the outbox and logs live.
    pub data_dir: PathBuf,
    /// Argon2/SHA-256 hash of the admin PIN, as written by `kiosk hash-pin`.
    pub admin_pin_hash: String,
    /// CUPS printer name for `lp -d`; empty means no printer and no print buttons.
    pub printer: String,
    /// The MQTT broker, `mqtts://host:8883` (or `mqtt://` for a test bench); empty means
    /// offline only: the kiosk serves its installed content and never connects.
    pub broker: String,
    /// PEM CA certificate that signed the broker's certificate (for `mqtts://`).
    pub broker_ca: PathBuf,
    /// PEM client certificate whose CN is `device_id`, and its private key.
    pub broker_cert: PathBuf,
    pub broker_key: PathBuf,
    /// The city's root.json to pin on first start; empty means the demo root compiled into
    /// the binary. Once pinned (data_dir/trust/root.json) only a verified rotation changes it.
    pub trust_root: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            device_id: "demo-kiosk".into(),
            scope: ScopeCode::parse("430182-001-01").expect("the default scope is valid"),
            data_dir: PathBuf::from("/var/lib/kiosk"),
            admin_pin_hash: String::new(),
            printer: String::new(),
            broker: String::new(),
            broker_ca: PathBuf::new(),
            broker_cert: PathBuf::new(),
            broker_key: PathBuf::new(),
            trust_root: PathBuf::new(),
        }
    }
}

impl Config {
    /// Without a config file (a developer's `cargo run`), data goes under the user's home,
    /// not `/var/lib/kiosk`, which only the installed package may write.
    pub fn for_development() -> Config {
        let home = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(std::env::temp_dir);
        Config { data_dir: home.join("kiosk"), ..Config::default() }
    }

    /// Reads a config file; a missing file at the default path means all defaults.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::for_development())
            }
            Err(e) => return Err(e).with_context(|| format!("reading config {}", path.display())),
        };
        toml::from_str(&text).with_context(|| {
            format!("config {} is not valid: fix the key named above", path.display())
        })
    }
}
