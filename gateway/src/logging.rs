//! Log set-up. (Stub until the metrics/logs work lands.)

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// One access-log line per request, target `edgefn::access`; never a credential.
pub fn access(
    request_id: &http::HeaderValue,
    function: &str,
    method: &http::Method,
    status: http::StatusCode,
    elapsed: std::time::Duration,
    subject: Option<&str>,
) {
    tracing::info!(
        target: "edgefn::access",
        request_id = request_id.to_str().unwrap_or_default(),
        function,
        method = method.as_str(),
        status = status.as_u16(),
        duration_us = elapsed.as_micros() as u64,
        auth_subject = subject.unwrap_or("-"),
    );
}
