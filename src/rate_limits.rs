//! Rate limits on the HTTP API: per client address, before anything else is
//! read, and per token subject, once the token is known. Over a limit is a 429
//! with `Retry-After`, so that one caller cannot starve the others.
//!
//! Each limit is a number of requests a minute, which is also the largest
//! burst (`governor`'s cell rate); 0 turns it off. Behind a proxy every client
//! has the proxy's address, so a request from a `--trusted-proxy` is counted
//! against the address its `X-Forwarded-For` names (the nearest one that is
//! not itself a trusted proxy); no other caller's `X-Forwarded-For` is read.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use campusg_runtime::access::Authentication;
use campusg_runtime::http::ApiError;

/// How many checks pass between two sweeps of keys that are back to a full
/// bucket, which bounds the limiters' memory by the callers of the last minute.
const SWEEP_EVERY: u64 = 4096;

pub struct RateLimits {
    per_address: Option<Limiter<IpAddr>>,
    per_subject: Option<Limiter<String>>,
    trusted_proxies: Vec<IpAddr>,
}

struct Limiter<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    checks: AtomicU64,
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    fn per_minute(requests: u32) -> Option<Limiter<K>> {
        let requests = NonZeroU32::new(requests)?;
        Some(Limiter {
            limiter: RateLimiter::keyed(Quota::per_minute(requests)),
            checks: AtomicU64::new(0),
        })
    }

    /// `Ok`, or how many seconds until `key` may call again.
    fn check(&self, key: &K) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + 1
        })
    }
}

impl RateLimits {
    pub fn new(per_address_a_minute: u32, per_subject_a_minute: u32, trusted_proxies: Vec<IpAddr>) -> RateLimits {
        RateLimits {
            per_address: Limiter::per_minute(per_address_a_minute),
            per_subject: Limiter::per_minute(per_subject_a_minute),
            trusted_proxies,
        }
    }
}

/// The client a request comes from: its peer, or, when the peer is a trusted
/// proxy, the nearest address in `X-Forwarded-For` that is not one (a client
/// can write anything at the far end of that header, so it is read from the
/// near end, and only as far as trusted proxies vouch for it).
fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.unwrap_or_default().rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(address) => {
                client = address;
                if !trusted.contains(&address) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

fn too_many(who: &str, retry_after_secs: u64) -> Response {
    let mut response = ApiError::too_many_requests(format!(
        "too many requests from this {who}; try again in {retry_after_secs} s"
    ))
    .into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(retry_after_secs),
    );
    response
}

/// The per-address limit; runs first, before the token is checked.
pub async fn limit_addresses(State(limits): State<Arc<RateLimits>>, request: Request, next: Next) -> Response {
    if let (Some(limiter), Some(ConnectInfo(peer))) = (
        &limits.per_address,
        request.extensions().get::<ConnectInfo<SocketAddr>>(),
    ) {
        let forwarded_for = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok());
        let client = client_address(peer.ip(), forwarded_for, &limits.trusted_proxies);
        if let Err(wait) = limiter.check(&client) {
            return too_many("address", wait);
        }
    }
    next.run(request).await
}

/// The per-subject limit; runs once the token has named the caller.
pub async fn limit_subjects(State(limits): State<Arc<RateLimits>>, request: Request, next: Next) -> Response {
    if let (Some(limiter), Some(Authentication::Caller(caller))) =
        (&limits.per_subject, request.extensions().get::<Authentication>())
    {
        if let Err(wait) = limiter.check(&caller.user.to_string()) {
            return too_many("caller", wait);
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_past_the_burst_waits_while_others_go_on() {
        let limiter = Limiter::<String>::per_minute(3).unwrap();
        let (alice, bob) = ("alice".to_string(), "bob".to_string());
        for _ in 0..3 {
            assert_eq!(limiter.check(&alice), Ok(()));
        }
        let wait = limiter.check(&alice).unwrap_err();
        assert!((1..=21).contains(&wait), "one request in 20 s comes back, not {wait} s");
        assert_eq!(limiter.check(&bob), Ok(()));
    }

    #[rstest::rstest]
    #[case::a_direct_client("203.0.113.7", Some("198.51.100.1"), "203.0.113.7")]
    #[case::through_the_proxy("10.0.0.2", Some("198.51.100.1"), "198.51.100.1")]
    #[case::a_forged_far_end("10.0.0.2", Some("1.2.3.4, 198.51.100.1"), "198.51.100.1")]
    #[case::two_trusted_hops("10.0.0.2", Some("198.51.100.1, 10.0.0.3"), "198.51.100.1")]
    #[case::no_header("10.0.0.2", None, "10.0.0.2")]
    #[case::garbage("10.0.0.2", Some("not an address"), "10.0.0.2")]
    fn a_client_is_the_nearest_address_no_trusted_proxy_vouches_past(
        #[case] peer: &str,
        #[case] forwarded_for: Option<&str>,
        #[case] expected: &str,
    ) {
        let trusted: Vec<IpAddr> = ["10.0.0.2", "10.0.0.3"].iter().map(|a| a.parse().unwrap()).collect();
        let client = client_address(peer.parse().unwrap(), forwarded_for, &trusted);
        assert_eq!(client, expected.parse::<IpAddr>().unwrap());
    }

    #[test]
    fn zero_is_no_limit() {
        assert!(Limiter::<String>::per_minute(0).is_none());
    }
}
