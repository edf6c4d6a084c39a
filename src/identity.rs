//! Who a request comes from: its bearer token (a JWT), checked against the
//! local signing key or an OpenID Connect issuer's published keys (SPEC
//! section 11).
//!
//! - The local key: 32 random bytes in the data directory, made on first use,
//!   signing HS256 tokens whose issuer is [`LOCAL_ISSUER`]. `campusg token`
//!   mints with it; it is for the embedded mode and development.
//! - An OIDC issuer (`--oidc-issuer`): its discovery document names its JWKS,
//!   whose keys are chosen by the token's `kid` and fetched again when a `kid`
//!   is new (a rotation) or the set is old. Only asymmetric keys count, each
//!   with its own algorithm: a token cannot pick its algorithm.
//!
//! Every token needs `sub`, `exp`, `iss` and `aud`; `exp` and `nbf` are read on
//! the system's clock (injectable, as everywhere), give or take the leeway.
//! [`authenticate`] leaves the outcome in the request for the routes' rules
//! ([`campusg_runtime::access`]); it never logs the token.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use campusg_domain::ids::UserId;
use campusg_runtime::access::{Authentication, Caller, Role};
use campusg_runtime::clock::Clock;

use crate::settings::Guard;

/// The issuer of tokens signed with the local key.
pub const LOCAL_ISSUER: &str = "campusg-local";

/// The audience (`aud`) tokens must name unless `--jwt-audience` says otherwise.
pub const DEFAULT_AUDIENCE: &str = "campusg";

/// The local signing key's file, in the data directory.
const LOCAL_KEY_FILE: &str = "token-signing.key";

/// How long a fetched JWKS is trusted before it is fetched again.
const JWKS_MAX_AGE: Duration = Duration::from_secs(600);

/// How soon an unknown `kid` may fetch the JWKS again: a flood of made-up
/// `kid`s must not become a flood of requests to the issuer.
const JWKS_REFETCH_FLOOR: Duration = Duration::from_secs(10);

/// The longest token accepted, in bytes; a longer one is refused unread.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The local signing key (HS256).
pub struct LocalKey {
    secret: Vec<u8>,
}

impl LocalKey {
    /// The key in `data_dir`, made (readable by its owner only) when there is none.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<LocalKey> {
        let path = data_dir.join(LOCAL_KEY_FILE);
        if let Some(key) = LocalKey::read(&path)? {
            return Ok(key);
        }
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness for a signing key: {e}"))?;
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        // Written aside and renamed into place, so that two processes starting
        // at once end with one key, never half of one.
        let staging = data_dir.join(format!("{LOCAL_KEY_FILE}.{}", uuid::Uuid::new_v4()));
        write_private(&staging, hex.as_bytes())?;
        if let Err(error) = std::fs::hard_link(&staging, &path) {
            let _ = std::fs::remove_file(&staging);
            if error.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(error).with_context(|| format!("cannot write {}", path.display()));
            }
        } else {
            let _ = std::fs::remove_file(&staging);
        }
        LocalKey::read(&path)?.with_context(|| format!("{} vanished", path.display()))
    }

    fn read(path: &Path) -> anyhow::Result<Option<LocalKey>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
        };
        let text = text.trim();
        let secret = (0..text.len())
            .step_by(2)
            .map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .filter(|secret| secret.len() >= 32)
            .with_context(|| format!("{} is not a signing key (64 hex digits)", path.display()))?;
        Ok(Some(LocalKey { secret }))
    }

    /// A token for `user` in `role`, valid for `ttl` from `now`, for `audience`.
    pub fn mint(
        &self,
        user: &UserId,
        role: Role,
        ttl: chrono::Duration,
        audience: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<String> {
        let claims = serde_json::json!({
            "sub": user,
            "role": role,
            "iss": LOCAL_ISSUER,
            "aud": audience,
            "iat": now.timestamp(),
            "exp": (now + ttl).timestamp(),
        });
        let key = EncodingKey::from_secret(&self.secret)?;
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)?)
    }
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

/// Checks bearer tokens: the one place that says who a request comes from.
pub struct Identity {
    keys: Keys,
    audience: String,
    leeway_secs: i64,
    role_claim: String,
    clock: Arc<dyn Clock>,
}

enum Keys {
    Local(DecodingKey),
    Oidc(Box<Jwks>),
}

