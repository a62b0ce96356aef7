//! Generates include/st_secrets.h from src/ffi/ with cbindgen (pinned exactly in
//! Cargo.toml), writing it only when its bytes change, and passes build facts
//! to the crate (target triple and profile, shown by `st_version()`).
//!
//! It also gives the shared library its SONAME (see [`abi_version`]) and makes the
//! profile directory (`target/release`, `target/debug`) usable in place, as an
//! uninstalled prefix: the SONAME link `libst_secrets.so.0.1 ->
//! libst_secrets.so`, the native libraries a static link needs
//! (`native-static-libs.txt`), and `pkgconfig/st_secrets.pc` and
//! `st_secrets_static.pc` pointing at this checkout (the Go binding's tests
//! use them), and what `scripts/install.sh` installs: the relocatable `.pc`
//! files (`pkgconfig-install/`, from the same template) and the CMake package
//! (`cmake-install/`). install.sh reads the SONAME from the built library, so
//! the rule lives here alone.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let ffi_dir = root.join("src/ffi");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/error.rs");
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

    let major = version_part("MAJOR");
    let minor = version_part("MINOR");
    let abi = abi_version(&major, &minor);
    let soname = format!("libst_secrets.so.{abi}");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
        let profile_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
            .ancestors()
            .nth(3)
            .expect("OUT_DIR is <profile dir>/build/<pkg>/out")
            .to_path_buf();
        prepare_profile_dir(&root, &profile_dir, &soname);
        write_cmake_package(&profile_dir.join("cmake-install"), &soname, &abi);
    }
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
        // The same rule in macOS's naming: libst_secrets.0.1.dylib, found
        // through the program's rpath.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libst_secrets.{abi}.dylib");
    }

    let header = generate_header(&root, &ffi_dir);
    let path = root.join("include/st_secrets.h");
    if fs::read(&path).ok().as_deref() != Some(header.as_slice()) {
        fs::create_dir_all(path.parent().expect("include/ has a parent")).expect("create include/");
        fs::write(&path, &header).expect("write include/st_secrets.h");
    }
}

fn version_part(part: &str) -> String {
    env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets the version")
}

/// The ABI version the library's names carry, by the ABI policy
/// (docs/c-api.md): before 1.0 a minor version may break the ABI, so it is
/// part of the name (`0.1`: `libst_secrets.so.0.1`, macOS's
/// `libst_secrets.0.1.dylib`); from 1.0 on only the major version is (`1`).
/// The CMake package's version check ([`write_cmake_package`]) states the
/// same rule in CMake.
fn abi_version(major: &str, minor: &str) -> String {
    if major == "0" {
        format!("0.{minor}")
    } else {
        major.to_owned()
    }
}

