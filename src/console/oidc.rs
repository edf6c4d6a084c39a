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
    /// `https://ops.example`: where the issuer sends the browser back; the
    /// request's own host when not configured.
    pub console_url: Option<String>,
    pub http: reqwest::Client,
}

impl SignInAtIssuer {
    fn redirect_uri(&self, headers: &HeaderMap) -> Option<String> {
        let base = match &self.console_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let host = headers.get(header::HOST)?.to_str().ok()?;
                format!("http://{host}")
            }
        };
        Some(format!("{base}/console/oidc/callback"))
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
    let Some(redirect_uri) = issuer.redirect_uri(request.headers()) else {
        return refused(StatusCode::BAD_REQUEST, "The request names no host to come back to.");
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
        [(header::SET_COOKIE, cookie)],
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

/// `GET /console/oidc/callback`: the issuer's code, exchanged for the
/// operator's token, which becomes the session.
pub async fn callback(
    State(console): State<std::sync::Arc<Console>>,
    Query(callback): Query<Callback>,
    request: Request,
) -> Response {
    let Some(issuer) = &console.sign_in_at_issuer else {
        return refused(
            StatusCode::NOT_FOUND,
            "No identity provider is configured for the console.",
        );
    };
    if let Some(error) = callback.error {
        let error: String = error.chars().take(200).collect();
        return refused(
            StatusCode::UNAUTHORIZED,
            format!("The identity provider refused: {error}"),
        );
    }
    let flow = super::cookie(request.headers(), FLOW_COOKIE);
    let Some((state, verifier)) = flow.as_deref().and_then(|flow| flow.split_once('.')) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started here, or took too long; start again.",
        );
    };
    let (Some(code), Some(returned_state)) = (callback.code, callback.state) else {
        return refused(StatusCode::BAD_REQUEST, "The identity provider sent no code.");
    };
    // Compared in full: a forged callback does not know the state.
    if Sha256::digest(returned_state.as_bytes()) != Sha256::digest(state.as_bytes()) {
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in's state does not match; start again.",
        );
    }
    let Some(redirect_uri) = issuer.redirect_uri(request.headers()) else {
        return refused(StatusCode::BAD_REQUEST, "The request names no host to come back to.");
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
            Err(error) => {
                return refused(
                    StatusCode::BAD_GATEWAY,
                    format!("The identity provider's answer is not a token: {error}"),
                )
            }
        },
        Err(error) => {
            return refused(
                StatusCode::BAD_GATEWAY,
                format!("The identity provider did not give a token: {error}"),
            )
        }
    };
    let clear_flow = format!("{FLOW_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0");
    match super::operator_session(&console, &token).await {
        Err(answer) => answer,
        Ok(session) => {
            // A page, not a redirect: the session cookie is `SameSite=Strict`,
            // and a browser sends it only on a navigation that starts here,
            // not on one the issuer's redirect began.
            let mut page = html(StatusCode::OK, &pages::SignedIn {});
            let headers = page.headers_mut();
            for cookie in [session, clear_flow] {
                if let Ok(value) = cookie.parse() {
                    headers.append(header::SET_COOKIE, value);
                }
            }
            page
        }
    }
}
