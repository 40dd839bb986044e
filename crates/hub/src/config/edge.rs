//! How clients reach the hub (issue #17): TLS on the three listeners (certificate files or
//! ACME), the reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed, and
//! the WebSocket URLs advertised when a proxy renames the tunnel and client ports. Data only:
//! `crate::tls` serves it, `crate::http::forwarded` applies the proxy rules.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use super::Config;

/// Let's Encrypt's production directory, the default of `--acme-directory`.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Flags of `phlix-hub serve` about TLS and reverse proxies (flattened into `ServeArgs`).
#[derive(Debug, Clone, Default, Args)]
pub struct EdgeArgs {
    /// PEM certificate chain: serve HTTPS on the API port and WSS on the tunnel and client
    /// ports (needs --tls-key). Re-read when the file changes or on SIGHUP.
    #[arg(long, env = "HUB_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "HUB_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Obtain and renew the certificate from an ACME CA for this name (repeatable; TLS-ALPN-01
    /// on the API port, which must be reachable as port 443 of the name).
    #[arg(long = "acme-domain", env = "HUB_ACME_DOMAINS", value_delimiter = ',')]
    pub acme_domains: Vec<String>,

    /// Contact e-mail of the ACME account.
    #[arg(long, env = "HUB_ACME_EMAIL")]
    pub acme_email: Option<String>,

    /// ACME directory URL (any RFC 8555 CA) [default: Let's Encrypt production].
    #[arg(long, env = "HUB_ACME_DIRECTORY")]
    pub acme_directory: Option<String>,

    /// PEM CA certificate to trust for the connection to the ACME directory (a private or
    /// test CA such as Pebble's); the platform's roots otherwise.
    #[arg(long, env = "HUB_ACME_CA_FILE")]
    pub acme_ca_file: Option<PathBuf>,

    /// Reverse proxies (CIDRs or addresses, comma-separated) whose X-Forwarded-For and
    /// X-Forwarded-Proto are believed; from any other peer they are ignored.
    #[arg(long, env = "HUB_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// Tunnel URL advertised to servers when a proxy serves the tunnel port under another
    /// name or port (e.g. wss://hub.example.com:8802) [default: <ws scheme>://<host>:<port>].
    #[arg(long, env = "HUB_PUBLIC_TUNNEL_URL")]
    pub public_tunnel_url: Option<String>,

    /// Base of the client-mount URLs advertised when a proxy serves the client port under
    /// another name or port (e.g. wss://hub.example.com:8803).
    #[arg(long, env = "HUB_PUBLIC_CLIENT_URL")]
    pub public_client_url: Option<String>,
}

/// Where the listeners' certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP and WebSocket (TLS off, the default; or a proxy terminates it).
    Off,
    /// A PEM pair on disk, re-read when it changes.
    Files { cert: PathBuf, key: PathBuf },
    /// Obtained and renewed from an ACME CA.
    Acme(AcmeSettings),
}

/// What the ACME client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    pub domains: Vec<String>,
    pub email: Option<String>,
    pub directory: String,
    pub ca_file: Option<PathBuf>,
}

/// The resolved edge configuration.
#[derive(Debug, Clone)]
pub struct Edge {
    pub tls: TlsMode,
    pub trusted_proxies: TrustedProxies,
    /// Without a trailing slash.
    pub public_tunnel_url: Option<String>,
    /// Without a trailing slash.
    pub public_client_url: Option<String>,
    /// How often the certificate files are checked for a change (no flag; 5 s).
    pub reload_poll: Duration,
    /// Renew an ACME certificate once it has less than this left (no flag; 30 days).
    pub renew_before: Duration,
    /// How often the ACME certificate's age is checked (no flag; 1 h).
    pub acme_check: Duration,
    /// First wait after a failed ACME attempt, doubled up to `acme_check` (no flag; 1 min).
    pub acme_retry: Duration,
}

impl Default for Edge {
    fn default() -> Self {
        Self {
            tls: TlsMode::Off,
            trusted_proxies: TrustedProxies::default(),
            public_tunnel_url: None,
            public_client_url: None,
            reload_poll: Duration::from_secs(5),
            renew_before: Duration::from_secs(30 * 86_400),
            acme_check: Duration::from_secs(3600),
            acme_retry: Duration::from_secs(60),
        }
    }
}

