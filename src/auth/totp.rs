//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP, HMAC-SHA1, 6 digits,
//! 30 s steps: what every authenticator app speaks), the `otpauth://` URI and its QR
//! code as SVG, and backup codes. Written by hand on aws-lc-rs (already a dependency):
//! the algorithm is 20 lines, a crate would add a second crypto stack.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Steps either side of now that are accepted (clock drift).
pub const DRIFT_STEPS: i64 = 1;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;
/// Backup codes per set.
pub const BACKUP_CODES: usize = 10;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (as authenticator apps expect).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 (case-insensitive, spaces and padding ignored).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.bytes().filter(|b| !matches!(b, b' ' | b'=' | b'-')) {
        let value = BASE32.iter().position(|&a| a == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    SystemRandom::new()
        .fill(&mut secret)
        .expect("the system random generator works");
    secret
}

/// The 6-digit code of `step` (RFC 4226 §5.3 dynamic truncation).
pub fn code_at(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &(step as u64).to_be_bytes());
    let digest = tag.as_ref();
    let offset = (digest[digest.len() - 1] & 0x0f) as usize;
    let binary = (u32::from(digest[offset]) & 0x7f) << 24
        | u32::from(digest[offset + 1]) << 16
        | u32::from(digest[offset + 2]) << 8
        | u32::from(digest[offset + 3]);
    format!("{:06}", binary % 1_000_000)
}

/// The step a Unix time (seconds) falls in.
pub fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The step (within the drift window around `unix_secs`, and after `last_used_step`)
/// whose code is `code`; compared in constant time. `None`: wrong, stale or used.
pub fn matching_step(secret: &[u8], code: &str, unix_secs: i64, last_used_step: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_secs);
    let mut found = None;
    for step in (now - DRIFT_STEPS)..=(now + DRIFT_STEPS) {
        let expected = code_at(secret, step);
        let equal = aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes()).is_ok();
        if equal && step > last_used_step && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// `otpauth://totp/<issuer>:<account>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
pub fn uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let issuer = crate::auth::guard::percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits=6&period={STEP_SECS}",
        crate::auth::guard::percent_encode(account),
        base32_encode(secret)
    )
}

/// The URI as a QR code in SVG (drawn here: no external service sees the secret).
pub fn qr_svg(uri: &str) -> Result<String, qrcode::types::QrError> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// Letters and digits that cannot be misread for one another (no 0/o, 1/l/i).
const BACKUP_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A set of backup codes, `xxxxx-xxxxx` (about 49 bits each).
pub fn new_backup_codes() -> Vec<String> {
    let rng = SystemRandom::new();
    (0..BACKUP_CODES)
        .map(|_| {
            let mut code = String::with_capacity(11);
            let mut i = 0;
            while i < 10 {
                let mut byte = [0u8; 1];
                rng.fill(&mut byte).expect("the system random generator works");
                // Rejection sampling: no modulo bias.
                if usize::from(byte[0]) >= 256 - 256 % BACKUP_ALPHABET.len() {
                    continue;
                }
                if i == 5 {
                    code.push('-');
                }
                code.push(BACKUP_ALPHABET[usize::from(byte[0]) % BACKUP_ALPHABET.len()] as char);
                i += 1;
            }
            code
        })
        .collect()
}

/// A backup code as typed (any case, with or without the dash or spaces), normalized.
pub fn normalize_backup_code(code: &str) -> Option<String> {
    let plain: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (plain.len() == 10 && plain.bytes().all(|b| BACKUP_ALPHABET.contains(&b))).then_some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 (the 8-digit vectors, last six digits).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(secret, step_of(time)), eight[2..], "T = {time}");
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        let secret = new_secret();
        assert_eq!(base32_decode(&base32_encode(&secret)).unwrap(), secret);
        assert!(base32_decode("not base32!").is_none());
    }

    #[test]
    fn codes_match_in_their_window_once() {
        let secret = new_secret();
        let now = 1_700_000_000;
        let step = step_of(now);
        let code = code_at(&secret, step);
        assert_eq!(matching_step(&secret, &code, now, 0), Some(step));
        assert_eq!(
            matching_step(&secret, &code, now + 30, 0),
            Some(step),
            "one step of drift"
        );
        assert_eq!(matching_step(&secret, &code, now + 60, 0), None, "two steps late");
        assert_eq!(matching_step(&secret, &code, now, step), None, "already used");
        assert_eq!(matching_step(&secret, "12345", now, 0), None);
        assert_eq!(matching_step(&secret, "abcdef", now, 0), None);
    }

    #[test]
    fn uri_and_qr() {
        let uri = uri("Acme App", "ada@example.com", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20App:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20App&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
    }

    #[test]
    fn backup_codes_are_distinct_and_normalize() {
        let codes = new_backup_codes();
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        let code = &codes[0];
        assert_eq!(code.len(), 11);
        let plain = normalize_backup_code(code).unwrap();
        assert_eq!(normalize_backup_code(&code.to_uppercase()).unwrap(), plain);
        assert_eq!(normalize_backup_code(&plain).unwrap(), plain);
        assert!(normalize_backup_code("too-short").is_none());
    }
}
