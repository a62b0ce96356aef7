//! Fuzz target: see `st_secrets::fuzz_api::azure_response`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| st_secrets::fuzz_api::azure_response(data));
