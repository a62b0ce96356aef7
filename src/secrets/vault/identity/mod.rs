//! The workload's identity as the platform hands it over, read for each
//! login and never kept past its own expiry: a JWT file (a Kubernetes
//! projected service-account token, a SPIFFE JWT-SVID, any OIDC token) and
//! a TLS client certificate with its key (a host certificate on bare-metal
//! and Slurm nodes).
//!
//! Both are read under the one rule of every identity file
//! (`credential::identity_file`): a regular file, bounded, owned by this user
//! or root, not writable by others; a JWT readable by everyone only in a
//! kubelet volume, a private key never.

use crate::error::Error;
use crate::secret::SecretString;
use crate::secrets::credential::identity_file::{self, Readers, MAX_PEM, MAX_TOKEN};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A JWT read from its file, with what may be shown of it.
pub(super) struct Jwt {
    /// The token as sent.
    pub(super) token: SecretString,
    /// Its `sub` claim (a service account, a SPIFFE ID): not a secret.
    pub(super) subject: Option<String>,
}

/// A JWT kept in a file the platform rewrites.
#[derive(Debug, Clone)]
pub(super) struct JwtFile {
    pub(super) path: PathBuf,
    /// Where its path was set, in messages.
    pub(super) source: String,
}

impl JwtFile {
    /// The token the file holds now.
    ///
    /// # Errors
    /// [`Error::ProviderUnavailable`]: missing or empty; [`Error::Permission`]:
    /// writable by others, another user's, readable by everyone outside a
    /// kubelet volume; [`Error::Io`]: not a regular file, too large;
    /// [`Error::Auth`]: not a JWT, or expired.
    pub(super) fn read(&self) -> Result<Jwt, Error> {
        let what = format!("JWT file (set by {})", self.source);
        let bytes = identity_file::read(&self.path, &what, MAX_TOKEN, Readers::KubeletVolume)?;
        let text = std::str::from_utf8(bytes.expose()).map_err(|_| self.not_a_jwt())?;
        let token = SecretString::from(text.trim());
        let claims = identity_file::jwt_claims(token.expose()).ok_or_else(|| self.not_a_jwt())?;
        let expires = claims["exp"]
            .as_u64()
            .or_else(|| claims["exp"].as_f64().map(|f| f.max(0.0) as u64))
            .map(|s| UNIX_EPOCH + Duration::from_secs(s.min(1 << 40)));
        if let Some(at) = expires {
            if let Ok(ago) = SystemTime::now().duration_since(at) {
                return Err(Error::Auth(format!(
                    "the JWT in {} (set by {}) expired {} s ago: whatever writes it has not \
                     renewed it",
                    self.path.display(),
                    self.source,
                    ago.as_secs()
                )));
            }
        }
        let subject = claims["sub"].as_str().map(crate::error::shorten);
        Ok(Jwt { token, subject })
    }

    fn not_a_jwt(&self) -> Error {
        Error::Auth(format!(
            "{} (set by {}) does not hold a JWT (three base64url parts with JSON claims)",
            self.path.display(),
            self.source
        ))
    }
}

