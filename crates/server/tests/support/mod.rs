//! What the server's tests share: a real server on 127.0.0.1:0 over a
//! fresh store of each kind (PostgreSQL: a fresh schema of the server
//! `LOGBOOK_TEST_POSTGRES_URL` names, or of one started for the test), and
//! a small JSON-over-HTTP client.

#![allow(dead_code)]

use std::time::Duration;

use logbook_ports::Stores;
use logbook_server::{Server, ServerOptions};
use serde_json::Value;
use tokio::sync::oneshot;

/// The stores every behaviour is checked on.
pub const STORES: [&str; 4] = ["memory", "sqlite", "file", "postgres"];

/// A running server and what it serves.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The store behind it (for setting up what HTTP would be slow at).
    pub stores: Stores,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), logbook_server::ServeError>>>,
    _dir: tempfile::TempDir,
    pub client: reqwest::Client,
    /// The PostgreSQL server of a `postgres` store (last: it stops after
    /// everything that uses it is dropped).
    _postgres: Option<logbook_test_postgres::TestDatabase>,
}

impl TestServer {
    /// A server over a fresh store of `kind` with default options.
    pub async fn start(kind: &str) -> Self {
        Self::with_options(kind, |_| {}).await
    }

    /// A server over a fresh store of `kind`, options changed by `tune`.
    pub async fn with_options(kind: &str, tune: impl FnOnce(&mut ServerOptions)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let postgres = (kind == "postgres").then(logbook_test_postgres::database);
        let url = match kind {
            "memory" => "memory:".to_owned(),
            "sqlite" => format!("sqlite:{}", dir.path().join("test.db").display()),
            "file" => format!("file:{}", dir.path().join("log").display()),
            "postgres" => postgres
                .as_ref()
                .expect("started above")
                .fresh_schema_url("server"),
            other => panic!("unknown store kind {other}"),
        };
        let stores = logbook::open_stores(&url).unwrap();
        let mut options = ServerOptions {
            store_label: url,
            ..ServerOptions::default()
        };
        tune(&mut options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::new(stores.clone(), options);
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            base,
            stores,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            _postgres: postgres,
        }
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path`: status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(self.url(path))).await
    }

    /// POST `body` (raw text) to `path`.
    pub async fn post_raw(&self, path: &str, body: impl Into<String>) -> (u16, Value) {
        self.send(
            self.client
                .post(self.url(path))
                .header("content-type", "application/json")
                .body(body.into()),
        )
        .await
    }

    /// POST `body` as JSON to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, body.to_string()).await
    }

    /// DELETE `path`.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.client.delete(self.url(path))).await
    }

    /// Sends `request`; status and JSON body (`Null` when empty).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                panic!(
                    "body is not JSON ({error}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        (status, body)
    }

    /// Appends events of `types` to `stream` with `expected`.
    pub async fn append(&self, stream: &str, expected: Value, types: &[&str]) -> (u16, Value) {
        let events: Vec<Value> = types
            .iter()
            .map(|t| serde_json::json!({ "type": t, "payload": { "kind": t } }))
            .collect();
        self.post(
            &format!("/api/v1/streams/{stream}"),
            &serde_json::json!({ "expected_version": expected, "events": events }),
        )
        .await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the server stops within 10 s")
                .unwrap()
                .unwrap();
        }
    }

    /// Asks the server to stop without waiting; the join handle comes back.
    pub fn begin_stop(
        &mut self,
    ) -> tokio::task::JoinHandle<Result<(), logbook_server::ServeError>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().unwrap()
    }
}

/// Asserts the one error shape and returns the code.
pub fn error_code(body: &Value) -> &str {
    let code = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"));
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message in {body}"
    );
    code
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// `event:` (empty: a plain message).
    pub kind: String,
    /// `id:`.
    pub id: Option<String>,
    /// `data:`.
    pub data: String,
}

/// Reads server-sent events from a streaming response.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    /// Opens `path` as an event stream, with extra headers.
    pub async fn open(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut request = server
            .client
            .get(server.url(path))
            .header("accept", "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "subscription refused");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (heartbeat comments skipped); `None` when the stream
    /// ended.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    kind: String::new(),
                    id: None,
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        event.kind = value.trim().to_owned();
                        any = true;
                    } else if let Some(value) = line.strip_prefix("id:") {
                        event.id = Some(value.trim().to_owned());
                        any = true;
                    } else if let Some(value) = line.strip_prefix("data:") {
                        if !event.data.is_empty() {
                            event.data.push('\n');
                        }
                        event
                            .data
                            .push_str(value.strip_prefix(' ').unwrap_or(value));
                        any = true;
                    }
                }
                if any {
                    return Some(event);
                }
                continue;
            }
            match tokio::time::timeout(Duration::from_secs(20), self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None)) | Ok(Err(_)) => return None,
                Err(_) => panic!("no server-sent event within 20 s"),
            }
        }
    }

    /// The next plain event, parsed.
    pub async fn next_event(&mut self) -> Value {
        let event = self.next().await.expect("the stream ended");
        assert_eq!(event.kind, "", "unexpected {event:?}");
        let data: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(
            event.id.as_deref(),
            Some(data["position"].to_string().as_str()),
            "the SSE id is the position"
        );
        data
    }
}
