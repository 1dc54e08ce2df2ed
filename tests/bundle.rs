//! Bundles and trust: every bad input is refused with the right reason and the live content
//! stays as it was; root rotation; activation keeps the previous version; and the crash
//! test, which kills `kiosk install` at random instants and finds the old or the new
//! version whole every time.
//!
//! Fixtures are signed at test time with fixed test keys into temp dirs.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, Utc};
use ed25519_dalek::SigningKey;
use kiosk::bundle::format::{paths, Entry, Envelope, Manifest, Root};
use kiosk::bundle::{
    current_version, install_dir, last_result, open_installed, previous_version, rotation_path,
    verify, write_bundle, write_root, BundleMeta, ContentVersion, InstallError, VerifyError,
};
use kiosk::config::Config;
use kiosk::content::{Body, Calendar, Faq, Item, ScopeCode, ScopeContent};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const HALL: &str = "430182-001-01";
const COUNTY: &str = "430182";
const CITY: &str = "430100";

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn far_future() -> DateTime<Utc> {
    Utc::now() + Days::new(3650)
}

fn scope(s: &str) -> ScopeCode {
    ScopeCode::parse(s).unwrap_or_default()
}

/// A small scope content whose item titles carry the version, so versions differ.
fn content(scope_code: &str, version: u64, items: usize) -> ScopeContent {
    let items = (0..items)
        .map(|i| Item {
            id: format!("{scope_code}-faq-{i}"),
            title: format!("社保卡补办第{i}问（第{version}版）"),
            domain: Some("社会保险".into()),
            baseline: false,
            links: vec![],
            url: None,
            body: Body::Faq(Faq {
                question: format!("社保卡丢了怎么补办？{i}"),
                answer: format!("携带身份证到社保窗口办理挂失和补卡。版本{version}"),
                published: None,
            }),
        })
        .collect();
    ScopeContent {
        scope: scope(scope_code),
        items,
        calendar: (scope_code == CITY || scope_code == COUNTY).then(|| Calendar {
            years: vec![2026],
            holidays: vec![chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default()],
            workdays: vec![],
        }),
        ..ScopeContent::default()
    }
}

fn meta(version: u64) -> BundleMeta {
    BundleMeta { version, created: Utc::now(), expires: far_future() }
}

/// A test world: a data dir, a pinned root of key 1, and bundle folders.
struct World {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    config: Config,
}

impl World {
    fn new() -> Result<World, Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let base = tmp.path().to_path_buf();
        let root_path = base.join("root.json");
        write_root(
            &root_path,
            &Root::for_keys(1, far_future(), &[key(1).verifying_key()], 1),
            &[&key(1)],
        )?;
        let config = Config {
            data_dir: base.join("data"),
            scope: scope(HALL),
            trust_root: root_path,
            ..Config::default()
        };
        Ok(World { _tmp: tmp, base, config })
    }

    /// Writes a bundle signed by key 1 and returns its folder.
    fn bundle(
        &self,
        name: &str,
        scope_code: &str,
        version: u64,
    ) -> Result<PathBuf, Box<dyn std::error::Error>> {
        self.bundle_with(name, &content(scope_code, version, 3), &meta(version), &[&key(1)])
    }

    fn bundle_with(
        &self,
        name: &str,
        content: &ScopeContent,
        meta: &BundleMeta,
        keys: &[&SigningKey],
    ) -> Result<PathBuf, Box<dyn std::error::Error>> {
        let dir = self.base.join(name);
        let files =
            vec![("guide.pdf".to_string(), format!("%PDF-1.4 {}", meta.version).into_bytes())];
        write_bundle(&dir, content, &files, meta, keys)?;
        Ok(dir)
    }

    fn current(&self) -> Option<ContentVersion> {
        current_version(&self.config.data_dir).ok().flatten()
    }

    /// What a resident would see: the current version's name and manifests.
    fn live(&self) -> Option<(String, Vec<Manifest>)> {
        self.current().map(|v| (v.name(), v.manifests().cloned().collect()))
    }

    /// Installs a bundle that must be refused, checks the live content did not change and
    /// returns the reason.
    fn refused(&self, bundle: &Path) -> Result<VerifyError, Box<dyn std::error::Error>> {
        let before = self.live();
        let err = match install_dir(&self.config, bundle) {
            Ok(report) => {
                return Err(format!("installed although it should be refused: {report}").into())
            }
            Err(e) => e,
        };
        assert_eq!(self.live(), before, "live content changed after a refusal");
        let last = last_result(&self.config).ok_or("no last_result recorded")?;
        assert!(!last.ok, "last_result says ok after a refusal");
        let install = err.downcast::<InstallError>()?;
        match install {
            InstallError::Refused { cause, .. } => Ok(cause),
            other => Err(format!("refused for another reason than verification: {other}").into()),
        }
    }
}

