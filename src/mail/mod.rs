//! Email: the messages the account flows send, built from the templates in
//! `templates/email/` (compiled into the binary), and queued in the caller's
//! transaction; `transport` sends them (SMTP, or the log in development).
//!
//! The templates only need their `{{name}}` placeholders filled, so a few lines do it
//! (values are HTML-escaped in the HTML part) instead of a template engine.

pub mod transport;

use crate::db::emails::{self, NewEmail};

/// An email ready to queue.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Message {
    /// Writes the email into the outbox, in the caller's transaction.
    pub async fn queue(&self, conn: &mut sqlx::AnyConnection, now: i64) -> Result<String, sqlx::Error> {
        let email = NewEmail {
            kind: self.kind,
            to: &self.to,
            subject: &self.subject,
            text: &self.text,
            html: Some(&self.html),
        };
        emails::insert(conn, &email, now).await
    }
}

const CODE_TXT: &str = include_str!("../../templates/email/code.txt");
const CODE_HTML: &str = include_str!("../../templates/email/code.html");
const INVITATION_TXT: &str = include_str!("../../templates/email/invitation.txt");
const INVITATION_HTML: &str = include_str!("../../templates/email/invitation.html");

/// Email kinds (the per-address sending limit counts one kind).
pub const EMAIL_VERIFICATION: &str = "email_verification";
pub const PASSWORD_RESET: &str = "password_reset";
pub const SIGN_IN_CODE: &str = "sign_in_code";
pub const INVITATION: &str = "invitation";

/// A code to confirm an email address.
pub fn verification_code(to: &str, code: &str) -> Message {
    code_message(
        EMAIL_VERIFICATION,
        to,
        "Your verification code",
        "Enter this code to confirm your email address:",
        code,
        None,
    )
}

/// A code and a link to reset a password.
pub fn password_reset(to: &str, code: &str, link: &str) -> Message {
    code_message(
        PASSWORD_RESET,
        to,
        "Reset your password",
        "Someone (we hope you) asked to reset the password of your account. Enter this code:",
        code,
        Some(("Or open this link to choose a new password:", link)),
    )
}

/// A code and a link to sign in without a password.
pub fn sign_in_code(to: &str, code: &str, link: &str) -> Message {
    code_message(
        SIGN_IN_CODE,
        to,
        "Your sign-in code",
        "Enter this code to sign in:",
        code,
        Some(("Or open this link in the browser you want to sign in with:", link)),
    )
}

/// An invitation to join an organization.
pub fn invitation(to: &str, inviter: &str, organization: &str, role: &str, link: &str, expires: &str) -> Message {
    let values = [
        ("inviter", inviter),
        ("organization", organization),
        ("role", role),
        ("link", link),
        ("expires", expires),
    ];
    Message {
        kind: INVITATION,
        to: to.to_owned(),
        subject: format!("You are invited to join {organization}"),
        text: fill(INVITATION_TXT, &values, false),
        html: fill(INVITATION_HTML, &values, true),
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time in milliseconds.
pub fn date(ms: i64) -> String {
    // Howard Hinnant's civil-from-days.
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn code_message(
    kind: &'static str,
    to: &str,
    subject: &str,
    intro: &str,
    code: &str,
    link: Option<(&str, &str)>,
) -> Message {
    let link_text = link
        .map(|(label, url)| format!("\n\n{label}\n{url}"))
        .unwrap_or_default();
    let link_html = link
        .map(|(label, url)| {
            format!(
                "<p>{}</p><p><a href=\"{}\">{}</a></p>",
                escape(label),
                escape(url),
                escape(url)
            )
        })
        .unwrap_or_default();
    let text = fill(
        CODE_TXT,
        &[("intro", intro), ("code", code), ("link_text", &link_text)],
        false,
    );
    // `link_html` is markup made here from escaped parts: it is inserted as is.
    let html = fill(CODE_HTML, &[("intro", intro), ("code", code)], true).replace("{{link_html}}", &link_html);
    Message {
        kind,
        to: to.to_owned(),
        subject: subject.to_owned(),
        text,
        html,
    }
}

/// Replaces each `{{name}}` with its value (HTML-escaped when `html`).
fn fill(template: &str, values: &[(&str, &str)], html: bool) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        let value = if html { escape(value) } else { (*value).to_owned() };
        out = out.replace(&format!("{{{{{name}}}}}"), &value);
    }
    out
}

fn escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_700_000_000_000), "2023-11-14");
        assert_eq!(date(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn messages_carry_the_code_and_link_in_text_and_escaped_html() {
        let message = password_reset(
            "ada@example.com",
            "123456",
            "http://x.test/reset-password?email=a&code=123456",
        );
        assert!(message.text.contains("    123456\n"), "{}", message.text);
        assert!(
            message
                .text
                .contains("http://x.test/reset-password?email=a&code=123456")
        );
        assert!(message.html.contains("email=a&amp;code=123456"), "{}", message.html);
        assert!(!message.text.contains("{{") && !message.html.contains("{{"));
        let invite = invitation(
            "b@example.com",
            "Ada <script>",
            "Acme & Co",
            "org:member",
            "http://x/accept",
            "1 Jan",
        );
        assert!(invite.html.contains("Ada &lt;script&gt;") && invite.html.contains("Acme &amp; Co"));
        assert!(
            invite
                .text
                .contains("Ada <script> invited you to join Acme & Co as org:member.")
        );
    }
}
