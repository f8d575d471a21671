//! Tokens: when any is configured, every request must carry one
//! (`Authorization: Bearer <token>`, or `?token=` for browsers' event
//! sources), a read-only token for reads and a read-write token for
//! anything that changes the store. The console's static files load without
//! one, so a person can type it in.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// GET requests: reads, subscriptions, metrics.
    Read,
    /// Everything: appends, deletions, commands, rebuilds.
    ReadWrite,
}

/// The tokens a server accepts.
#[derive(Clone, Default)]
pub struct Tokens {
    tokens: Vec<(String, Access)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        f.debug_struct("Tokens")
            .field("count", &self.tokens.len())
            .finish()
    }
}

impl Tokens {
    /// No tokens: the API is open (loopback only).
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds a token (empty strings are ignored).
    pub fn with(mut self, token: impl Into<String>, access: Access) -> Self {
        let token = token.into();
        if !token.is_empty() {
            self.tokens.push((token, access));
        }
        self
    }

    /// True when no token is configured.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// What `presented` allows, if anything. Compares every configured
    /// token in full, so the time taken does not say how much matched.
    pub fn access(&self, presented: &str) -> Option<Access> {
        let mut found = None;
        for (token, access) in &self.tokens {
            if constant_time_eq(token.as_bytes(), presented.as_bytes()) {
                found = found.max(Some(*access));
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request carries, from its header or its query.
fn presented(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    request.uri().query().and_then(|query| {
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == "token").then(|| percent_decode(value))
        })
    })
}

/// Decodes `%XX` escapes and `+` of a query value.
pub(crate) fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Paths served without a token: the console's static files.
fn is_public(path: &str) -> bool {
    path == "/" || path.starts_with("/console/")
}

/// The middleware: refuses a request without the access it needs.
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let tokens = &state.options.tokens;
    if tokens.is_empty() || is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let needed = match *request.method() {
        Method::GET | Method::HEAD | Method::OPTIONS => Access::Read,
        _ => Access::ReadWrite,
    };
    match presented(&request).and_then(|token| tokens.access(&token)) {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server requires a token: send `Authorization: Bearer <token>`",
        )
        .into_response(),
        Some(access) if access < needed => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token is read-only; changing the store needs a read-write token",
        )
        .into_response(),
        Some(_) => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_grant_their_access_and_nothing_else() {
        let tokens = Tokens::none()
            .with("reader", Access::Read)
            .with("writer", Access::ReadWrite);
        assert_eq!(tokens.access("reader"), Some(Access::Read));
        assert_eq!(tokens.access("writer"), Some(Access::ReadWrite));
        assert_eq!(tokens.access("write"), None);
        assert_eq!(tokens.access(""), None);
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