fn flip_byte(path: &Path, at: usize) -> std::io::Result<()> {
    let mut bytes = std::fs::read(path)?;
    let i = at % bytes.len();
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes)
}

fn read_manifest(bundle: &Path) -> Result<(Envelope, Manifest), Box<dyn std::error::Error>> {
    let env: Envelope = serde_json::from_slice(&std::fs::read(bundle.join(paths::MANIFEST))?)?;
    let manifest: Manifest = serde_json::from_str(&env.payload)?;
    Ok((env, manifest))
}

fn resign(bundle: &Path, manifest: &Manifest, keys: &[&SigningKey]) -> TestResult {
    let env = Envelope::sign(manifest, keys)?;
    std::fs::write(bundle.join(paths::MANIFEST), serde_json::to_vec_pretty(&env)?)?;
    Ok(())
}

#[test]
fn a_good_bundle_installs_and_serves_its_items() -> TestResult {
    let w = World::new()?;
    let report = install_dir(&w.config, &w.bundle("b1", COUNTY, 1)?)?;
    assert_eq!(report.items, 3);
    let v = w.current().ok_or("no current version")?;
    assert!(v.db_path().is_file(), "content.db missing");
    assert!(v.index_dir().is_dir(), "index missing");
    v.check_blobs()?;
    let merged = v.merged()?;
    assert_eq!(merged.items.len(), 3);
    assert!(merged.items.iter().all(|s| s.scope == scope(COUNTY)));
    assert_eq!(v.calendar()?.years, vec![2026]);
    assert_eq!(v.versions()[0].version, 1);
    assert!(v.blob_path("files/guide.pdf").is_some_and(|p| p.is_file()));
    assert!(last_result(&w.config).is_some_and(|r| r.ok));
    Ok(())
}

#[test]
fn a_changed_byte_in_any_blob_is_refused() -> TestResult {
    let w = World::new()?;
    install_dir(&w.config, &w.bundle("b1", COUNTY, 1)?)?;
    let b2 = w.bundle("b2", COUNTY, 2)?;
    let (_, manifest) = read_manifest(&b2)?;
    assert!(manifest.entries.len() >= 5);
    for (n, entry) in manifest.entries.iter().enumerate() {
        let blob = b2.join(paths::BLOBS).join(&entry.sha256);
        let original = std::fs::read(&blob)?;
        flip_byte(&blob, n * 7)?;
        let reason = w.refused(&b2)?;
        assert!(
            matches!(&reason, VerifyError::HashMismatch { path } if *path == entry.path),
            "{}: {reason}",
            entry.path
        );
        std::fs::write(&blob, original)?;
    }
    // Restored, the same bundle installs: the refusals left nothing behind that blocks it.
    install_dir(&w.config, &b2)?;
    Ok(())
}

