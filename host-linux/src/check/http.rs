//! HTTP_GET / SSL_GET: fetch each URL, check its status code, the MD5 digest of its body and a
//! regex over its body. SSL_GET does TLS with rustls and, like keepalived, does not verify the
//! server's certificate (real servers commonly have self-signed ones); it checks the service.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::{Arc, OnceLock};

use md5::{Digest, Md5};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::ProbeError;
use crate::config::check::{CheckCommon, HttpCheck};
use crate::http::{HttpError, Response};

/// Largest body read; a health page bigger than this fails the check.
const MAX_RESPONSE: usize = 4 << 20;
/// Largest response head (interim 1xx heads included).
const MAX_HEAD: usize = 64 << 10;

#[derive(Debug)]
pub(crate) struct UrlProbe {
    path: String,
    host: String,
    digest: Option<String>,
    status: Vec<RangeInclusive<u16>>,
    regex: Option<Result<regex::bytes::Regex, String>>,
    regex_no_match: bool,
}

/// A prepared HTTP_GET / SSL_GET.
#[derive(Debug)]
pub(crate) struct HttpProbe {
    pub(crate) tls: bool,
    urls: Vec<UrlProbe>,
    /// TLS server name: SNI when a DNS name, none for an address.
    server_name: ServerName<'static>,
    version: &'static str,
}

