//! The live feed of a run this process is running: every event so far, in
//! counter order, and the run's latest JSON. SSE clients read it at their
//! own pace (a slow client only falls behind itself; the runner never
//! waits for a reader), woken through a watch channel.

use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;
use tokio::sync::watch;

/// Events kept in memory per run; older ones are read from the database.
const MAX_EVENTS: usize = 200_000;

pub struct Feed {
    /// (counter, the event's JSON), ascending.
    events: RwLock<Vec<(i64, Arc<str>)>>,
    run: Mutex<Option<Value>>,
    version: watch::Sender<u64>,
}

/// What changed since a reader last looked.
pub struct Update {
    /// Events after the reader's counter; `gap_before` is true when older
    /// ones it has not seen are no longer in memory.
    pub events: Vec<(i64, Arc<str>)>,
    pub gap_before: bool,
    pub run: Option<Value>,
}

impl Feed {
    pub fn new() -> Arc<Feed> {
        Arc::new(Feed { events: RwLock::default(), run: Mutex::default(), version: watch::channel(0).0 })
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    pub fn push(&self, counter: i64, json: Arc<str>) {
        {
            let mut e = self.events.write().expect("feed poisoned");
            if e.len() >= MAX_EVENTS {
                e.drain(..MAX_EVENTS / 10);
            }
            e.push((counter, json));
        }
        self.bump();
    }

    pub fn set_run(&self, run: Value) {
        *self.run.lock().expect("feed poisoned") = Some(run);
        self.bump();
    }

    /// Events with a counter above `after` (at most `limit`), and the run.
    pub fn since(&self, after: i64, limit: usize) -> Update {
        let e = self.events.read().expect("feed poisoned");
        let start = e.partition_point(|(c, _)| *c <= after);
        let gap_before = e.first().is_some_and(|(c, _)| *c > after + 1) && start == 0;
        Update {
            events: e[start..].iter().take(limit).cloned().collect(),
            gap_before,
            run: self.run.lock().expect("feed poisoned").clone(),
        }
    }
}