#[test]
fn a_changed_byte_in_the_manifest_is_refused() -> TestResult {
    let w = World::new()?;
    install_dir(&w.config, &w.bundle("b1", COUNTY, 1)?)?;
    let b2 = w.bundle("b2", COUNTY, 2)?;
    let path = b2.join(paths::MANIFEST);
    let original = std::fs::read(&path)?;
    // A byte changed inside the signed payload, at several places.
    let (env, _) = read_manifest(&b2)?;
    for at in [10usize, 40, 120, env.payload.len() - 5] {
        let mut payload = env.payload.clone().into_bytes();
        payload[at] = if payload[at] == b'1' { b'2' } else { b'1' };
        let tampered =
            Envelope { payload: String::from_utf8_lossy(&payload).into_owned(), ..env.clone() };
        std::fs::write(&path, serde_json::to_vec(&tampered)?)?;
        let reason = w.refused(&b2)?;
        assert!(
            matches!(reason, VerifyError::BadSignature { .. } | VerifyError::Malformed { .. }),
            "byte {at}: {reason}"
        );
    }
    // The version raised in place: the classic replay of an old signature on new text.
    let raised =
        Envelope { payload: env.payload.replace("\"version\":2", "\"version\":9"), ..env.clone() };
    std::fs::write(&path, serde_json::to_vec(&raised)?)?;
    assert!(matches!(w.refused(&b2)?, VerifyError::BadSignature { .. }));
    std::fs::write(&path, original)?;
    install_dir(&w.config, &b2)?;
    Ok(())
}

#[test]
fn a_lower_or_equal_version_is_refused_as_rollback() -> TestResult {
    let w = World::new()?;
    install_dir(&w.config, &w.bundle("b5", COUNTY, 5)?)?;
    let reason = w.refused(&w.bundle("b4", COUNTY, 4)?)?;
    assert!(matches!(reason, VerifyError::Rollback { installed: 5, offered: 4, .. }), "{reason}");
    let reason = w.refused(&w.bundle("b5again", COUNTY, 5)?)?;
    assert!(matches!(reason, VerifyError::Rollback { installed: 5, offered: 5, .. }), "{reason}");
    Ok(())
}

#[test]
fn an_expired_manifest_is_refused() -> TestResult {
    let w = World::new()?;
    install_dir(&w.config, &w.bundle("b1", COUNTY, 1)?)?;
    let expired = BundleMeta {
        version: 2,
        created: Utc::now() - Days::new(30),
        expires: Utc::now() - Days::new(1),
    };
    let b2 = w.bundle_with("b2", &content(COUNTY, 2, 3), &expired, &[&key(1)])?;
    assert!(matches!(w.refused(&b2)?, VerifyError::Expired { .. }));
    Ok(())
}

#[test]
fn a_bundle_for_another_scope_is_refused() -> TestResult {
    let w = World::new()?;
    install_dir(&w.config, &w.bundle("b1", COUNTY, 1)?)?;
    // 430102 is another district of the same city: not in this hall's chain.
    let reason = w.refused(&w.bundle("other", "430102", 7)?)?;
    assert!(
        matches!(&reason, VerifyError::WrongScope { scope, .. } if scope.as_str() == "430102"),
        "{reason}"
    );
    Ok(())
}

#[test]
fn a_signature_by_an_unknown_key_is_refused() -> TestResult {
    let w = World::new()?;
    install_dir(&w.config, &w.bundle("b1", COUNTY, 1)?)?;
    let b2 = w.bundle_with("b2", &content(COUNTY, 2, 3), &meta(2), &[&key(9)])?;
    let reason = w.refused(&b2)?;
    let unknown = hex::encode(key(9).verifying_key().as_bytes());
    assert!(matches!(&reason, VerifyError::UnknownKey { key, .. } if *key == unknown), "{reason}");
    Ok(())
}

