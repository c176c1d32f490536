//! Findings to the centre (REQUIREMENTS CI-11): `POST /api/v1/findings`
//! with a carrier's token, in submissions of at most [`MAX_PER_REQUEST`], each with its
//! TLP. Used by `mamori detect --post` and by the sensor's poster stage.
//!
//! **API boundary:** [`Centre`] (URL, token, TLP) and [`post`]; a failed request is a
//! typed [`PostError`] and the caller decides whether to retry (the sensor retries with
//! backoff and counts failures; the command line reports and exits).

use mamori_core::finding::Finding;
use std::time::Duration;

/// Most findings per request.
pub const MAX_PER_REQUEST: usize = 10_000;

/// Where findings go.
#[derive(Debug, Clone)]
pub struct Centre {
    /// The centre's base URL (`https://centre.example`).
    pub url: String,
    /// The carrier's API token (sent as a bearer token; never logged).
    pub token: String,
    /// The TLP the findings are shared under.
    pub tlp: mamori_core::Tlp,
}

/// Why findings were not (all) accepted.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// No token configured.
    #[error("posting findings needs a carrier's token")]
    NoToken,
    /// The request did not complete (connection refused, timeout, TLS).
    #[error("POST {url}: {message}")]
    Transport {
        /// The endpoint.
        url: String,
        /// What failed.
        message: String,
    },
    /// The centre answered with an error status.
    #[error("POST {url}: HTTP {status}: {body}")]
    Status {
        /// The endpoint.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the answer.
        body: String,
    },
}

impl PostError {
    /// Whether trying again later may help (transport failures and 5xx/429 do; a refused
    /// token or a rejected body do not).
    pub fn retryable(&self) -> bool {
        match self {
            PostError::NoToken => false,
            PostError::Transport { .. } => true,
            PostError::Status { status, .. } => *status >= 500 || *status == 429,
        }
    }
}

/// Sends `findings` to `to`; returns how many were accepted. On error, the submissions
/// before the failing one were accepted (their count is lost to the caller, which resends
/// at most one submission twice: the centre stores findings, it does not deduplicate).
pub fn post(to: &Centre, findings: &[Finding], timeout: Duration) -> Result<u64, PostError> {
    if to.token.is_empty() {
        return Err(PostError::NoToken);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/api/v1/findings", to.url.trim_end_matches('/'));
    let mut sent = 0;
    for chunk in findings.chunks(MAX_PER_REQUEST) {
        let body = serde_json::json!({ "tlp": to.tlp, "findings": chunk });
        let resp = agent
            .post(&url)
            .header("Authorization", &format!("Bearer {}", to.token))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .map_err(|e| PostError::Transport {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let status = resp.status();
        let mut text = String::new();
        #[allow(clippy::disallowed_methods)] // bounded by take()
        let _ = std::io::Read::read_to_string(
            &mut std::io::Read::take(resp.into_body().into_reader(), 1 << 20),
            &mut text,
        );
        if !status.is_success() {
            text.truncate(500);
            return Err(PostError::Status {
                url,
                status: status.as_u16(),
                body: text,
            });
        }
        sent += chunk.len() as u64;
    }
    Ok(sent)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A finding for the unit tests of posting and of the runtime's poster.
    pub(crate) fn finding() -> Finding {
        Finding {
            kind: mamori_core::finding::FindingKind::Beacon,
            address: "192.0.2.1".parse().unwrap(),
            port: 443,
            proto: 6,
            score: 0.9,
            first_seen: 0,
            last_seen: 1,
            clients: mamori_core::finding::Clients::default(),
            evidence: mamori_core::finding::Evidence::Beacon(Default::default()),
            feed: None,
        }
    }

    #[test]
    fn no_token_is_refused_before_any_request() {
        let c = Centre {
            url: "http://127.0.0.1:9".into(),
            token: String::new(),
            tlp: mamori_core::Tlp::Amber,
        };
        assert!(matches!(
            post(&c, &[], Duration::from_secs(1)),
            Err(PostError::NoToken)
        ));
    }

    #[test]
    fn refused_connection_is_a_retryable_transport_error() {
        // A port just released: nothing listens on it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let c = Centre {
            url: format!("http://{addr}"),
            token: "t".into(),
            tlp: mamori_core::Tlp::Amber,
        };
        let e = post(&c, &[], Duration::from_secs(2));
        // No findings: no request is needed at all.
        assert_eq!(e.unwrap(), 0);
        let e = post(&c, &[finding()], Duration::from_secs(2)).unwrap_err();
        assert!(e.retryable(), "{e}");
    }
}