/// The files of a TLS client certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl CertFiles {
    /// The certificate (with any chain after it) and the key, checked: the
    /// key matches the certificate, and the certificate is valid now.
    ///
    /// # Errors
    /// As [`JwtFile::read`] for the files; [`Error::InvalidArgument`]: no
    /// certificate or no key in them, a key that is not the certificate's;
    /// [`Error::Auth`]: a certificate expired or not valid yet.
    pub(crate) fn load(&self) -> Result<ureq::tls::ClientCert, Error> {
        use ureq::tls::PemItem;
        let cert_what = "TLS client certificate file";
        let key_what = "TLS client key file";
        let pem = identity_file::read(&self.cert, cert_what, MAX_PEM, Readers::Anyone)?;
        let chain: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(pem.expose())
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if chain.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{cert_what} {} holds no PEM certificate",
                self.cert.display()
            )));
        }
        let key_pem = identity_file::read(&self.key, key_what, MAX_PEM, Readers::Owner)?;
        let key = ureq::tls::parse_pem(key_pem.expose())
            .find_map(|item| match item {
                Ok(PemItem::PrivateKey(k)) => Some(k),
                _ => None,
            })
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{key_what} {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                    self.key.display()
                ))
            })?;
        self.check_pair(&chain, &key)?;
        self.check_validity(&chain[0])?;
        Ok(ureq::tls::ClientCert::new_with_certs(&chain, key))
    }

    /// Refuses a key that is not the certificate's (rustls compares the
    /// key's public half with the certificate's).
    fn check_pair(
        &self,
        chain: &[ureq::tls::Certificate<'static>],
        key: &ureq::tls::PrivateKey<'static>,
    ) -> Result<(), Error> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let der = PrivateKeyDer::try_from(key.der().to_vec()).map_err(|_| {
            Error::InvalidArgument(format!(
                "TLS client key file {} holds a key of an unknown kind",
                self.key.display()
            ))
        })?;
        let certs: Vec<CertificateDer<'static>> = chain
            .iter()
            .map(|c| CertificateDer::from(c.der().to_vec()))
            .collect();
        let provider = rustls::crypto::ring::default_provider();
        match rustls::sign::CertifiedKey::from_der(certs, der, &provider) {
            Ok(_) => Ok(()),
            Err(rustls::Error::InconsistentKeys(_)) => Err(Error::InvalidArgument(format!(
                "TLS client key file {} is not the key of the certificate in {}",
                self.key.display(),
                self.cert.display()
            ))),
            Err(rustls::Error::InvalidCertificate(_)) => Err(Error::InvalidArgument(format!(
                "TLS client certificate file {} holds a certificate that cannot be used (an \
                 X.509 v3 certificate is needed)",
                self.cert.display()
            ))),
            Err(_) => Err(Error::InvalidArgument(format!(
                "TLS client key file {} holds a key rustls cannot use (RSA, ECDSA P-256/P-384 \
                 or Ed25519 are)",
                self.key.display()
            ))),
        }
    }

    /// The certificate's end of validity, refusing one that has expired or
    /// is not valid yet. webpki checks the validity period before the
    /// issuer, so verifying the certificate against itself as an anchor
    /// tells exactly that, with no certificate parsing of our own.
    fn check_validity(&self, cert: &ureq::tls::Certificate<'static>) -> Result<(), Error> {
        use rustls::pki_types::{CertificateDer, UnixTime};
        let der = CertificateDer::from(cert.der().to_vec());
        let parsed = webpki::EndEntityCert::try_from(&der).map_err(|_| {
            Error::InvalidArgument(format!(
                "TLS client certificate file {} holds a certificate that cannot be parsed",
                self.cert.display()
            ))
        })?;
        let anchor = webpki::anchor_from_trusted_cert(&der).map_err(|_| {
            Error::InvalidArgument(format!(
                "TLS client certificate file {} holds a certificate that cannot be parsed",
                self.cert.display()
            ))
        })?;
        let now = UnixTime::now();
        let anchors = [anchor];
        let result = parsed.verify_for_usage(
            // No signature is checked before the validity period.
            &[],
            &anchors,
            &[],
            now,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        );
        match result.map(|_| ()) {
            Err(webpki::Error::CertExpired { not_after, .. }) => Err(Error::Auth(format!(
                "the TLS client certificate in {} expired {} s ago: renew it",
                self.cert.display(),
                now.as_secs().saturating_sub(not_after.as_secs())
            ))),
            Err(webpki::Error::CertNotValidYet { not_before, .. }) => Err(Error::Auth(format!(
                "the TLS client certificate in {} is not valid for another {} s (check the \
                 clock)",
                self.cert.display(),
                not_before.as_secs().saturating_sub(now.as_secs())
            ))),
            // Valid now (its issuer is not this check's business: the
            // server verifies the chain).
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
