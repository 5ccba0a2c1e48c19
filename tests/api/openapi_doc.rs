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

/// Every guarded operation says so in its `security`, and admin routes name the role.
#[test]
fn guarded_operations_declare_their_security() {
    let spec: serde_json::Value = serde_json::from_str(&gatehouse::openapi::api_doc_json()).unwrap();
    let policy = gatehouse::auth::policy::RoutePolicy::default();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let security = operation["security"].as_array();
            match policy.classify(path) {
                gatehouse::auth::policy::RouteClass::Protected => {
                    let security = security.unwrap_or_else(|| panic!("{method} {path} has no security"));
                    assert!(
                        security.iter().any(|s| s.get("session_token").is_some()),
                        "{method} {path}"
                    );
                }
                gatehouse::auth::policy::RouteClass::Admin => {
                    let security = security.unwrap_or_else(|| panic!("{method} {path} has no security"));
                    assert!(
                        security
                            .iter()
                            .any(|s| s["session_token"] == serde_json::json!(["org:admin"])),
                        "{method} {path} must name org:admin"
                    );
                }
                gatehouse::auth::policy::RouteClass::Backend => {
                    let security = security.unwrap_or_else(|| panic!("{method} {path} has no security"));
                    assert!(
                        security.iter().any(|s| s.get("secret_key").is_some()),
                        "{method} {path}"
                    );
                }
                _ => {}
            }
        }
    }
}
