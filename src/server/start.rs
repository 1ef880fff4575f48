//! `congvan serve`'s start-up: the signals a server answers (SIGINT and SIGTERM stop it
//! gracefully, SIGHUP reloads trust material and the directory), the configured
//! listening socket, and the run until stopped. Tests call [`Server::build`] and
//! [`Server::run`] themselves, on port 0 and with their own shutdown.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

use super::{Server, ServerError, bind};
use crate::config::ServerConfig;

/// Why the server could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A signal handler could not be installed.
    #[error("cannot handle {signal}")]
    Signal {
        /// The signal's name.
        signal: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The configured address could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Building or running the server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// Builds the server `config` describes, binds its address and serves until SIGINT or
/// SIGTERM; SIGHUP reloads TLS material, CRLs and the directory meanwhile.
pub async fn serve_until_signalled(config: &ServerConfig) -> Result<(), StartError> {
    let shutdown = shutdown_signal()?;
    let server = Server::build(config)?;
    let listener = bind(config.listen).map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let reload = server.reloader();
    tokio::spawn(async move {
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading TLS material, CRLs and the directory");
            let _ = tokio::task::spawn_blocking(reload.clone()).await;
        }
    });
    server.run(listener, shutdown).await?;
    Ok(())
}

/// Installs the SIGINT and SIGTERM handlers now (so a signal that arrives while the
/// server starts is not lost to the default action) and returns a future that completes
/// on either.
fn shutdown_signal() -> Result<impl Future<Output = ()>, StartError> {
    let handler = |kind, name| {
        signal(kind).map_err(|source| StartError::Signal {
            signal: name,
            source,
        })
    };
    let mut interrupt = handler(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = handler(SignalKind::terminate(), "SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}
