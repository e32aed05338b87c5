//! One rustls configuration for both HTTPS (reqwest) and WSS (tokio-tungstenite):
//! the ring provider, the webpki roots, and extra CA certificates from PEM data,
//! a PEM file, or every `*.pem` / `*.crt` / `*.cer` file of a folder.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// Where an extra CA bundle came from: a builder option, or an environment
/// variable (then errors name the variable, as for any bad setting).
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "tls"), allow(dead_code))] // read only when loading with `tls`
pub(crate) struct Bundle {
    pub(crate) origin: Option<&'static str>,
    pub(crate) path: PathBuf,
}

#[cfg_attr(not(feature = "tls"), allow(dead_code))]
impl Bundle {
    fn error(&self, reason: String) -> Error {
        match self.origin {
            Some(var) => Error::config(var, reason),
            None => Error::Tls {
                reason: format!("ca_bundle: {reason}"),
                source: None,
            },
        }
    }
}

/// Checks that a bundle path exists and holds at least one certificate file,
/// without parsing it: used when reading the environment.
pub(crate) fn check_bundle_path(path: &Path) -> std::result::Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            if cert_files(path)?.is_empty() {
                Err(format!(
                    "folder {} holds no *.pem, *.crt or *.cer file",
                    path.display()
                ))
            } else {
                Ok(())
            }
        }
        Ok(_) => Ok(()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn cert_files(dir: &Path) -> std::result::Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                    matches!(x.to_ascii_lowercase().as_str(), "pem" | "crt" | "cer")
                })
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(feature = "tls")]
pub(crate) use with_tls::client_config;

#[cfg(feature = "tls")]
mod with_tls {
    use super::*;
    use crate::error::Result;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use std::sync::Arc;

    fn parse_pem(pem: &[u8]) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| format!("not PEM certificates: {e}"))?;
        if certs.is_empty() {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
        }
        Ok(certs)
    }

    fn read_bundle(b: &Bundle) -> Result<Vec<CertificateDer<'static>>> {
        let files = if b.path.is_dir() {
            let files = cert_files(&b.path).map_err(|r| b.error(r))?;
            if files.is_empty() {
                return Err(b.error(format!(
                    "folder {} holds no *.pem, *.crt or *.cer file",
                    b.path.display()
                )));
            }
            files
        } else {
            vec![b.path.clone()]
        };
        let mut certs = Vec::new();
        for f in files {
            let pem = std::fs::read(&f)
                .map_err(|e| b.error(format!("cannot read {}: {e}", f.display())))?;
            certs.extend(parse_pem(&pem).map_err(|r| b.error(format!("{}: {r}", f.display())))?);
        }
        Ok(certs)
    }

    /// The client configuration: webpki roots plus the extra CAs.
    pub(crate) fn client_config(
        pems: &[Vec<u8>],
        bundles: &[Bundle],
    ) -> Result<Arc<rustls::ClientConfig>> {
        // The common case (no extra CA) is built once per process.
        static DEFAULT: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
        if pems.is_empty() && bundles.is_empty() {
            if let Some(cfg) = DEFAULT.get() {
                return Ok(Arc::clone(cfg));
            }
            let cfg = build(&[], &[])?;
            return Ok(Arc::clone(DEFAULT.get_or_init(|| cfg)));
        }
        build(pems, bundles)
    }

    fn build(pems: &[Vec<u8>], bundles: &[Bundle]) -> Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let mut extra = Vec::new();
        for (i, pem) in pems.iter().enumerate() {
            extra.extend(parse_pem(pem).map_err(|reason| Error::Tls {
                reason: format!("add_root_certificate_pem #{}: {reason}", i + 1),
                source: None,
            })?);
        }
        for b in bundles {
            extra.extend(read_bundle(b)?);
        }
        for cert in extra {
            roots.add(cert).map_err(|e| Error::Tls {
                reason: "an extra CA certificate is not usable as a trust anchor".to_owned(),
                source: Some(Box::new(e)),
            })?;
        }
        // rustls 0.23.48 deprecates ring's provider for its lack of
        // post-quantum key exchange; its replacement, aws-lc-rs, needs cmake
        // and a C toolchain in every user's build. The provider is the same
        // on every 0.23 (rustls itself calls it under `allow(deprecated)`),
        // and `allow` keeps both the pinned and the newest rustls quiet.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls {
                reason: "no usable TLS protocol version".to_owned(),
                source: Some(Box::new(e)),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_bundles_are_reported() {
        let dir = std::env::temp_dir().join(format!(
            "relukko-tls-test-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(check_bundle_path(&dir).unwrap_err().contains("holds no"));
        assert!(
            check_bundle_path(&dir.join("nope.pem"))
                .unwrap_err()
                .contains("cannot read")
        );
        std::fs::write(dir.join("a.crt"), "x").unwrap();
        assert!(check_bundle_path(&dir).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(feature = "tls")]
    #[test]
    fn junk_pem_names_its_origin() {
        let dir = std::env::temp_dir().join(format!(
            "relukko-tls-test-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("junk.pem");
        std::fs::write(&file, "not a certificate").unwrap();
        let b = Bundle {
            origin: Some("RELUKKO_CA_BUNDLE"),
            path: file,
        };
        match client_config(&[], &[b]) {
            Err(Error::Config { name, reason }) => {
                assert_eq!(name, "RELUKKO_CA_BUNDLE");
                assert!(reason.contains("junk.pem"), "{reason}");
            }
            other => panic!("expected a Config error, got {other:?}"),
        }
        match client_config(&[b"junk".to_vec()], &[]) {
            Err(Error::Tls { reason, .. }) => {
                assert!(reason.contains("add_root_certificate_pem"), "{reason}")
            }
            other => panic!("expected a Tls error, got {other:?}"),
        }
        assert!(client_config(&[], &[]).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
