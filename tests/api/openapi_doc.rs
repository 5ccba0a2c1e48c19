//! The committed `openapi/openapi.json` must match what the handlers declare.
//! Regenerate with `cargo run -- openapi > openapi/openapi.json`.

#[test]
fn committed_openapi_document_is_current() {
    let generated = gatehouse::openapi::api_doc_json();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}
