//! `mamori detect FILE…` and `mamori eval FILE…`: every detector over any input that
//! `mamori flows` reads (issue 7), and precision/recall against labels.

use crate::flows::{BatchSink, Format, read_file};
use anyhow::Context;
use mamori_detect::eval::{Labels, evaluate};
use mamori_detect::{DetectConfig, Detectors, Finding, ScanProfile};
use mamori_flow::FlowBatch;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl BatchSink for Detectors {
    fn batch(&mut self, batch: &FlowBatch) -> anyhow::Result<()> {
        self.observe_batch(batch);
        Ok(())
    }
}

fn open(path: &Path) -> anyhow::Result<BufReader<std::fs::File>> {
    Ok(BufReader::new(
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
    ))
}

/// Loads indicator lists (the sensor's loader: Feodo CSV or DROP/EDROP, feed = file name).
fn indicators(files: &[PathBuf]) -> anyhow::Result<Arc<mamori_detect::IndicatorSet>> {
    Ok(Arc::new(mamori_sensor::runtime::load_indicators(files)?))
}

pub(crate) struct DetectArgs {
    pub files: Vec<PathBuf>,
    pub format: Format,
    pub profile: String,
    pub indicators: Vec<PathBuf>,
}

/// Runs every detector over the files; findings sorted by score.
pub(crate) fn run(args: &DetectArgs) -> anyhow::Result<(u64, Vec<Finding>)> {
    let profile = ScanProfile::parse(&args.profile).with_context(|| {
        format!(
            "unknown --profile {:?}: use telescope or slips",
            args.profile
        )
    })?;
    let mut cfg = DetectConfig::default();
    cfg.scan.profile = profile;
    cfg.indicators = indicators(&args.indicators)?;
    let mut detectors = Detectors::new(&cfg);
    for f in &args.files {
        read_file(f, args.format, &mut detectors)?;
    }
    let records = detectors.records();
    Ok((records, detectors.finish()))
}

fn time(ms: i64) -> String {
    mamori_core::time::from_millis(ms)
        .map(mamori_core::time::rfc3339)
        .unwrap_or_default()
}

/// Where `--post` sends findings.
pub(crate) type Post = mamori_sensor::post::Centre;

/// Sends findings to the centre (the upload shared with the sensor).
fn post(to: &Post, findings: &[Finding]) -> anyhow::Result<u64> {
    mamori_sensor::post::post(to, findings, std::time::Duration::from_secs(60)).map_err(|e| match e
    {
        mamori_sensor::post::PostError::NoToken => {
            anyhow::anyhow!("--post needs a carrier's token: --token or MAMORI_TOKEN")
        }
        other => anyhow::Error::new(other),
    })
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
pub(crate) fn detect(
    args: &DetectArgs,
    top: usize,
    json: bool,
    to: Option<&Post>,
) -> anyhow::Result<()> {
    let (records, findings) = run(args)?;
    eprintln!("{records} records, {} findings", findings.len());
    if let Some(to) = to {
        let n = post(to, &findings)?;
        eprintln!("posted {n} findings to {} as {}", to.url, to.tlp);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for f in findings.iter().take(top) {
        if json {
            writeln!(out, "{}", f.to_json_line())?;
        } else {
            writeln!(
                out,
                "{:<9} {:<40} {:>5}/{:<4} score {:.3}  clients {:>5}  {} … {}",
                f.kind.as_str(),
                f.address.to_string(),
                f.port,
                f.proto,
                f.score,
                f.clients.count,
                time(f.first_seen),
                time(f.last_seen)
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
pub(crate) fn eval(
    args: &DetectArgs,
    labels: &[PathBuf],
    ground_truth: Option<(&Path, &str)>,
    min_score: f64,
) -> anyhow::Result<()> {
    let mut all = Labels::default();
    for path in labels {
        let input = open(path)?;
        let l = if path.to_string_lossy().ends_with(".binetflow") {
            Labels::from_binetflow(input)
        } else {
            Labels::from_zeek_labeled(input)
        }
        .with_context(|| format!("reading labels from {}", path.display()))?;
        all.merge(l);
    }
    if let Some((path, dataset)) = ground_truth {
        let l = Labels::from_ground_truth(open(path)?, dataset).with_context(|| {
            format!(
                "reading ground truth for {dataset:?} from {}",
                path.display()
            )
        })?;
        all.merge(l);
    }
    if labels.is_empty() && ground_truth.is_none() {
        anyhow::bail!(
            "give --labels FILE (CTU-labelled conn.log or binetflow) or --ground-truth FILE --dataset NAME"
        );
    }
    let (records, findings) = run(args)?;
    eprintln!(
        "{records} records, {} findings; labels: {} flows, {} malicious sources, {} C2 servers",
        findings.len(),
        all.labelled_flows,
        all.malicious_sources.len(),
        all.c2_servers.len()
    );
    println!("{}", evaluate(&findings, &all, min_score));
    Ok(())
}
