//! The process-wide Prometheus recorder.
//!
//! `Exporter::install` builds the recorder once (histogram buckets for a gateway, from
//! 20 µs to 30 s), installs it as the global `metrics` recorder, describes every metric
//! of [`names::ALL`], and starts an upkeep thread that drains histogram samples between
//! scrapes so memory stays bounded when nobody scrapes. `render` produces the text the
//! admin listener serves on `/metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::names::{self, Kind};

/// Upper bounds (seconds) of the request-duration buckets: a rejected request takes tens
/// of microseconds, a warm worker a millisecond or so, a slow function up to its timeout.
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_02, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histogram samples are folded in without a scrape.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The installed exporter; the admin listener renders it on `/metrics`.
#[derive(Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
}

impl Exporter {
    /// Installs the global recorder once and describes every metric. Later calls return
    /// the same exporter. If another recorder was installed first (an embedding program),
    /// edgefn's metrics go there and this exporter renders an empty page, with a warning.
    pub fn install() -> Exporter {
        let handle = HANDLE.get_or_init(|| {
            match builder().install_recorder() {
                Ok(handle) => {
                    describe();
                    // Both series exist from the start so `increase()` sees the first reload.
                    for result in ["ok", "error"] {
                        metrics::counter!(names::RELOAD_TOTAL, names::LABEL_RESULT => result)
                            .absolute(0);
                    }
                    metrics::counter!(names::LOG_DROPPED_TOTAL).absolute(0);
                    spawn_upkeep(handle.clone());
                    handle
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a metrics recorder is already installed; /metrics will be empty");
                    builder().build_recorder().handle()
                }
            }
        });
        Exporter {
            handle: handle.clone(),
        }
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::REQUEST_DURATION_SECONDS.to_owned()),
            DURATION_BUCKETS,
        )
        .expect("the bucket list is not empty")
}

fn describe() {
    for &(name, kind, help) in names::ALL {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, Unit::Seconds, help),
        }
    }
}

fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms drain on scrape only");
    }
}
