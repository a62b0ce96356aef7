//! Generates include/st_secrets.h from src/ffi/ with cbindgen (pinned exactly in
//! Cargo.toml), writing it only when its bytes change, and passes build facts
//! to the crate (target triple and profile, shown by `st_version()`).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let ffi_dir = root.join("src/ffi");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=include/st_secrets.h");

    println!(
        "cargo:rustc-env=ST_BUILD_TARGET={}",
        env::var("TARGET").expect("cargo sets TARGET")
    );
    println!(
        "cargo:rustc-env=ST_BUILD_PROFILE={}",
        env::var("PROFILE").expect("cargo sets PROFILE")
    );

    let header = generate_header(&root, &ffi_dir);
    let path = root.join("include/st_secrets.h");
    if fs::read(&path).ok().as_deref() != Some(header.as_slice()) {
        fs::create_dir_all(path.parent().expect("include/ has a parent")).expect("create include/");
        fs::write(&path, &header).expect("write include/st_secrets.h");
    }
}

/// The well-known secret keys, as `#define`s in the header.
const WELL_KNOWN_KEYS: [(&str, &str, &str); 3] = [
    (
        "ST_KEY_REPLICATE_API_TOKEN",
        "REPLICATE_API_TOKEN",
        "Key of the Replicate API token.",
    ),
    (
        "ST_KEY_HF_TOKEN",
        "HF_TOKEN",
        "Key of the Hugging Face token.",
    ),
    (
        "ST_KEY_WEBHOOK_SECRET",
        "CLOUD_WEBHOOK_SECRET",
        "Key of the cloud webhook secret (HMAC validation).",
    ),
];

fn generate_header(root: &Path, ffi_dir: &Path) -> Vec<u8> {
    let mut config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("read cbindgen.toml");
    let version =
        |part: &str| env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets the version");
    let mut defines = format!(
        "\n/** Version of this header; compare with st_version_major() etc. at run time. */\n\
         #define ST_VERSION_MAJOR {}\n#define ST_VERSION_MINOR {}\n#define ST_VERSION_PATCH {}\n",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH")
    );
    // cbindgen cannot emit string constants; these mirror src/secrets/mod.rs
    // (checked by the test `header_defines_the_well_known_keys`).
    for (name, key, doc) in WELL_KNOWN_KEYS {
        defines.push_str(&format!("\n/** {doc} */\n#define {name} \"{key}\"\n"));
    }
    config.after_includes = Some(defines);

    // cbindgen follows the `mod` items of src/ffi/mod.rs, so the header is
    // generated from exactly the ffi module tree.
    let builder = cbindgen::Builder::new()
        .with_config(config)
        .with_src(ffi_dir.join("mod.rs"));
    let mut out = Vec::new();
    builder
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut out);
    finish_header(String::from_utf8(out).expect("cbindgen writes UTF-8")).into_bytes()
}

/// What cbindgen cannot be told per item:
/// - `st_result` gets a tag (`typedef enum st_result {...} st_result;`) so
///   that C can forward-declare it (`style = "both"` would tag every struct);
/// - a negative constant is parenthesised, so `x-ST_CACHE_USE_DEFAULT` and the
///   like expand as intended (cbindgen drops parentheses from the Rust value).
///
/// Each edit must apply exactly once; otherwise the build fails, so a change
/// in cbindgen's output cannot slip through unedited.
fn finish_header(header: String) -> String {
    let edits = [
        (
            "typedef enum {\n  /**\n   * Success.",
            "typedef enum st_result {\n  /**\n   * Success.",
        ),
        (
            "#define ST_CACHE_USE_DEFAULT -1.0\n",
            "#define ST_CACHE_USE_DEFAULT (-1.0)\n",
        ),
    ];
    let mut header = header;
    for (from, to) in edits {
        assert_eq!(
            header.matches(from).count(),
            1,
            "build.rs: the header no longer has exactly one {from:?}; update finish_header"
        );
        header = header.replacen(from, to, 1);
    }
    header
}
