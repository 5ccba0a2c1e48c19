//! The pages in a real browser (headless Chromium): sign up, sign in from a second
//! device, see both sessions, revoke the other, switch organization, sign out
//! everywhere. A screenshot of the account page is kept in `target/browser-artifacts/`.

use serde_json::json;

use crate::helpers::{PASSWORD, TestDb, email, spawn_app};
use crate::webdriver::Driver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_page_end_to_end() {
    let Some(driver) = Driver::start().await else { return };
    let app = spawn_app(TestDb::Sqlite).await;
    let address = email();

    // Device A: the account page sends a signed-out visitor to sign in, keeping the way back.
    let a = driver.browser().await;
    a.goto(&app.url("/account")).await;
    a.wait_for_url("/sign-in?redirect_url=").await;
    a.click("#switch").await;
    a.wait_for_url("/sign-up?redirect_url=").await;
    a.type_into("#email", &address).await;
    a.type_into("#first_name", "Ada").await;
    a.type_into("#password", PASSWORD).await;
    a.click("#submit").await;
    a.wait_for_url("/account").await;
    a.wait_for("the account page", "return document.body.dataset.ready === 'true'")
        .await;
    let shown = a
        .run("return document.getElementById('user-email').textContent", json!([]))
        .await;
    assert_eq!(shown, json!(address));

    // Device B signs in with the same account.
    let b = driver.browser().await;
    // A redirect_url to another origin is ignored: after sign-in B lands on /account.
    b.goto(&app.url("/sign-in?redirect_url=https%3A%2F%2Fevil.example%2Fphish"))
        .await;
    b.type_into("#email", &address).await;
    b.type_into("#password", PASSWORD).await;
    b.click("#submit").await;
    b.wait_for_url("/account").await;
    b.wait_for("B's account page", "return document.body.dataset.ready === 'true'")
        .await;

    // A sees two sessions, its own marked current, and revokes B's.
    a.goto(&app.url("/account")).await;
    a.wait_for(
        "two sessions",
        "return document.querySelectorAll('#sessions li').length === 2",
    )
    .await;
    let marked = a
        .run(
            "return document.querySelectorAll('#sessions .current-marker').length",
            json!([]),
        )
        .await;
    assert_eq!(marked, json!(1));
    a.click("#sessions li:not(:has(.current-marker)) button.revoke").await;
    a.wait_for(
        "one session left",
        "return document.querySelectorAll('#sessions li').length === 1",
    )
    .await;

    // B's next page load finds its session revoked and goes to sign-in.
    b.goto(&app.url("/account")).await;
    b.wait_for_url("/sign-in").await;

    // A creates an organization, which becomes active, then switches to the personal account and back.
    a.type_into("#org-name", "Acme").await;
    a.click("#org-form button").await;
    a.wait_for(
        "Acme active",
        "return document.getElementById('current-org').textContent.startsWith('Acme (org:admin)')",
    )
    .await;
    a.run(
        "const s = document.getElementById('org-switcher'); s.value = ''; s.dispatchEvent(new Event('change'));",
        json!([]),
    )
    .await;
    a.wait_for(
        "the personal account",
        "return document.getElementById('current-org').textContent === 'Personal account'",
    )
    .await;
    a.run(
        "const s = document.getElementById('org-switcher'); s.value = s.options[1].value; s.dispatchEvent(new Event('change'));",
        json!([]),
    )
    .await;
    a.wait_for(
        "Acme again",
        "return document.getElementById('current-org').textContent.startsWith('Acme')",
    )
    .await;
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts");
    a.screenshot(&artifacts.join("account.png")).await;

    // Sign out everywhere: A lands on sign-in and stays signed out.
    a.click("#sign-out-all").await;
    a.wait_for_url("/sign-in").await;
    a.goto(&app.url("/account")).await;
    a.wait_for_url("/sign-in?redirect_url=").await;
    let active: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE status = 'active'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(active, 0);

    a.close().await;
    b.close().await;
}

