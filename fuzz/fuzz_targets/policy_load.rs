//! The policy loader must never panic, whatever bytes it is given (a property test covers the same
//! ground on stable; this target lets a fuzzer search further).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = changegate_policy::load(text, "fuzz.toml");
    }
});
