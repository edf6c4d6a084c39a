//! Signing in to the console at the OIDC issuer: the authorization code flow
//! with PKCE. The console sends the browser to the issuer with a random
//! `state` and a code challenge, both kept in a short-lived cookie; the issuer
//! sends it back with a code, which the console exchanges (with the verifier)
//! for the operator's access token. That token is checked as any bearer token
//! is, must be an operator's, and becomes the session.

use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{html, pages, Console};
use crate::identity::SignInEndpoints;

/// The cookie that carries the flow's state and verifier to the callback.
/// `Lax`: the issuer's redirect back is a navigation from another site.
const FLOW_COOKIE: &str = "__Host-campusg_oidc";
/// How long a sign-in at the issuer may take.
const FLOW_SECONDS: u32 = 600;
/// How long the issuer may take to answer the code exchange.
const TOKEN_PATIENCE: Duration = Duration::from_secs(10);

/// The console as a client of the OIDC issuer.
pub struct SignInAtIssuer {
    pub endpoints: SignInEndpoints,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// `https://ops.example`: where the issuer sends the browser back. Left
    /// out, only a browser on this machine can sign in (the loopback).
    pub console_url: Option<String>,
    pub http: reqwest::Client,
}

impl SignInAtIssuer {
    /// The console as a client of the issuer `endpoints` name. Refused when
    /// the client id is the API's audience (the issuer's ID tokens for the
    /// console would pass as API tokens) or the console URL is not one a
    /// browser may be sent back to safely.
    pub fn new(
        endpoints: SignInEndpoints,
        client_id: String,
        client_secret: Option<String>,
        console_url: Option<String>,
        audience: &str,
    ) -> anyhow::Result<SignInAtIssuer> {
        anyhow::ensure!(
            client_id != audience,
            "the console's OIDC client id must not be the API's audience `{audience}`"
        );
        if let Some(url) = &console_url {
            let parsed = reqwest::Url::parse(url).map_err(|error| anyhow::anyhow!("--console-url `{url}`: {error}"))?;
            anyhow::ensure!(
                crate::identity::secure_url(url) && parsed.query().is_none() && parsed.fragment().is_none(),
                "--console-url `{url}` must be https (or the loopback), with no query or fragment"
            );
        }
        // The code, the verifier and the secret go to the token endpoint
        // named at start, and nowhere a redirect would send them.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(SignInAtIssuer {
            endpoints,
            client_id,
            client_secret,
            console_url,
            http,
        })
    }

    /// Where the issuer sends the browser back, or why there is nowhere safe.
    fn redirect_uri(&self, headers: &HeaderMap) -> Result<String, &'static str> {
        let base = match &self.console_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let host = headers
                    .get(header::HOST)
                    .and_then(|host| host.to_str().ok())
                    .unwrap_or_default();
                let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
                if !crate::identity::is_loopback(name) {
                    return Err(
                        "Signing in at the identity provider needs the console's address: start campusg with --console-url.",
                    );
                }
                format!("http://{host}")
            }
        };
        Ok(format!("{base}/console/oidc/callback"))
    }
}

fn random_text() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn refused(status: StatusCode, error: impl Into<String>) -> Response {
    html(
        status,
        &pages::SignIn {
            error: Some(error.into()),
            issuer: None,
        },
    )
}

