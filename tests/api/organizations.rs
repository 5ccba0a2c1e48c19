//! Organizations, memberships, roles and permissions, switching, reverification, and
//! the admin routes across organizations.

use reqwest::Method;
use serde_json::{Value, json};

use crate::db_tests;
use crate::helpers::{PASSWORD, TestDb, assert_error, spawn_app};
use crate::session_tokens::claims_of;

db_tests!(
    creating_an_organization_makes_the_creator_admin,
    switching_organization_puts_permissions_in_the_token,
    admins_manage_members_and_members_cannot,
    the_last_admin_cannot_leave_or_be_demoted,
    custom_roles_map_to_stored_permissions,
    removing_a_member_needs_recent_verification,
    admin_routes_across_organizations,
);

async fn creating_an_organization_makes_the_creator_admin(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let response = app
        .send_bearer(
            Method::POST,
            "/api/organizations",
            &ada.signed.jwt,
            Some(&json!({"name": "Acme Inc."})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let org: Value = response.json().await.unwrap();
    assert!(org["id"].as_str().unwrap().starts_with("org_"));
    assert_eq!(org["slug"], "acme-inc");
    assert!(org["created_at"].as_i64().unwrap() > 1_600_000_000_000);

    let mine: Value = app
        .get_bearer("/api/me/organizations", &ada.signed.jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["data"][0]["organization"]["id"], org["id"]);
    assert_eq!(mine["data"][0]["role"], "org:admin");

    let taken = app
        .send_bearer(
            Method::POST,
            "/api/organizations",
            &ada.signed.jwt,
            Some(&json!({"name": "Other", "slug": "acme-inc"})),
        )
        .await;
    assert_error(taken, 409, "conflict").await;
    for bad in [
        json!({"name": ""}),
        json!({"name": "Ok", "slug": "Not A Slug"}),
        json!({"name": "x".repeat(101)}),
        json!({"name": "!!!"}),
    ] {
        let response = app
            .send_bearer(Method::POST, "/api/organizations", &ada.signed.jwt, Some(&bad))
            .await;
        assert_error(response, 422, "validation_failed").await;
    }
}

async fn switching_organization_puts_permissions_in_the_token(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let org_id = app.create_org(&ada.signed.jwt, "Acme").await;
    let response = app.switch_org(&ada.client, &ada.signed.session_id, Some(&org_id)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["session"]["active_organization_id"], org_id.as_str());
    let jwt = body["jwt"].as_str().unwrap();
    let claims = claims_of(jwt);
    assert_eq!(claims["o"]["id"], org_id.as_str());
    assert_eq!(claims["o"]["slg"], "acme");
    assert_eq!(claims["o"]["rol"], "admin");
    assert_eq!(claims["fea"], "o:data");
    assert_eq!(claims["o"]["per"], "delete,read,write");
    assert_eq!(claims["o"]["fpm"], "7");

    let me: Value = app.get_bearer("/api/me", jwt).await.json().await.unwrap();
    assert_eq!(me["org_id"], org_id.as_str());
    assert_eq!(me["org_role"], "org:admin");
    assert_eq!(me["org_slug"], "acme");
    assert_eq!(
        me["org_permissions"],
        json!(["org:data:delete", "org:data:read", "org:data:write"])
    );

    // Refresh keeps the organization; null switches back to the personal account.
    let refreshed: Value = app
        .refresh(&ada.client, &ada.signed.session_id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims_of(refreshed["jwt"].as_str().unwrap())["o"]["id"],
        org_id.as_str()
    );
    let personal = app.switch_org_jwt(&ada.client, &ada.signed.session_id, None).await;
    assert!(claims_of(&personal).get("o").is_none());

    // Into an organization one is not a member of: 403, and nothing changes.
    let bob = app.new_member().await;
    let denied = app.switch_org(&bob.client, &bob.signed.session_id, Some(&org_id)).await;
    assert_error(denied, 403, "forbidden").await;
    let denied = app
        .switch_org(&bob.client, &bob.signed.session_id, Some("org_doesnotexist"))
        .await;
    assert_error(denied, 403, "forbidden").await;
    let client: Value = bob
        .client
        .get(app.url("/v1/client"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(client["sessions"][0]["active_organization_id"].is_null());
}

async fn admins_manage_members_and_members_cannot(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let org_id = app.create_org(&ada.signed.jwt, "Acme").await;
    let admin_jwt = app
        .switch_org_jwt(&ada.client, &ada.signed.session_id, Some(&org_id))
        .await;

    let added = app
        .send_bearer(
            Method::POST,
            "/api/admin/members",
            &admin_jwt,
            Some(&json!({"email": bob.email, "role": "org:member"})),
        )
        .await;
    assert_eq!(added.status(), 201);
    let membership: Value = added.json().await.unwrap();
    assert!(membership["id"].as_str().unwrap().starts_with("orgmem_"));
    assert_eq!(membership["user_id"], bob.signed.user_id.as_str());
    assert_eq!(membership["role"], "org:member");

    let again = app
        .send_bearer(
            Method::POST,
            "/api/admin/members",
            &admin_jwt,
            Some(&json!({"user_id": bob.signed.user_id, "role": "org:member"})),
        )
        .await;
    assert_error(again, 409, "conflict").await;
    let unknown_role = app
        .send_bearer(
            Method::POST,
            "/api/admin/members",
            &admin_jwt,
            Some(&json!({"email": "x@example.com", "role": "org:owner"})),
        )
        .await;
    assert_error(unknown_role, 422, "validation_failed").await;
    let nobody = app
        .send_bearer(
            Method::POST,
            "/api/admin/members",
            &admin_jwt,
            Some(&json!({"user_id": "user_nobody", "role": "org:member"})),
        )
        .await;
    assert_error(nobody, 404, "not_found").await;

    let list: Value = app
        .get_bearer("/api/admin/members?limit=1", &admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["user_id"], bob.signed.user_id.as_str(), "newest first");
    let next = list["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get_bearer(&format!("/api/admin/members?limit=1&cursor={next}"), &admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["data"][0]["user_id"], ada.signed.user_id.as_str());
    assert!(rest["next_cursor"].is_null());
    assert_error(
        app.get_bearer("/api/admin/members?limit=0", &admin_jwt).await,
        422,
        "validation_failed",
    )
    .await;

    // Bob, a member, switches in: he holds read and write, not admin.
    let member_jwt = app
        .switch_org_jwt(&bob.client, &bob.signed.session_id, Some(&org_id))
        .await;
    let me: Value = app.get_bearer("/api/me", &member_jwt).await.json().await.unwrap();
    assert_eq!(me["org_role"], "org:member");
    assert_eq!(me["org_permissions"], json!(["org:data:read", "org:data:write"]));
    assert_error(
        app.get_bearer("/api/admin/members", &member_jwt).await,
        403,
        "forbidden",
    )
    .await;
    let patch = app
        .send_bearer(
            Method::PATCH,
            &format!("/api/admin/members/{}", ada.signed.user_id),
            &member_jwt,
            Some(&json!({"role": "org:member"})),
        )
        .await;
    assert_error(patch, 403, "forbidden").await;
    // Without an active organization the admin routes are 403 as well.
    assert_error(
        app.get_bearer("/api/admin/members", &bob.signed.jwt).await,
        403,
        "forbidden",
    )
    .await;

    // Promote, then remove: Bob's next refresh falls back to his personal account.
    let promoted = app
        .send_bearer(
            Method::PATCH,
            &format!("/api/admin/members/{}", bob.signed.user_id),
            &admin_jwt,
            Some(&json!({"role": "org:admin"})),
        )
        .await;
    assert_eq!(promoted.json::<Value>().await.unwrap()["role"], "org:admin");
    let removed = app
        .send_bearer(
            Method::DELETE,
            &format!("/api/admin/members/{}", bob.signed.user_id),
            &admin_jwt,
            None,
        )
        .await;
    assert_eq!(removed.status(), 204);
    let refreshed: Value = app
        .refresh(&bob.client, &bob.signed.session_id)
        .await
        .json()
        .await
        .unwrap();
    assert!(claims_of(refreshed["jwt"].as_str().unwrap()).get("o").is_none());
    let missing = app
        .send_bearer(
            Method::DELETE,
            &format!("/api/admin/members/{}", bob.signed.user_id),
            &admin_jwt,
            None,
        )
        .await;
    assert_error(missing, 404, "not_found").await;
}

async fn the_last_admin_cannot_leave_or_be_demoted(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let org_id = app.create_org(&ada.signed.jwt, "Solo").await;
    let jwt = app
        .switch_org_jwt(&ada.client, &ada.signed.session_id, Some(&org_id))
        .await;
    let path = format!("/api/admin/members/{}", ada.signed.user_id);
    assert_error(
        app.send_bearer(Method::PATCH, &path, &jwt, Some(&json!({"role": "org:member"})))
            .await,
        409,
        "conflict",
    )
    .await;
    assert_error(
        app.send_bearer(Method::DELETE, &path, &jwt, None).await,
        409,
        "conflict",
    )
    .await;
    // Still an admin.
    assert_eq!(app.get_bearer("/api/admin/members", &jwt).await.status(), 200);
}

async fn custom_roles_map_to_stored_permissions(database: TestDb) {
    let app = spawn_app(database).await;
    gatehouse::db::roles::upsert(
        &app.state.db.pool,
        "org:analyst",
        "Analyst",
        &["org:reports:read", "org:data:read"],
        0,
    )
    .await
    .unwrap();
    let ada = app.new_member().await;
    let cleo = app.new_member().await;
    let org_id = app.create_org(&ada.signed.jwt, "Acme").await;
    let admin_jwt = app
        .switch_org_jwt(&ada.client, &ada.signed.session_id, Some(&org_id))
        .await;
    app.add_member(&admin_jwt, &cleo, "org:analyst").await;
    let jwt = app
        .switch_org_jwt(&cleo.client, &cleo.signed.session_id, Some(&org_id))
        .await;
    let claims = claims_of(&jwt);
    assert_eq!(claims["o"]["rol"], "analyst");
    let me: Value = app.get_bearer("/api/me", &jwt).await.json().await.unwrap();
    assert_eq!(me["org_role"], "org:analyst");
    assert_eq!(me["org_permissions"], json!(["org:data:read", "org:reports:read"]));
}

async fn removing_a_member_needs_recent_verification(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let org_id = app.create_org(&ada.signed.jwt, "Acme").await;
    let jwt = app
        .switch_org_jwt(&ada.client, &ada.signed.session_id, Some(&org_id))
        .await;
    app.add_member(&jwt, &bob, "org:member").await;

    // Ada's last password proof was an hour ago.
    let hour_ago = gatehouse::clock::now_ms() - 3_600_000;
    sqlx::query("UPDATE sessions SET last_verified_at = $1 WHERE id = $2")
        .bind(hour_ago)
        .bind(&ada.signed.session_id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let stale: Value = app
        .refresh(&ada.client, &ada.signed.session_id)
        .await
        .json()
        .await
        .unwrap();
    let stale = stale["jwt"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&stale)["fva"], json!([60, -1]));
    let path = format!("/api/admin/members/{}", bob.signed.user_id);
    assert_error(
        app.send_bearer(Method::DELETE, &path, &stale, None).await,
        403,
        "reverification_required",
    )
    .await;

    let verify = |password: &'static str| {
        ada.client
            .post(app.url(&format!("/v1/client/sessions/{}/verify", ada.signed.session_id)))
            .json(&json!({"password": password}))
            .send()
    };
    assert_error(verify("wrong password!").await.unwrap(), 422, "validation_failed").await;
    let verified: Value = verify(PASSWORD).await.unwrap().json().await.unwrap();
    let fresh = verified["jwt"].as_str().unwrap();
    assert_eq!(claims_of(fresh)["fva"], json!([0, -1]));
    assert_eq!(
        claims_of(fresh)["o"]["id"],
        org_id.as_str(),
        "verification keeps the organization"
    );
    assert_eq!(app.send_bearer(Method::DELETE, &path, fresh, None).await.status(), 204);
}

/// For each admin verb: an admin of organization A acting while B is active is
/// impossible (switching into B is 403), and with A active, B's members are not found.
async fn admin_routes_across_organizations(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let zed = app.new_member().await;
    let org_a = app.create_org(&ada.signed.jwt, "Alpha").await;
    let org_b = app.create_org(&zed.signed.jwt, "Beta").await;
    assert_error(
        app.switch_org(&ada.client, &ada.signed.session_id, Some(&org_b)).await,
        403,
        "forbidden",
    )
    .await;
    let jwt_a = app
        .switch_org_jwt(&ada.client, &ada.signed.session_id, Some(&org_a))
        .await;
    let zed_path = format!("/api/admin/members/{}", zed.signed.user_id);

    let list: Value = app.get_bearer("/api/admin/members", &jwt_a).await.json().await.unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ada.signed.user_id.as_str()], "only A's members");
    let patch = app
        .send_bearer(Method::PATCH, &zed_path, &jwt_a, Some(&json!({"role": "org:member"})))
        .await;
    assert_error(patch, 404, "not_found").await;
    assert_error(
        app.send_bearer(Method::DELETE, &zed_path, &jwt_a, None).await,
        404,
        "not_found",
    )
    .await;
    // B is untouched: Zed is still B's admin.
    let jwt_b = app
        .switch_org_jwt(&zed.client, &zed.signed.session_id, Some(&org_b))
        .await;
    let me: Value = app.get_bearer("/api/me", &jwt_b).await.json().await.unwrap();
    assert_eq!(me["org_role"], "org:admin");
}
