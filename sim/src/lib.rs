//! Simulators of the external systems HealthForce Hub integrates with, over their real
//! protocols (HTTP, OAuth2, MQTT), with seeded synthetic data and faults on demand.
//!
//! Each simulator is a value holding its state plus an axum [`axum::Router`]; [`serve`] puts
//! one on a local port. Tests drive faults and data changes through the Rust API; `hub sim`
//! and `hub demo` expose the same controls under `/_sim/`.

pub mod events;
pub mod faults;
pub mod iot;
pub mod kki;
pub mod needles;
pub mod oauth;
pub mod odoo;
pub mod people;
pub mod population;
pub mod registry;
pub mod regnakes;
pub mod sisdmk;
pub mod sso;
pub mod staff;
pub mod subscriber;

pub use faults::Faults;
pub use iot::{IotConfig, IotSim};
pub use kki::{KkiConfig, KkiSim};
pub use odoo::OdooSim;
pub use population::Population;
pub use regnakes::{RegnakesConfig, RegnakesSim};
pub use sisdmk::{SisdmkConfig, SisdmkSim};
pub use sso::{SsoConfig, SsoSim};
pub use staff::{StaffConfig, StaffSim};

use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A simulator listening on a local port.
pub struct Running {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

impl Running {
    /// `http://addr`, the base URL a connector is configured with.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on `addr` (port 0 picks a free port).
pub async fn serve(router: axum::Router, addr: SocketAddr) -> std::io::Result<Running> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "simulator stopped");
        }
    });
    Ok(Running { addr, task })
}
