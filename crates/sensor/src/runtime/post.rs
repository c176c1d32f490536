//! The post stage: findings sent to the centre, retried with back-off, one more try at
//! most once the sensor stops.

use super::*;

pub(super) fn poster(
    rx: Receiver<Vec<Finding>>,
    centre: &Centre,
    cfg: &CentreConfig,
    m: &Metrics,
    stop: &AtomicBool,
) {
    for findings in rx {
        let n = findings.len() as u64;
        m.post_queue.dequeued(n);
        let mut backoff = Duration::from_secs(1);
        let mut attempt = 1;
        loop {
            match post(centre, &findings, cfg.timeout) {
                Ok(sent) => {
                    m.findings_posted.fetch_add(sent, Ordering::Relaxed);
                    tracing::info!(findings = sent, tlp = %centre.tlp, "findings posted to the centre");
                    break;
                }
                Err(e) => {
                    m.post_attempt_errors.fetch_add(1, Ordering::Relaxed);
                    // Stopping: one more try at most, no long waits.
                    let give_up = !e.retryable()
                        || attempt >= cfg.max_attempts
                        || (stop.load(Ordering::Relaxed) && attempt >= 2);
                    if give_up {
                        m.findings_post_failed.fetch_add(n, Ordering::Relaxed);
                        tracing::warn!(error = %e, findings = n, attempt, "findings not posted");
                        break;
                    }
                    tracing::warn!(error = %e, attempt, retry_in = ?backoff, "posting findings failed; retrying");
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    attempt += 1;
                }
            }
        }
    }
}
