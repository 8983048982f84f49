#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_noise::fuzzing::responder_act1(data));
