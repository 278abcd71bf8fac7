//! The Prometheus metrics of one `cratond` process, served at `/metrics`
//! in the text exposition format (0.0.4), through the Prometheus project's
//! own client (`prometheus-client`). Every series is an atomic cell: a
//! request, a sync or an event batch bumps a few atomics, and the registry
//! is only walked when scraped. Names and units follow the Prometheus
//! conventions (base units in the name, `_total` counters); the list with
//! labels is in docs/observability.md, and a test parses a live scrape.
//!
//! The parts that live elsewhere own their metrics ([`SyncMetrics`] in the
//! sync hub, [`RunMetrics`] in the run hub): they count even where nothing
//! serves them (`cratond sync`), and [`crate::state::AppState`] registers
//! them when it is given the hub.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{Method, StatusCode};
use craton::store::pool::DbPool;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// Request latency bucket bounds, in seconds (up to the default 30 s
/// request timeout).
const HTTP_BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0];
/// Waits for a pooled connection: none under light load, up to the pool's
/// 5 s checkout timeout.
const WAIT_BUCKETS: [f64; 12] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05, 0.25, 1.0, 2.5, 5.0];
/// Syncs: an unchanged ref is one fetch; a big apply takes seconds.
const SYNC_BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0];
/// One event batch, one transaction.
const BATCH_BUCKETS: [f64; 11] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

fn sync_histogram() -> Histogram {
    Histogram::new(SYNC_BUCKETS)
}

/// Seconds since the Unix epoch, for `*_timestamp_seconds` gauges.
fn unix_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    method: &'static str,
    route: String,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

/// The method as a label: the standard ones by name, anything else
/// `_OTHER` (as OpenTelemetry does), so a client cannot mint series.
fn method_label(m: &Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => "_OTHER",
    }
}

fn status_class(s: StatusCode) -> &'static str {
    match s.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// HTTP server metrics, recorded by `api::record` for every request.
#[derive(Debug)]
pub struct HttpMetrics {
    duration: HistogramFamily<DurationLabels>,
    requests: Family<RequestLabels, Counter>,
    active: Gauge,
}

/// One request in flight; dropping it (answered, or abandoned by the
/// client) takes it off the gauge.
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl HttpMetrics {
    fn new() -> HttpMetrics {
        HttpMetrics {
            duration: Family::new_with_constructor(http_histogram),
            requests: Family::default(),
            active: Gauge::default(),
        }
    }

    /// A request came in.
    pub fn start(&self) -> InFlight<'_> {
        self.active.inc();
        InFlight(&self.active)
    }

    /// A request was answered: `route` is the matched route template
    /// (`/v1/hosts/{id}`, or `unmatched`), never the raw path.
    pub fn observe(&self, method: &Method, route: &str, status: StatusCode, elapsed: Duration) {
        let method = method_label(method);
        self.duration
            .get_or_create(&DurationLabels { method, route: route.to_string(), status_class: status_class(status) })
            .observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&RequestLabels { method, route: route.to_string(), status: status.as_u16() }).inc();
    }
}

/// The pool's connections by state, read from r2d2 at scrape time.
#[derive(Debug)]
struct PoolConnections(DbPool);

