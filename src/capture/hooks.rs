//! Where an alert goes besides the run: a command given the alert as JSON on its standard input
//! (`on_alert`), and a webhook POSTed the JSON (or, with `webhook_format = "slack"`, Slack's
//! `{"text": …}`). Each call is bounded by a timeout; the caller runs them off the capture path.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run `cmd` through `sh -c` with `body` on its standard input; stop it after `timeout`.
pub fn command(cmd: &str, body: &serde_json::Value, timeout: Duration) -> Result<(), String> {
    let mut child = Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its input is its own business.
        let _ = writeln!(stdin, "{body}");
    }
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("it exited with {status}")),
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "it took longer than {:.0} s and was stopped",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// POST the alert to `url`, as JSON or as Slack's `{"text": …}`.
pub fn webhook(
    url: &str,
    body: &serde_json::Value,
    slack: bool,
    timeout: Duration,
) -> Result<(), String> {
    let payload = if slack {
        serde_json::json!({"text": format!(
            "gantry: run {} — {} {}: {}",
            body["run"].as_str().unwrap_or(""),
            body["alert"].as_str().unwrap_or(""),
            body["state"].as_str().unwrap_or(""),
            body["message"].as_str().unwrap_or("")
        )})
    } else {
        body.clone()
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(true)
        .build()
        .into();
    agent
        .post(url)
        .header("content-type", "application/json")
        .send(payload.to_string())
        .map(|_| ())
        .map_err(|e| e.to_string())
}