/// The installed CMake package (`scripts/install.sh` copies it into
/// `lib/cmake/st_secrets/`): relocatable, every path derived from the
/// location of the file; `st_secrets::st_secrets` (shared) and
/// `st_secrets::st_secrets_static` (with the system libraries it needs); and
/// the version check, compatible when the requested version has the same ABI
/// version ([`abi_version`]).
fn write_cmake_package(dir: &Path, soname: &str, abi: &str) {
    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets the version");
    let libs = fs::read_to_string(dir.with_file_name("native-static-libs.txt"))
        .expect("native-static-libs.txt is written first");
    let cmake_libs: Vec<&str> = libs
        .split_whitespace()
        .map(|l| l.strip_prefix("-l").unwrap_or(l))
        .collect();
    let config = format!(
        r#"# st-secrets CMake package: find_package(st_secrets CONFIG REQUIRED), then link
# st_secrets::st_secrets (shared) or st_secrets::st_secrets_static (static,
# with the system libraries it needs). Relocatable: paths derive from this
# file's location.
get_filename_component(_st_secrets_prefix "${{CMAKE_CURRENT_LIST_DIR}}/../../.." ABSOLUTE)

if(NOT TARGET st_secrets::st_secrets)
  add_library(st_secrets::st_secrets SHARED IMPORTED)
  set_target_properties(st_secrets::st_secrets PROPERTIES
    IMPORTED_LOCATION "${{_st_secrets_prefix}}/lib/libst_secrets.so.{version}"
    IMPORTED_SONAME "{soname}"
    INTERFACE_INCLUDE_DIRECTORIES "${{_st_secrets_prefix}}/include")
endif()

if(NOT TARGET st_secrets::st_secrets_static)
  add_library(st_secrets::st_secrets_static STATIC IMPORTED)
  set_target_properties(st_secrets::st_secrets_static PROPERTIES
    IMPORTED_LOCATION "${{_st_secrets_prefix}}/lib/libst_secrets.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${{_st_secrets_prefix}}/include"
    INTERFACE_LINK_LIBRARIES "{libs}")
endif()

set(st_secrets_VERSION "{version}")
unset(_st_secrets_prefix)
"#,
        libs = cmake_libs.join(";"),
    );
    let check = format!(
        r#"# Compatibility by the ABI policy (docs/c-api.md) (build.rs: the SONAME rule): the
# requested version must have this library's ABI version ({abi}): before 1.0
# the same major and minor, from 1.0 the same major; and not be newer.
set(PACKAGE_VERSION "{version}")
set(PACKAGE_VERSION_COMPATIBLE FALSE)
if(PACKAGE_FIND_VERSION)
  if(PACKAGE_FIND_VERSION_MAJOR STREQUAL "0")
    set(_st_abi "0.${{PACKAGE_FIND_VERSION_MINOR}}")
  else()
    set(_st_abi "${{PACKAGE_FIND_VERSION_MAJOR}}")
  endif()
  if(_st_abi STREQUAL "{abi}" AND NOT PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  endif()
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
  unset(_st_abi)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
if(NOT CMAKE_SIZEOF_VOID_P STREQUAL "8")
  set(PACKAGE_VERSION "${{PACKAGE_VERSION}} (64-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
"#
    );
    fs::create_dir_all(dir).expect("create the cmake-install directory");
    write_if_changed(&dir.join("st_secretsConfig.cmake"), &config);
    write_if_changed(&dir.join("st_secretsConfigVersion.cmake"), &check);
}

/// Makes `dir` (the profile's output directory) usable in place; see the
/// module documentation. Every file is written only when it changes.
fn prepare_profile_dir(root: &Path, dir: &Path, soname: &str) {
    // A program linked with -lst_secrets records the SONAME, so the loader
    // looks for that name; the link may dangle until the library is linked.
    let link = dir.join(soname);
    if fs::read_link(&link).ok().as_deref() != Some(Path::new("libst_secrets.so")) {
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink("libst_secrets.so", &link).expect("create the SONAME link");
    }
    let libs = native_static_libs(dir);
    write_if_changed(&dir.join("native-static-libs.txt"), &format!("{libs}\n"));
    let include = root.join("include");
    let profile = env::var("PROFILE").unwrap_or_default();
    // Uninstalled: this checkout's build, by absolute paths.
    let here = format!(
        "# Uninstalled: this checkout's {profile} build (written by build.rs).\n\
         libdir={}\nincludedir={}\n",
        dir.display(),
        include.display()
    );
    write_pc_files(
        &dir.join("pkgconfig"),
        &here,
        &libs,
        &format!(" (uninstalled {profile} build)"),
    );
    // Installed (scripts/install.sh copies these): relocatable, every path
    // derived from the directory of the .pc file.
    let installed = "# Relocatable: every path derives from the directory of this file.\n\
                     prefix=${pcfiledir}/../..\nlibdir=${prefix}/lib\nincludedir=${prefix}/include\n";
    write_pc_files(&dir.join("pkgconfig-install"), installed, &libs, "");
}

/// The pkg-config files, `st_secrets.pc` (shared; `pkg-config --static` adds
/// the system libraries a static link needs, but -lst_secrets still picks
/// the shared library where both exist) and `st_secrets_static.pc`, written
/// into `dir` with `paths` (the lines that define `libdir` and `includedir`):
/// the one template of both the uninstalled and the installed files.
fn write_pc_files(dir: &Path, paths: &str, libs: &str, note: &str) {
    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets the version");
    let description = env::var("CARGO_PKG_DESCRIPTION").expect("cargo sets the description");
    let shared = format!(
        "{paths}\nName: st_secrets\nDescription: {description}{note}\n\
         Version: {version}\nCflags: -I${{includedir}}\n\
         Libs: -L${{libdir}} -Wl,-rpath,${{libdir}} -lst_secrets\nLibs.private: {libs}\n"
    );
    let static_ = format!(
        "{paths}\nName: st_secrets_static\nDescription: {description} (static){note}\n\
         Version: {version}\nCflags: -I${{includedir}}\n\
         Libs: ${{libdir}}/libst_secrets.a {libs}\n"
    );
    fs::create_dir_all(dir).expect("create the pkgconfig directory");
    write_if_changed(&dir.join("st_secrets.pc"), &shared);
    write_if_changed(&dir.join("st_secrets_static.pc"), &static_);
}

/// The system libraries a static link of a Rust staticlib needs, as rustc
/// prints them (`--print native-static-libs`) for an empty staticlib, less
/// `-lgcc_s`: the unwinder is left to the compiler driver, which links
/// `libgcc_s` as needed into a dynamic program and `libgcc_eh` into a
/// `-static` one (a fully static link fails on `-lgcc_s`, which has no
/// archive). This crate's dependencies add none (SQLite is bundled, TLS is
/// pure Rust); the static consumer tests would fail to link if one did.
fn native_static_libs(dir: &Path) -> String {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let scratch = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src = scratch.join("empty.rs");
    fs::write(&src, "").expect("write an empty crate");
    let out = std::process::Command::new(rustc)
        .args([
            "--crate-type",
            "staticlib",
            "--crate-name",
            "st_probe",
            "--edition",
            "2021",
        ])
        .arg("--target")
        .arg(env::var("TARGET").expect("cargo sets TARGET"))
        .args(["--print", "native-static-libs", "-o"])
        .arg(scratch.join("libst_probe.a"))
        .arg(&src)
        .output()
        .expect("run rustc --print native-static-libs");
    let text = String::from_utf8_lossy(&out.stderr);
    let libs = text
        .lines()
        .find_map(|l| l.split("native-static-libs: ").nth(1))
        .unwrap_or_else(|| {
            panic!(
                "rustc printed no native-static-libs line for {}",
                dir.display()
            )
        });
    libs.split_whitespace()
        .filter(|l| *l != "-lgcc_s")
        .collect::<Vec<_>>()
        .join(" ")
}

fn write_if_changed(path: &Path, text: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
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
    // generated from exactly the ffi module tree, and from the result codes'
    // one declaration in the domain (src/error.rs).
    let builder = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/error.rs"))
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