/// What a token says, beyond what `jsonwebtoken` checks itself.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: f64,
    nbf: Option<f64>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl Identity {
    /// The identity `guard` asks for: the OIDC issuer's keys when one is
    /// named (fetched now, so that a wrong issuer stops the start), the local
    /// key in `data_dir` otherwise.
    pub async fn from_settings(guard: &Guard, data_dir: &Path, clock: Arc<dyn Clock>) -> anyhow::Result<Identity> {
        let keys = match &guard.oidc_issuer {
            Some(issuer) => {
                let jwks = Jwks::discover(issuer).await?;
                Keys::Oidc(Box::new(jwks))
            }
            None => {
                let local = LocalKey::load_or_create(data_dir)?;
                Keys::Local(DecodingKey::from_secret(&local.secret)?)
            }
        };
        Ok(Identity {
            keys,
            audience: guard.jwt_audience.clone(),
            leeway_secs: guard.jwt_leeway_secs as i64,
            role_claim: guard.jwt_role_claim.clone(),
            clock,
        })
    }

    /// Where a browser signs in, when the tokens come from an OIDC issuer
    /// that names its authorization and token endpoints.
    pub fn sign_in_endpoints(&self) -> Option<&SignInEndpoints> {
        match &self.keys {
            Keys::Oidc(jwks) => jwks.sign_in.as_ref(),
            Keys::Local(_) => None,
        }
    }

    /// The caller a token names, or why it does not hold.
    pub async fn verify(&self, token: &str) -> Result<Caller, String> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(format!("the token is over {MAX_TOKEN_BYTES} bytes"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| "the token is not a JWT".to_string())?;
        let (key, algorithm, issuer) = match &self.keys {
            Keys::Local(key) => (key.clone(), Algorithm::HS256, LOCAL_ISSUER.to_string()),
            Keys::Oidc(jwks) => {
                let kid = header.kid.as_deref().ok_or("the token names no key (`kid`)")?;
                let (key, algorithm) = jwks.key(kid).await?;
                (key, algorithm, jwks.issuer.clone())
            }
        };
        if header.alg != algorithm {
            return Err(format!(
                "the token is signed with {:?}; only {algorithm:?} is accepted",
                header.alg
            ));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[&issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Read below on the system's clock, which tests move.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|error| format!("the token does not hold: {error}"))?
            .claims;
        let now = self.clock.now().timestamp();
        if (claims.exp as i64).saturating_add(self.leeway_secs) < now {
            return Err("the token has expired".to_string());
        }
        if claims
            .nbf
            .is_some_and(|nbf| (nbf as i64).saturating_sub(self.leeway_secs) > now)
        {
            return Err("the token is not valid yet".to_string());
        }
        let user = UserId::parse(&claims.sub).map_err(|e| format!("the token's subject is not a user id: {e}"))?;
        let role = role_of(claims.rest.get(&self.role_claim)).ok_or_else(|| {
            format!(
                "the token's `{}` claim is not one of customer, runner, operator",
                self.role_claim
            )
        })?;
        Ok(Caller { user, role })
    }
}

/// The role a claim names: one role, or a list holding exactly one.
fn role_of(claim: Option<&Value>) -> Option<Role> {
    match claim? {
        Value::String(role) => Role::parse(role),
        Value::Array(roles) => {
            let mut known = roles.iter().filter_map(|r| r.as_str().and_then(Role::parse));
            let role = known.next()?;
            known.next().is_none().then_some(role)
        }
        _ => None,
    }
}

/// Where a browser signs in at an OIDC issuer, as its discovery document
/// names them (the authorization code flow).
#[derive(Clone, Debug)]
pub struct SignInEndpoints {
    pub issuer: String,
    pub authorization: String,
    pub token: String,
}

/// An OIDC issuer's keys, by `kid`.
struct Jwks {
    issuer: String,
    /// When the issuer's document names both endpoints.
    sign_in: Option<SignInEndpoints>,
    jwks_uri: String,
    client: reqwest::Client,
    cached: std::sync::Mutex<CachedKeys>,
    /// Held by the one request that fetches the keys; the others go on with
    /// the keys at hand instead of queueing behind the issuer.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct CachedKeys {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched_at: Option<Instant>,
    /// The last fetch, whether it worked or not: a failing issuer is asked
    /// again no sooner than [`JWKS_REFETCH_FLOOR`].
    attempted_at: Option<Instant>,
}

impl CachedKeys {
    fn fetch_due(&self, kid: &str) -> bool {
        let older = |at: Option<Instant>, than: Duration| at.is_none_or(|at| at.elapsed() > than);
        let stale = older(self.fetched_at, JWKS_MAX_AGE);
        let unknown = !self.keys.contains_key(kid);
        (stale || unknown) && older(self.attempted_at, JWKS_REFETCH_FLOOR)
    }
}

/// Only `https`, but for the loopback (a test's or a sidecar's issuer); never
/// with a user or password in it (`http://localhost:@elsewhere`).
pub fn secure_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return false;
    }
    match parsed.scheme() {
        "https" => true,
        "http" => is_loopback(parsed.host_str().unwrap_or_default()),
        _ => false,
    }
}

