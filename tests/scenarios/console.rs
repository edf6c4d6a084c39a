//! The operator console in a real browser: headless Chromium (Debian's
//! `chromium`, driven through `chromedriver` by fantoccini) against the real
//! system. Set `CAMPUSG_SCREENSHOTS` to a directory to keep a picture of each
//! view (docs/console.md shows them).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use campusg_runtime::access::Role as CallerRole;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::backends::{Backend, Environment};
use crate::helpers::{eventually, TestApp};

/// `chromedriver` on a port of its own, stopped with the test.
struct Driver {
    process: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (Debian's chromium-driver; scripts/test installs it)");
        let driver = Driver {
            process,
            port,
            _profile: tempfile::tempdir().unwrap(),
        };
        eventually("chromedriver listens", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
        driver
    }

    /// A headless Chromium with a fresh profile, kept off the network but for
    /// the system under test.
    async fn browser(&self) -> Client {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", self._profile.path().display())])
        .collect::<Vec<_>>();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_string(),
            json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        ClientBuilder::native()
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session")
    }
}

/// Keeps a picture of what the browser shows, when asked to.
async fn picture(browser: &Client, name: &str) {
    let Some(dir) = std::env::var_os("CAMPUSG_SCREENSHOTS") else {
        return;
    };
    let png = browser.screenshot().await.unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
}

/// The text of what `css` finds. A live region may be swapped while it is
/// read (the page refreshes it when the system moves): it is read again.
async fn text_of(browser: &Client, css: &str) -> String {
    let mut attempts = 0;
    loop {
        let read = async { browser.find(Locator::Css(css)).await?.text().await }.await;
        match read {
            Ok(text) => return text,
            Err(error) if attempts < 20 => {
                attempts += 1;
                tracing::debug!(%error, css, "reading again");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("cannot read `{css}`: {error}"),
        }
    }
}

/// Waits until the page shows `css`: how a test knows that the page a click
/// led to has loaded.
async fn shown(browser: &Client, css: &str) {
    if let Err(error) = browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
    {
        let url = browser.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let page = browser.source().await.unwrap_or_default();
        panic!("the page never showed `{css}`: {error}; at {url}: {page}");
    }
}

async fn click(browser: &Client, css: &str) {
    browser.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

async fn path_of(browser: &Client) -> String {
    browser.current_url().await.unwrap().path().to_string()
}

async fn sign_in(browser: &Client, app: &TestApp, token: &str) {
    browser.goto(&format!("{}/console/sagas", app.address)).await.unwrap();
    // Not signed in: sent to the sign-in page.
    assert_eq!(path_of(browser).await, "/console/login");
    browser
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    click(browser, "#sign-in").await;
}

#[tokio::test]
async fn an_operator_finds_a_compensated_saga_sees_it_unwind_and_retries_a_parked_key_until_a_saga_finishes() {
    let environment = std::sync::Arc::new(Environment::new(Backend::Embedded));
    let app = TestApp::spawn_configured(environment, &[], |settings| {
        // A capture failing for a second parks its order's key.
        settings.transient_retry_secs = 1;
    })
    .await;

    // A saga that unwinds: the escrow refuses to hold more than 500.00.
    app.create_user("cust_big", Some("pm_card_visa")).await;
    let (undone, undone_order) = app.place_order("cust_big", 499.0, 10.0).await;
    assert_eq!(app.saga_when_finished(&undone).await["status"], "COMPENSATED");
    // A saga held by a parked key: its capture fails until an operator retries.
    let order_id = crate::delivery::an_accepted_order(&app, "cust_waiting", "runner_waiting").await;
    app.sandbox.fail_next_captures(u32::MAX);
    let waiting = crate::delivery::deliver(&app, &order_id, "runner_waiting").await;
    eventually("the capture's key was never parked", || async {
        let (_, listed) = app.get("/api/parked-keys").await;
        if listed["parked_keys"][0]["key"] == order_id.as_str() {
            Ok(())
        } else {
            Err(listed.to_string())
        }
    })
    .await;
    app.sandbox.fail_next_captures(0);

    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // A customer's token does not open the console.
    sign_in(&browser, &app, &app.token("cust_big", CallerRole::Customer)).await;
    shown(&browser, "#sign-in-error").await;
    let refused = text_of(&browser, "#sign-in-error").await;
    assert!(refused.contains("the console is for operators"), "{refused}");
    picture(&browser, "sign-in-refused").await;

    // An operator finds the compensated create-order saga by filter.
    sign_in(&browser, &app, &app.operator_token()).await;
    shown(&browser, "#saga-filters").await;
    assert_eq!(path_of(&browser).await, "/console/sagas");
    for (select, value) in [("saga_type", "create_order"), ("status", "COMPENSATED")] {
        browser
            .find(Locator::Css(&format!("select[name={select}]")))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }
    click(&browser, "#apply-filters").await;
    eventually("the filter was never applied", || async {
        let url = browser.current_url().await.map_err(|e| e.to_string())?;
        match url.query() {
            Some(query) if query.contains("status=COMPENSATED") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    shown(&browser, "#saga-table").await;
    let listed = text_of(&browser, "#saga-table tbody").await;
    assert!(listed.contains(&undone[..8]), "{listed}");
    let rows = browser.find_all(Locator::Css("#saga-table tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "{listed}");
    let counts = text_of(&browser, "#status-counts").await;
    assert!(counts.contains("COMPENSATED 1"), "{counts}");
    picture(&browser, "sagas").await;

    // Its page shows each compensation, in the order they unwound: the
    // escrow's refusal sends both at once, and they are drawn in the order
    // their confirmations came back.
    click(&browser, "a.saga-link").await;
    shown(&browser, "#saga-status").await;
    assert_eq!(text_of(&browser, "#saga-status").await, "COMPENSATED");
    let mut unwound = Vec::new();
    for item in browser.find_all(Locator::Css("#compensations li")).await.unwrap() {
        let name = item.find(Locator::Css(".name")).await.unwrap().text().await.unwrap();
        let at = item.find(Locator::Css(".at")).await.unwrap().text().await.unwrap();
        unwound.push((at, name));
    }
    let mut in_time_order = unwound.clone();
    in_time_order.sort();
    assert_eq!(unwound, in_time_order);
    let mut names: Vec<&str> = unwound.iter().map(|(_, name)| name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["cancel_order", "void_payment"]);
    let timeline = text_of(&browser, "#timeline").await;
    assert!(timeline.contains("compensation_started"), "{timeline}");
    let records = text_of(&browser, "#records").await;
    assert!(records.contains("escrow.hold_failed"), "{records}");
    picture(&browser, "saga").await;

    // Its order's sequence diagram.
    click(&browser, "#order-link").await;
    shown(&browser, "#sequence-diagram").await;
    assert_eq!(path_of(&browser).await, format!("/console/orders/{undone_order}"));
    let arrows = browser
        .find_all(Locator::Css("#sequence-diagram svg g.arrow"))
        .await
        .unwrap();
    assert!(arrows.len() >= 8, "{} arrows", arrows.len());
    let diagram = text_of(&browser, "#sequence-diagram").await;
    for message in [
        "create_order",
        "hold_funds",
        "escrow.hold_failed",
        "void_payment",
        "cancel_order",
    ] {
        assert!(diagram.contains(message), "{message} missing from {diagram}");
    }
    picture(&browser, "order").await;

    // The parked key, retried from a second window: the complete-order saga
    // finishes, and its page, left open in the first, shows it without a reload.
    browser
        .goto(&format!("{}/console/sagas/{waiting}", app.address))
        .await
        .unwrap();
    assert_ne!(text_of(&browser, "#saga-status").await, "COMPLETED");
    let saga_window = browser.window().await.unwrap();
    let other = browser.new_window(false).await.unwrap();
    browser.switch_to_window(other.handle).await.unwrap();
    browser
        .goto(&format!("{}/console/dead-letters", app.address))
        .await
        .unwrap();
    let parked_row = format!("#parked-keys tr[data-key=\"{order_id}\"]");
    assert!(text_of(&browser, &parked_row).await.contains("payment-service"));
    picture(&browser, "dead-letters").await;
    click(&browser, &format!("{parked_row} button.retry-key")).await;
    shown(&browser, "#notice").await;
    let notice = text_of(&browser, "#notice").await;
    assert!(
        notice.contains("retried in payment-service by test_operator"),
        "{notice}"
    );

    browser.close_window().await.unwrap();
    browser.switch_to_window(saga_window).await.unwrap();
    eventually("the saga's page never showed it finished", || async {
        match text_of(&browser, "#saga-status").await {
            status if status == "COMPLETED" => Ok(()),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(path_of(&browser).await, format!("/console/sagas/{waiting}"));
    picture(&browser, "saga-completed").await;

    // The dead letter of the record that parked the key cannot be published
    // again beside it: the capture would be handled twice.
    let letters = campusg::dead_letters::all(app.bus.as_ref(), &app.contracts)
        .await
        .unwrap();
    let letter = letters
        .iter()
        .find(|letter| letter.envelope.payload["original_key"] == order_id.as_str())
        .expect("the parked record's dead letter");
    let again = app
        .client
        .post(format!(
            "{}/console/dead-letters/{}/retry",
            app.address, letter.envelope.id
        ))
        .bearer_auth(app.operator_token())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("its records were dealt with there"));
    assert_eq!(app.sandbox.ledger().captures, 1);

    browser.goto(&format!("{}/console/system", app.address)).await.unwrap();
    assert!(text_of(&browser, "#consumer-groups").await.contains("payment-service"));
    picture(&browser, "system").await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_console_refuses_anyone_but_an_operator_and_forms_from_other_sites() {
    let app = TestApp::spawn_on(Backend::Embedded).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str, token: Option<String>| {
        let mut request = client.get(format!("{}{path}", app.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let anonymous = get("/console/sagas", None).await.unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/console/login");
    for role in [CallerRole::Customer, CallerRole::Runner] {
        let refused = get("/console/sagas", Some(app.token("someone", role))).await.unwrap();
        assert_eq!(refused.status(), 403, "{role:?}");
        assert!(refused.text().await.unwrap().contains("for operators"));
    }
    let page = get("/console/sagas", Some(app.operator_token())).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");

    // Signing in keeps the token in a cookie the browser guards.
    let signed_in = client
        .post(format!("{}/console/login", app.address))
        .form(&[("token", app.operator_token())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-"), "{cookie}");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();
    let with_cookie = client
        .get(format!("{}/console/system", app.address))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), 200);
    // The cookie opens the console only, never the API.
    let api = client
        .get(format!("{}/api/sagas", app.address))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    // A form posted from another site is refused, even with the cookie.
    let forged = client
        .post(format!("{}/console/parked-keys/someone/retry", app.address))
        .header("cookie", &session)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // And from a browser that does not say where a form came from, by its origin.
    let forged = client
        .post(format!("{}/console/parked-keys/someone/retry", app.address))
        .header("cookie", &session)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // A bad token is not signed in.
    let bad = client
        .post(format!("{}/console/login", app.address))
        .form(&[("token", "not.a.token")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(bad.headers().get("set-cookie").is_none());
}

/// The system with the tests' stand-in OIDC issuer, the console a client of it.
async fn signing_in_at_an_issuer() -> (crate::oidc::Issuer, TestApp) {
    let issuer = crate::oidc::Issuer::start().await;
    let environment = std::sync::Arc::new(Environment::new(Backend::Embedded));
    let configured = issuer.url.clone();
    let app = TestApp::spawn_configured(environment, &[], move |settings| {
        settings.guard.oidc_issuer = Some(configured);
        settings.guard.oidc_client_id = Some(crate::oidc::CLIENT_ID.to_string());
    })
    .await;
    (issuer, app)
}

#[tokio::test]
async fn an_operator_signs_in_at_the_oidc_issuer_and_a_runner_signed_in_there_is_refused() {
    let (issuer, app) = signing_in_at_an_issuer().await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // A runner the issuer signs in is not let into the console.
    issuer.signs_in("runner_oidc", "runner");
    browser.goto(&format!("{}/console/sagas", app.address)).await.unwrap();
    shown(&browser, "#sign-in-at-issuer").await;
    click(&browser, "#sign-in-at-issuer").await;
    shown(&browser, "#sign-in-error").await;
    let refused = text_of(&browser, "#sign-in-error").await;
    assert!(refused.contains("runner_oidc is a runner"), "{refused}");

    // An operator it signs in is.
    issuer.signs_in("ops_oidc", "operator");
    browser.goto(&format!("{}/console/login", app.address)).await.unwrap();
    click(&browser, "#sign-in-at-issuer").await;
    shown(&browser, "#saga-filters").await;
    assert_eq!(path_of(&browser).await, "/console/sagas");
    browser.close().await.unwrap();

    // A callback the console did not start (no state of its own) signs no one in.
    let forged = app
        .client
        .get(format!(
            "{}/console/oidc/callback?code=stolen&state=guessed",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let sessions = forged
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter(|cookie| cookie.to_str().unwrap().starts_with("__Host-campusg_console="))
        .count();
    assert_eq!(sessions, 0, "no session for a callback the console did not start");
}

#[tokio::test]
async fn a_sign_in_at_the_issuer_spends_its_state_once_and_shows_the_issuers_refusal() {
    let (_issuer, app) = signing_in_at_an_issuer().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Started: the flow's cookie, and the state sent to the issuer.
    let started = client
        .get(format!("{}/console/oidc/start", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 303);
    let flow = started.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let location = reqwest::Url::parse(started.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/authorize");
    let state = location
        .query_pairs()
        .find(|(name, _)| name == "state")
        .map(|(_, value)| value.to_string())
        .unwrap();
    let callback = |query: String| {
        client
            .get(format!("{}/console/oidc/callback?{query}", app.address))
            .header("cookie", &flow)
            .send()
    };
    let spends_its_cookie = |response: &reqwest::Response| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|cookie| cookie.to_str().unwrap().starts_with("__Host-campusg_oidc=;"))
    };

    // Another state than its own: refused, and the flow is spent.
    let wrong = callback(format!("code=abc&state={}", "x".repeat(state.len())))
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    assert!(spends_its_cookie(&wrong));
    // The issuer's refusal is shown by its code, never by text the link carries.
    let denied = callback(format!(
        "error=access_denied&error_description=call+0800-SCAM&state={state}"
    ))
    .await
    .unwrap();
    assert_eq!(denied.status(), 403);
    assert!(spends_its_cookie(&denied));
    let page = denied.text().await.unwrap();
    assert!(page.contains("refused the sign-in (access_denied)"), "{page}");
    assert!(!page.contains("SCAM"), "{page}");
    let made_up = callback(format!("error=%3Cb%3Ecall+us%3C%2Fb%3E&state={state}"))
        .await
        .unwrap();
    let page = made_up.text().await.unwrap();
    assert!(page.contains("(an error)") && !page.contains("call us"), "{page}");
}
