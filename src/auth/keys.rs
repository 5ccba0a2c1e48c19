//! Session-token signing keys: one active RS256 key that signs, every known key
//! published in JWKS so that rotation never breaks a live token.
//!
//! In development the keys live as PEM files in `<data dir>/keys/` (generated on first
//! run, never silently regenerated); the newest file signs. In production the active
//! key comes from `SIGNING_KEY` and older ones from `SIGNING_KEYS_DIR`.

use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::tokens::{SignError, signing_input};
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("could not generate an RSA key")]
    Generate,
}

/// The key that signs new session tokens. The RSA key is parsed once, here: parsing it
/// again for each signature would cost more than the signature itself.
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub encoding: EncodingKey,
    rsa: KeyPair,
}

impl SigningKey {
    /// A compact RS256 JWS of `claims`, with this key's `kid` and the token `category`.
    pub fn sign_compact(&self, category: &str, claims: &impl serde::Serialize) -> Result<String, SignError> {
        let mut message =
            signing_input(self.algorithm, Some(&self.kid), category, claims).map_err(|e| SignError(e.to_string()))?;
        let mut signature = vec![0u8; self.rsa.public_modulus_len()];
        self.rsa
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .map_err(|_| SignError("the RSA signature failed".to_owned()))?;
        message.push('.');
        message.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(message)
    }
}

/// Parses an RSA private key PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
fn rsa_key_pair(pem_text: &str) -> Result<KeyPair, String> {
    let parsed = pem::parse(pem_text).map_err(|e| e.to_string())?;
    match parsed.tag() {
        "PRIVATE KEY" => KeyPair::from_pkcs8(parsed.contents()).map_err(|e| e.to_string()),
        "RSA PRIVATE KEY" => KeyPair::from_der(parsed.contents()).map_err(|e| e.to_string()),
        other => Err(format!("a `{other}` PEM is not an RSA private key")),
    }
}

/// A key that verifies tokens; the algorithm belongs to the key, never to a token.
pub struct VerificationKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub decoding: DecodingKey,
    jwk: Jwk,
}

pub struct KeyRing {
    signing: SigningKey,
    verification: Vec<VerificationKey>,
}

impl KeyRing {
    /// Loads the keys the configuration names, generating and storing a first key in
    /// development when there is none.
    pub fn load(config: &Config) -> Result<Self, KeyError> {
        let dir = config
            .signing_keys_dir
            .clone()
            .or_else(|| (!config.is_production()).then(|| dev_keys_dir(&config.data_dir)));
        let mut others = match &dir {
            Some(dir) => read_pem_dir(dir)?,
            None => Vec::new(),
        };
        let active = match &config.signing_key {
            Some(value) => read_pem_value(value)?,
            None => match others.pop() {
                Some(newest) => newest,
                None => {
                    let dir = dir.expect("development always has a keys folder");
                    let (_, pem) = write_new_key(&dir)?;
                    (dir.display().to_string(), pem)
                }
            },
        };
        Self::from_pems(&active, &others)
    }

    /// Builds a ring from `(source, pem)` pairs: the first signs, all verify.
    pub fn from_pems(active: &(String, String), others: &[(String, String)]) -> Result<Self, KeyError> {
        let invalid = |path: &str, reason: String| KeyError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let (source, pem) = active;
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| invalid(source, format!("not an RSA private key PEM ({e})")))?;
        let signing_public = verification_from_encoding(&encoding).map_err(|e| invalid(source, e))?;
        let rsa = rsa_key_pair(pem).map_err(|e| invalid(source, format!("not an RSA private key PEM ({e})")))?;
        let signing = SigningKey {
            kid: signing_public.kid.clone(),
            algorithm: Algorithm::RS256,
            encoding,
            rsa,
        };
        let mut verification = vec![signing_public];
        for (source, pem) in others {
            let key = match EncodingKey::from_rsa_pem(pem.as_bytes()) {
                Ok(private) => verification_from_encoding(&private),
                Err(_) => DecodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|e| format!("not an RSA PEM key ({e})"))
                    .and_then(verification_from_decoding),
            }
            .map_err(|e| invalid(source, e))?;
            if verification.iter().all(|k| k.kid != key.kid) {
                verification.push(key);
            }
        }
        Ok(Self { signing, verification })
    }

    pub fn signing(&self) -> &SigningKey {
        &self.signing
    }

    pub fn verification_key(&self, kid: &str) -> Option<&VerificationKey> {
        self.verification.iter().find(|k| k.kid == kid)
    }

    /// The public keys as a JWK set, the active one first.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.verification.iter().map(|k| k.jwk.clone()).collect(),
        }
    }
}

