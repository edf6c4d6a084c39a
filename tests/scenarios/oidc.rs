//! A stand-in OpenID Connect issuer on a random port: its discovery document,
//! its keys (the public half of the test key), and a sign-in that lets in at
//! once whoever the test says (`/authorize`, then `/token`, which checks the
//! code, the redirect URI and the PKCE verifier as a real issuer does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The console's client id at the stand-in issuer.
pub const CLIENT_ID: &str = "campusg-console";
pub const KEY_ID: &str = "test-key-1";

#[derive(Clone)]
pub struct Issuer {
    pub url: String,
    key: Arc<EncodingKey>,
    /// Who the next sign-in signs in: a subject and a role.
    signs_in: Arc<Mutex<(String, String)>>,
    /// Codes handed out: the challenge and redirect URI each was asked with.
    codes: Arc<Mutex<HashMap<String, (String, String)>>>,
}

impl Issuer {
    pub async fn start() -> Issuer {
        let key = EncodingKey::from_ec_pem(include_bytes!("fixtures/oidc-test-signing-key.pem")).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let issuer = Issuer {
            url: url.clone(),
            key: Arc::new(key),
            signs_in: Arc::new(Mutex::new(("ops_oidc".into(), "operator".into()))),
            codes: Arc::new(Mutex::new(HashMap::new())),
        };
        let mut jwk = Jwk::from_encoding_key(&issuer.key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(KEY_ID.to_string());
        let jwks = JwkSet { keys: vec![jwk] };
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/keys"),
            "authorization_endpoint": format!("{url}/authorize"),
            "token_endpoint": format!("{url}/token"),
        });
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route("/keys", axum::routing::get(move || async move { axum::Json(jwks) }))
            .route("/authorize", axum::routing::get(authorize))
            .route("/token", axum::routing::post(token))
            .with_state(issuer.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        issuer
    }

    /// A token of this issuer for `subject` in `role`, signed with the key
    /// named `kid`.
    pub fn token(&self, subject: &str, role: &str, kid: &str) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_string());
        let claims = json!({"sub": subject, "role": role, "iss": self.url, "aud": "campusg",
            "exp": (chrono::Utc::now() + chrono::Duration::minutes(10)).timestamp()});
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    /// The next sign-in at the issuer signs in `subject` in `role`.
    pub fn signs_in(&self, subject: &str, role: &str) {
        *self.signs_in.lock().unwrap() = (subject.to_string(), role.to_string());
    }
}

async fn authorize(State(issuer): State<Issuer>, Query(asked): Query<HashMap<String, String>>) -> Response {
    let field = |name: &str| asked.get(name).cloned().unwrap_or_default();
    if field("client_id") != CLIENT_ID || field("code_challenge_method") != "S256" || field("response_type") != "code" {
        return (axum::http::StatusCode::BAD_REQUEST, "not a request of the console").into_response();
    }
    let code = uuid::Uuid::new_v4().simple().to_string();
    issuer
        .codes
        .lock()
        .unwrap()
        .insert(code.clone(), (field("code_challenge"), field("redirect_uri")));
    let back = serde_urlencoded::to_string([("code", code), ("state", field("state"))]).unwrap();
    Redirect::to(&format!("{}?{back}", field("redirect_uri"))).into_response()
}

async fn token(State(issuer): State<Issuer>, Form(asked): Form<HashMap<String, String>>) -> Response {
    let field = |name: &str| asked.get(name).cloned().unwrap_or_default();
    let Some((challenge, redirect_uri)) = issuer.codes.lock().unwrap().remove(&field("code")) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let verified = URL_SAFE_NO_PAD.encode(Sha256::digest(field("code_verifier").as_bytes())) == challenge;
    if !verified || redirect_uri != field("redirect_uri") || field("client_id") != CLIENT_ID {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let (subject, role) = issuer.signs_in.lock().unwrap().clone();
    axum::Json(json!({
        "access_token": issuer.token(&subject, &role, KEY_ID),
        "token_type": "Bearer",
        "expires_in": 600,
    }))
    .into_response()
}
