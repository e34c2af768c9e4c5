#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| provider_sync_fuzz_checks::sync_request::check(data));
