//! Social and enterprise sign-in: OpenID Connect providers (discovery, authorization
//! code with PKCE S256, `state` and `nonce`, the ID token verified against the
//! provider's JWKS) through the `openidconnect` crate, and GitHub (OAuth 2.0 through
//! `oauth2`, then its API for the user and their primary verified email).
//!
//! A provider's discovery document and JWKS are fetched on first use and cached for an
//! hour; an ID token signed by a key the cache does not know refetches them (and a
//! refetch so caused is not repeated within 30 s), so a provider's key rotation needs no
//! restart.

pub mod flow;
mod http;

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError, TokenUrl,
};
use serde::Deserialize;
use tokio::sync::Mutex;

pub use self::flow::{Flow, FlowError};
pub use self::http::ProviderHttp;
use crate::config::{Config, OAuthProviderConfig, OAuthProviderKind};

const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
const MIN_REFETCH: Duration = Duration::from_secs(30);

/// Why a sign-in at a provider failed: the log line says it; the user sees only
/// `/sign-in?error=oauth_failed`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OAuthFailure(pub String);

impl OAuthFailure {
    fn new(context: &str, error: &dyn std::error::Error) -> Self {
        let mut message = format!("{context}: {error}");
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self(message)
    }
}

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub struct ProviderProfile {
    /// The provider's stable id for the user (`sub`, GitHub's numeric id).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider vouches for the email (`email_verified`; GitHub's `verified`).
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Where to send the browser, and what the callback needs to finish.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The configured providers.
pub struct OAuthProviders {
    providers: Vec<Provider>,
    http: ProviderHttp,
}

pub struct Provider {
    config: OAuthProviderConfig,
    redirect_uri: RedirectUrl,
    /// OIDC: the discovery document (with its JWKS), cached.
    discovery: Mutex<Option<Discovered>>,
}

struct Discovered {
    metadata: Arc<CoreProviderMetadata>,
    fetched: Instant,
    /// Fetched again because an ID token named a key the cache did not have.
    forced: bool,
}

type OidcClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

impl OAuthProviders {
    /// The redirect URI registered at each provider is `PUBLIC_URL/v1/oauth/{name}/callback`.
    pub fn from_config(config: &Config) -> Self {
        let public_url = config.email.public_url.trim_end_matches('/');
        let providers = config
            .oauth_providers
            .iter()
            .map(|provider| Provider {
                redirect_uri: RedirectUrl::new(format!("{public_url}/v1/oauth/{}/callback", provider.name))
                    .expect("PUBLIC_URL is a URL"),
                config: provider.clone(),
                discovery: Mutex::new(None),
            })
            .collect();
        Self {
            providers,
            http: ProviderHttp::new(),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.providers.iter().map(|p| p.config.name.clone()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.config.name == name)
    }

    /// The provider's authorization URL for a new flow (PKCE S256, a fresh `state`, and a
    /// `nonce` for OIDC).
    pub async fn authorize(&self, provider: &Provider) -> Result<Authorization, OAuthFailure> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        match &provider.config.kind {
            OAuthProviderKind::Oidc { .. } => {
                let client = provider.oidc_client(&self.http, false).await?;
                let (url, state, nonce) = client
                    .authorize_url(
                        CoreAuthenticationFlow::AuthorizationCode,
                        CsrfToken::new_random,
                        Nonce::new_random,
                    )
                    .add_scope(Scope::new("email".to_owned()))
                    .add_scope(Scope::new("profile".to_owned()))
                    .set_pkce_challenge(challenge)
                    .url();
                Ok(Authorization {
                    url: url.into(),
                    state: state.into_secret(),
                    nonce: nonce.secret().clone(),
                    pkce_verifier: verifier.into_secret(),
                })
            }
            OAuthProviderKind::GitHub { .. } => {
                let client = provider.github_client()?;
                let (url, state) = client
                    .authorize_url(CsrfToken::new_random)
                    .add_scope(oauth2::Scope::new("read:user".to_owned()))
                    .add_scope(oauth2::Scope::new("user:email".to_owned()))
                    .set_pkce_challenge(challenge)
                    .url();
                Ok(Authorization {
                    url: url.into(),
                    state: state.into_secret(),
                    nonce: String::new(),
                    pkce_verifier: verifier.into_secret(),
                })
            }
        }
    }

    /// Exchanges the callback's code (with the flow's PKCE verifier) and returns who
    /// signed in: for OIDC from the verified ID token (signature by the provider's JWKS,
    /// `iss`, `aud`, `exp`, `nonce`), completed by the userinfo endpoint when the token
    /// carries no email; for GitHub from its API.
    pub async fn finish(&self, provider: &Provider, code: &str, flow: &Flow) -> Result<ProviderProfile, OAuthFailure> {
        let code = AuthorizationCode::new(code.to_owned());
        let verifier = PkceCodeVerifier::new(flow.pkce_verifier.clone());
        match &provider.config.kind {
            OAuthProviderKind::Oidc { .. } => {
                let client = provider.oidc_client(&self.http, false).await?;
                let tokens = client
                    .exchange_code(code)
                    .map_err(|e| OAuthFailure::new("the provider has no token endpoint", &e))?
                    .set_pkce_verifier(verifier)
                    .request_async(&self.http)
                    .await
                    .map_err(|e| OAuthFailure::new("the token request failed", &e))?;
                let id_token = tokens
                    .extra_fields()
                    .id_token()
                    .ok_or_else(|| OAuthFailure("the token response has no ID token".to_owned()))?;
                let nonce = Nonce::new(flow.nonce.clone());
                let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
                    Ok(claims) => claims.clone(),
                    Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                        // The provider may have rotated its keys: fetch them again, once.
                        let client = provider.oidc_client(&self.http, true).await?;
                        id_token
                            .claims(&client.id_token_verifier(), &nonce)
                            .map_err(|e| OAuthFailure::new("the ID token does not verify", &e))?
                            .clone()
                    }
                    Err(e) => return Err(OAuthFailure::new("the ID token does not verify", &e)),
                };
                let mut profile = ProviderProfile {
                    subject: claims.subject().to_string(),
                    email: claims.email().map(|e| e.to_string()),
                    email_verified: claims.email_verified().unwrap_or(false),
                    first_name: claims.given_name().and_then(|n| n.get(None)).map(|n| n.to_string()),
                    last_name: claims.family_name().and_then(|n| n.get(None)).map(|n| n.to_string()),
                };
                // Some providers keep the email (or whether it is verified) out of the ID
                // token: ask the userinfo endpoint, for the same subject.
                if (claims.email().is_none() || claims.email_verified().is_none())
                    && let Ok(request) = client.user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
                {
                    let info: CoreUserInfoClaims = request
                        .request_async(&self.http)
                        .await
                        .map_err(|e| OAuthFailure::new("the userinfo request failed", &e))?;
                    if let Some(email) = info.email() {
                        profile.email = Some(email.to_string());
                        profile.email_verified = info.email_verified().unwrap_or(false);
                    }
                }
                Ok(profile)
            }
            OAuthProviderKind::GitHub { api_url, .. } => {
                let tokens = provider
                    .github_client()?
                    .exchange_code(code)
                    .set_pkce_verifier(verifier)
                    .request_async(&self.http)
                    .await
                    .map_err(|e| OAuthFailure::new("the token request failed", &e))?;
                github_profile(self.http.client(), api_url, tokens.access_token()).await
            }
        }
    }
}