#[test]
fn a_blob_larger_than_its_manifest_says_is_refused() -> TestResult {
    let w = World::new()?;
    install_dir(&w.config, &w.bundle("b1", COUNTY, 1)?)?;
    let b2 = w.bundle("b2", COUNTY, 2)?;
    let (_, manifest) = read_manifest(&b2)?;
    let entry = manifest.entry("files/guide.pdf").ok_or("no pdf entry")?;
    let blob = b2.join(paths::BLOBS).join(&entry.sha256);
    let mut bytes = std::fs::read(&blob)?;
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&blob, bytes)?;
    let reason = w.refused(&b2)?;
    assert!(
        matches!(&reason, VerifyError::SizeMismatch { manifest, actual, .. } if *actual == *manifest + 4096),
        "{reason}"
    );
    Ok(())
}

#[test]
fn a_path_with_dotdot_is_refused_even_when_signed() -> TestResult {
    let w = World::new()?;
    install_dir(&w.config, &w.bundle("b1", COUNTY, 1)?)?;
    let b2 = w.bundle("b2", COUNTY, 2)?;
    let (_, mut manifest) = read_manifest(&b2)?;
    manifest.entries[0].path = "files/../../etc/cron.d/x".into();
    resign(&b2, &manifest, &[&key(1)])?;
    let reason = w.refused(&b2)?;
    assert!(matches!(&reason, VerifyError::UnsafePath { path } if path.contains("..")), "{reason}");
    manifest.entries[0].path = "/etc/passwd".into();
    resign(&b2, &manifest, &[&key(1)])?;
    assert!(matches!(w.refused(&b2)?, VerifyError::UnsafePath { .. }));
    Ok(())
}

#[test]
fn a_missing_blob_is_refused() -> TestResult {
    let w = World::new()?;
    let b1 = w.bundle("b1", COUNTY, 1)?;
    let (_, manifest) = read_manifest(&b1)?;
    std::fs::remove_file(b1.join(paths::BLOBS).join(&manifest.entries[0].sha256))?;
    assert!(matches!(w.refused(&b1)?, VerifyError::MissingBlob { .. }));
    assert!(w.current().is_none(), "a refused first install created a version");
    Ok(())
}

#[test]
fn manifests_over_the_limits_are_refused_before_any_blob() -> TestResult {
    let w = World::new()?;
    let b1 = w.bundle("b1", COUNTY, 1)?;
    let bytes = std::fs::read(b1.join(paths::MANIFEST))?;
    let root = Root::for_keys(1, far_future(), &[key(1).verifying_key()], 1);
    let chain = scope(HALL).chain();
    let installed = Default::default();
    let limits = verify::Limits { entries: 2, ..verify::Limits::default() };
    let policy = verify::Policy {
        root: &root,
        chain: &chain,
        installed: &installed,
        now: Utc::now(),
        limits,
    };
    assert!(matches!(verify::verify_manifest(&bytes, &policy), Err(VerifyError::Oversize { .. })));
    let limits = verify::Limits { manifest_bytes: 100, ..verify::Limits::default() };
    let policy = verify::Policy { limits, ..policy };
    assert!(matches!(verify::verify_manifest(&bytes, &policy), Err(VerifyError::Oversize { .. })));
    let limits = verify::Limits { blob_bytes: 10, ..verify::Limits::default() };
    let policy = verify::Policy { limits, ..policy };
    assert!(matches!(verify::verify_manifest(&bytes, &policy), Err(VerifyError::Oversize { .. })));
    Ok(())
}

#[test]
fn streaming_blob_check_stops_at_the_declared_size() {
    let entry = Entry {
        path: "files/a".into(),
        sha256: kiosk::bundle::format::sha256_hex(b"abc"),
        size: 3,
    };
    let mut check = kiosk::bundle::BlobCheck::new(&entry);
    assert!(check.update(b"ab").is_ok());
    assert!(matches!(
        check.update(b"cd"),
        Err(VerifyError::SizeMismatch { actual: 4, manifest: 3, .. })
    ));
    let mut ok = kiosk::bundle::BlobCheck::new(&entry);
    assert!(ok.update(b"abc").is_ok());
    assert!(ok.finish().is_ok());
}