/// Forgot password, through the pages: the link on the sign-in page, the request form,
/// the emailed link (which fills in the code), the new password, and the account page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_through_the_pages() {
    let Some(driver) = Driver::start().await else { return };
    let smtp = crate::smtp::SmtpSink::start().await;
    let options = crate::helpers::TestOptions {
        vars: vec![
            ("RATE_LIMIT", "off".into()),
            ("SMTP_URL", smtp.url()),
            ("EMAIL_VERIFICATION", "off".into()),
        ],
        ..Default::default()
    };
    let app = crate::helpers::spawn_app_with(TestDb::Sqlite, options).await;
    let ada = app.new_member().await;

    let browser = driver.browser().await;
    browser.goto(&app.url("/sign-in")).await;
    browser.type_into("#email", &ada.email).await;
    browser.click("#forgot").await;
    browser.wait_for_url("/reset-password").await;
    browser
        .wait_for(
            "the email filled in",
            "return document.getElementById('email').value.includes('@')",
        )
        .await;
    browser.click("#send").await;
    browser
        .wait_for("the reset form", "return !document.getElementById('reset-form').hidden")
        .await;

    // The emailed link opens the page with the code filled in.
    let mail = smtp.wait_for(&ada.email, 1).await;
    let link = mail.link("http");
    let path = &link[link.find("/reset-password").unwrap()..];
    browser.goto(&app.url(path)).await;
    browser
        .wait_for(
            "the code filled in",
            &format!("return document.getElementById('code').value === '{}'", mail.code()),
        )
        .await;
    browser.type_into("#password", "a brand new password").await;
    browser.click("#reset").await;
    browser.wait_for_url("/account").await;
    browser
        .wait_for("the account page", "return document.body.dataset.ready === 'true'")
        .await;
    let shown = browser
        .run("return document.getElementById('user-email').textContent", json!([]))
        .await;
    assert_eq!(shown, json!(ada.email));
    // The old password is gone, the new one works, and the old device is signed out.
    assert_eq!(
        app.sign_in_with(&crate::helpers::cookie_client(), &ada.email, PASSWORD)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.sign_in_with(&crate::helpers::cookie_client(), &ada.email, "a brand new password")
            .await
            .status(),
        200
    );
    assert_eq!(app.get_bearer("/api/me", &ada.signed.jwt).await.status(), 401);
    browser.close().await;
}

