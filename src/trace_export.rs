//! Exports the system's spans over OTLP (HTTP, protobuf) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set;
//! the exporter reads those and the other standard `OTEL_*` variables itself.
//! With neither set, nothing is exported and nothing is built.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

use tracing_subscriber::filter::{filter_fn, LevelFilter};
use tracing_subscriber::Layer;

use campusg_runtime::telemetry::{SagaTraceIds, TracesLayer};

/// Spans exported until [`TraceExport::finish`].
pub struct TraceExport {
    provider: Option<SdkTracerProvider>,
}

impl TraceExport {
    /// Installs the process's subscriber: logs to stderr, and spans to the
    /// configured OTLP endpoint, named `service_name` unless `OTEL_SERVICE_NAME`
    /// says otherwise.
    pub fn install(default_filter: &str, service_name: &str) -> anyhow::Result<TraceExport> {
        let configured = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
            .iter()
            .any(|variable| std::env::var_os(variable).is_some_and(|value| !value.is_empty()));
        if !configured {
            campusg_runtime::telemetry::init(default_filter);
            return Ok(TraceExport { provider: None });
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|error| anyhow::anyhow!("cannot export traces over OTLP: {error}"))?;
        let service_name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service_name.to_string());
        let provider = SdkTracerProvider::builder()
            .with_id_generator(SagaTraceIds::default())
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service_name).build())
            .build();
        let layer: TracesLayer = Box::new(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("campusg"))
                .with_filter(filter_fn(campusg_runtime::telemetry::exported).with_max_level_hint(LevelFilter::INFO)),
        );
        campusg_runtime::telemetry::init_with(default_filter, Some(layer));
        Ok(TraceExport {
            provider: Some(provider),
        })
    }

    /// Sends the spans not yet exported. The batch exporter blocks while it
    /// does, so it runs off the async runtime.
    pub async fn finish(self) {
        if let Some(provider) = self.provider {
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(error)) = flushed {
                eprintln!("warning: the last spans may not have been exported: {error}");
            }
        }
    }
}