/// A template's own RS256 key (`custom_signing_key`): the parsed key and its `kid`, the
/// RFC 7638 thumbprint of its public half.
pub fn custom_rsa_key(pem: &str) -> Result<(EncodingKey, String), String> {
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    let kid = verification_from_encoding(&encoding)?.kid;
    Ok((encoding, kid))
}

/// The public JWK (with `kid`) of an RSA key in PEM, private or public.
pub fn public_jwk(pem: &str) -> Result<Jwk, String> {
    let key = match EncodingKey::from_rsa_pem(pem.as_bytes()) {
        Ok(private) => verification_from_encoding(&private)?,
        Err(_) => DecodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| format!("not an RSA PEM key ({e})"))
            .and_then(verification_from_decoding)?,
    };
    Ok(key.jwk)
}

fn verification_from_encoding(key: &EncodingKey) -> Result<VerificationKey, String> {
    let jwk = Jwk::from_encoding_key(key, Algorithm::RS256).map_err(|e| e.to_string())?;
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    verification_from_decoding(decoding)
}

fn verification_from_decoding(decoding: DecodingKey) -> Result<VerificationKey, String> {
    let mut jwk = Jwk::from_decoding_key(&decoding, Some(Algorithm::RS256)).map_err(|e| e.to_string())?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| e.to_string())?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
    Ok(VerificationKey {
        kid,
        algorithm: Algorithm::RS256,
        decoding,
        jwk,
    })
}

/// A new 2048-bit RSA private key as a PKCS#8 PEM.
pub fn generate_pem() -> Result<String, KeyError> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(|_| KeyError::Generate)?;
    Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec())))
}

pub fn dev_keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// Writes a new key into `dir` named so that it sorts after every older one.
pub fn write_new_key(dir: &Path) -> Result<(PathBuf, String), KeyError> {
    std::fs::create_dir_all(dir).map_err(|e| KeyError::Io(dir.display().to_string(), e))?;
    let pem = generate_pem()?;
    let path = dir.join(format!("{:013}.pem", crate::clock::now_ms()));
    write_private(&path, &pem)?;
    Ok((path, pem))
}

/// Writes a secret file readable by its owner only.
pub fn write_private(path: &Path, contents: &str) -> Result<(), KeyError> {
    use std::io::Write;
    let io = |e| KeyError::Io(path.display().to_string(), e);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)
}

/// The `*.pem` files of a folder, oldest (by name) first.
fn read_pem_dir(dir: &Path) -> Result<Vec<(String, String)>, KeyError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(KeyError::Io(dir.display().to_string(), e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "pem"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let pem = std::fs::read_to_string(&p).map_err(|e| KeyError::Io(p.display().to_string(), e))?;
            Ok((p.display().to_string(), pem))
        })
        .collect()
}

/// `SIGNING_KEY` holds the PEM itself or the path of a PEM file (for mounted secrets).
fn read_pem_value(value: &str) -> Result<(String, String), KeyError> {
    if value.trim_start().starts_with("-----BEGIN") {
        // Environment files often carry the PEM with literal `\n`.
        Ok(("SIGNING_KEY".to_owned(), value.replace("\\n", "\n")))
    } else {
        let pem = std::fs::read_to_string(value).map_err(|e| KeyError::Io(format!("SIGNING_KEY ({value})"), e))?;
        Ok((value.to_owned(), pem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_publish_every_key_and_sign_with_the_first() {
        let a = ("a".to_owned(), generate_pem().unwrap());
        let b = ("b".to_owned(), generate_pem().unwrap());
        let ring = KeyRing::from_pems(&a, std::slice::from_ref(&b)).unwrap();
        let jwks = ring.jwks();
        assert_eq!(jwks.keys.len(), 2);
        assert_eq!(jwks.keys[0].common.key_id.as_deref(), Some(ring.signing().kid.as_str()));
        let other = KeyRing::from_pems(&b, &[]).unwrap();
        assert!(ring.verification_key(&other.signing().kid).is_some());
        assert_ne!(ring.signing().kid, other.signing().kid);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = KeyRing::from_pems(&("SIGNING_KEY".into(), "nope".into()), &[])
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("SIGNING_KEY:"), "{err}");
    }
}