#[test]
fn a_root_rotation_signed_by_old_and_new_keys_is_accepted() -> TestResult {
    let w = World::new()?;
    install_dir(&w.config, &w.bundle("b1", COUNTY, 1)?)?;
    let b2 = w.bundle_with("b2", &content(COUNTY, 2, 3), &meta(2), &[&key(2)])?;
    let root2 = Root::for_keys(2, far_future(), &[key(2).verifying_key()], 1);
    write_root(&rotation_path(&b2, 2), &root2, &[&key(1), &key(2)])?;
    let report = install_dir(&w.config, &b2)?;
    assert_eq!(report.rotated_root, Some(2));
    let pinned: Envelope =
        serde_json::from_slice(&std::fs::read(w.config.data_dir.join("trust/root.json"))?)?;
    assert_eq!(serde_json::from_str::<Root>(&pinned.payload)?, root2);
    // The old key alone no longer counts.
    let b3 = w.bundle_with("b3", &content(COUNTY, 3, 3), &meta(3), &[&key(1)])?;
    assert!(matches!(w.refused(&b3)?, VerifyError::UnknownKey { .. }));
    Ok(())
}

#[test]
fn a_root_rotation_not_properly_signed_is_refused() -> TestResult {
    let w = World::new()?;
    install_dir(&w.config, &w.bundle("b1", COUNTY, 1)?)?;
    let new_root =
        |version: u64, expires| Root::for_keys(version, expires, &[key(2).verifying_key()], 1);
    let cases: Vec<(&str, Root, Vec<SigningKey>)> = vec![
        ("signed only by the new key", new_root(2, far_future()), vec![key(2)]),
        ("signed only by the old key", new_root(2, far_future()), vec![key(1)]),
        ("skips a version", new_root(3, far_future()), vec![key(1), key(2)]),
        ("already expired", new_root(2, Utc::now() - Days::new(1)), vec![key(1), key(2)]),
    ];
    for (i, (what, root, signers)) in cases.into_iter().enumerate() {
        let b = w.bundle_with(&format!("r{i}"), &content(COUNTY, 2, 3), &meta(2), &[&key(2)])?;
        let refs: Vec<&SigningKey> = signers.iter().collect();
        write_root(&rotation_path(&b, root.version), &root, &refs)?;
        let reason = w.refused(&b)?;
        let expected = match i {
            0 => matches!(
                reason,
                VerifyError::UnknownKey { .. } | VerifyError::NotEnoughSignatures { .. }
            ),
            1 => matches!(
                reason,
                VerifyError::UnknownKey { .. } | VerifyError::NotEnoughSignatures { .. }
            ),
            2 => matches!(reason, VerifyError::RootVersion { current: 1, offered: 3 }),
            _ => matches!(reason, VerifyError::Expired { .. }),
        };
        assert!(expected, "{what}: {reason}");
        let pinned: Envelope =
            serde_json::from_slice(&std::fs::read(w.config.data_dir.join("trust/root.json"))?)?;
        assert_eq!(
            serde_json::from_str::<Root>(&pinned.payload)?.version,
            1,
            "{what}: the pinned root changed"
        );
    }
    Ok(())
}

#[test]
fn activation_switches_and_keeps_the_previous_version() -> TestResult {
    let w = World::new()?;
    install_dir(&w.config, &w.bundle("b1", COUNTY, 1)?)?;
    let first = w.current().ok_or("no v1")?.dir;
    install_dir(&w.config, &w.bundle("b2", COUNTY, 2)?)?;
    let second = w.current().ok_or("no v2")?.dir;
    assert_ne!(first, second);
    assert_eq!(previous_version(&w.config.data_dir)?.ok_or("no previous")?.dir, first);
    install_dir(&w.config, &w.bundle("b3", COUNTY, 3)?)?;
    let third = w.current().ok_or("no v3")?;
    assert_eq!(previous_version(&w.config.data_dir)?.ok_or("no previous")?.dir, second);
    assert_eq!(third.versions()[0].version, 3);
    assert!(third.merged()?.items.iter().all(|s| s.item.title.contains("第3版")));
    // Only current and previous are kept on disk.
    let kept = std::fs::read_dir(w.config.data_dir.join("versions"))?.count();
    assert_eq!(kept, 2);
    assert!(!first.exists(), "the version before previous was not deleted");
    Ok(())
}

