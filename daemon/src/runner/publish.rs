//! Live progress to Redis (`CRATON_REDIS_URL`): every event on
//! `craton:runs:{id}`, every status change there and on
//! `craton:projects:{project}:runs`. Publishing never waits: messages go
//! through an unbounded queue to one task holding a managed connection,
//! and are dropped (counted, logged once per outage) when Redis is away,
//! so a slow or dead Redis never slows a run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// Most messages sent in one pipelined round trip.
const PIPELINE: usize = 512;

#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::UnboundedSender<(String, String)>,
    pub dropped: Arc<AtomicU64>,
}

pub fn run_channel(id: i64) -> String {
    format!("craton:runs:{id}")
}

pub fn project_channel(project: &str) -> String {
    format!("craton:projects:{project}:runs")
}

impl Publisher {
    /// Connects lazily: a Redis that is down at start only drops messages
    /// until it is back.
    pub fn start(url: &str) -> Result<Publisher, String> {
        let client = redis::Client::open(url).map_err(|e| format!("CRATON_REDIS_URL: {e}"))?;
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, String)>();
        let dropped = Arc::new(AtomicU64::new(0));
        let d = dropped.clone();
        tokio::spawn(async move {
            let mut conn: Option<redis::aio::MultiplexedConnection> = None;
            let mut warned = false;
            let mut batch = Vec::with_capacity(PIPELINE);
            while rx.recv_many(&mut batch, PIPELINE).await > 0 {
                if conn.is_none() {
                    match client.get_multiplexed_async_connection().await {
                        Ok(c) => {
                            conn = Some(c);
                            warned = false;
                        }
                        Err(e) => {
                            if !warned {
                                tracing::warn!(error = %e, "redis unreachable: live progress messages are dropped");
                                warned = true;
                            }
                            d.fetch_add(batch.len() as u64, Ordering::Relaxed);
                            batch.clear();
                            continue;
                        }
                    }
                }
                // One round trip for everything queued meanwhile: order is
                // kept, and a burst of events costs one write.
                let mut pipe = redis::pipe();
                for (channel, payload) in batch.drain(..) {
                    pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
                }
                let c = conn.as_mut().expect("connected");
                let r: redis::RedisResult<()> = pipe.query_async(c).await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "redis publish failed; reconnecting");
                    d.fetch_add(1, Ordering::Relaxed);
                    conn = None;
                }
            }
        });
        Ok(Publisher { tx, dropped })
    }

    pub fn send(&self, channel: String, payload: String) {
        if self.tx.send((channel, payload)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