impl EncodeMetric for PoolConnections {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.state();
        let idle = i64::from(s.idle_connections);
        for (state, n) in [("in_use", i64::from(s.connections) - idle), ("idle", idle)] {
            encoder.encode_family(&[("state", state)])?.encode_gauge(&n)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// Database pool metrics, recorded by `AppState::db`.
#[derive(Debug)]
pub struct DbMetrics {
    wait: Histogram,
    waiting: Gauge,
    failures: Counter,
}

/// A request waiting for a database connection (a permit, then the pool's
/// checkout), from [`Metrics::db_wait`]. One abandoned while it waits
/// leaves the gauge and is not observed.
pub struct Waiting {
    m: std::sync::Arc<Metrics>,
    start: std::time::Instant,
}

impl Waiting {
    /// It has a connection (or the pool gave up: `ok` false).
    pub fn finish(self, ok: bool) {
        self.m.db.wait.observe(self.start.elapsed().as_secs_f64());
        if !ok {
            self.m.db.failures.inc();
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.m.db.waiting.dec();
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Config ref sync metrics: every sync of this process, by outcome.
#[derive(Clone, Debug)]
pub struct SyncMetrics {
    syncs: Family<OutcomeLabels, Counter>,
    duration: HistogramFamily<OutcomeLabels>,
    last_success: Gauge<f64, AtomicU64>,
}

impl Default for SyncMetrics {
    fn default() -> Self {
        SyncMetrics {
            syncs: Family::default(),
            duration: Family::new_with_constructor(sync_histogram),
            last_success: Gauge::default(),
        }
    }
}

impl SyncMetrics {
    /// One sync ended: `outcome` is `applied`, `unchanged`, `failed`,
    /// `busy`, `gone` or `error` (the database failed it). Applied and
    /// unchanged are successes: the ref is current.
    pub fn record(&self, outcome: &'static str, elapsed: Duration) {
        let l = OutcomeLabels { outcome };
        self.syncs.get_or_create(&l).inc();
        self.duration.get_or_create(&l).observe(elapsed.as_secs_f64());
        if matches!(outcome, "applied" | "unchanged") {
            self.last_success.set(unix_seconds());
        }
    }

    fn register(&self, r: &mut Registry) {
        r.register("craton_syncs", "Config ref syncs by outcome", self.syncs.clone());
        r.register_with_unit(
            "craton_sync_duration",
            "Config ref sync duration by outcome",
            Unit::Seconds,
            self.duration.clone(),
        );
        r.register_with_unit(
            "craton_sync_last_success_timestamp",
            "When a sync of this process last succeeded (applied or unchanged), Unix time",
            Unit::Seconds,
            self.last_success.clone(),
        );
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

/// Playbook run and event-ingest metrics of this process's runner.
#[derive(Clone, Debug)]
pub struct RunMetrics {
    active: Family<StatusLabels, Gauge>,
    finished: Family<StatusLabels, Counter>,
    events_received: Counter,
    events_stored: Counter,
    events_lost: Counter,
    batch_write: Histogram,
}

impl Default for RunMetrics {
    fn default() -> Self {
        RunMetrics {
            active: Family::default(),
            finished: Family::default(),
            events_received: Counter::default(),
            events_stored: Counter::default(),
            events_lost: Counter::default(),
            batch_write: Histogram::new(BATCH_BUCKETS),
        }
    }
}

impl RunMetrics {
    /// A run of this process entered `status` (`queued` or `running`),
    /// leaving `from` if it had one.
    pub fn enter(&self, from: Option<&'static str>, status: &'static str) {
        if let Some(f) = from {
            self.active.get_or_create(&StatusLabels { status: f }).dec();
        }
        self.active.get_or_create(&StatusLabels { status }).inc();
    }

    /// A run ended with final `status`, leaving `from` (None for a run
    /// another process held: the lost-run sweep).
    pub fn finish(&self, from: Option<&'static str>, status: &'static str) {
        if let Some(f) = from {
            self.active.get_or_create(&StatusLabels { status: f }).dec();
        }
        self.finished.get_or_create(&StatusLabels { status }).inc();
    }

    /// An event line came from a run's callback.
    pub fn event_received(&self) {
        self.events_received.inc();
    }

    /// A batch of `events` events was stored in `elapsed`.
    pub fn batch_stored(&self, events: usize, elapsed: Duration) {
        self.events_stored.inc_by(events as u64);
        self.batch_write.observe(elapsed.as_secs_f64());
    }

    /// Events a run lost: unreadable lines, ones the callback dropped or
    /// emitted but never delivered.
    pub fn events_lost(&self, n: u64) {
        self.events_lost.inc_by(n);
    }

    fn register(&self, r: &mut Registry) {
        r.register("craton_runs_active", "Runs of this process not finished yet, by status", self.active.clone());
        r.register("craton_runs_finished", "Runs ended, by final status", self.finished.clone());
        r.register("craton_run_events_received", "Events received from runs' callbacks", self.events_received.clone());
        r.register("craton_run_events_stored", "Events written to the database", self.events_stored.clone());
        r.register(
            "craton_run_events_lost",
            "Events lost: unreadable, dropped by the callback, or emitted and never received",
            self.events_lost.clone(),
        );
        r.register_with_unit(
            "craton_run_event_batch_write",
            "Time to store one batch of run progress (events, hosts, output) in one transaction",
            Unit::Seconds,
            self.batch_write.clone(),
        );
    }
}

/// The registry of one process and the metrics the API records itself.
#[derive(Debug)]
pub struct Metrics {
    registry: RwLock<Registry>,
    pub http: HttpMetrics,
    pub db: DbMetrics,
    sync_registered: AtomicBool,
    runs_registered: AtomicBool,
}

impl Metrics {
    pub fn new(pool: DbPool) -> Metrics {
        let http = HttpMetrics::new();
        let db =
            DbMetrics { wait: Histogram::new(WAIT_BUCKETS), waiting: Gauge::default(), failures: Counter::default() };
        let mut r = Registry::default();
        r.register_with_unit(
            "http_server_request_duration",
            "HTTP request duration until the response head, by method, matched route and status class",
            Unit::Seconds,
            http.duration.clone(),
        );
        r.register("craton_http_requests", "HTTP requests by method, matched route and status", http.requests.clone());
        r.register("http_server_active_requests", "HTTP requests being handled now", http.active.clone());
        let max: Gauge = Gauge::default();
        max.set(i64::from(pool.max_size()));
        r.register("craton_db_pool_connections", "Pooled database connections by state", PoolConnections(pool));
        r.register("craton_db_pool_max_connections", "The database pool's size", max);
        r.register_with_unit(
            "craton_db_pool_wait",
            "Time a request waited for a database connection (permit and pool checkout)",
            Unit::Seconds,
            db.wait.clone(),
        );
        r.register(
            "craton_db_pool_pending_requests",
            "Requests waiting for a database connection now",
            db.waiting.clone(),
        );
        r.register(
            "craton_db_pool_checkout_failures",
            "Requests that got no database connection (pool timeout, database down)",
            db.failures.clone(),
        );
        Metrics {
            registry: RwLock::new(r),
            http,
            db,
            sync_registered: AtomicBool::new(false),
            runs_registered: AtomicBool::new(false),
        }
    }

    /// A request starts waiting for a database connection.
    pub fn db_wait(self: &std::sync::Arc<Self>) -> Waiting {
        self.db.waiting.inc();
        Waiting { m: self.clone(), start: std::time::Instant::now() }
    }

    /// Serves the sync hub's metrics too (once: a second hub is ignored).
    pub fn register_sync(&self, m: &SyncMetrics) {
        if !self.sync_registered.swap(true, Ordering::SeqCst) {
            m.register(&mut self.registry.write().expect("metrics registry poisoned"));
        }
    }

    /// Serves the run hub's metrics too (once).
    pub fn register_runs(&self, m: &RunMetrics) {
        if !self.runs_registered.swap(true, Ordering::SeqCst) {
            m.register(&mut self.registry.write().expect("metrics registry poisoned"));
        }
    }

    /// Everything, in the Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 << 10);
        let r = self.registry.read().expect("metrics registry poisoned");
        prometheus_client::encoding::prometheus_text::encode(&mut out, &r).expect("writing to a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "_OTHER");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(StatusCode::NOT_MODIFIED), "3xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
    }
}
