//! Authoring: a source folder (Word, Markdown, Excel/CSV, TOML) → a signed bundle; and
//! `keygen`, `sign`, `verify`, `inspect` and `diff` for the people who publish bundles.
//!
//! The source folder layout is documented in `demo/README.md` and in [`source`]. Reading a
//! source is strict: every problem is reported with its file and line or row, and nothing
//! is built while there is any.

mod catalog;
mod docx;
pub mod error;
mod kinds;
mod markdown;
pub mod report;
pub mod source;
mod value;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use base64::Engine as _;
use chrono::{Duration, Utc};
use ed25519_dalek::{Signer, SigningKey};
use indicatif::{ProgressBar, ProgressStyle};
use kiosk::bundle::format::{parse_signing_key, paths, Envelope, Manifest, Root, SignatureEntry};
use kiosk::bundle::{write_bundle, write_root, BundleMeta};

pub use error::{At, SourceError, SourceErrorKind, SourceErrors};
pub use report::{diff_report, inspect_report, verify_bundle, VerifyBundleError};
pub use source::{load_settings, load_source, load_source_with_progress, Loaded, SourceSettings};

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The source folder (layout: see demo/README.md).
    pub source: PathBuf,
    /// The bundle folder to write (manifest.json and blobs/).
    #[arg(long)]
    pub out: PathBuf,
    /// Signing key file(s) written by `keygen`; give several for a threshold root.
    #[arg(long, required = true)]
    pub key: Vec<PathBuf>,
    /// The bundle version, overriding bundle.toml; kiosks accept only a higher one than they have.
    #[arg(long)]
    pub version: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the secret key (hex); KEYFILE.pub gets the public key.
    #[arg(long)]
    pub out: PathBuf,
    /// Where to write the self-signed root (version 1) trusting this key; default: root.json
    /// next to KEYFILE.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// When the root expires (e.g. 2036-12-31); default: in ten years.
    #[arg(long)]
    pub expires: Option<String>,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// The bundle folder whose manifest.json to sign.
    pub bundle: PathBuf,
    /// Key file(s) to add signatures with (an existing signature by the same key is replaced).
    #[arg(long, required = true)]
    pub key: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The bundle folder.
    pub bundle: PathBuf,
    /// The trusted root (root.json from `keygen`, or a kiosk's trust/root.json).
    #[arg(long)]
    pub root: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The bundle folder.
    pub bundle: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The bundle a kiosk has now.
    pub old: PathBuf,
    /// The bundle it would get.
    pub new: PathBuf,
}

/// Reads signing keys written by `keygen`.
pub fn read_keys(files: &[PathBuf]) -> anyhow::Result<Vec<SigningKey>> {
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading key file {}", f.display()))?;
            parse_signing_key(&text).with_context(|| {
                format!(
                    "{} is not a content-sync signing key (64 hex characters, as `keygen` writes)",
                    f.display()
                )
            })
        })
        .collect()
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} files") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub fn build(args: BuildArgs) -> anyhow::Result<()> {
    let keys = read_keys(&args.key)?;
    let settings = load_settings(&args.source)?;
    let bar = progress_bar();
    bar.set_message("reading sources");
    let loaded = load_source_with_progress(&args.source, &bar);
    bar.finish_and_clear();
    let (content, files) = loaded?;
    let (created, expires) = settings.validity(Utc::now());
    let meta = BundleMeta { version: args.version.unwrap_or(settings.version), created, expires };
    let key_refs: Vec<&SigningKey> = keys.iter().collect();
    let manifest = write_bundle(&args.out, &content, &files, &meta, &key_refs)
        .with_context(|| format!("writing the bundle to {}", args.out.display()))?;
    println!(
        "built {} version {}: {} items, {} files, {} entries, {} → {}",
        manifest.scope,
        manifest.version,
        content.items.len(),
        files.len(),
        manifest.entries.len(),
        report::human_size(manifest.total_size()),
        args.out.display()
    );
    Ok(())
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let pub_path = PathBuf::from(format!("{}.pub", args.out.display()));
    let root_path = args.root.clone().unwrap_or_else(|| {
        args.out.parent().map(|p| p.join("root.json")).unwrap_or_else(|| PathBuf::from("root.json"))
    });
    for p in [&args.out, &pub_path, &root_path] {
        if p.exists() && !args.force {
            bail!(
                "{} exists: keygen does not overwrite keys (give --force if you mean it)",
                p.display()
            );
        }
    }
    let expires = match &args.expires {
        Some(s) => value::parse_instant(s)
            .with_context(|| format!("--expires “{s}” is not a date like 2036-12-31"))?,
        None => Utc::now() + Duration::days(3650),
    };
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    write_secret(&args.out, &format!("{}\n", hex::encode(key.to_bytes())))?;
    std::fs::write(&pub_path, format!("{}\n", hex::encode(key.verifying_key().as_bytes())))
        .with_context(|| format!("writing {}", pub_path.display()))?;
    let root = Root::for_keys(1, expires, &[key.verifying_key()], 1);
    write_root(&root_path, &root, &[&key])
        .with_context(|| format!("writing {}", root_path.display()))?;
    println!(
        "key {} (public {}), root v1 {} trusting {}",
        args.out.display(),
        pub_path.display(),
        root_path.display(),
        hex::encode(key.verifying_key().as_bytes())
    );
    Ok(())
}

/// Writes a secret readable by its owner only.
fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn sign(args: SignArgs) -> anyhow::Result<()> {
    let keys = read_keys(&args.key)?;
    let path = args.bundle.join(paths::MANIFEST);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut env: Envelope = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a signed manifest", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&env.payload)
        .with_context(|| format!("the payload of {} is not a manifest", path.display()))?;
    for key in &keys {
        let hex_key = hex::encode(key.verifying_key().as_bytes());
        env.signatures.retain(|s| s.key != hex_key);
        let sig = base64::engine::general_purpose::STANDARD
            .encode(key.sign(env.payload.as_bytes()).to_bytes());
        env.signatures.push(SignatureEntry { key: hex_key, sig });
    }
    let json = serde_json::to_string_pretty(&env)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    println!(
        "signed {} version {}: {} signature(s)",
        manifest.scope,
        manifest.version,
        env.signatures.len()
    );
    Ok(())
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let manifest = report::verify_bundle(&args.bundle, &args.root)?;
    println!(
        "OK: {} version {}, {} entries, expires {}",
        manifest.scope,
        manifest.version,
        manifest.entries.len(),
        manifest.expires.format("%Y-%m-%d")
    );
    Ok(())
}

pub fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    print!("{}", inspect_report(&args.bundle)?);
    Ok(())
}

pub fn diff(args: DiffArgs) -> anyhow::Result<()> {
    print!("{}", diff_report(&args.old, &args.new)?);
    Ok(())
}