impl Edge {
    /// Checks the flags: a certificate needs its key, ACME excludes certificate files, CIDRs
    /// and URLs must parse.
    ///
    /// # Errors
    /// One sentence naming the flag at fault.
    pub fn load(args: &EdgeArgs) -> anyhow::Result<Self> {
        let domains: Vec<String> = args
            .acme_domains
            .iter()
            .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        let tls = match (&args.tls_cert, &args.tls_key, domains.is_empty()) {
            (Some(_), _, false) | (_, Some(_), false) => {
                bail!("--acme-domain and --tls-cert/--tls-key exclude each other: choose one")
            }
            (Some(cert), Some(key), true) => TlsMode::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            (Some(_), None, true) => bail!("--tls-cert needs --tls-key (HUB_TLS_KEY)"),
            (None, Some(_), true) => bail!("--tls-key needs --tls-cert (HUB_TLS_CERT)"),
            (None, None, true) => TlsMode::Off,
            (None, None, false) => {
                for domain in &domains {
                    if domain.contains(['/', ':', ' ', '*']) || !domain.contains('.') {
                        bail!(
                            "--acme-domain `{domain}` is not a DNS name (no wildcards: TLS-ALPN-01 cannot prove them)"
                        );
                    }
                }
                let directory = args
                    .acme_directory
                    .clone()
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| LETS_ENCRYPT.to_owned());
                if !directory.starts_with("https://") {
                    bail!("--acme-directory must be an https:// URL (got `{directory}`)");
                }
                TlsMode::Acme(AcmeSettings {
                    domains,
                    email: args.acme_email.clone().filter(|e| !e.is_empty()),
                    directory,
                    ca_file: args.acme_ca_file.clone(),
                })
            }
        };
        let trusted_proxies = TrustedProxies::parse(&args.trusted_proxies)?;
        let url = |value: &Option<String>, flag: &str| -> anyhow::Result<Option<String>> {
            match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) if v.starts_with("ws://") || v.starts_with("wss://") => {
                    Ok(Some(v.trim_end_matches('/').to_owned()))
                }
                Some(v) => bail!("{flag} must be a ws:// or wss:// URL (got `{v}`)"),
            }
        };
        Ok(Self {
            tls,
            trusted_proxies,
            public_tunnel_url: url(&args.public_tunnel_url, "--public-tunnel-url")?,
            public_client_url: url(&args.public_client_url, "--public-client-url")?,
            ..Self::default()
        })
    }

    /// Whether the hub's own listeners speak TLS.
    #[must_use]
    pub fn tls_on(&self) -> bool {
        self.tls != TlsMode::Off
    }
}

impl Config {
    /// `wss` when the public URL is https (the hub's own TLS, or a proxy in front), else `ws`:
    /// a Phlix server derives the same from its stored `hub_base_url` (SPEC B.1).
    #[must_use]
    pub fn ws_scheme(&self) -> &'static str {
        if self.public_scheme() == "https" {
            "wss"
        } else {
            "ws"
        }
    }

    /// The tunnel URL servers are told (signpost, SPEC B.1).
    #[must_use]
    pub fn tunnel_endpoint(&self, bound_port: u16) -> String {
        self.edge
            .public_tunnel_url
            .clone()
            .unwrap_or_else(|| format!("{}://{}:{bound_port}", self.ws_scheme(), self.ws_host))
    }

    /// The client-mount URL of `server_id` (already percent-encoded) (SPEC B.2).
    #[must_use]
    pub fn client_endpoint(&self, bound_port: u16, encoded_server_id: &str) -> String {
        match &self.edge.public_client_url {
            Some(base) => format!("{base}/client/{encoded_server_id}"),
            None => format!(
                "{}://{}:{bound_port}/client/{encoded_server_id}",
                self.ws_scheme(),
                self.ws_host
            ),
        }
    }
}

/// Addresses of the reverse proxies allowed to name the client (`--trusted-proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `::1`, `127.0.0.1/32`, … (an address alone is one host).
    ///
    /// # Errors
    /// An entry that is not an address or CIDR.
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        let mut nets = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let (addr, prefix) = entry
                .split_once('/')
                .map_or((entry, None), |(a, p)| (a, Some(p)));
            let addr: IpAddr = addr
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .with_context(|| {
                    format!("--trusted-proxies: `{entry}` is not an IP address or CIDR")
                })?;
            let addr = addr.to_canonical();
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => match p.parse::<u8>() {
                    Ok(p) if p <= max => p,
                    _ => bail!("--trusted-proxies: `{entry}` has a bad prefix length (0–{max})"),
                },
            };
            nets.push((addr, prefix));
        }
        Ok(Self(nets))
    }

    /// Whether `ip` is one of the proxies.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|&(net, prefix)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        })
    }

    /// No proxy is trusted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> EdgeArgs {
        EdgeArgs::default()
    }

    #[test]
    fn cidrs_match_their_addresses_only() {
        let proxies =
            TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into(), " 192.168.1.7 ".into()])
                .unwrap();
        for yes in ["10.1.2.3", "::1", "192.168.1.7", "::ffff:10.9.9.9"] {
            assert!(proxies.contains(yes.parse().unwrap()), "{yes}");
        }
        for no in ["11.0.0.1", "127.0.0.1", "192.168.1.8", "::2"] {
            assert!(!proxies.contains(no.parse().unwrap()), "{no}");
        }
        assert!(
            TrustedProxies::parse(&["0.0.0.0/0".into()])
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
    }

    #[test]
    fn tls_flags_are_checked() {
        let mut a = args();
        a.tls_cert = Some("c.pem".into());
        assert!(
            Edge::load(&a)
                .unwrap_err()
                .to_string()
                .contains("--tls-key")
        );
        a.tls_key = Some("k.pem".into());
        assert!(matches!(Edge::load(&a).unwrap().tls, TlsMode::Files { .. }));
        a.acme_domains = vec!["hub.example.com".into()];
        assert!(Edge::load(&a).is_err());
        let mut a = args();
        a.acme_domains = vec!["Hub.Example.com".into()];
        let TlsMode::Acme(acme) = Edge::load(&a).unwrap().tls else {
            panic!("acme expected")
        };
        assert_eq!(acme.domains, ["hub.example.com"]);
        assert_eq!(acme.directory, LETS_ENCRYPT);
        a.acme_domains = vec!["*.example.com".into()];
        assert!(Edge::load(&a).is_err());
        let mut a = args();
        a.public_tunnel_url = Some("https://x".into());
        assert!(Edge::load(&a).is_err());
    }
}
