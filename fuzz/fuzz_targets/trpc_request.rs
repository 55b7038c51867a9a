//! The tRPC request parsing: URL path (procedure paths, percent-decoding, batches), query string
//! (`batch`, `input`) and body (the `{"json": …}` envelope, batch objects), then the input
//! decoding of every procedure a path names. Nothing here may panic, whatever the bytes.
//!
//! The data is `<flags byte><path>\0<query>\0<body>`: bit 0 of the flags says whether the body
//! is sent (a POST) or the input comes from the query (a GET).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tidings_procedures::Registry;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::new)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(3, '\0');
    let path = format!("/api/trpc/{}", parts.next().unwrap_or_default());
    let query = parts.next().unwrap_or_default();
    let body = parts.next().filter(|_| flags & 1 == 1);
    let mut request = tidings_gateway::parse_request(&path, query, body);
    let paths = request.paths.clone();
    if !request.batch {
        assert_eq!(paths.len(), 1, "a request that is not a batch has one call");
    }
    for (index, path) in paths.iter().enumerate() {
        let input = request.input(index);
        if let Some(procedure) = registry().get(path) {
            let _ = procedure.decode_input(input);
        }
    }
});