#[test]
fn scopes_of_a_chain_are_merged_and_a_new_county_version_keeps_the_city() -> TestResult {
    let w = World::new()?;
    let city = w.bundle("all/430100", CITY, 1)?;
    w.bundle("all/430182", COUNTY, 1)?;
    w.bundle("all/430102", "430102", 1)?; // another district: skipped, not refused
    let report = install_dir(&w.config, city.parent().ok_or("no parent")?)?;
    assert_eq!(report.applied.len(), 2);
    assert_eq!(report.items, 6);
    install_dir(&w.config, &w.bundle("county2", COUNTY, 2)?)?;
    let v = w.current().ok_or("no current")?;
    let versions: Vec<(String, u64)> =
        v.versions().into_iter().map(|s| (s.scope.to_string(), s.version)).collect();
    assert_eq!(versions, vec![(CITY.to_string(), 1), (COUNTY.to_string(), 2)]);
    assert_eq!(v.merged()?.items.len(), 6);
    Ok(())
}

/// The crash test: `kiosk install` killed with SIGKILL at random instants, at least 200
/// times; after each kill `current` is the old version or the new one, whole.
#[test]
fn activation_survives_being_killed_at_any_instant() -> TestResult {
    use rand::{Rng, SeedableRng};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let w = World::new()?;
    let cfg = w.base.join("kiosk.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\nscope = {HALL:?}\ntrust_root = {:?}\n",
            w.config.data_dir.display().to_string(),
            w.config.trust_root.display().to_string()
        ),
    )?;
    let bundle_of = |version: u64| -> Result<PathBuf, Box<dyn std::error::Error>> {
        let dir = w.base.join(format!("crash-b{version}"));
        if !dir.exists() {
            w.bundle_with(
                &format!("crash-b{version}"),
                &content(COUNTY, version, 8),
                &meta(version),
                &[&key(1)],
            )?;
        }
        Ok(dir)
    };
    let run = |bundle: &Path| {
        Command::new(env!("CARGO_BIN_EXE_kiosk"))
            .arg("--config")
            .arg(&cfg)
            .arg("install")
            .arg(bundle)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    // One whole run, to learn how long an activation takes here; kills are spread over it.
    let started = Instant::now();
    let status = run(&bundle_of(1)?)?.wait()?;
    assert!(status.success(), "a plain `kiosk install` failed");
    let mut span = started.elapsed().as_micros().max(1000) as u64 * 13 / 10;

    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_2026);
    let (mut old_seen, mut new_seen) = (0, 0);
    for round in 0..200 {
        let installed = w.current().ok_or("no current version")?.versions()[0].version;
        let next = bundle_of(installed + 1)?;
        let mut child = run(&next)?;
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..span)));
        // The child may have finished already; killing a finished child is not an error here.
        let _ = child.kill();
        child.wait()?;
        let now = w.current().ok_or_else(|| format!("round {round}: `current` is gone"))?;
        let version = now.versions()[0].version;
        if version == installed {
            old_seen += 1;
        } else if version == installed + 1 {
            new_seen += 1;
        } else {
            return Err(format!(
                "round {round}: version {version} after installing {}",
                installed + 1
            )
            .into());
        }
        assert_whole(&now, &bundle_of(version)?, round)?;
        // One calibration does not hold on a machine whose load changes (the suite runs in
        // parallel): every 20 rounds, widen the window if no kill came after the switch yet,
        // narrow it if none came before, so that the kills keep covering the switch.
        if round % 20 == 19 {
            if new_seen == 0 {
                span *= 2;
            } else if old_seen == 0 {
                span = (span / 2).max(1000);
            }
        }
    }
    println!("crash test: 200 kills, old version kept {old_seen} times, new version whole {new_seen} times");
    assert!(
        old_seen > 0 && new_seen > 0,
        "kills never hit one side of the switch: the delays do not cover it"
    );
    Ok(())
}

