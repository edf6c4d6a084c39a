//! Tracing set-up, once per process, and how one saga becomes one trace.
//!
//! Logs go to stderr; `RUST_LOG` overrides the default filter. The binary may
//! add a layer that exports spans (OpenTelemetry over OTLP); the runtime only
//! says how spans join up, whatever exports them:
//!
//! - a saga's trace id is its correlation id ([`trace_id_of`]), the one every
//!   message it causes carries;
//! - a message's `traceparent` names that trace and the span that made the
//!   message ([`Envelope::traceparent`](crate::envelope::Envelope::traceparent)),
//!   and the consumer's span for the message is that span's child
//!   ([`set_remote_parent`]);
//! - work for a saga that starts outside any of its spans (an HTTP request that
//!   starts a saga, a saga started by another one's event, a timer that fires)
//!   runs in a [`saga_span`]: a root of the saga's trace, linked to the span it
//!   was started from, which stays its parent in the logs.
//!
//! A caller's own `traceparent` on an HTTP request is linked, never followed
//! ([`link_remote`]): who is outside must not place spans in a saga's trace or
//! decide what is sampled.

use std::cell::Cell;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// A layer that exports spans, as the binary builds it.
pub type TracesLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// What an exporting layer exports, whatever `RUST_LOG` lets the logs show:
/// spans at `info` or above, not the events in them (their text may quote a
/// refused payload), nor the debug spans of the HTTP and SQL libraries
/// (the exporter's own requests among them).
pub fn exported(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.is_span() && *metadata.level() <= tracing::Level::INFO
}

/// Installs a human-readable subscriber writing to stderr. Safe to call more
/// than once (tests do); only the first call installs.
pub fn init(default_filter: &str) {
    init_with(default_filter, None);
}

/// As [`init`], with `traces` exporting spans. The filter is the logs' own:
/// what the exporting layer takes is its own choice.
pub fn init_with(default_filter: &str, traces: Option<TracesLayer>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::registry()
        .with(traces)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_filter(filter),
        )
        .try_init();
}

/// The trace id of everything a correlation id's messages cause: the id
/// itself when it is a UUID (a saga id), else a UUID derived from it.
pub fn trace_id_of(correlation_id: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(correlation_id)
        .unwrap_or_else(|_| uuid::Uuid::new_v5(&crate::envelope::RECORD_NAMESPACE, correlation_id.as_bytes()))
}

/// The current span's id and trace flags (`01` sampled, `00` not), when the
/// current span is exported and belongs to `trace_id`'s trace: the parent a
/// message made now names.
pub fn current_span_in(trace_id: uuid::Uuid) -> Option<(String, String)> {
    let current = current_span_context();
    (current.is_valid() && current.trace_id() == TraceId::from_bytes(trace_id.into_bytes())).then(|| {
        let flags = if current.is_sampled() { "01" } else { "00" };
        (current.span_id().to_string(), flags.to_string())
    })
}

fn current_span_context() -> SpanContext {
    let span = tracing::Span::current();
    if span.is_none() {
        return SpanContext::empty_context();
    }
    span.context().span().span_context().clone()
}

/// Makes `span` (not yet entered) the child of the span a W3C `traceparent`
/// names. A malformed one, or none, leaves the span where it was.
pub fn set_remote_parent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(parent) = traceparent.and_then(remote_span_context) else {
        return;
    };
    // Without an exporting layer there is nothing to parent; that is fine.
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
}

/// Links `span` (not yet entered) to the span a caller's W3C `traceparent`
/// names, without joining its trace.
pub fn link_remote(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(remote) = traceparent.and_then(remote_span_context) {
        span.add_link(remote);
    }
}

/// `00-<trace id>-<span id>-<flags>`, as W3C Trace Context writes it.
fn remote_span_context(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || version != "00" || trace_id.len() != 32 || span_id.len() != 16 || flags.len() != 2 {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let context = SpanContext::new(
        TraceId::from_hex(trace_id).ok()?,
        SpanId::from_hex(span_id).ok()?,
        TraceFlags::new(flags & 1),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

thread_local! {
    /// The trace id the next root span started on this thread takes.
    static NEXT_ROOT_TRACE: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// The span a saga's work runs in. Within the saga's trace already (a
/// consumer's span for one of its messages), a child; else a root of the
/// saga's trace (its id is the correlation id), linked to the span current
/// now, which stays its parent for the logs. `name` says what the work is
/// (`create_order saga`).
pub fn saga_span(correlation_id: &str, name: &str, order_id: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "saga",
        saga_id = %correlation_id,
        order_id,
        otel.name = name,
    );
    let trace_id = TraceId::from_bytes(trace_id_of(correlation_id).into_bytes());
    let started_from = current_span_context();
    if started_from.is_valid() && started_from.trace_id() == trace_id {
        return span;
    }
    if span.set_parent(opentelemetry::Context::new()).is_err() {
        // Not exported: nothing to root.
        return span;
    }
    if started_from.is_valid() {
        span.add_link(started_from);
    }
    NEXT_ROOT_TRACE.set(Some(trace_id));
    // Reading its context starts the span, which takes its trace id now.
    let _ = span.context();
    NEXT_ROOT_TRACE.set(None);
    span
}

/// The exporter's id generator: random ids, but for a root span that
/// [`saga_span`] starts, which takes its saga's id.
#[derive(Debug, Default)]
pub struct SagaTraceIds {
    random: RandomIdGenerator,
}

impl IdGenerator for SagaTraceIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_ROOT_TRACE.take().unwrap_or_else(|| self.random.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.random.new_span_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_read_only_when_well_formed() {
        let good = "00-b1a7d3c26d1e4c359a518f1f7e0c2a10-0123456789abcdef-01";
        let context = remote_span_context(good).unwrap();
        assert_eq!(context.trace_id().to_string(), "b1a7d3c26d1e4c359a518f1f7e0c2a10");
        assert_eq!(context.span_id().to_string(), "0123456789abcdef");
        assert!(context.is_sampled() && context.is_remote());
        for bad in [
            "",
            "00-b1a7d3c26d1e4c359a518f1f7e0c2a10-0123456789abcdef",
            "01-b1a7d3c26d1e4c359a518f1f7e0c2a10-0123456789abcdef-01",
            "00-42-0123456789abcdef-01",
            "00-00000000000000000000000000000000-0123456789abcdef-01",
            "00-b1a7d3c26d1e4c359a518f1f7e0c2a10-0000000000000000-01",
            "00-b1a7d3c26d1e4c359a518f1f7e0c2a10-0123456789abcdef-01-extra",
            "00-zz a7d3c26d1e4c359a518f1f7e0c2a10-0123456789abcdef-01",
        ] {
            assert!(remote_span_context(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn outside_any_span_no_message_names_a_parent() {
        assert_eq!(current_span_in(uuid::Uuid::new_v4()), None);
    }
}
