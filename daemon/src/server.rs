//! The accept loop of `cratond serve`. It exists because `axum::serve`
//! offers neither a header-read timeout, nor an idle keep-alive timeout,
//! nor a cap on open connections: idle, partial-request and slowloris
//! connections would stay open forever and starve the file descriptors.
//!
//! - A connection is accepted only with a slot of the connection cap; at
//!   the cap, new connections wait in the kernel's listen backlog (and are
//!   refused by the kernel once that is full) until a slot frees.
//! - hyper's `header_read_timeout` closes a connection whose request head
//!   is not complete in time (slowloris, half-sent requests).
//! - A connection with no request in progress for the idle timeout is shut
//!   down gracefully (nothing in flight is cut).
//! - On shutdown every connection is asked to finish gracefully; the loop
//!   waits for them up to the grace period.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// Connection limits of `cratond serve` (flags `--header-read-timeout`,
/// `--idle-timeout`, `--max-connections`).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// How long shutdown waits for open connections.
    pub grace: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
            grace: Duration::from_secs(30),
        }
    }
}

/// Requests in progress on one connection and when it was last busy.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `started` when the last request ended.
    last_ms: AtomicU64,
}

impl Activity {
    fn idle_for(&self) -> Option<Duration> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Acquire));
            self.started.elapsed().saturating_sub(last)
        })
    }
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("connection slots never close"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            connection(stream, app, limits, stop).await;
            tracing::trace!(%peer, "connection closed");
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every slot back means every connection ended.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.grace, slots.acquire_many(all)).await.is_err() {
        tracing::warn!("shutdown grace period over; closing the remaining connections");
    }
    Ok(())
}

async fn connection(stream: tokio::net::TcpStream, app: Router, limits: ConnLimits, mut stop: watch::Receiver<bool>) {
    let activity = Arc::new(Activity { started: Instant::now(), in_flight: AtomicUsize::new(0), last_ms: 0.into() });
    let a = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let a = a.clone();
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        let fut = app.clone().oneshot(req.map(Body::new));
        async move {
            let resp = fut.await;
            a.last_ms.store(a.started.elapsed().as_millis() as u64, Ordering::Release);
            a.in_flight.fetch_sub(1, Ordering::AcqRel);
            resp
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let tick = (limits.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep(tick), if !closing => {
                if activity.idle_for().is_some_and(|d| d >= limits.idle_timeout) {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = stop.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