/// Whether a version is whole: the exact manifest of `bundle`, every blob matching its
/// hash, a readable database and an index.
fn assert_whole(v: &ContentVersion, bundle: &Path, round: usize) -> TestResult {
    let expected = std::fs::read(bundle.join(paths::MANIFEST))?;
    let got = std::fs::read(v.dir().join("manifests").join(format!("{COUNTY}.json")))?;
    assert!(got == expected, "round {round}: the manifest of {} is not the bundle's", v.name());
    v.check_blobs().map_err(|e| format!("round {round}: {e}"))?;
    let db = rusqlite::Connection::open_with_flags(
        v.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    assert_eq!(check, "ok", "round {round}: content.db of {} is damaged", v.name());
    assert!(
        v.index_dir().join("meta.json").is_file(),
        "round {round}: the index of {} is incomplete",
        v.name()
    );
    assert_eq!(v.merged()?.items.len(), 8, "round {round}");
    Ok(())
}

#[test]
fn a_fresh_kiosk_gets_the_embedded_demo_and_the_first_real_bundle_replaces_it() -> TestResult {
    let w = World::new()?;
    if kiosk::bundle::embedded::files().is_empty() {
        // A build without demo/bundle says so instead of showing an empty kiosk.
        let err = open_installed(&w.config)
            .err()
            .ok_or("opened content although the build carries no demo")?;
        assert!(
            matches!(err.downcast_ref::<InstallError>(), Some(InstallError::NoDemo)),
            "{err:#}"
        );
        return Ok(());
    }
    let demo = open_installed(&w.config)?;
    demo.check_blobs()?;
    assert!(!demo.merged()?.items.is_empty(), "the demo has no items");
    assert!(demo.db_path().is_file());
    // The city's real root is pinned (trust_root); its first bundle, version 1, is not
    // a rollback against the demo's versions and replaces the demo entirely.
    install_dir(&w.config, &w.bundle("real", COUNTY, 1)?)?;
    let real = w.current().ok_or("no current")?;
    let scopes: Vec<String> = real.versions().into_iter().map(|s| s.scope.to_string()).collect();
    assert_eq!(scopes, vec![COUNTY.to_string()]);
    assert_eq!(real.merged()?.items.len(), 3);
    Ok(())
}

#[test]
fn a_kiosk_outside_the_demo_scopes_is_told_so() -> TestResult {
    let mut w = World::new()?;
    if kiosk::bundle::embedded::files().is_empty() {
        return Ok(());
    }
    w.config.scope = scope("110101");
    let err =
        open_installed(&w.config).err().ok_or("installed demo content for a Beijing district")?;
    assert!(
        matches!(err.downcast_ref::<InstallError>(), Some(InstallError::DemoNotForChain(_))),
        "{err:#}"
    );
    assert!(w.current().is_none());
    Ok(())
}

#[test]
fn rollback_serves_the_previous_version_again() -> TestResult {
    let w = World::new()?;
    install_dir(&w.config, &w.bundle("b1", COUNTY, 1)?)?;
    install_dir(&w.config, &w.bundle("b2", COUNTY, 2)?)?;
    let name = kiosk::bundle::rollback(&w.config)?;
    let now = w.current().ok_or("no current")?;
    assert_eq!(now.name(), name);
    assert_eq!(now.versions()[0].version, 1);
    assert!(now.merged()?.items.iter().all(|s| s.item.title.contains("第1版")));
    // Version 2 may be offered again after a rollback.
    install_dir(&w.config, &w.bundle("b2", COUNTY, 2)?)?;
    assert_eq!(w.current().ok_or("no current")?.versions()[0].version, 2);
    Ok(())
}
