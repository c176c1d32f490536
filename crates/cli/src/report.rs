//! `mamori report submit`, `status` and `orgs`: an operator's machine-to-machine path to
//! the one window (PP-8, PP-9), over the centre's API.

use std::io::Read;
use std::path::Path;

/// Largest report file sent (the server's own body limit decides what it accepts).
const MAX_FILE_BYTES: u64 = 64 << 20;
/// Largest answer read back.
const MAX_ANSWER_BYTES: u64 = 16 << 20;

/// Where the centre is and who is calling.
pub(crate) struct Centre {
    pub url: String,
    pub token: String,
}

impl From<crate::cli::CentreArgs> for Centre {
    fn from(a: crate::cli::CentreArgs) -> Self {
        Centre {
            url: a.url,
            token: a.token.unwrap_or_default(),
        }
    }
}

impl Centre {
    pub(crate) fn agent(&self) -> anyhow::Result<ureq::Agent> {
        if self.token.is_empty() {
            anyhow::bail!(
                "no token: pass --token or set MAMORI_TOKEN to an API token of your organisation"
            );
        }
        Ok(ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into())
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }

    /// GETs `path` with the token and returns the JSON answer, or the server's message.
    fn get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let url = self.url(path);
        let resp = self
            .agent()?
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
        Ok(answer(&format!("GET {url}"), resp)?.0)
    }
}

/// Reads an answer (bounded) and turns a non-2xx status into an error with the server's
/// message.
fn answer(
    what: &str,
    resp: ureq::http::Response<ureq::Body>,
) -> anyhow::Result<(serde_json::Value, bool)> {
    let status = resp.status();
    let replayed = resp.headers().get("idempotent-replayed").is_some();
    let mut text = String::new();
    #[allow(clippy::disallowed_methods)] // bounded by take()
    resp.into_body()
        .into_reader()
        .take(MAX_ANSWER_BYTES)
        .read_to_string(&mut text)?;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let msg = v["error"]["message"].as_str().unwrap_or(text.as_str());
        anyhow::bail!("{what}: HTTP {status}: {msg}");
    }
    Ok((v, replayed))
}

/// Whether a file's JSON is a STIX bundle (its top-level `type` is `bundle`).
fn is_bundle(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| p.kind.as_deref() == Some("bundle"))
}

/// Sends the flash report in `file` (JSON, or a STIX 2.1 bundle) and prints the status
/// resource the centre answers with.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub(crate) fn submit(centre: &Centre, file: &Path, key: Option<&str>) -> anyhow::Result<()> {
    let size = std::fs::metadata(file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        anyhow::bail!(
            "{}: {size} bytes is more than {MAX_FILE_BYTES}: send detail in follow-up stages",
            file.display()
        );
    }
    let body = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let media = if is_bundle(&body) {
        "application/stix+json;version=2.1"
    } else {
        "application/json"
    };
    let url = centre.url("/api/v1/reports");
    let mut req = centre
        .agent()?
        .post(&url)
        .header("Authorization", &format!("Bearer {}", centre.token))
        .header("Content-Type", media);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req
        .send(&body[..])
        .map_err(|e| anyhow::anyhow!("POST {url}: {e}"))?;
    let (v, replayed) = answer(&format!("POST {url}"), resp)?;
    eprintln!(
        "{} report {} ({})",
        if replayed {
            "already received:"
        } else {
            "received:"
        },
        v["id"],
        centre.url(&format!("/api/v1/reports/{}", v["id"]))
    );
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// Prints a report's status under its regime: each stage and the centre's duties.
#[allow(clippy::print_stdout)]
pub(crate) fn status(centre: &Centre, id: i64, json: bool) -> anyhow::Result<()> {
    let v = centre.get_json(&format!("/api/v1/reports/{id}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_owned();
    println!(
        "report {id}: {} · {} · impact {} · cause {} · regime {}{}",
        s("tlp"),
        s("sector"),
        s("impact"),
        s("cause"),
        v["status"]["regime"].as_str().unwrap_or("-"),
        if v["status"]["overdue"] == true {
            " · OVERDUE"
        } else {
            ""
        }
    );
    let steps = v["status"]["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .chain([&v["status"]["acknowledgement"], &v["status"]["feedback"]]);
    for st in steps {
        let t = |k: &str| st[k].as_str().unwrap_or("-").to_owned();
        println!(
            "  {:<16} {:<9} due {:<26} done {}{}",
            t("name"),
            t("state"),
            t("due"),
            t("done_at"),
            if st["late"] == true { " (late)" } else { "" }
        );
    }
    Ok(())
}

/// One organisation in the centre's directory (`GET /api/v1/orgs`).
#[derive(serde::Deserialize, serde::Serialize)]
struct DirectoryEntry {
    id: mamori_core::OrgId,
    name: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sector: Option<String>,
}

/// Prints the centre's directory of organisations: the ids and names a report's
/// `exclude`, `route_to` and `share_with` take.
#[allow(clippy::print_stdout)]
pub(crate) fn orgs(centre: &Centre, json: bool) -> anyhow::Result<()> {
    let v = centre.get_json("/api/v1/orgs")?;
    let orgs: Vec<DirectoryEntry> = serde_json::from_value(v)
        .map_err(|e| anyhow::anyhow!("GET /api/v1/orgs: not a directory of organisations: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&orgs)?);
    } else {
        println!(
            "{}",
            crate::admin::org_table(orgs.iter().map(|o| (
                o.id,
                o.kind.as_str(),
                o.sector.as_deref(),
                o.name.as_str()
            )))
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_are_told_from_flash_reports() {
        assert!(is_bundle(br#"{"type": "bundle", "id": "bundle--x"}"#));
        assert!(!is_bundle(
            br#"{"sector": "electricity", "type_of": "bundle"}"#
        ));
        assert!(!is_bundle(b"not json"));
    }
}
