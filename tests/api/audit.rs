//! The audit log: a scripted scenario's entries with their actors and targets, an
//! organization admin's view (their organization only), the Backend API's filters,
//! impersonation named, and retention.

use reqwest::Method;
use serde_json::{Value, json};

use crate::db_tests;
use crate::helpers::{PASSWORD, TestApp, TestDb, assert_error, cookie_client, jwt_of, spawn_app};

db_tests!(a_scripted_scenario_is_audited, audit_entries_age_out);

async fn entries(app: &TestApp, query: &str) -> Vec<Value> {
    let page: Value = app
        .backend(Method::GET, &format!("/backend/v1/audit_logs?limit=100{query}"), None)
        .await
        .json()
        .await
        .unwrap();
    page["data"].as_array().unwrap().clone()
}

fn find<'a>(entries: &'a [Value], action: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no `{action}` entry in {entries:#?}"))
}

async fn a_scripted_scenario_is_audited(database: TestDb) {
    let app = spawn_app(database).await;
    // Sign-up, and a failed sign-in.
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let failed = app.sign_in_with(&cookie_client(), &bob.email, "not the password").await;
    assert_eq!(failed.status(), 401);
    let org = app.org_with(&ada, &[&bob]).await;
    let eve = app.new_member().await;
    let dan = app.new_member().await;
    let other = app.org_with(&dan, &[]).await;

    // An invitation, a role change, a key made and revoked: by Ada, in her organization.
    let invited = app
        .send_bearer(
            Method::POST,
            "/api/admin/invitations",
            &org.admin_jwt,
            Some(&json!({"email": "carol@example.com", "role": "org:member"})),
        )
        .await;
    assert_eq!(invited.status(), 201);
    let role = app
        .send_bearer(
            Method::PATCH,
            &format!("/api/admin/members/{}", bob.signed.user_id),
            &org.admin_jwt,
            Some(&json!({"role": "org:admin"})),
        )
        .await;
    assert_eq!(role.status(), 200);
    let key: Value = app
        .send_bearer(
            Method::POST,
            "/api/admin/api-keys",
            &org.admin_jwt,
            Some(&json!({"name": "ci", "scopes": ["org:data:read"]})),
        )
        .await
        .json()
        .await
        .unwrap();
    let key_id = key["id"].as_str().unwrap();
    let revoked = app
        .send_bearer(
            Method::DELETE,
            &format!("/api/admin/api-keys/{key_id}"),
            &org.admin_jwt,
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    // A ban, by the backend.
    let banned = app
        .backend(
            Method::POST,
            &format!("/backend/v1/users/{}/ban", eve.signed.user_id),
            None,
        )
        .await;
    assert_eq!(banned.status(), 200);

    let all = entries(&app, "").await;
    let signed_up = all
        .iter()
        .find(|e| e["action"] == "user.created" && e["target"]["id"] == ada.signed.user_id.as_str())
        .expect("Ada's sign-up");
    assert_eq!(signed_up["actor"]["type"], "user");
    assert_eq!(signed_up["actor"]["id"], ada.signed.user_id.as_str());
    assert!(signed_up["ip_address"].as_str().is_some_and(|ip| !ip.is_empty()));
    assert!(signed_up["id"].as_str().unwrap().starts_with("audit_"));

    let failure = find(&all, "sign_in.failed");
    assert_eq!(failure["target"], json!({"type": "user", "id": bob.signed.user_id}));
    assert_eq!(failure["data"]["email"], bob.email.as_str());
    assert_eq!(failure["data"]["factor"], "password");
    assert!(!failure.to_string().contains("not the password"), "never the password");

    let invitation = find(&all, "organizationInvitation.created");
    assert_eq!(invitation["actor"], json!({"type": "user", "id": ada.signed.user_id}));
    assert_eq!(invitation["organization_id"], org.id.as_str());
    assert_eq!(invitation["data"]["email"], "carol@example.com");

    let changed = find(&all, "organizationMembership.updated");
    assert_eq!(changed["actor"]["id"], ada.signed.user_id.as_str());
    assert_eq!(changed["target"], json!({"type": "user", "id": bob.signed.user_id}));
    assert_eq!(changed["data"]["role"], "org:admin");

    for action in ["apiKey.created", "apiKey.revoked"] {
        let entry = find(&all, action);
        assert_eq!(entry["target"], json!({"type": "apiKey", "id": key_id}), "{action}");
        assert_eq!(entry["actor"]["id"], ada.signed.user_id.as_str(), "{action}");
    }
    let ban = find(&all, "user.banned");
    assert_eq!(ban["actor"], json!({"type": "backend", "id": null}));
    assert_eq!(ban["target"]["id"], eve.signed.user_id.as_str());
    assert!(
        all.iter()
            .any(|e| e["action"] == "session.revoked" && e["actor"]["type"] == "backend"),
        "the ban's revocations"
    );

    // Filters.
    let by_action = entries(&app, "&action=sign_in.failed").await;
    assert!(by_action.iter().all(|e| e["action"] == "sign_in.failed") && !by_action.is_empty());
    let about_bob = entries(&app, &format!("&user_id={}", bob.signed.user_id)).await;
    assert!(!about_bob.is_empty());
    assert!(
        about_bob.iter().all(
            |e| e["actor"]["id"] == bob.signed.user_id.as_str() || e["target"]["id"] == bob.signed.user_id.as_str()
        )
    );
    let unauthenticated = app.client.get(app.url("/backend/v1/audit_logs")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);

    // An organization admin sees their organization's entries only; a member none.
    let own: Value = app
        .get_bearer("/api/admin/audit-log?limit=100", &org.admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    let own = own["data"].as_array().unwrap();
    assert!(own.iter().any(|e| e["action"] == "organizationInvitation.created"));
    assert!(own.iter().all(|e| e["organization_id"] == org.id.as_str()), "{own:#?}");
    let theirs: Value = app
        .get_bearer("/api/admin/audit-log?limit=100", &other.admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        theirs["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["organization_id"] == other.id.as_str()),
        "{theirs}"
    );
    let bob_member_jwt = jwt_of(app.refresh(&bob.client, &bob.signed.session_id).await).await;
    // Bob is an admin now (the role change above): once demoted, his admin token reads nothing.
    let demote = app
        .send_bearer(
            Method::PATCH,
            &format!("/api/admin/members/{}", bob.signed.user_id),
            &org.admin_jwt,
            Some(&json!({"role": "org:member"})),
        )
        .await;
    assert_eq!(demote.status(), 200);
    assert_error(
        app.get_bearer("/api/admin/audit-log", &bob_member_jwt).await,
        403,
        "forbidden",
    )
    .await;

    // Impersonation is recorded, and what is done in it names the impersonator.
    let issued: Value = app
        .backend(
            Method::POST,
            "/backend/v1/actor_tokens",
            Some(&json!({"user_id": ada.signed.user_id, "actor": {"sub": "support_ana"}})),
        )
        .await
        .json()
        .await
        .unwrap();
    let url = issued["url"].as_str().unwrap();
    let support = cookie_client();
    let opened = support
        .get(app.url(&url[url.find("/v1/tickets/accept").unwrap()..]))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 303);
    let client: Value = support
        .get(app.url("/v1/client"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = client["last_active_session_id"].as_str().unwrap();
    let jwt = jwt_of(app.refresh(&support, sid).await).await;
    let patched = app
        .send_bearer(
            Method::PATCH,
            "/api/me/profile",
            &jwt,
            Some(&json!({"first_name": "Ada"})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let all = entries(&app, "").await;
    let started = find(&all, "impersonation.started");
    assert_eq!(started["target"]["id"], ada.signed.user_id.as_str());
    assert_eq!(started["data"]["actor"]["sub"], "support_ana");
    assert_eq!(started["actor"]["impersonator"], "support_ana");
    assert!(
        all.iter()
            .any(|e| e["action"] == "session.created" && e["actor"]["impersonator"] == "support_ana"),
        "the impersonated session's sign-in names the impersonator"
    );
    let update = all
        .iter()
        .find(|e| e["action"] == "user.updated" && e["actor"]["impersonator"] == "support_ana")
        .unwrap_or_else(|| panic!("the change made while impersonating: {all:#?}"));
    assert_eq!(update["actor"]["id"], ada.signed.user_id.as_str());
    assert_eq!(
        app.sign_in_with(&cookie_client(), &ada.email, PASSWORD).await.status(),
        200
    );
}

async fn audit_entries_age_out(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let before = app
        .count(
            "SELECT COUNT(*) FROM audit_log WHERE actor_id = $1",
            &ada.signed.user_id,
        )
        .await;
    assert!(before >= 2, "sign-up and its session");
    // A year and a day later, housekeeping deletes them (AUDIT_RETENTION_DAYS = 365).
    let later = gatehouse::clock::now_ms() + 366 * 86_400_000;
    gatehouse::jobs::housekeeping::run_once(&app.state, later).await;
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE actor_id = $1",
            &ada.signed.user_id
        )
        .await,
        0
    );
}
