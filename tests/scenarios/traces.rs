//! The spans the systems under test export, kept in memory for the traces a
//! test watches: the test binary's subscriber, installed once, exports through
//! the same layer and id generator `campusg up` does (`trace_export.rs`), with
//! a sampler that records only watched traces, so the other tests' spans cost
//! little and are not kept.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::trace::{Link, SamplingDecision, SamplingResult, SpanKind, TraceId, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, ShouldSample, SpanData};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use campusg_runtime::telemetry::SagaTraceIds;

/// Records a span only if its trace is watched.
#[derive(Clone, Debug, Default)]
struct WatchedTraces(Arc<Mutex<HashSet<TraceId>>>);

impl ShouldSample for WatchedTraces {
    fn should_sample(
        &self,
        _parent: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let watched = self.0.lock().unwrap().contains(&trace_id);
        SamplingResult {
            decision: if watched {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state: Default::default(),
        }
    }
}

struct Exported {
    watched: WatchedTraces,
    spans: InMemorySpanExporter,
    // Kept so the provider is not shut down while the tests run.
    _provider: SdkTracerProvider,
}

fn exported() -> &'static Exported {
    static EXPORTED: OnceLock<Exported> = OnceLock::new();
    EXPORTED.get_or_init(|| {
        let watched = WatchedTraces::default();
        let spans = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(watched.clone())
            .with_id_generator(SagaTraceIds::default())
            .with_simple_exporter(spans.clone())
            .build();
        let traces = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("campusg-tests"))
            .with_filter(tracing_subscriber::filter::filter_fn(
                campusg_runtime::telemetry::exported,
            ));
        let logs = std::env::var_os("TEST_LOG").is_some().then(|| {
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        });
        let _ = tracing_subscriber::registry().with(traces).with(logs).try_init();
        Exported {
            watched,
            spans,
            _provider: provider,
        }
    })
}

/// Installs the test binary's subscriber, if it is not yet.
pub fn install() {
    exported();
}

/// From now on, the spans of `trace` are kept.
pub fn watch(trace: uuid::Uuid) {
    let trace = TraceId::from_bytes(trace.into_bytes());
    exported().watched.0.lock().unwrap().insert(trace);
}

/// The spans of `trace` exported so far (a span is exported when it ends).
pub fn spans_of(trace: uuid::Uuid) -> Vec<SpanData> {
    let trace = TraceId::from_bytes(trace.into_bytes());
    exported()
        .spans
        .get_finished_spans()
        .unwrap_or_default()
        .into_iter()
        .filter(|span| span.span_context.trace_id() == trace)
        .collect()
}