/// Whether `host` (a URL's or a `Host` header's, without its port) is this machine.
pub fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1")
}

impl Jwks {
    /// Reads the issuer's discovery document and fetches its keys once.
    async fn discover(issuer: &str) -> anyhow::Result<Jwks> {
        let issuer = issuer.trim_end_matches('/').to_string();
        anyhow::ensure!(secure_url(&issuer), "the OIDC issuer `{issuer}` is not https");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("cannot build an HTTP client")?;
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let document: Value = client
            .get(&discovery)
            .send()
            .await
            .and_then(|response| response.error_for_status())
            .with_context(|| format!("cannot read {discovery}"))?
            .json()
            .await
            .with_context(|| format!("{discovery} is not JSON"))?;
        let named_issuer = document["issuer"].as_str().unwrap_or_default().trim_end_matches('/');
        anyhow::ensure!(
            named_issuer == issuer,
            "{discovery} names the issuer `{named_issuer}`, not `{issuer}`"
        );
        let jwks_uri = document["jwks_uri"]
            .as_str()
            .with_context(|| format!("{discovery} names no jwks_uri"))?
            .to_string();
        anyhow::ensure!(secure_url(&jwks_uri), "the issuer's jwks_uri `{jwks_uri}` is not https");
        let endpoint = |name: &str| {
            document[name]
                .as_str()
                .filter(|url| secure_url(url))
                .map(str::to_string)
        };
        let sign_in = match (endpoint("authorization_endpoint"), endpoint("token_endpoint")) {
            (Some(authorization), Some(token)) => Some(SignInEndpoints {
                issuer: issuer.clone(),
                authorization,
                token,
            }),
            _ => None,
        };
        let jwks = Jwks {
            // Tokens name the issuer as its document does.
            issuer: document["issuer"].as_str().unwrap_or(&issuer).to_string(),
            sign_in,
            jwks_uri,
            client,
            cached: std::sync::Mutex::new(CachedKeys::default()),
            fetching: tokio::sync::Mutex::new(()),
        };
        let keys = jwks.fetch().await.map_err(|e| anyhow::anyhow!(e))?;
        let mut cached = jwks.cached();
        cached.keys = keys;
        cached.fetched_at = Some(Instant::now());
        cached.attempted_at = cached.fetched_at;
        drop(cached);
        Ok(jwks)
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, CachedKeys> {
        // A panic while the cache is held leaves it whole (plain assignments).
        self.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The key `kid` names and its algorithm. The set is fetched again when it
    /// is old, or when `kid` is new, by one request at a time and no more than
    /// every [`JWKS_REFETCH_FLOOR`]; meanwhile the keys at hand serve.
    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), String> {
        if self.cached().fetch_due(kid) {
            if let Ok(_fetching) = self.fetching.try_lock() {
                if self.cached().fetch_due(kid) {
                    self.cached().attempted_at = Some(Instant::now());
                    match self.fetch().await {
                        Ok(keys) => {
                            let mut cached = self.cached();
                            cached.keys = keys;
                            cached.fetched_at = Some(Instant::now());
                        }
                        Err(error) => tracing::warn!(error = %error, "cannot refresh the issuer's keys"),
                    }
                }
            }
        }
        self.cached()
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| format!("the issuer has no key `{kid}`"))
    }

    async fn fetch(&self) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
        let set: JwkSet = self
            .client
            .get(&self.jwks_uri)
            .send()
            .await
            .and_then(|response| response.error_for_status())
            .map_err(|e| format!("cannot read {}: {e}", self.jwks_uri))?
            .json()
            .await
            .map_err(|e| format!("{} is not a JWKS: {e}", self.jwks_uri))?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, usable_key(jwk)?)))
            .collect())
    }
}

