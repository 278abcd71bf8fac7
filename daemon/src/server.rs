//! The accept loop of `cratond serve`. It exists because `axum::serve`
//! offers neither a header-read timeout, nor an idle keep-alive timeout,
//! nor a cap on open connections: idle, partial-request and slowloris
//! connections would stay open forever and starve the file descriptors.
//!
//! - A connection is accepted only with a slot of the connection cap; at
//!   the cap, new connections wait in the kernel's listen backlog (and are
//!   refused by the kernel once that is full) until a slot frees.
//! - A connection whose request head is not complete within the
//!   header-read timeout of its first byte is closed (slowloris, half-sent
//!   requests). hyper's own `header_read_timeout` also runs while a
//!   keep-alive connection waits for its next request, so it cannot tell
//!   "idle" from "slow"; it stays on as a backstop at the larger of the
//!   two timeouts, and [`Watched`] (which sees every byte read) decides.
//! - A connection with no request in progress and no byte received for the
//!   idle timeout is shut down gracefully (a response still being written
//!   is finished first).
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

/// No request head is being received.
const NO_HEAD: u64 = u64::MAX;

/// Requests in progress on one connection, when it was last busy and when
/// the head of the next request began to arrive.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `started` when the last request ended (or the
    /// connection opened).
    last_ms: AtomicU64,
    /// Milliseconds since `started` of the first byte received with no
    /// request in progress; [`NO_HEAD`] once the head is complete.
    head_ms: AtomicU64,
}

impl Activity {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn on_bytes(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ = self.head_ms.compare_exchange(NO_HEAD, self.now_ms(), Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn on_request(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_ms.store(NO_HEAD, Ordering::Release);
    }

    fn on_response(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// What the limits say about this connection now.
    fn verdict(&self, limits: &ConnLimits) -> Verdict {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Verdict::Busy;
        }
        let now = self.now_ms();
        match self.head_ms.load(Ordering::Acquire) {
            NO_HEAD if now.saturating_sub(self.last_ms.load(Ordering::Acquire)) >= ms(limits.idle_timeout) => {
                Verdict::Idle
            }
            NO_HEAD => Verdict::Busy,
            head if now.saturating_sub(head) >= ms(limits.header_read_timeout) => Verdict::SlowHead,
            _ => Verdict::Busy,
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

enum Verdict {
    Busy,
    Idle,
    SlowHead,
}

/// The connection's stream, noting every byte that arrives.
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.on_bytes();
        }
        r
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
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
    let activity = Arc::new(Activity {
        started: Instant::now(),
        in_flight: AtomicUsize::new(0),
        last_ms: 0.into(),
        head_ms: NO_HEAD.into(),
    });
    let a = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let a = a.clone();
        a.on_request();
        let fut = app.clone().oneshot(req.map(Body::new));
        async move {
            let resp = fut.await;
            a.on_response();
            resp
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout.max(limits.idle_timeout))
        .keep_alive(true);
    let io = Watched { inner: stream, activity: activity.clone() };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let tick = (limits.header_read_timeout.min(limits.idle_timeout) / 10)
        .clamp(Duration::from_millis(10), Duration::from_millis(500));
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep(tick) => match activity.verdict(&limits) {
                Verdict::Busy => {}
                // Half a request head and no response owed: just close.
                Verdict::SlowHead => {
                    tracing::debug!("request head not complete within the header-read timeout; closing");
                    return;
                }
                Verdict::Idle if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                Verdict::Idle => {}
            },
            _ = stop.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
