//! `campusg` as a child process, for the tests that kill it with SIGKILL.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A free port for a child process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `campusg`, killed when dropped.
pub struct Process {
    pub name: String,
    child: Child,
}

impl Process {
    pub fn start(name: &str, args: &[String], stderr: Stdio) -> Process {
        Process::start_with_env(name, args, stderr, &[])
    }

    pub fn start_with_env(name: &str, args: &[String], stderr: Stdio, env: &[(&str, &str)]) -> Process {
        let child = Command::new(env!("CARGO_BIN_EXE_campusg"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("campusg starts");
        Process {
            name: name.to_string(),
            child,
        }
    }

    /// Whether the process has ended (by itself: a crash, an abort).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no goodbye to the consumer groups, no flush, no commit.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that calls as an operator, with a token minted from the
/// signing key in `data_dir` (the processes' own, made by whichever comes first).
pub fn operator_client(data_dir: &std::path::Path) -> reqwest::Client {
    let key = campusg::identity::LocalKey::load_or_create(data_dir).expect("the signing key loads");
    let operator = campusg_domain::ids::UserId::parse("test_operator").unwrap();
    let token = key
        .mint(
            &operator,
            campusg_runtime::access::Role::Operator,
            chrono::Duration::hours(2),
            "campusg",
            chrono::Utc::now(),
        )
        .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

/// Waits until the HTTP API at `base` answers its health check.
pub async fn wait_until_healthy(client: &reqwest::Client, base: &str) {
    for _ in 0..600 {
        if client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("campusg did not come up at {base}");
}

/// GETs `url` and reads its JSON body (`null` when there is none).
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(serde_json::Value::Null)
}
