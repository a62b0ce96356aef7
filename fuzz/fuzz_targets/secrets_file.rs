//! Fuzz target: see `st_secrets::fuzz_api::secrets_file`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| st_secrets::fuzz_api::secrets_file(data));
