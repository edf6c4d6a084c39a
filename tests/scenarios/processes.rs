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
        let child = Command::new(env!("CARGO_BIN_EXE_campusg"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("campusg starts");
        Process {
            name: name.to_string(),
            child,
        }
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
