//! A directory's private CA file (`ca_file` on LDAP and Graph documents): read once, checked,
//! and turned into the TLS trust that LDAPS / StartTLS and Graph's HTTPS use instead of the
//! system's CAs.

use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_rustls::rustls;

/// Reads the PEM certificates in `path`; each must be usable as a trust anchor and there must
/// be at least one. The error says what is wrong with the file (the caller names the field).
pub fn read_ca_file(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| format!("{path}: {e}"))?;
    let mut certs = Vec::new();
    let mut roots = rustls::RootCertStore::empty();
    for cert in iter {
        let cert = cert.map_err(|e| format!("{path}: {e}"))?;
        roots
            .add(cert.clone())
            .map_err(|e| format!("{path}: not a usable CA certificate: {e}"))?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(format!("{path}: no PEM certificate in the file"));
    }
    Ok(certs)
}

/// A rustls client configuration trusting only the certificates in `path` (aws-lc-rs, the
/// crate's one crypto backend).
pub fn client_config(path: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_ca_file(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{path}: not a usable CA certificate: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates in `path` as reqwest wants them.
pub fn reqwest_certificates(path: &str) -> Result<Vec<reqwest::Certificate>, String> {
    read_ca_file(path)?
        .iter()
        .map(|cert| {
            reqwest::Certificate::from_der(cert.as_ref())
                .map_err(|e| format!("{path}: not a usable CA certificate: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_empty_or_garbled_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let missing = missing.to_str().expect("utf8");
        let err = read_ca_file(missing).expect_err("missing");
        assert!(err.starts_with(missing), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = read_ca_file(empty.to_str().expect("utf8")).expect_err("empty");
        assert!(err.ends_with("no PEM certificate in the file"), "{err}");
        let garbled = dir.path().join("garbled.pem");
        std::fs::write(
            &garbled,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let err = client_config(garbled.to_str().expect("utf8")).expect_err("garbled");
        assert!(err.contains("not a usable CA certificate"), "{err}");
    }

    #[test]
    fn a_client_with_an_unreadable_ca_file_is_not_built() {
        let graph: crate::domain::config::GraphSettings = toml::from_str(
            "tenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"env:PATH\"\nca_file = \"/nonexistent/ca.pem\"\n",
        )
        .expect("graph settings");
        let err = crate::directory::graph::GraphDirectory::new("entra", &graph).expect_err("no CA");
        assert!(
            err.to_string()
                .starts_with("directory entra: graph.ca_file: /nonexistent/ca.pem: "),
            "{err}"
        );
        let ldap: crate::domain::config::LdapSettings = toml::from_str(
            "url = \"ldaps://127.0.0.1:1\"\nbind_dn = \"cn=x\"\nbind_password = \"env:PATH\"\nbase_dn = \"dc=x\"\nca_file = \"/nonexistent/ca.pem\"\n",
        )
        .expect("ldap settings");
        let err = crate::directory::ldap::LdapDirectory::new("corp", &ldap).expect_err("no CA");
        assert!(
            err.to_string()
                .starts_with("directory corp: ldap.ca_file: /nonexistent/ca.pem: "),
            "{err}"
        );
    }
}