/// `GET /console/oidc/start`: to the issuer, with a new state and challenge.
pub async fn start(State(console): State<std::sync::Arc<Console>>, request: Request) -> Response {
    let Some(issuer) = &console.sign_in_at_issuer else {
        return refused(
            StatusCode::NOT_FOUND,
            "No identity provider is configured for the console.",
        );
    };
    let redirect_uri = match issuer.redirect_uri(request.headers()) {
        Ok(uri) => uri,
        Err(why) => return refused(StatusCode::BAD_REQUEST, why),
    };
    let (state, verifier) = (random_text(), random_text());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", issuer.client_id.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("scope", "openid"),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap_or_default();
    let separator = if issuer.endpoints.authorization.contains('?') {
        '&'
    } else {
        '?'
    };
    let cookie =
        format!("{FLOW_COOKIE}={state}.{verifier}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={FLOW_SECONDS}");
    (
        [
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Redirect::to(&format!("{}{separator}{query}", issuer.endpoints.authorization)),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

/// The error codes an issuer may send back (RFC 6749 4.1.2.1, OpenID Connect
/// 3.1.2.6): only these are shown, never text the link could carry.
const ISSUER_ERRORS: [&str; 10] = [
    "access_denied",
    "invalid_request",
    "unauthorized_client",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "consent_required",
];
/// The longest code the console sends on to the issuer.
const MAX_CODE_BYTES: usize = 2048;

/// `GET /console/oidc/callback`: the issuer's code, exchanged for the
/// operator's token, which becomes the session. Whatever the outcome, the
/// flow's cookie is spent: a state is good for one callback.
pub async fn callback(
    State(console): State<std::sync::Arc<Console>>,
    Query(callback): Query<Callback>,
    request: Request,
) -> Response {
    let flow = super::cookie(request.headers(), FLOW_COOKIE);
    let mut answer = signed_in(&console, callback, flow.as_deref(), request.headers()).await;
    let spent = format!("{FLOW_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0");
    if let Ok(value) = spent.parse() {
        answer.headers_mut().append(header::SET_COOKIE, value);
    }
    answer
}

async fn signed_in(console: &Console, callback: Callback, flow: Option<&str>, headers: &HeaderMap) -> Response {
    let Some(issuer) = &console.sign_in_at_issuer else {
        return refused(
            StatusCode::NOT_FOUND,
            "No identity provider is configured for the console.",
        );
    };
    let Some((state, verifier)) = flow.and_then(|flow| flow.split_once('.')) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started here, or took too long; start again.",
        );
    };
    let returned_state = callback.state.unwrap_or_default();
    // Compared in full: a forged callback does not know the state.
    if returned_state.len() != state.len()
        || Sha256::digest(returned_state.as_bytes()) != Sha256::digest(state.as_bytes())
    {
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in's state does not match; start again.",
        );
    }
    if let Some(error) = callback.error {
        let error = ISSUER_ERRORS
            .into_iter()
            .find(|known| *known == error)
            .unwrap_or("an error");
        return refused(
            StatusCode::FORBIDDEN,
            format!("The identity provider refused the sign-in ({error})."),
        );
    }
    let code = callback.code.unwrap_or_default();
    if code.is_empty() || code.len() > MAX_CODE_BYTES || !code.bytes().all(|byte| byte.is_ascii_graphic()) {
        return refused(StatusCode::BAD_REQUEST, "The identity provider sent no usable code.");
    }
    let redirect_uri = match issuer.redirect_uri(headers) {
        Ok(uri) => uri,
        Err(why) => return refused(StatusCode::BAD_REQUEST, why),
    };
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", issuer.client_id.clone()),
        ("code_verifier", verifier.to_string()),
    ];
    if let Some(secret) = &issuer.client_secret {
        form.push(("client_secret", secret.clone()));
    }
    let answer = issuer
        .http
        .post(&issuer.endpoints.token)
        .timeout(TOKEN_PATIENCE)
        .form(&form)
        .send()
        .await
        .and_then(|response| response.error_for_status());
    let token = match answer {
        Ok(response) => match response.json::<TokenAnswer>().await {
            Ok(answer) => answer.access_token,
            Err(_) => {
                return refused(
                    StatusCode::BAD_GATEWAY,
                    "The identity provider's answer holds no access token.",
                )
            }
        },
        Err(error) => {
            tracing::warn!(error = %error, "the identity provider did not exchange a sign-in code");
            return refused(
                StatusCode::BAD_GATEWAY,
                "The identity provider did not give a token; start again.",
            );
        }
    };
    match super::operator_session(console, &token).await {
        Err(answer) => answer,
        // A page, not a redirect: the session cookie is `SameSite=Strict`,
        // and a browser sends it only on a navigation that starts here, not
        // on one the issuer's redirect began.
        Ok(session) => {
            let mut page = html(StatusCode::OK, &pages::SignedIn {});
            if let Ok(value) = session.parse() {
                page.headers_mut().append(header::SET_COOKIE, value);
            }
            page
        }
    }
}