/// Invitations through the pages: an admin invites from `/account`, the invitee opens
/// the emailed link in another browser profile, signs up with it and lands in the
/// organization; the admin then sees them listed among the members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_and_accept_through_the_pages() {
    let Some(driver) = Driver::start().await else { return };
    let smtp = crate::smtp::SmtpSink::start().await;
    let options = crate::helpers::TestOptions {
        vars: vec![("RATE_LIMIT", "off".into()), ("SMTP_URL", smtp.url())],
        ..Default::default()
    };
    let app = crate::helpers::spawn_app_with(TestDb::Sqlite, options).await;
    let ada = app.new_member().await;
    let org_id = app.create_org(&ada.signed.jwt, "Browser Org").await;
    let bob = email();

    // The admin signs in, switches to the organization, and invites Bob.
    let admin = driver.browser().await;
    admin.goto(&app.url("/sign-in")).await;
    admin.type_into("#email", &ada.email).await;
    admin.type_into("#password", PASSWORD).await;
    admin.click("#submit").await;
    admin.wait_for_url("/account").await;
    admin
        .wait_for("the account page", "return document.body.dataset.ready === 'true'")
        .await;
    admin
        .run(
            "const s = document.getElementById('org-switcher'); s.value = arguments[0]; s.dispatchEvent(new Event('change'));",
            json!([org_id]),
        )
        .await;
    admin
        .wait_for(
            "the invite form",
            "return !document.getElementById('invite-form').hidden",
        )
        .await;
    admin.type_into("#invite-email", &bob).await;
    admin.click("#invite-submit").await;
    admin
        .wait_for(
            "the pending invitation",
            "return document.querySelectorAll('#pending-invitations li').length === 1",
        )
        .await;

    // Bob opens the emailed link in another profile and signs up with it.
    let mail = smtp.wait_for_subject(&bob, "You are invited to join Browser Org").await;
    let link = mail.link("http");
    let path = &link[link.find("/accept-invitation").unwrap()..];
    let invitee = driver.browser().await;
    invitee.goto(&app.url(path)).await;
    invitee
        .wait_for("the invitation", "return document.body.dataset.ready === 'true'")
        .await;
    let shown = invitee
        .run("return document.getElementById('org-name').textContent", json!([]))
        .await;
    assert_eq!(shown, json!("Browser Org"));
    invitee.type_into("#password", PASSWORD).await;
    invitee.click("#sign-up").await;
    invitee.wait_for_url("/account").await;
    invitee
        .wait_for(
            "Bob in the organization",
            "return document.body.dataset.ready === 'true' && document.getElementById('current-org').textContent.startsWith('Browser Org')",
        )
        .await;

    // The admin sees Bob among the members, and no pending invitation.
    admin.goto(&app.url("/account")).await;
    admin
        .wait_for(
            "the organization's activity",
            "return [...document.querySelectorAll('#audit-log li')].some(li => li.dataset.action === 'organizationInvitation.accepted')",
        )
        .await;
    admin
        .wait_for(
            "Bob listed",
            &format!(
                "return [...document.querySelectorAll('#members li')].some(li => li.dataset.memberEmail === '{bob}') \
                 && document.getElementById('pending-section').hidden"
            ),
        )
        .await;
    invitee.close().await;
    admin.close().await;
}

/// The second factor through the pages: set up an authenticator on `/account` (QR code
/// drawn, key shown, backup codes shown once), then sign in from another browser profile
/// with the password and a code from the "app".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_step_verification_through_the_pages() {
    let Some(driver) = Driver::start().await else { return };
    let app = spawn_app(TestDb::Sqlite).await;
    let ada = app.new_member().await;

    let browser = driver.browser().await;
    browser.goto(&app.url("/sign-in")).await;
    browser.type_into("#email", &ada.email).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#submit").await;
    browser.wait_for_url("/account").await;
    browser
        .wait_for("the account page", "return document.body.dataset.ready === 'true'")
        .await;
    browser.click("#mfa-enable").await;
    browser
        .wait_for(
            "the QR code and key",
            "return !document.getElementById('mfa-setup').hidden && document.getElementById('mfa-qr').naturalWidth > 0",
        )
        .await;
    let key = browser
        .run("return document.getElementById('mfa-secret').textContent", json!([]))
        .await;
    let secret = gatehouse::auth::totp::base32_decode(key.as_str().unwrap()).unwrap();
    let now = gatehouse::clock::now_ms() / 1000;
    let step = gatehouse::auth::totp::step_of(now);
    browser
        .type_into("#mfa-code", &gatehouse::auth::totp::code_at(&secret, step))
        .await;
    browser.click("#mfa-confirm").await;
    browser
        .wait_for(
            "ten backup codes",
            "return document.querySelectorAll('#mfa-backup-codes li').length === 10 && !document.getElementById('mfa-disable').hidden",
        )
        .await;

    // Another profile: the password, then the second step on the same page.
    let other = driver.browser().await;
    other.goto(&app.url("/sign-in")).await;
    other.type_into("#email", &ada.email).await;
    other.type_into("#password", PASSWORD).await;
    other.click("#submit").await;
    other
        .wait_for(
            "the second step",
            "return !document.getElementById('second-factor').hidden",
        )
        .await;
    other
        .type_into(
            "#second-factor-code",
            &gatehouse::auth::totp::code_at(&secret, step + 1),
        )
        .await;
    other.click("#second-factor-submit").await;
    other.wait_for_url("/account").await;
    other
        .wait_for("signed in", "return document.body.dataset.ready === 'true'")
        .await;
    other.close().await;
    browser.close().await;
}

