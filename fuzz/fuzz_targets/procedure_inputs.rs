//! The input decoding of every procedure: arbitrary JSON given to each registry entry's
//! decoder (serde with field-naming errors, and the pure validation of the procedures that read
//! raw JSON), without running any handler. Nothing here may panic; every refusal must be a
//! BAD_REQUEST that names a field.
//!
//! The data is `<procedure index byte><JSON text>`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tidings_procedures::{ErrorCode, Procedure, RawInput, Registry};

fn procedures() -> &'static [&'static Procedure] {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    static ALL: OnceLock<Vec<&'static Procedure>> = OnceLock::new();
    ALL.get_or_init(|| REGISTRY.get_or_init(Registry::new).iter().collect())
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    let all = procedures();
    let procedure = all[pick as usize % all.len()];
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    if let Err(err) = procedure.decode_input(RawInput::Json(value)) {
        assert_eq!(
            err.code,
            ErrorCode::BadRequest,
            "{}: {}",
            procedure.name,
            err.message
        );
        assert!(
            !err.message.is_empty(),
            "{}: an empty message",
            procedure.name
        );
    }
});
