//! The commit signal across processes: a task that LISTENs on the schema's
//! channel on a connection of its own, reads the head every
//! `poll_interval` as a fallback, and reads it again after every
//! (re)connect, so a commit whose notification was lost is still signalled.
//!
//! Notifications carry the head after the commit; the signal only ever
//! moves forward, so a late or repeated notification changes nothing.

use std::sync::Arc;
use std::time::Duration;

use logbook_domain::Position;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use crate::config::PostgresUrl;

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Moves the signal forward to `head` (never back).
fn advance(commits: &watch::Sender<Position>, head: Position) {
    commits.send_if_modified(|known| {
        let newer = head > *known;
        if newer {
            *known = head;
        }
        newer
    });
}

/// Starts the listener task; it ends when `stop`'s sender is dropped.
pub(crate) fn start(
    config: tokio_postgres::Config,
    url: PostgresUrl,
    listen: bool,
    poll_interval: Duration,
    commits: Arc<watch::Sender<Position>>,
    mut stop: oneshot::Receiver<()>,
) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(10);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                () = session(&config, &url, listen, poll_interval, &commits) => {}
            }
            // The connection was lost (or never made): wait, then again.
            tokio::select! {
                _ = &mut stop => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
}

/// One connection's life: returns when it is lost.
async fn session(
    config: &tokio_postgres::Config,
    url: &PostgresUrl,
    listen: bool,
    poll_interval: Duration,
    commits: &watch::Sender<Position>,
) {
    let Ok((client, mut connection)) = config.connect(NoTls).await else {
        return;
    };
    let (notified, mut notifications) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if notified.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let head = || async {
        client
            .query_one("SELECT position FROM head", &[])
            .await
            .ok()
            .and_then(|row| u64::try_from(row.get::<_, i64>(0)).ok())
    };
    if listen
        && client
            .batch_execute(&format!("LISTEN {}", url.channel()))
            .await
            .is_err()
    {
        driver.abort();
        return;
    }
    // Catch up: what was committed while no one listened.
    match head().await {
        Some(position) => advance(commits, position),
        None => {
            driver.abort();
            return;
        }
    }
    let mut poll = tokio::time::interval(poll_interval.max(Duration::from_millis(1)));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            payload = notifications.recv() => match payload {
                Some(payload) => {
                    if let Ok(position) = payload.parse::<Position>() {
                        advance(commits, position);
                    }
                }
                None => break,
            },
            _ = poll.tick() => match head().await {
                Some(position) => advance(commits, position),
                None => break,
            },
        }
    }
    driver.abort();
}