/// Support opens an actor token's URL: the browser lands on `/account` signed in as the
/// user, under a banner that names the impersonator, without the account-deletion section.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_is_marked_on_the_account_page() {
    let Some(driver) = Driver::start().await else { return };
    let app = spawn_app(TestDb::Sqlite).await;
    let ada = app.new_member().await;
    let issued: serde_json::Value = app
        .backend(
            reqwest::Method::POST,
            "/backend/v1/actor_tokens",
            Some(&json!({"user_id": ada.signed.user_id, "actor": {"sub": "support_ana"}})),
        )
        .await
        .json()
        .await
        .unwrap();
    let url = issued["url"].as_str().unwrap();
    let path = &url[url.find("/v1/tickets/accept").unwrap()..];
    let browser = driver.browser().await;
    browser.goto(&app.url(path)).await;
    browser.wait_for_url("/account").await;
    browser
        .wait_for(
            "the impersonation banner",
            "return document.body.dataset.ready === 'true' && !document.getElementById('impersonation-banner').hidden",
        )
        .await;
    let banner = browser
        .run(
            "return document.getElementById('impersonation-banner').textContent",
            json!([]),
        )
        .await;
    assert!(banner.as_str().unwrap().contains("support_ana"), "{banner}");
    let shown = browser
        .run("return document.getElementById('user-email').textContent", json!([]))
        .await;
    assert_eq!(shown, json!(ada.email));
    let danger_hidden = browser
        .run("return document.getElementById('danger-zone').hidden", json!([]))
        .await;
    assert_eq!(danger_hidden, json!(true));
    browser.close().await;
}

/// "Continue with Okta" through the pages: the sign-in page shows the provider's button,
/// the mock provider signs Grace in and sends the browser back, she lands on the page
/// she asked for, signed in, and `/account` lists the connected account (without a
/// Disconnect button: it is her only way to sign in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_with_a_provider_through_the_pages() {
    let Some(driver) = Driver::start().await else { return };
    let address = email();
    let provider = crate::oidc_mock::MockProvider::start(crate::oidc_mock::MockUser::new(&address, true)).await;
    // The provider sends the browser back to PUBLIC_URL: the app needs its port up front.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut options = crate::helpers::TestOptions::default();
    options.vars.extend(provider.vars("okta"));
    options.vars.push(("PORT", port.to_string()));
    options.vars.push(("PUBLIC_URL", format!("http://127.0.0.1:{port}")));
    let app = crate::helpers::spawn_app_with(TestDb::Sqlite, options).await;

    let browser = driver.browser().await;
    browser
        .goto(&app.url("/sign-in?redirect_url=%2Faccount%3Ffrom%3Dokta"))
        .await;
    browser
        .wait_for(
            "the provider button",
            "return document.getElementById('oauth-okta') !== null",
        )
        .await;
    let label = browser
        .run("return document.getElementById('oauth-okta').textContent", json!([]))
        .await;
    assert_eq!(label, json!("Continue with Okta"));
    browser.click("#oauth-okta").await;
    browser.wait_for_url("/account?from=okta").await;
    browser
        .wait_for("the account page", "return document.body.dataset.ready === 'true'")
        .await;
    let shown = browser
        .run("return document.getElementById('user-email').textContent", json!([]))
        .await;
    assert_eq!(shown, json!(address));
    let identities = browser
        .run(
            "return [...document.querySelectorAll('#identities li')].map(li => [li.textContent.includes('okta'), li.querySelector('button.unlink') === null])",
            json!([]),
        )
        .await;
    assert_eq!(identities, json!([[true, true]]));
    browser.close().await;
}
