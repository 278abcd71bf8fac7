//! The one way Craton's blocking HTTP clients (the REST source of
//! `craton-inventory`, the OpenBao/Vault transit provider) are built: a
//! global timeout, statuses as values, and TLS through rustls, trusting the
//! system's store (the platform verifier: the CA bundle OpenSSL would read,
//! `SSL_CERT_FILE` included) or, when given, only the PEM certificates of one
//! CA file (`CRATON_CACERT`, `CRATON_VAULT_CACERT`), as `VAULT_CACERT` does
//! for Vault's own CLI. rustls rather than the system OpenSSL so that the
//! REST-only `craton-inventory` links nothing beyond libc and runs as it is
//! in any AWX execution environment image.

use std::path::Path;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// An agent with `timeout`, trusting `ca_file`'s certificates if given.
pub fn agent(timeout: Duration, ca_file: Option<&Path>) -> Result<ureq::Agent, String> {
    agent_with(timeout, ca_file, true)
}

/// [`agent`], optionally not following redirects (a 3xx is then answered
/// as it is: outbound webhooks must not be bounced to another address).
pub fn agent_with(timeout: Duration, ca_file: Option<&Path>, follow_redirects: bool) -> Result<ureq::Agent, String> {
    let roots = match ca_file {
        None => RootCerts::PlatformVerifier,
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("CA file {}: {e}", path.display()))?;
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()
                .map_err(|e| format!("CA file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("CA file {} holds no PEM certificate", path.display()));
            }
            RootCerts::from(certs)
        }
    };
    let tls = TlsConfig::builder().provider(TlsProvider::Rustls).root_certs(roots).build();
    let mut config = ureq::Agent::config_builder();
    if !follow_redirects {
        config = config.max_redirects(0);
    }
    Ok(config.timeout_global(Some(timeout)).http_status_as_error(false).tls_config(tls).build().into())
}
