#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_sv1::fuzzing::parse_client_line(data));
