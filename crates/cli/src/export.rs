//! `mamori export`: everything the caller may see, as one STIX 2.1 bundle on standard
//! output (issue 8 item 3; PP-4). It follows the centre's `GET /api/v1/export` pages
//! (`Mamori-Next`) and writes each object as it arrives, so memory stays bounded by one
//! page; the official TLP marking definitions are written once.

use crate::report::Centre;
use std::collections::HashSet;
use std::io::{Read, Write};

/// Largest page read back.
const MAX_PAGE_BYTES: u64 = 512 << 20;

/// What to export.
pub(crate) struct ExportArgs {
    /// Only what was received or added at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only these STIX types (comma-separated).
    pub types: Option<String>,
}

fn query(args: &ExportArgs, after: Option<&str>) -> String {
    let mut q: Vec<String> = Vec::new();
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    if let Some(s) = &args.since {
        q.push(format!("since={}", enc(s)));
    }
    if let Some(t) = &args.types {
        q.push(format!("types={}", enc(t)));
    }
    if let Some(a) = after {
        q.push(format!("after={}", enc(a)));
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// Writes the bundle to `out`; returns how many objects it holds.
pub(crate) fn export(
    centre: &Centre,
    args: &ExportArgs,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let agent = centre.agent()?;
    let mut after: Option<String> = None;
    let mut seen_markings: HashSet<String> = HashSet::new();
    let mut n = 0u64;
    let mut started = false;
    loop {
        let url = centre.url(&format!("/api/v1/export{}", query(args, after.as_deref())));
        let resp = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", centre.token))
            .call()
            .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
        let status = resp.status();
        let next = resp
            .headers()
            .get("mamori-next")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut text = String::new();
        #[allow(clippy::disallowed_methods)] // bounded by take()
        resp.into_body()
            .into_reader()
            .take(MAX_PAGE_BYTES)
            .read_to_string(&mut text)?;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            let msg = v["error"]["message"].as_str().unwrap_or(text.as_str());
            anyhow::bail!("GET {url}: HTTP {status}: {msg}");
        }
        if v["type"] != "bundle" {
            anyhow::bail!("GET {url}: the answer is not a STIX bundle");
        }
        // A page with nothing in it has no `objects` (STIX 2.1: one or more when present).
        let objects = v["objects"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if !started {
            let id = v["id"].as_str().unwrap_or_default();
            write!(
                out,
                "{{\"type\":\"bundle\",\"id\":{}",
                serde_json::Value::String(id.to_owned())
            )?;
            started = true;
        }
        for o in objects {
            if o["type"] == "marking-definition" {
                let id = o["id"].as_str().unwrap_or_default().to_owned();
                if !seen_markings.insert(id) {
                    continue;
                }
            }
            out.write_all(if n == 0 { b",\"objects\":[" } else { b"," })?;
            serde_json::to_writer(&mut *out, o)?;
            n += 1;
        }
        match next {
            Some(a) if Some(&a) != after.as_ref() => after = Some(a),
            _ => break,
        }
    }
    out.write_all(if n == 0 { b"}\n" } else { b"]}\n" })?;
    out.flush()?;
    Ok(n)
}
