//! Security over real HTTP: tokens checked on every request (read-only and
//! read-write), a non-loopback bind refused without one, no CORS unless
//! asked for, and untrusted event content never served as markup.

mod support;

use logbook_server::{Access, ServeError, Tokens, check_bind};
use serde_json::json;
use support::{SseReader, TestServer, error_code};

fn tokens() -> Tokens {
    Tokens::none()
        .with("read-secret", Access::Read)
        .with("write-secret", Access::ReadWrite)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_right_token_are_refused_and_change_nothing() {
    // Given a server with a read-only and a read-write token
    let server = TestServer::with_options("memory", |o| o.tokens = tokens()).await;
    let append = || {
        server
            .client
            .post(server.url("/api/v1/streams/T-1"))
            .body(json!({"events": [{"type": "A", "payload": {}}]}).to_string())
    };

    // When a write comes without a token, with a wrong one, or read-only
    let (none, body) = server.send(append()).await;
    assert_eq!((none, error_code(&body)), (401, "unauthorized"));
    let (wrong, _) = server.send(append().bearer_auth("guess")).await;
    assert_eq!(wrong, 401);
    let (read_only, body) = server.send(append().bearer_auth("read-secret")).await;
    assert_eq!((read_only, error_code(&body)), (403, "forbidden"));

    // Then nothing was written; reads need a token too
    let (status, _) = server.get("/api/v1/info").await;
    assert_eq!(status, 401);
    let (status, _) = server.get("/metrics").await;
    assert_eq!(status, 401);
    let (status, info) = server
        .send(
            server
                .client
                .get(server.url("/api/v1/info"))
                .bearer_auth("read-secret"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(info["head"], serde_json::Value::Null);

    // And the read-write token writes; browsers' event sources pass ?token=
    let (status, _) = server.send(append().bearer_auth("write-secret")).await;
    assert_eq!(status, 201);
    let mut reader = SseReader::open(&server, "/api/v1/log/subscribe?token=read-secret", &[]).await;
    assert_eq!(reader.next_event().await["stream"], "T-1");

    // And the console's files load without one, so a person can type it
    let page = server.client.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_runs_past_the_timeout_is_answered_503() {
    // Given a server whose requests may take one second, and long-polls ten
    let server = TestServer::with_options("memory", |o| {
        o.request_timeout = std::time::Duration::from_secs(1);
        o.max_wait = std::time::Duration::from_secs(10);
    })
    .await;
    // When a long-poll waits longer than that
    let started = std::time::Instant::now();
    let (status, body) = server.get("/api/v1/log?wait=5").await;
    // Then it is cut off at the timeout with the error shape
    assert_eq!((status, error_code(&body)), (503, "timeout"));
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    server.stop().await;
}

#[test]
fn a_non_loopback_address_needs_a_token() {
    let anywhere = "0.0.0.0:2113".parse().unwrap();
    let error = check_bind(anywhere, &Tokens::none()).unwrap_err();
    assert!(matches!(error, ServeError::TokenRequired { .. }));
    assert!(error.to_string().contains("--token"), "{error}");
    assert!(check_bind(anywhere, &tokens()).is_ok());
    assert!(check_bind("127.0.0.1:2113".parse().unwrap(), &Tokens::none()).is_ok());
    assert!(check_bind("[::1]:2113".parse().unwrap(), &Tokens::none()).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_headers_are_sent_only_when_an_origin_is_configured() {
    // Given a server without CORS and one allowing one origin
    let closed = TestServer::start("memory").await;
    let open = TestServer::with_options("memory", |o| {
        o.cors_origin = Some("https://app.example".into());
    })
    .await;

    // Then only the second answers with the origin, preflights included
    let plain = closed
        .client
        .get(closed.url("/api/v1/info"))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("access-control-allow-origin").is_none());
    let allowed = open
        .client
        .get(open.url("/api/v1/info"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let preflight = open
        .client
        .request(reqwest::Method::OPTIONS, open.url("/api/v1/streams/X-1"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    assert!(
        preflight
            .headers()
            .get("access-control-allow-methods")
            .is_some()
    );
    closed.stop().await;
    open.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_payload_is_served_as_json_data_and_the_console_inserts_only_text() {
    // Given an event whose payload holds markup
    let server = TestServer::start("memory").await;
    let evil = "<script>document.title='owned'</script><img src=x onerror=alert(1)>";
    let (status, _) = server
        .post(
            "/api/v1/streams/Evil-1",
            &json!({"events": [{"type": "Said", "payload": {"text": evil}}]}),
        )
        .await;
    assert_eq!(status, 201);

    // Then the API serves it as JSON, never as HTML
    let read = server
        .client
        .get(server.url("/api/v1/streams/Evil-1"))
        .send()
        .await
        .unwrap();
    assert!(
        read.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = serde_json::from_slice(&read.bytes().await.unwrap()).unwrap();
    assert_eq!(body["events"][0]["payload"]["text"], evil);

    // And the console forbids inline scripts and never parses data as markup
    let page = server.client.get(server.url("/")).send().await.unwrap();
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let script = server
        .client
        .get(server.url("/console/app.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!script.contains(sink), "the console uses {sink}");
    }
    server.stop().await;
}