impl Provider {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The OIDC client from the cached discovery document (fetched when missing, older
    /// than an hour, or on `refresh`: at most once per 30 s).
    async fn oidc_client(&self, http: &ProviderHttp, refresh: bool) -> Result<OidcClient, OAuthFailure> {
        let OAuthProviderKind::Oidc { issuer } = &self.config.kind else {
            return Err(OAuthFailure(format!(
                "`{}` is not an OpenID Connect provider",
                self.config.name
            )));
        };
        let metadata = {
            let mut cached = self.discovery.lock().await;
            let fresh = cached.as_ref().filter(|d| {
                d.fetched.elapsed() < DISCOVERY_TTL
                    // An unknown key refetches, but not again within MIN_REFETCH of the
                    // last refetch it caused.
                    && !(refresh && !(d.forced && d.fetched.elapsed() < MIN_REFETCH))
            });
            match fresh {
                Some(discovered) => discovered.metadata.clone(),
                None => {
                    let issuer =
                        IssuerUrl::new(issuer.clone()).map_err(|e| OAuthFailure::new("the issuer is not a URL", &e))?;
                    let metadata = Arc::new(
                        CoreProviderMetadata::discover_async(issuer, http)
                            .await
                            .map_err(|e| OAuthFailure::new("discovery failed", &e))?,
                    );
                    *cached = Some(Discovered {
                        metadata: metadata.clone(),
                        fetched: Instant::now(),
                        forced: refresh,
                    });
                    metadata
                }
            }
        };
        // `client_secret_basic` unless the provider says it takes only `client_secret_post`.
        let post_only = metadata.token_endpoint_auth_methods_supported().is_some_and(|methods| {
            methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
        });
        let client = CoreClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect_uri.clone());
        Ok(if post_only {
            client.set_auth_type(AuthType::RequestBody)
        } else {
            client
        })
    }

