//! What the client API needs to know about the caller: IP, user agent and a
//! same-origin check for requests that change state with cookies (CSRF).

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use crate::config::Config;
use crate::error::AppError;

const MAX_USER_AGENT: usize = 512;

/// The caller of a client-API request. Extracting it refuses cross-site requests: an
/// `Origin` that is not an allowed origin, or `Sec-Fetch-Site: cross-site`, is 403.
#[derive(Debug, Clone)]
pub struct ClientContext {
    pub ip: String,
    pub user_agent: Option<String>,
    /// The request's `Origin` when it is an allowed origin; becomes the token's `azp`.
    pub origin: Option<String>,
}

impl ClientContext {
    fn from_http(req: &HttpRequest) -> Result<Self, AppError> {
        let config = req.app_data::<web::Data<Config>>().ok_or(AppError::Misconfigured(
            "the client API needs `web::Data<Config>` registered as app data",
        ))?;
        let origin = match req.headers().get(header::ORIGIN) {
            None => None,
            Some(value) => {
                let origin = value.to_str().unwrap_or_default();
                if !is_trusted_origin(req, config, origin) {
                    return Err(AppError::Forbidden(
                        "cross-origin request refused: Origin is not an allowed origin".to_owned(),
                    ));
                }
                // Only configured origins become `azp` (the verifier checks it against them).
                config.is_origin_allowed(origin).then(|| origin.to_owned())
            }
        };
        let cross_site = req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site");
        if cross_site && origin.is_none() {
            return Err(AppError::Forbidden("cross-site request refused".to_owned()));
        }
        Ok(Self {
            ip: client_ip(req, config.trust_proxy_headers),
            user_agent: user_agent(req),
            origin,
        })
    }
}

/// The caller of a top-level navigation that signs the browser in (an emailed link, an
/// OAuth callback, an impersonation ticket): such a request comes from another site by
/// design (a mail client, an identity provider), so it carries no same-origin proof;
/// what authorizes it is the single-use secret in its URL.
#[derive(Debug, Clone)]
pub struct NavigationContext(pub ClientContext);

impl FromRequest for NavigationContext {
    type Error = AppError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            req.app_data::<web::Data<Config>>()
                .ok_or(AppError::Misconfigured(
                    "the client API needs `web::Data<Config>` registered as app data",
                ))
                .map(|config| {
                    Self(ClientContext {
                        ip: client_ip(req, config.trust_proxy_headers),
                        user_agent: user_agent(req),
                        origin: None,
                    })
                }),
        )
    }
}

fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect())
}

/// Where a browser goes after signing in: `redirect_url` when it is a path on this
/// site (or an absolute URL of this site or an allowed origin), else `/account`.
pub fn same_origin_redirect(req: &HttpRequest, config: &Config, redirect_url: Option<&str>) -> String {
    const DEFAULT: &str = "/account";
    let Some(raw) = redirect_url
        .map(str::trim)
        .filter(|r| !r.is_empty() && !r.chars().any(char::is_control))
    else {
        return DEFAULT.to_owned();
    };
    if raw.starts_with('/') && !raw.starts_with("//") && !raw.starts_with("/\\") {
        return raw.to_owned();
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return DEFAULT.to_owned();
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let origin = format!("{scheme}://{host}");
    let public = config.email.public_url.trim_end_matches('/');
    if origin == public || config.is_origin_allowed(&origin) || is_trusted_origin(req, config, &origin) {
        raw.to_owned()
    } else {
        DEFAULT.to_owned()
    }
}

/// An `Origin` that may change state with this request's cookies: one of
/// `ALLOWED_ORIGINS`, or this server's own origin (a same-origin page, whatever port it
/// was started on). A cross-site page cannot forge either: browsers set `Origin`.
pub fn is_trusted_origin(req: &HttpRequest, config: &crate::config::Config, origin: &str) -> bool {
    if config.is_origin_allowed(origin) {
        return true;
    }
    let own = if config.trust_proxy_headers {
        let info = req.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    } else {
        let scheme = if req.app_config().secure() { "https" } else { "http" };
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        format!("{scheme}://{host}")
    };
    origin == own
}

/// The peer address, or the proxy-reported client when `TRUST_PROXY_HEADERS` is on.
pub fn client_ip(req: &HttpRequest, trust_proxy_headers: bool) -> String {
    if !trust_proxy_headers {
        // The socket's peer: no header parsing (`connection_info` would also build the
        // host and scheme, and store them in the request's extensions).
        return req
            .peer_addr()
            .map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string());
    }
    let info = req.connection_info();
    info.realip_remote_addr()
        .map(strip_port)
        .unwrap_or("unknown")
        .to_owned()
}

/// [`client_ip`] as an address, unformatted (for the audit context of every request);
/// `None` when a trusted proxy's header does not hold one.
pub fn client_ip_addr(req: &HttpRequest, trust_proxy_headers: bool) -> Option<std::net::IpAddr> {
    if !trust_proxy_headers {
        return req.peer_addr().map(|addr| addr.ip());
    }
    req.connection_info()
        .realip_remote_addr()
        .and_then(|ip| strip_port(ip).parse().ok())
}

fn strip_port(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if addr.matches(':').count() == 1 {
        addr.split(':').next().unwrap_or(addr)
    } else {
        addr
    }
}

impl FromRequest for ClientContext {
    type Error = AppError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Self::from_http(req))
    }
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn ports_are_stripped_from_v4_and_v6() {
        assert_eq!(strip_port("10.0.0.1:5555"), "10.0.0.1");
        assert_eq!(strip_port("[::1]:5555"), "::1");
        assert_eq!(strip_port("::1"), "::1");
        assert_eq!(strip_port("10.0.0.1"), "10.0.0.1");
    }
}