/// A JWK's verifying key and the one algorithm it verifies: the one it names,
/// else its type's usual one. Symmetric keys never come from an issuer.
fn usable_key(jwk: &Jwk) -> Option<(DecodingKey, Algorithm)> {
    let usual = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        _ => return None,
    };
    let algorithm = match jwk.common.key_algorithm {
        Some(named) => Algorithm::try_from(named).ok()?,
        None => usual,
    };
    if algorithm.family() != usual.family() {
        return None;
    }
    Some((DecodingKey::from_jwk(jwk).ok()?, algorithm))
}

/// Leaves what the request's `Authorization` header (or, on the console's
/// pages, its session cookie) proves in its extensions: nothing when there is
/// none, the caller, or why the token was refused.
pub async fn authenticate(State(identity): State<Arc<Identity>>, mut request: Request, next: Next) -> Response {
    let session = crate::console::session_token(&request);
    let header = request.headers().get(axum::http::header::AUTHORIZATION);
    let authentication = match header {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
                .map(str::trim),
        ),
        None => session.as_deref().map(Some),
    };
    let authentication = match authentication {
        None => None,
        Some(None) => Some(Authentication::Refused(
            "the Authorization header is not `Bearer <token>`".to_string(),
        )),
        Some(Some(token)) => Some(match identity.verify(token).await {
            Ok(caller) => Authentication::Caller(caller),
            Err(reason) => Authentication::Refused(reason),
        }),
    };
    if let Some(authentication) = authentication {
        request.extensions_mut().insert(authentication);
    }
    next.run(request).await
}

/// Where the local signing key of `data_dir` lives, for messages.
pub fn local_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LOCAL_KEY_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use campusg_runtime::clock::SystemClock;
    use rstest::rstest;

    fn identity(data_dir: &Path) -> Identity {
        Identity {
            keys: Keys::Local(DecodingKey::from_secret(&LocalKey::load_or_create(data_dir).unwrap().secret).unwrap()),
            audience: "campusg".into(),
            leeway_secs: 30,
            role_claim: "role".into(),
            clock: Arc::new(SystemClock),
        }
    }

    #[tokio::test]
    async fn a_minted_token_names_its_user_and_role() {
        let dir = tempfile::tempdir().unwrap();
        let key = LocalKey::load_or_create(dir.path()).unwrap();
        let alice = UserId::parse("alice").unwrap();
        let token = key
            .mint(
                &alice,
                Role::Runner,
                chrono::Duration::hours(1),
                "campusg",
                chrono::Utc::now(),
            )
            .unwrap();
        let caller = identity(dir.path()).verify(&token).await.unwrap();
        assert_eq!(
            caller,
            Caller {
                user: alice,
                role: Role::Runner
            }
        );
    }

    #[test]
    fn the_local_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = LocalKey::load_or_create(dir.path()).unwrap();
        let again = LocalKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.secret, again.secret);
        assert_eq!(first.secret.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(local_key_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "only its owner reads the key");
        }
    }

    #[rstest]
    #[case::https("https://login.example.edu", true)]
    #[case::plain_http("http://login.example.edu", false)]
    #[case::loopback("http://127.0.0.1:8443/realms/campus", true)]
    #[case::localhost("http://localhost", true)]
    #[case::a_lookalike("http://localhost.evil.example", false)]
    #[case::a_user_before_another_host("http://localhost:@evil.example/token", false)]
    #[case::credentials("https://user:secret@login.example.edu", false)]
    #[case::not_a_url("https//login.example.edu", false)]
    fn an_issuer_is_reached_over_https_but_on_the_loopback(#[case] url: &str, #[case] secure: bool) {
        assert_eq!(secure_url(url), secure);
    }

    #[rstest]
    #[case::a_role(serde_json::json!("runner"), Some(Role::Runner))]
    #[case::a_list_of_one(serde_json::json!(["offline_access", "operator"]), Some(Role::Operator))]
    #[case::a_list_of_two(serde_json::json!(["customer", "operator"]), None)]
    #[case::an_unknown_role(serde_json::json!("admin"), None)]
    #[case::a_number(serde_json::json!(1), None)]
    fn a_role_claim_names_one_role(#[case] claim: Value, #[case] expected: Option<Role>) {
        assert_eq!(role_of(Some(&claim)), expected);
    }
}
