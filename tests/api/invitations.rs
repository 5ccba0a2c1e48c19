//! Invitations (by email, with an SMTP server the test starts), the organization's
//! lifecycle (rename, delete, leave), the member and role directory, and roles defined
//! through the Backend API: every route's allowed and denied cases.

use reqwest::Method;
use serde_json::{Value, json};

use crate::db_tests;
use crate::helpers::{
    PASSWORD, TestApp, TestDb, TestOptions, assert_error, cookie_client, email, jwt_of, signed_in, spawn_app,
    spawn_app_with,
};
use crate::session_tokens::claims_of;
use crate::smtp::SmtpSink;

db_tests!(
    a_new_user_joins_by_the_emailed_link,
    an_existing_user_accepts_when_the_address_is_verified,
    admins_invite_list_and_revoke_others_cannot,
    invitations_expire,
    concurrent_accepts_of_one_ticket_one_wins,
    renaming_and_deleting_an_organization,
    members_leave_and_the_last_admin_cannot,
    any_member_lists_members_and_roles,
    roles_defined_through_the_backend_api,
);

const LINK: &str = "http://gatehouse.test/accept-invitation?ticket=";

fn options(smtp: &SmtpSink) -> TestOptions {
    TestOptions {
        vars: vec![
            ("RATE_LIMIT", "off".into()),
            ("SMTP_URL", smtp.url()),
            ("EMAIL_RETRY_BASE_MS", "100".into()),
            ("PUBLIC_URL", "http://gatehouse.test".into()),
        ],
        ..Default::default()
    }
}

async fn invite(app: &TestApp, admin_jwt: &str, address: &str, role: &str) -> reqwest::Response {
    app.send_bearer(
        Method::POST,
        "/api/admin/invitations",
        admin_jwt,
        Some(&json!({"email": address, "role": role})),
    )
    .await
}

async fn invited(app: &TestApp, admin_jwt: &str, address: &str, role: &str) -> Value {
    let response = invite(app, admin_jwt, address, role).await;
    assert_eq!(response.status(), 201, "inviting {address}");
    response.json().await.unwrap()
}

/// The ticket of the invitation emailed to `address`.
async fn ticket_for(smtp: &SmtpSink, address: &str, org_name: &str) -> String {
    let mail = smtp
        .wait_for_subject(address, &format!("You are invited to join {org_name}"))
        .await;
    let link = mail.link(LINK);
    link[LINK.len()..].to_owned()
}

async fn verify_address(app: &TestApp, user_id: &str) {
    gatehouse::db::users::mark_email_verified(&app.state.db.pool, user_id, gatehouse::clock::now_ms())
        .await
        .unwrap();
}

async fn org_name(app: &TestApp, org_id: &str) -> String {
    gatehouse::db::organizations::find(&app.state.db.pool, org_id)
        .await
        .unwrap()
        .unwrap()
        .name
}

