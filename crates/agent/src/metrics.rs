//! Host metrics for the heartbeat's optional `hostMetrics` (SPEC J.5), read with sysinfo.

use serde::Serialize;
use sysinfo::{Disks, Networks, System};

/// `{"cpuPercent","memUsedBytes","memTotalBytes","diskUsedBytes","diskTotalBytes","load1",
/// "netRxBytes","netTxBytes"}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostMetrics {
    pub cpu_percent: f64,
    pub mem_used_bytes: u64,
    pub mem_total_bytes: u64,
    pub disk_used_bytes: u64,
    pub disk_total_bytes: u64,
    pub load1: f64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
}

/// Keeps sysinfo's state between samples (CPU usage is a difference between two refreshes).
pub struct Sampler {
    system: Option<System>,
    disks: Option<Disks>,
    networks: Option<Networks>,
}

impl Default for Sampler {
    fn default() -> Self {
        let mut system = System::new().ok();
        if let Some(system) = system.as_mut() {
            system.refresh_cpu_usage();
        }
        Self {
            system,
            disks: Disks::new_with_refreshed_list().ok(),
            networks: Networks::new_with_refreshed_list().ok(),
        }
    }
}

impl Sampler {
    /// A fresh sample; whatever the platform cannot tell is 0.
    pub fn sample(&mut self) -> HostMetrics {
        let mut metrics = HostMetrics::default();
        if let Some(system) = self.system.as_mut() {
            system.refresh_cpu_usage();
            system.refresh_memory();
            metrics.cpu_percent = f64::from(system.global_cpu_usage()).clamp(0.0, 100.0);
            metrics.mem_used_bytes = system.used_memory();
            metrics.mem_total_bytes = system.total_memory();
        }
        if let Ok(load) = System::load_average() {
            metrics.load1 = load.one.max(0.0);
        }
        if let Some(disks) = self.disks.as_mut() {
            disks.refresh(true);
            for disk in disks.iter() {
                metrics.disk_total_bytes += disk.total_space();
                metrics.disk_used_bytes +=
                    disk.total_space().saturating_sub(disk.available_space());
            }
        }
        if let Some(networks) = self.networks.as_mut() {
            networks.refresh(true);
            for data in networks.values() {
                metrics.net_rx_bytes += data.total_received();
                metrics.net_tx_bytes += data.total_transmitted();
            }
        }
        metrics
    }
}
