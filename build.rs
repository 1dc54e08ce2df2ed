//! Compiles the Slint UI under `ui/` and embeds the demo bundle under `demo/bundle/`.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    embed_demo_bundle();
    #[cfg(feature = "ui")]
    compile_ui();
}

#[cfg(feature = "ui")]
fn compile_ui() {
    // Debug info names elements for Slint's ElementHandle, which the UI tests in tests/ui.rs
    // use to find controls by their accessible labels.
    let config = slint_build::CompilerConfiguration::new()
        .with_style("fluent-light".into())
        .with_debug_info(true);
    if let Err(err) = slint_build::compile_with_config("ui/app.slint", config) {
        panic!("the Slint UI under ui/ does not compile: {err}");
    }
}

/// Writes `$OUT_DIR/demo_bundle.rs`: a list of (relative path, bytes) for every file of the
/// committed demo bundle, so a fresh `cargo run` has real content without any download.
fn embed_demo_bundle() {
    // The directory of this build, read when the script runs: `env!` would bake in the
    // checkout the script was first compiled in, and a shared target directory reuses the
    // compiled script for a later clone elsewhere (after the first one is gone, the demo
    // would silently be left out).
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("demo/bundle");
    println!("cargo:rerun-if-changed={}", root.display());
    assert!(
        root.join("root.json").is_file(),
        "the demo bundle is missing: {} has no root.json (rebuild it with demo/build.sh)",
        root.display()
    );
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut out = String::from("pub static DEMO_BUNDLE: &[(&str, &[u8])] = &[\n");
    for rel in &files {
        let abs = root.join(rel);
        println!("cargo:rerun-if-changed={}", abs.display());
        writeln!(out, "    ({rel:?}, include_bytes!({:?})),", abs.display().to_string())
            .expect("writing to a String cannot fail");
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("demo_bundle.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}