async fn a_new_user_joins_by_the_emailed_link(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(database, options(&smtp)).await;
    let ada = app.new_member().await;
    let org = app.org_with(&ada, &[]).await;
    let bob = email();
    let invitation = invited(&app, &org.admin_jwt, &bob, "org:member").await;
    assert!(invitation["id"].as_str().unwrap().starts_with("orginv_"));
    assert_eq!(invitation["organization_id"], org.id.as_str());
    assert_eq!(invitation["email"], bob.as_str());
    assert_eq!(invitation["role"], "org:member");
    assert_eq!(invitation["status"], "pending");
    let lifetime = invitation["expire_at"].as_i64().unwrap() - invitation["created_at"].as_i64().unwrap();
    assert_eq!(lifetime, 604_800_000, "INVITATION_LIFETIME defaults to a week");

    let name = org_name(&app, &org.id).await;
    let ticket = ticket_for(&smtp, &bob, &name).await;
    let preview: Value = app
        .client
        .get(app.url(&format!("/v1/invitations/{ticket}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preview["organization"]["id"], org.id.as_str());
    assert_eq!(preview["organization"]["name"], name.as_str());
    assert_eq!(preview["email"], bob.as_str());
    assert_eq!(preview["status"], "pending");
    let forged = app
        .client
        .get(app.url("/v1/invitations/not-a-ticket"))
        .send()
        .await
        .unwrap();
    assert_error(forged, 404, "not_found").await;

    // Another address than the invited one: 422, and nothing is created.
    let bob_client = cookie_client();
    let other = app
        .post_json(
            &bob_client,
            "/v1/sign-up",
            &json!({"email": email(), "password": PASSWORD, "ticket": ticket}),
        )
        .await;
    let error = assert_error(other, 422, "validation_failed").await;
    assert!(error["fields"]["email"].is_string());
    let unknown = app
        .post_json(
            &bob_client,
            "/v1/sign-up",
            &json!({"password": PASSWORD, "ticket": "forged"}),
        )
        .await;
    let error = assert_error(unknown, 422, "validation_failed").await;
    assert!(error["fields"]["ticket"].is_string());

    let response = app
        .post_json(
            &bob_client,
            "/v1/sign-up",
            &json!({"password": PASSWORD, "ticket": ticket, "first_name": "Bob"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let signed = signed_in(response).await;
    assert_eq!(signed.body["status"], "complete");
    assert_eq!(signed.body["user"]["email"], bob.as_str());
    assert_eq!(
        signed.body["user"]["email_verified"], true,
        "the ticket proves the address"
    );
    assert_eq!(signed.body["session"]["active_organization_id"], org.id.as_str());
    let claims = claims_of(&signed.jwt);
    assert_eq!(claims["o"]["id"], org.id.as_str());
    assert_eq!(claims["o"]["rol"], "member");

    // Bob is listed; the ticket is spent.
    let members: Value = app
        .get_bearer("/api/org/members", &signed.jwt)
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["email"].as_str().unwrap())
        .collect();
    assert!(
        emails.contains(&bob.as_str()) && emails.contains(&ada.email.as_str()),
        "{members}"
    );
    let again = app
        .post_json(
            &cookie_client(),
            "/v1/sign-up",
            &json!({"password": PASSWORD, "ticket": ticket}),
        )
        .await;
    assert_error(again, 409, "conflict").await;
    let preview: Value = app
        .client
        .get(app.url(&format!("/v1/invitations/{ticket}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preview["status"], "accepted");
    let accepted: Value = app
        .get_bearer("/api/admin/invitations?status=accepted", &org.admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(accepted["data"][0]["id"], invitation["id"]);
    for event in [
        "organizationInvitation.created",
        "organizationInvitation.accepted",
        "organizationMembership.created",
    ] {
        assert!(
            app.count("SELECT COUNT(*) FROM events WHERE type = $1", event).await >= 1,
            "{event}"
        );
    }
}

async fn an_existing_user_accepts_when_the_address_is_verified(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(database, options(&smtp)).await;
    let ada = app.new_member().await;
    let cleo = app.new_member().await;
    let dan = app.new_member().await;
    verify_address(&app, &dan.signed.user_id).await;
    let org = app.org_with(&ada, &[]).await;
    let invitation = invited(&app, &org.admin_jwt, &cleo.email.to_uppercase(), "org:admin").await;
    let ticket = ticket_for(&smtp, &cleo.email.to_uppercase(), &org_name(&app, &org.id).await).await;
    let accept = |jwt: String, ticket: String| {
        let app = &app;
        async move {
            app.send_bearer(
                Method::POST,
                "/api/invitations/accept",
                &jwt,
                Some(&json!({"ticket": ticket})),
            )
            .await
        }
    };

    // Cleo's address is not verified yet: it proves nothing.
    assert_error(accept(cleo.signed.jwt.clone(), ticket.clone()).await, 403, "forbidden").await;
    // Dan's is verified, but it is not the invited one.
    assert_error(accept(dan.signed.jwt.clone(), ticket.clone()).await, 403, "forbidden").await;
    let mine: Value = app
        .get_bearer("/api/me/invitations", &dan.signed.jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["data"], json!([]));
    let by_id = format!("/api/me/invitations/{}/accept", invitation["id"].as_str().unwrap());
    assert_error(
        app.send_bearer(Method::POST, &by_id, &dan.signed.jwt, None).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(accept(cleo.signed.jwt.clone(), "forged".into()).await, 404, "not_found").await;

    verify_address(&app, &cleo.signed.user_id).await;
    let mine: Value = app
        .get_bearer("/api/me/invitations", &cleo.signed.jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["data"][0]["id"], invitation["id"]);
    assert_eq!(mine["data"][0]["organization"]["id"], org.id.as_str());
    assert_eq!(mine["data"][0]["role"], "org:admin");
    let response = app.send_bearer(Method::POST, &by_id, &cleo.signed.jwt, None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["organization"]["id"], org.id.as_str());
    assert_eq!(body["role"], "org:admin");
    // The session landed in the organization: the next token carries it.
    let jwt = jwt_of(app.refresh(&cleo.client, &cleo.signed.session_id).await).await;
    assert_eq!(claims_of(&jwt)["o"]["id"], org.id.as_str());
    assert_eq!(claims_of(&jwt)["o"]["rol"], "admin");
    // Used: 409 by ticket or by id.
    assert_error(accept(cleo.signed.jwt.clone(), ticket).await, 409, "conflict").await;
    assert_error(
        app.send_bearer(Method::POST, &by_id, &cleo.signed.jwt, None).await,
        409,
        "conflict",
    )
    .await;
    let unknown = "/api/me/invitations/orginv_01jd3m5x0e8k2q9v7w4h6r1t3y/accept";
    assert_error(
        app.send_bearer(Method::POST, unknown, &cleo.signed.jwt, None).await,
        404,
        "not_found",
    )
    .await;
    let signed_out = app
        .client
        .post(app.url("/api/invitations/accept"))
        .json(&json!({"ticket": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 401);
}

async fn admins_invite_list_and_revoke_others_cannot(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(database, options(&smtp)).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let eve = app.new_member().await;
    let org = app.org_with(&ada, &[&bob]).await;
    let other = app.org_with(&eve, &[]).await;
    let bob_jwt = &org.member_jwts[0];
    let address = email();

    // Members are not admins; the personal account has no organization.
    assert_error(invite(&app, bob_jwt, &address, "org:member").await, 403, "forbidden").await;
    assert_eq!(app.get_bearer("/api/admin/invitations", bob_jwt).await.status(), 403);
    assert!(
        invite(&app, &ada.signed.jwt, &address, "org:member")
            .await
            .status()
            .is_client_error()
    );

    // Bad input.
    let error = assert_error(
        invite(&app, &org.admin_jwt, &address, "org:nope").await,
        422,
        "validation_failed",
    )
    .await;
    assert!(error["fields"]["role"].is_string());
    let error = assert_error(
        invite(&app, &org.admin_jwt, "not an email", "org:member").await,
        422,
        "validation_failed",
    )
    .await;
    assert!(error["fields"]["email"].is_string());
    // Already a member; already invited.
    assert_error(
        invite(&app, &org.admin_jwt, &bob.email, "org:member").await,
        409,
        "conflict",
    )
    .await;
    let invitation = invited(&app, &org.admin_jwt, &address, "org:member").await;
    assert_error(
        invite(&app, &org.admin_jwt, &address.to_uppercase(), "org:member").await,
        409,
        "conflict",
    )
    .await;
    // Another organization may invite the same address.
    invited(&app, &other.admin_jwt, &address, "org:member").await;

    // Lists are per organization, newest first, filterable by status.
    let list: Value = app
        .get_bearer("/api/admin/invitations", &org.admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], invitation["id"]);
    assert!(list["next_cursor"].is_null());
    let bad = app
        .get_bearer("/api/admin/invitations?status=lost", &org.admin_jwt)
        .await;
    assert_error(bad, 422, "validation_failed").await;

    // Revoking: another organization's invitation is unknown; twice is 409.
    let id = invitation["id"].as_str().unwrap();
    let path = format!("/api/admin/invitations/{id}/revoke");
    assert_error(
        app.send_bearer(Method::POST, &path, &other.admin_jwt, None).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.send_bearer(Method::POST, &path, bob_jwt, None).await,
        403,
        "forbidden",
    )
    .await;
    let revoked = app.send_bearer(Method::POST, &path, &org.admin_jwt, None).await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(revoked.json::<Value>().await.unwrap()["status"], "revoked");
    assert_error(
        app.send_bearer(Method::POST, &path, &org.admin_jwt, None).await,
        409,
        "conflict",
    )
    .await;
    let ticket = ticket_for(&smtp, &address, &org_name(&app, &org.id).await).await;
    let preview: Value = app
        .client
        .get(app.url(&format!("/v1/invitations/{ticket}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preview["status"], "revoked");
    let sign_up = app
        .post_json(
            &cookie_client(),
            "/v1/sign-up",
            &json!({"password": PASSWORD, "ticket": ticket}),
        )
        .await;
    assert_error(sign_up, 409, "conflict").await;
    let revoked: Value = app
        .get_bearer("/api/admin/invitations?status=revoked", &org.admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["data"][0]["id"], id);
    // A new invitation to the address is allowed once the old one is revoked.
    invited(&app, &org.admin_jwt, &address, "org:member").await;

    // An admin demoted since their token was minted is refused at once.
    app.add_member(&org.admin_jwt, &eve, "org:admin").await;
    let eve_jwt = app
        .switch_org_jwt(&eve.client, &eve.signed.session_id, Some(&org.id))
        .await;
    let demote = format!("/api/admin/members/{}", eve.signed.user_id);
    let response = app
        .send_bearer(
            Method::PATCH,
            &demote,
            &org.admin_jwt,
            Some(&json!({"role": "org:member"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_error(invite(&app, &eve_jwt, &email(), "org:member").await, 403, "forbidden").await;
}

async fn invitations_expire(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(database, options(&smtp)).await;
    let ada = app.new_member().await;
    let org = app.org_with(&ada, &[]).await;
    let address = email();
    let invitation = invited(&app, &org.admin_jwt, &address, "org:member").await;
    let ticket = ticket_for(&smtp, &address, &org_name(&app, &org.id).await).await;
    sqlx::query("UPDATE invitations SET expires_at = $1 WHERE id = $2")
        .bind(gatehouse::clock::now_ms() - 1)
        .bind(invitation["id"].as_str().unwrap())
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let preview: Value = app
        .client
        .get(app.url(&format!("/v1/invitations/{ticket}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preview["status"], "expired");
    let sign_up = app
        .post_json(
            &cookie_client(),
            "/v1/sign-up",
            &json!({"password": PASSWORD, "ticket": ticket}),
        )
        .await;
    assert_error(sign_up, 409, "conflict").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email = $1", &address).await,
        0
    );
    let expired: Value = app
        .get_bearer("/api/admin/invitations?status=expired", &org.admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(expired["data"][0]["id"], invitation["id"]);
    let pending: Value = app
        .get_bearer("/api/admin/invitations?status=pending", &org.admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["data"], json!([]));
    let path = format!("/api/admin/invitations/{}/revoke", invitation["id"].as_str().unwrap());
    assert_error(
        app.send_bearer(Method::POST, &path, &org.admin_jwt, None).await,
        409,
        "conflict",
    )
    .await;
    // The address can be invited again.
    invited(&app, &org.admin_jwt, &address, "org:member").await;
}

async fn concurrent_accepts_of_one_ticket_one_wins(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(database, options(&smtp)).await;
    let ada = app.new_member().await;
    let cleo = app.new_member().await;
    verify_address(&app, &cleo.signed.user_id).await;
    let org = app.org_with(&ada, &[]).await;
    invited(&app, &org.admin_jwt, &cleo.email, "org:member").await;
    let ticket = ticket_for(&smtp, &cleo.email, &org_name(&app, &org.id).await).await;
    let body = json!({"ticket": ticket});
    let attempts =
        (0..8).map(|_| app.send_bearer(Method::POST, "/api/invitations/accept", &cleo.signed.jwt, Some(&body)));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM memberships WHERE organization_id = $1", &org.id)
            .await,
        2
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM events WHERE type = $1",
            "organizationInvitation.accepted"
        )
        .await,
        1
    );
}

async fn renaming_and_deleting_an_organization(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let eve = app.new_member().await;
    let org = app.org_with(&ada, &[&bob]).await;
    let other_id = app.create_org(&eve.signed.jwt, "Other Co").await;
    let bob_jwt = org.member_jwts[0].clone();
    let other_slug = gatehouse::db::organizations::find(&app.state.db.pool, &other_id)
        .await
        .unwrap()
        .unwrap()
        .slug;
    let patch = |jwt: String, body: Value| {
        let app = &app;
        async move {
            app.send_bearer(Method::PATCH, "/api/admin/organization", &jwt, Some(&body))
                .await
        }
    };

    assert_error(patch(bob_jwt.clone(), json!({"name": "Mine"})).await, 403, "forbidden").await;
    assert_error(
        patch(org.admin_jwt.clone(), json!({"slug": other_slug})).await,
        409,
        "conflict",
    )
    .await;
    for bad in [
        json!({}),
        json!({"slug": "Not A Slug"}),
        json!({"name": ""}),
        json!({"name": "x".repeat(101)}),
    ] {
        assert_error(patch(org.admin_jwt.clone(), bad).await, 422, "validation_failed").await;
    }
    let renamed = patch(org.admin_jwt.clone(), json!({"name": "Acme Corp", "slug": "acme-corp"})).await;
    assert_eq!(renamed.status(), 200);
    let renamed: Value = renamed.json().await.unwrap();
    assert_eq!(renamed["name"], "Acme Corp");
    assert_eq!(renamed["slug"], "acme-corp");
    let jwt = jwt_of(app.refresh(&bob.client, &bob.signed.session_id).await).await;
    assert_eq!(claims_of(&jwt)["o"]["slg"], "acme-corp");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE type = $1", "organization.updated")
            .await,
        1
    );

    // Org data that will go with it.
    let item = app
        .send_bearer(Method::POST, "/api/items", &bob_jwt, Some(&json!({"name": "plan"})))
        .await;
    assert_eq!(item.status(), 201);

    // Deleting: members cannot; an admin needs a recent password proof.
    assert_error(
        app.send_bearer(Method::DELETE, "/api/admin/organization", &bob_jwt, None)
            .await,
        403,
        "forbidden",
    )
    .await;
    let stale = app.stale_token(&ada).await;
    assert_error(
        app.send_bearer(Method::DELETE, "/api/admin/organization", &stale, None)
            .await,
        403,
        "reverification_required",
    )
    .await;
    let verified = ada
        .client
        .post(app.url(&format!("/v1/client/sessions/{}/verify", ada.signed.session_id)))
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let fresh = jwt_of(verified).await;
    let deleted = app
        .send_bearer(Method::DELETE, "/api/admin/organization", &fresh, None)
        .await;
    assert_eq!(deleted.status(), 204);

    // Bob still holds a token for it: his next org request is refused.
    assert_error(app.get_bearer("/api/items", &bob_jwt).await, 403, "forbidden").await;
    assert_error(app.get_bearer("/api/org/members", &bob_jwt).await, 403, "forbidden").await;
    // His session fell back to the personal account; memberships, items, invitations are gone.
    let jwt = jwt_of(app.refresh(&bob.client, &bob.signed.session_id).await).await;
    assert!(claims_of(&jwt).get("o").is_none(), "{}", claims_of(&jwt));
    for (sql, what) in [
        (
            "SELECT COUNT(*) FROM memberships WHERE organization_id = $1",
            "memberships",
        ),
        ("SELECT COUNT(*) FROM items WHERE organization_id = $1", "items"),
        ("SELECT COUNT(*) FROM organizations WHERE id = $1", "organization"),
        (
            "SELECT COUNT(*) FROM sessions WHERE active_organization_id = $1",
            "sessions in it",
        ),
    ] {
        assert_eq!(app.count(sql, &org.id).await, 0, "{what}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE type = $1", "organization.deleted")
            .await,
        1
    );
    // Other organizations are untouched.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM organizations WHERE id = $1", &other_id)
            .await,
        1
    );
    // Deleting again (with the old token): the organization is gone.
    let again = app
        .send_bearer(Method::DELETE, "/api/admin/organization", &fresh, None)
        .await;
    assert_eq!(again.status(), 403);
}

async fn members_leave_and_the_last_admin_cannot(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let org = app.org_with(&ada, &[&bob]).await;
    let leave = format!("/api/me/organizations/{}/leave", org.id);

    assert_error(
        app.send_bearer(Method::POST, &leave, &org.admin_jwt, None).await,
        409,
        "conflict",
    )
    .await;
    let left = app.send_bearer(Method::POST, &leave, &org.member_jwts[0], None).await;
    assert_eq!(left.status(), 204);
    assert_error(
        app.send_bearer(Method::POST, &leave, &org.member_jwts[0], None).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.get_bearer("/api/items", &org.member_jwts[0]).await,
        403,
        "forbidden",
    )
    .await;
    let jwt = jwt_of(app.refresh(&bob.client, &bob.signed.session_id).await).await;
    assert!(claims_of(&jwt).get("o").is_none());
    let unknown = "/api/me/organizations/org_01jd3m5x0e8k2q9v7w4h6r1t3y/leave";
    assert_error(
        app.send_bearer(Method::POST, unknown, &jwt, None).await,
        404,
        "not_found",
    )
    .await;
    let members: Value = app
        .get_bearer("/api/org/members", &org.admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(members["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM events WHERE type = $1",
            "organizationMembership.deleted"
        )
        .await,
        1
    );
}

async fn any_member_lists_members_and_roles(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let eve = app.new_member().await;
    let org = app.org_with(&ada, &[&bob]).await;
    let _other = app.org_with(&eve, &[]).await;
    let members = app.get_bearer("/api/org/members", &org.member_jwts[0]).await;
    assert_eq!(members.status(), 200);
    let members: Value = members.json().await.unwrap();
    assert_eq!(members["data"].as_array().unwrap().len(), 2);
    let first = &members["data"][0];
    assert_eq!(first["user"]["id"], bob.signed.user_id.as_str(), "newest first");
    assert_eq!(first["user"]["email"], bob.email.as_str());
    assert_eq!(first["role"], "org:member");
    assert!(first["created_at"].as_i64().is_some());
    assert!(first["user"].get("public_metadata").is_none());
    let page: Value = app
        .get_bearer("/api/org/members?limit=1", &org.admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let next: Value = app
        .get_bearer(&format!("/api/org/members?limit=1&cursor={cursor}"), &org.admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["data"][0]["user"]["id"], ada.signed.user_id.as_str());

    let roles = app.get_bearer("/api/org/roles", &org.member_jwts[0]).await;
    assert_eq!(roles.status(), 200);
    let roles: Value = roles.json().await.unwrap();
    assert_eq!(roles["data"][0]["key"], "org:admin");
    assert_eq!(roles["data"][1]["key"], "org:member");
    assert!(
        roles["data"][1]["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("org:data:read"))
    );

    // No active organization: 400; signed out: 401; a token for an organization one is
    // no longer in: 403.
    assert_error(
        app.get_bearer("/api/org/members", &eve.signed.jwt).await,
        400,
        "no_active_organization",
    )
    .await;
    assert_eq!(
        app.client.get(app.url("/api/org/roles")).send().await.unwrap().status(),
        401
    );
    let remove = format!("/api/admin/members/{}", bob.signed.user_id);
    assert_eq!(
        app.send_bearer(Method::DELETE, &remove, &org.admin_jwt, None)
            .await
            .status(),
        204
    );
    assert_error(
        app.get_bearer("/api/org/members", &org.member_jwts[0]).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.get_bearer("/api/org/roles", &org.member_jwts[0]).await,
        403,
        "forbidden",
    )
    .await;
}

async fn roles_defined_through_the_backend_api(database: TestDb) {
    let app = spawn_app(database).await;
    let create = |body: Value| {
        let app = &app;
        async move { app.backend(Method::POST, "/backend/v1/roles", Some(&body)).await }
    };
    let editor = json!({"key": "org:editor", "name": "Editor", "description": "Edits", "permissions": ["org:data:read", "org:data:write", "org:data:read"]});
    let unauthenticated = app
        .client
        .post(app.url("/backend/v1/roles"))
        .json(&editor)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let created = create(editor.clone()).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["permissions"], json!(["org:data:read", "org:data:write"]));
    assert_error(create(editor).await, 409, "conflict").await;
    for (bad, field) in [
        (json!({"key": "editor", "name": "E"}), "key"),
        (json!({"key": "org:Editor", "name": "E"}), "key"),
        (json!({"key": "org:x", "name": ""}), "name"),
        (
            json!({"key": "org:x", "name": "X", "permissions": ["data:read"]}),
            "permissions",
        ),
        (
            json!({"key": "org:x", "name": "X", "permissions": ["org:data"]}),
            "permissions",
        ),
        (
            json!({"key": "org:x", "name": "X", "permissions": ["org:sys_memberships:manage"]}),
            "permissions",
        ),
    ] {
        let error = assert_error(create(bad.clone()).await, 422, "validation_failed").await;
        assert!(error["fields"][field].is_string(), "{bad} → {error}");
    }

    // A member with the role: the permission change applies on the next request.
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let org = app.org_with(&ada, &[&bob]).await;
    let path = format!("/api/admin/members/{}", bob.signed.user_id);
    let changed = app
        .send_bearer(
            Method::PATCH,
            &path,
            &org.admin_jwt,
            Some(&json!({"role": "org:editor"})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let bob_jwt = app
        .switch_org_jwt(&bob.client, &bob.signed.session_id, Some(&org.id))
        .await;
    let item: Value = app
        .send_bearer(Method::POST, "/api/items", &bob_jwt, Some(&json!({"name": "draft"})))
        .await
        .json()
        .await
        .unwrap();
    let item_path = format!("/api/items/{}", item["id"].as_str().unwrap());
    assert_error(
        app.send_bearer(Method::DELETE, &item_path, &bob_jwt, None).await,
        403,
        "forbidden",
    )
    .await;
    let patched = app
        .backend(
            Method::PATCH,
            "/backend/v1/roles/org:editor",
            Some(&json!({"permissions": ["org:data:read", "org:data:write", "org:data:delete"]})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    assert_eq!(patched.json::<Value>().await.unwrap()["name"], "Editor");
    assert_eq!(
        app.send_bearer(Method::DELETE, &item_path, &bob_jwt, None)
            .await
            .status(),
        204
    );
    let next = jwt_of(app.refresh(&bob.client, &bob.signed.session_id).await).await;
    let claims = claims_of(&next);
    assert_eq!(claims["o"]["rol"], "editor");
    assert!(claims["o"]["per"].as_str().unwrap().contains("delete"), "{claims}");

    // Reading; system roles and roles in use are protected.
    let list: Value = app
        .backend(Method::GET, "/backend/v1/roles", None)
        .await
        .json()
        .await
        .unwrap();
    let keys: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["org:admin", "org:member", "org:editor"]);
    assert_eq!(
        app.backend(Method::GET, "/backend/v1/roles/org:editor", None)
            .await
            .status(),
        200
    );
    assert_error(
        app.backend(Method::GET, "/backend/v1/roles/org:ghost", None).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.backend(Method::DELETE, "/backend/v1/roles/org:editor", None).await,
        409,
        "conflict",
    )
    .await;
    assert_error(
        app.backend(Method::DELETE, "/backend/v1/roles/org:admin", None).await,
        409,
        "conflict",
    )
    .await;
    assert_error(
        app.backend(Method::DELETE, "/backend/v1/roles/org:member", None).await,
        409,
        "conflict",
    )
    .await;
    assert_error(
        app.backend(
            Method::PATCH,
            "/backend/v1/roles/org:admin",
            Some(&json!({"permissions": []})),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    let error = assert_error(
        app.backend(
            Method::PATCH,
            "/backend/v1/roles/org:editor",
            Some(&json!({"permissions": ["nope"]})),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(error["fields"]["permissions"].is_string());

    // Unused once Bob is back to org:member: then it can go.
    let back = app
        .send_bearer(
            Method::PATCH,
            &path,
            &org.admin_jwt,
            Some(&json!({"role": "org:member"})),
        )
        .await;
    assert_eq!(back.status(), 200);
    assert_eq!(
        app.backend(Method::DELETE, "/backend/v1/roles/org:editor", None)
            .await
            .status(),
        204
    );
    assert_error(
        app.backend(Method::GET, "/backend/v1/roles/org:editor", None).await,
        404,
        "not_found",
    )
    .await;
    for event in ["role.created", "role.updated", "role.deleted"] {
        assert_eq!(
            app.count("SELECT COUNT(*) FROM events WHERE type = $1", event).await,
            1,
            "{event}"
        );
    }
}