fn host_header(target: SocketAddr, tls: bool) -> String {
    let default_port = if tls { 443 } else { 80 };
    let ip = match target {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    if target.port() == default_port {
        ip
    } else {
        format!("{ip}:{}", target.port())
    }
}

impl HttpProbe {
    pub(crate) fn new(h: HttpCheck, target: SocketAddr) -> HttpProbe {
        let urls = h
            .urls
            .into_iter()
            .map(|u| UrlProbe {
                host: u.virtualhost.clone().or_else(|| h.virtualhost.clone()).unwrap_or_else(|| host_header(target, h.tls)),
                regex: u.regex.as_ref().map(|r| regex::bytes::Regex::new(r).map_err(|e| format!("bad regex '{r}': {e}"))),
                path: u.path,
                digest: u.digest,
                status: u.status_codes,
                regex_no_match: u.regex_no_match,
            })
            .collect();
        let sni = h.sni_server_name.clone().or_else(|| if h.enable_sni { h.virtualhost.clone() } else { None });
        let server_name = sni
            .and_then(|n| ServerName::try_from(n).ok())
            .unwrap_or_else(|| ServerName::IpAddress(target.ip().into()));
        let version = match h.http_protocol.as_deref() {
            Some("1.1") => "1.1",
            _ => "1.0",
        };
        HttpProbe { tls: h.tls, urls, server_name, version }
    }

    pub(super) async fn check(&self, target: SocketAddr, c: &CheckCommon) -> Result<(), ProbeError> {
        for u in &self.urls {
            // connect_timeout bounds each whole request, like a per-I/O timeout would roughly.
            match tokio::time::timeout(c.connect_timeout, self.fetch(u, target, c)).await {
                Ok(Ok(resp)) => u.verify(&resp)?,
                Ok(Err(e)) => return Err(e.context(format_args!("GET {}", u.path))),
                Err(_) => return Err(format!("GET {}: timed out after {:?}", u.path, c.connect_timeout).into()),
            }
        }
        Ok(())
    }

    async fn fetch(&self, u: &UrlProbe, target: SocketAddr, c: &CheckCommon) -> Result<Response, ProbeError> {
        let deadline = tokio::time::Instant::now() + c.connect_timeout;
        let req = crate::http::get_request(self.version, &u.host, &u.path, "hav-check").map_err(probe_error)?;
        let tcp = super::net::connect(target, c).await.map_err(|e| ProbeError::io("", e))?;
        let limits = crate::http::Limits { head: MAX_HEAD, body: MAX_RESPONSE };
        let r = if self.tls {
            let conn = tokio_rustls::TlsConnector::from(tls_config());
            let mut s = conn.connect(self.server_name.clone(), tcp).await.map_err(|e| format!("TLS handshake: {e}"))?;
            crate::http::exchange(&mut s, &req, limits, deadline).await
        } else {
            let mut s = tcp;
            let r = crate::http::exchange(&mut s, &req, limits, deadline).await;
            super::net::reset(s);
            r
        };
        let r = r.map_err(probe_error)?;
        if r.truncated {
            return Err(format!("response body larger than {MAX_RESPONSE} bytes").into());
        }
        Ok(r)
    }
}

/// A failed exchange: the server's failure, or hav's own exhaustion ([`ProbeError::io`]).
fn probe_error(e: HttpError) -> ProbeError {
    match e {
        HttpError::Send(e) => ProbeError::io("send", e),
        HttpError::Receive(e) => ProbeError::io("receive", e),
        other => ProbeError::Failed(other.to_string()),
    }
}

impl UrlProbe {
    fn verify(&self, r: &Response) -> Result<(), String> {
        let status_ok = if self.status.is_empty() {
            (200..=299).contains(&r.status)
        } else {
            self.status.iter().any(|s| s.contains(&r.status))
        };
        if !status_ok {
            return Err(format!("GET {}: status {}", self.path, r.status));
        }
        if let Some(want) = &self.digest {
            let got: String = Md5::digest(&r.body).iter().map(|b| format!("{b:02x}")).collect();
            if &got != want {
                return Err(format!("GET {}: digest {got}, expected {want}", self.path));
            }
        }
        if let Some(re) = &self.regex {
            let re = re.as_ref().map_err(Clone::clone)?;
            let matched = re.is_match(&r.body);
            if matched == self.regex_no_match {
                let what = if self.regex_no_match { "matches" } else { "does not match" };
                return Err(format!("GET {}: body {what} regex '{}'", self.path, re.as_str()));
            }
        }
        Ok(())
    }
}

/// Accepts any certificate; the handshake signatures are still checked, so the peer holds the
/// key of the certificate it sent.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS client of the checkers and of policy host calls: any certificate is accepted (as
/// keepalived's SSL_GET does), handshake signatures are still verified.
pub(crate) fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                // ring's default provider has suites for both default versions.
                .expect("ring provider supports TLS 1.2 and 1.3")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
                .with_no_client_auth();
            Arc::new(cfg)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::check::CheckKind;
    use crate::http::tests::Endless;

    /// The HTTP_GET of `GET /` against `addr`, as the config gives it.
    fn probe(addr: SocketAddr) -> (HttpProbe, CheckCommon) {
        let conf = format!(
            "virtual_server 10.0.0.1 80 {{\n real_server {} {} {{\n  HTTP_GET {{\n   url {{\n    path /\n   }}\n   connect_timeout 10\n  }}\n }}\n}}\n",
            addr.ip(),
            addr.port()
        );
        let c = crate::config::load_str(std::path::Path::new("t.conf"), &conf).expect("config").config;
        let ch = &c.virtual_servers[0].real_servers[0].checkers[0];
        let CheckKind::Http(h) = ch.kind.clone() else { panic!("not HTTP_GET") };
        (HttpProbe::new(h, addr), ch.common.clone())
    }

    #[tokio::test]
    async fn test_chunk_size_ffffffffffffffff_and_chunk_bomb_fail_cleanly() {
        const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        // This size line made the old parser panic (`size + 2` overflowed: in debug builds at
        // the addition, in release at the slice it wrapped into); now the body just does not
        // end before the connection does.
        let srv = Endless::start(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n", b"ab", Some(1)).await;
        let (p, c) = probe(srv.addr);
        let e = p.check(srv.addr, &c).await.expect_err("fails");
        assert_eq!(e.to_string(), "GET /: connection closed inside a chunked body");
        // Endless chunks fail the check at the body cap, promptly.
        let srv = Endless::start(HEAD, b"10\r\nzzzzzzzzzzzzzzzz\r\n", None).await;
        let t = std::time::Instant::now();
        let e = p.check(srv.addr, &c).await.expect_err("fails");
        assert_eq!(e.to_string(), format!("GET /: response body larger than {MAX_RESPONSE} bytes"));
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
        // A normal chunked body passes.
        let srv = Endless::start(HEAD, b"2\r\nok\r\n0\r\n\r\n", Some(1)).await;
        p.check(srv.addr, &c).await.expect("passes");
    }
}
