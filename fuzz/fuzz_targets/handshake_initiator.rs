#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_noise::fuzzing::initiator_act2(data));
