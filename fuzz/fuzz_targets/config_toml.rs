//! The operator's config loader on arbitrary text: any input is a Policy or a list of errors,
//! each naming a path or a line, never a panic. Valid policies must also set up the engine.

#![no_main]

use libfuzzer_sys::fuzz_target;
use provd_config::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Policy::from_toml_str(text) {
        Ok(policy) => {
            let _ = policy.describe();
            // A validated policy is one the engine accepts (pools, option encodings).
            if let Err(e) = provd_engine::Shared::new(policy) {
                panic!("validated policy rejected by the engine: {e}");
            }
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error result carries at least one error");
            for e in &errors.0 {
                assert!(!e.message.is_empty(), "error without a message at {:?}", e.path);
            }
        }
    }
});