    fn github_client(
        &self,
    ) -> Result<
        oauth2::basic::BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>,
        OAuthFailure,
    > {
        let OAuthProviderKind::GitHub {
            authorize_url,
            token_url,
            ..
        } = &self.config.kind
        else {
            return Err(OAuthFailure(format!("`{}` is not GitHub", self.config.name)));
        };
        Ok(
            oauth2::basic::BasicClient::new(ClientId::new(self.config.client_id.clone()))
                .set_client_secret(ClientSecret::new(self.config.client_secret.clone()))
                .set_auth_uri(AuthUrl::new(authorize_url.clone()).map_err(|e| OAuthFailure::new("authorize URL", &e))?)
                .set_token_uri(TokenUrl::new(token_url.clone()).map_err(|e| OAuthFailure::new("token URL", &e))?)
                .set_redirect_uri(self.redirect_uri.clone()),
        )
    }
}

#[derive(Deserialize)]
struct GitHubUser {
    id: i64,
    name: Option<String>,
}

#[derive(Deserialize)]
struct GitHubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

/// GitHub's user (`GET /user`) and their primary email (`GET /user/emails`): the
/// subject is the numeric id (a login can be renamed); the email is verified only when
/// GitHub says the primary address is.
async fn github_profile(
    http: &reqwest::Client,
    api_url: &str,
    token: &AccessToken,
) -> Result<ProviderProfile, OAuthFailure> {
    let get = |path: &str| {
        http.get(format!("{api_url}{path}"))
            .bearer_auth(token.secret())
            .header("accept", "application/vnd.github+json")
            .send()
    };
    let user: GitHubUser = get("/user")
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| OAuthFailure::new("GitHub /user failed", &e))?
        .json()
        .await
        .map_err(|e| OAuthFailure::new("GitHub /user answered an unexpected body", &e))?;
    let emails: Vec<GitHubEmail> = get("/user/emails")
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| OAuthFailure::new("GitHub /user/emails failed", &e))?
        .json()
        .await
        .map_err(|e| OAuthFailure::new("GitHub /user/emails answered an unexpected body", &e))?;
    let primary = emails.into_iter().find(|e| e.primary);
    let (first_name, last_name) = match user.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => match name.split_once(' ') {
            Some((first, last)) => (Some(first.to_owned()), Some(last.trim().to_owned())),
            None => (Some(name.to_owned()), None),
        },
        _ => (None, None),
    };
    Ok(ProviderProfile {
        subject: user.id.to_string(),
        email_verified: primary.as_ref().is_some_and(|e| e.verified),
        email: primary.map(|e| e.email),
        first_name,
        last_name,
    })
}
