//! Flags of several hub nodes on one PostgreSQL (issue #19): this node's cluster listener, the
//! URL the other nodes reach it at, and the secret that authenticates node-to-node requests.

use std::net::SocketAddr;

use anyhow::bail;
use clap::Args;

use super::Secret;

/// Cluster flags of `phlix-hub serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterArgs {
    /// Address of this node's cluster listener, where other nodes forward the clients and
    /// requests of the tunnels this node holds (keep it on a private network). Needs
    /// --cluster-url.
    #[arg(long, env = "HUB_CLUSTER_ADDR")]
    pub cluster_addr: Option<SocketAddr>,

    /// URL other nodes use to reach this node's cluster listener, e.g. `http://10.0.0.5:8810`.
    /// Turns on cluster mode (PostgreSQL only); the secret comes from HUB_CLUSTER_SECRET or
    /// HUB_CLUSTER_SECRET_FILE (the same ≥ 32 bytes on every node).
    #[arg(long, env = "HUB_CLUSTER_URL")]
    pub cluster_url: Option<String>,
}

/// The cluster configuration of a node that runs with others.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub addr: SocketAddr,
    /// Without a trailing slash.
    pub url: String,
    pub secret: Secret,
}

impl ClusterConfig {
    /// Validates the flags: `None` on a single node.
    ///
    /// # Errors
    /// A half-configured cluster, a bad URL, SQLite, or a missing or short secret.
    pub fn load(args: &ClusterArgs, postgres: bool) -> anyhow::Result<Option<Self>> {
        let url = args
            .cluster_url
            .as_deref()
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty());
        let Some(url) = url else {
            if args.cluster_addr.is_some() {
                bail!(
                    "--cluster-addr needs --cluster-url (the address other nodes reach this one at)"
                );
            }
            return Ok(None);
        };
        if !postgres {
            bail!(
                "--cluster-url needs PostgreSQL: several nodes share one PostgreSQL database \
                 (--database-url postgres://…); SQLite runs one node only"
            );
        }
        if !url.starts_with("http://") {
            bail!("--cluster-url must start with http:// (got `{url}`)");
        }
        let Some(addr) = args.cluster_addr else {
            bail!(
                "--cluster-url needs --cluster-addr (the address this node's cluster listener binds)"
            );
        };
        let Some(secret) = super::secret_from_env("HUB_CLUSTER_SECRET")? else {
            bail!(
                "cluster mode needs HUB_CLUSTER_SECRET or HUB_CLUSTER_SECRET_FILE (the same ≥ 32 bytes on every node)"
            );
        };
        if secret.len() < 32 {
            bail!(
                "HUB_CLUSTER_SECRET must be at least 32 bytes long (got {})",
                secret.len()
            );
        }
        Ok(Some(Self {
            addr,
            url,
            secret: Secret::from_bytes(secret.into_bytes()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_node_needs_no_cluster_flags_and_sqlite_refuses_them() {
        assert!(matches!(
            ClusterConfig::load(&ClusterArgs::default(), false),
            Ok(None)
        ));
        let args = ClusterArgs {
            cluster_addr: Some("127.0.0.1:8810".parse().unwrap_or_else(|_| unreachable!())),
            cluster_url: Some("http://10.0.0.5:8810".into()),
        };
        let err = ClusterConfig::load(&args, false)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("PostgreSQL")));
        let half = ClusterArgs {
            cluster_addr: args.cluster_addr,
            cluster_url: None,
        };
        assert!(ClusterConfig::load(&half, true).is_err());
    }
}
