//! Building a rustls server configuration from the operator's PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::WebError;

/// Whether the server asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Never asks.
    #[default]
    Off,
    /// Asks; a client without a certificate is let in (the application decides, e.g. 403), but
    /// a certificate that does not chain to the client CA or has expired fails the handshake.
    Optional,
    /// Asks; the handshake fails without a valid certificate.
    Required,
}

impl ClientAuth {
    fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Off => "off",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "required",
        }
    }
}

/// Where a listener's certificate, key and client CA live.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates that client certificates must chain to (PEM).
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

/// Reads the files and builds the server side: TLS 1.2 and 1.3 with the ring provider, ALPN
/// `http/1.1`, client certificates per [`TlsFiles::client_auth`].
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, WebError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| refused(&files.cert, e))?;
    let builder = match files.client_auth {
        ClientAuth::Off => builder.with_no_client_auth(),
        mode => {
            let ca = files.client_ca.as_deref().ok_or(WebError::NoClientCa {
                mode: mode.as_str(),
            })?;
            builder.with_client_cert_verifier(client_verifier(ca, mode, provider)?)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| refused(&files.key, e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn client_verifier(
    ca: &Path,
    mode: ClientAuth,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, WebError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca)? {
        roots.add(cert).map_err(|e| refused(ca, e))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = if mode == ClientAuth::Optional {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    builder.build().map_err(|e| refused(ca, e))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, WebError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WebError::Pem {
            path: path.to_owned(),
            what: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(WebError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, WebError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => WebError::NoKey {
            path: path.to_owned(),
        },
        e => WebError::Pem {
            path: path.to_owned(),
            what: e.to_string(),
        },
    })
}

fn read(path: &Path) -> Result<Vec<u8>, WebError> {
    std::fs::read(path).map_err(|source| WebError::Read {
        path: path.to_owned(),
        source,
    })
}

fn refused(path: &Path, e: impl std::fmt::Display) -> WebError {
    WebError::Refused {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}
