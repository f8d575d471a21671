//! A real browser: headless Chromium, driven over WebDriver (plain HTTP
//! JSON to chromedriver), loads the console, finds a stream created through
//! the API, sees an event appended afterwards appear in the live tail
//! without a reload, and shows a `<script>` payload as text that never
//! runs.
//!
//! Chromium and chromedriver are required: without them this test fails
//! with how to install them (`.ci/run` installs them when missing).

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::TestServer;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Ends chromedriver (and the browser with it) however the test ends.
struct Driver {
    child: Child,
    base: String,
    session: Option<String>,
    client: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(profile: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .unwrap(),
        };
        let started = Instant::now();
        loop {
            if let Ok(response) = driver
                .client
                .get(format!("{}/status", driver.base))
                .send()
                .await
                && response.status().is_success()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let created = driver
            .call(
                "POST",
                "/session",
                json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
                }}}),
            )
            .await;
        driver.session = Some(
            created["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no session: {created}"))
                .to_owned(),
        );
        driver
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => self.client.post(url).body(body.to_string()),
            "DELETE" => self.client.delete(url),
            _ => self.client.get(url),
        };
        let response = request
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        body["value"].clone()
    }

    fn session(&self) -> String {
        format!("/session/{}", self.session.as_deref().unwrap())
    }

    async fn goto(&self, url: &str) {
        self.call(
            "POST",
            &format!("{}/url", self.session()),
            json!({ "url": url }),
        )
        .await;
    }

    async fn run(&self, script: &str) -> Value {
        self.call(
            "POST",
            &format!("{}/execute/sync", self.session()),
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// Runs `script` until it returns something truthy (30 s at most).
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.run(script).await;
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the console never showed {what}; page text: {}",
                self.run("return document.body.innerText").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn quit(mut self) {
        if self.session.is_some() {
            self.call("DELETE", &self.session(), Value::Null).await;
            self.session = None;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_finds_a_stream_and_tails_an_event_appended_later_as_inert_text() {
    for binary in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(binary).exists(),
            "{binary} is missing: install Chromium with `apt-get install -y chromium chromium-driver` (the browser test needs it)"
        );
    }
    // Given a stream created through the API, whose payload holds markup
    let server = TestServer::start("sqlite").await;
    let evil =
        "<script>document.title='owned'</script><img src=x onerror=\"document.title='owned'\">";
    let (status, _) = server
        .post(
            "/api/v1/streams/Browser-1",
            &json!({"events": [{"type": "Created", "payload": {"text": evil}}]}),
        )
        .await;
    assert_eq!(status, 201);
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(profile.path()).await;

    // When the console's stream browser searches its prefix
    driver.goto(&server.url("/#/streams?prefix=Browser-")).await;
    // Then the stream is listed
    let listed = driver
        .wait_for(
            "the stream in the browser",
            "const a = document.querySelector(\"a[href='#/stream/Browser-1']\"); return a && a.textContent;",
        )
        .await;
    assert_eq!(listed, "Browser-1");

    // When the live tail is opened and, once live, an event is appended
    driver.goto(&server.url("/#/tail")).await;
    driver
        .wait_for(
            "the tail going live",
            "const s = document.getElementById('tail-status'); return s && s.textContent === 'live';",
        )
        .await;
    let loaded_at = driver.run("return performance.timeOrigin").await;
    let (status, _) = server
        .post(
            "/api/v1/streams/Browser-1",
            &json!({"events": [{"type": "AppendedLater", "payload": {"n": 2}}]}),
        )
        .await;
    assert_eq!(status, 201);

    // Then it appears in the tail without a reload
    let line = driver
        .wait_for(
            "the appended event in the tail",
            "return [...document.querySelectorAll('.tail-event')].map(li => li.textContent).find(t => t.includes('AppendedLater'));",
        )
        .await;
    assert!(line.as_str().unwrap().contains("Browser-1"), "{line}");
    assert_eq!(
        driver.run("return performance.timeOrigin").await,
        loaded_at,
        "the page reloaded"
    );

    // And the markup payload is shown as text, and nothing of it ran
    let shown = driver
        .run("return [...document.querySelectorAll('.tail-event')].some(li => li.textContent.includes(\"<script>document.title='owned'</script>\"));")
        .await;
    assert_eq!(shown, true, "the payload is shown as text");
    assert_eq!(driver.run("return document.title").await, "logbook console");
    assert_eq!(
        driver
            .run("return document.querySelectorAll('img').length")
            .await,
        0
    );
    assert_eq!(
        driver
            .run("return document.querySelectorAll('script').length")
            .await,
        1
    );

    // And the stream page shows the payload as text too
    driver.goto(&server.url("/#/stream/Browser-1")).await;
    driver
        .wait_for(
            "the stream page",
            "return document.querySelectorAll('.event-row').length === 2;",
        )
        .await;
    assert_eq!(driver.run("return document.title").await, "logbook console");
    assert_eq!(
        driver
            .run("return document.querySelectorAll('img').length")
            .await,
        0
    );
    driver.quit().await;
    server.stop().await;
}
